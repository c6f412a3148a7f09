package controllers

import (
	"cmp"
	"slices"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	execv1alpha1 "github.com/coderun-dev/coderun/api/v1alpha1"
)

// runQueue admits at most limit runs at once, oldest first, and gives each active run a
// user id no other active run has. It keeps the coderun_active_runs gauge in step with
// its slots.
//
// Order: creationTimestamp has only second precision, so runs created in the same second
// are ordered by when the operator's watch delivered their creation, which is the order in
// which the API server committed them. Runs that already existed when the operator started
// come first within their second, in name order; runs whose creation has not been
// delivered yet come last.
//
// Slots are held in memory, not derived from the cache alone: right after the operator
// creates a Job and marks the run Running, its cache may not show that yet, and counting
// from it would admit too many.
type runQueue struct {
	limit int

	mu       sync.Mutex
	seq      uint64
	arrivals map[types.NamespacedName]uint64
	// waiting holds the runs that have neither started nor finished (no Job yet, no
	// result, not being deleted), with their creation time, as the watch delivers them.
	// Kept up to date by the CodeRun events, so that admitting a run or waking the next
	// ones never lists every CodeRun: with thousands of runs that listing, sorted, once
	// per admission and once per finished run, was the operator's main cost.
	waiting map[types.NamespacedName]waitKey
	// order holds the waiting runs sorted oldest first. Admitting a run walks it from the
	// front only until the run's turn or the free slots are decided, and waking the next
	// runs takes its first ones.
	order  []waitKey
	active map[types.NamespacedName]int64 // run -> uid it runs as (0: unknown)
	// members holds the uids of pool members that no run has claimed yet, so that no run
	// or other member gets the uid of a member that may run a program at any moment.
	members map[types.NamespacedName]int64
	seeded  bool
}

func newRunQueue(limit int) *runQueue {
	return &runQueue{
		limit:    limit,
		arrivals: map[types.NamespacedName]uint64{},
		waiting:  map[types.NamespacedName]waitKey{},
		active:   map[types.NamespacedName]int64{},
		members:  map[types.NamespacedName]int64{},
	}
}

// observe records that a run arrived, the first time it is seen. Runs that already
// existed when the watch started (initial) arrive in no meaningful order (the informer
// replays its store, a map): they rank before every live arrival and among themselves by
// name.
func (q *runQueue) observe(run *execv1alpha1.CodeRun, initial bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	key := client.ObjectKeyFromObject(run)
	defer q.trackLocked(key, run) // after the arrival is known: it places the run
	if _, ok := q.arrivals[key]; ok || !isWaiting(run) {
		return
	}
	if initial {
		q.arrivals[key] = 0
		return
	}
	q.seq++
	q.arrivals[key] = q.seq
}

// track records the state of run as an event delivered it: waiting or not.
func (q *runQueue) track(run *execv1alpha1.CodeRun) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.trackLocked(client.ObjectKeyFromObject(run), run)
}

func (q *runQueue) trackLocked(key types.NamespacedName, run *execv1alpha1.CodeRun) {
	if !isWaiting(run) {
		q.unwaitLocked(key)
		return
	}
	w := q.waitKeyLocked(key, run.CreationTimestamp)
	if old, ok := q.waiting[key]; ok {
		if old == w {
			return
		}
		q.unwaitLocked(key)
	}
	q.waiting[key] = w
	i, _ := slices.BinarySearchFunc(q.order, w, waitKey.compare)
	q.order = slices.Insert(q.order, i, w)
}

func (q *runQueue) unwaitLocked(key types.NamespacedName) {
	w, ok := q.waiting[key]
	if !ok {
		return
	}
	delete(q.waiting, key)
	if i, found := slices.BinarySearchFunc(q.order, w, waitKey.compare); found {
		q.order = slices.Delete(q.order, i, i+1)
	}
}

// forget drops a run that was deleted: it neither waits nor holds a slot.
func (q *runQueue) forget(key types.NamespacedName) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.unwaitLocked(key)
	q.releaseLocked(key)
}

// waitKey is where a waiting run stands in the queue.
type waitKey struct {
	created time.Time
	arrival uint64
	key     types.NamespacedName
}

// compare orders runs by creation second, then by arrival, then by name.
func (a waitKey) compare(b waitKey) int {
	return cmp.Or(
		a.created.Compare(b.created),
		cmp.Compare(a.arrival, b.arrival),
		cmp.Compare(a.key.Namespace, b.key.Namespace),
		cmp.Compare(a.key.Name, b.key.Name),
	)
}

func (q *runQueue) waitKeyLocked(key types.NamespacedName, created metav1.Time) waitKey {
	arrival, ok := q.arrivals[key]
	if !ok {
		arrival = ^uint64(0) // not seen yet: after those that were
	}
	return waitKey{created: created.Time, arrival: arrival, key: key}
}

// isWaiting reports whether run waits for a slot: it has no Job yet and no result, and is
// not being deleted.
func isWaiting(run *execv1alpha1.CodeRun) bool {
	return run.DeletionTimestamp.IsZero() && !finished(run) && run.Status.JobName == ""
}

// seed marks runs that were already running when the operator started as active. It
// takes effect once; later calls do nothing.
func (q *runQueue) seed(running map[types.NamespacedName]int64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.seeded {
		return
	}
	q.seeded = true
	for key, uid := range running {
		q.active[key] = uid
	}
	activeRuns.Set(float64(len(q.active)))
}

// isSeeded reports whether seed has run.
func (q *runQueue) isSeeded() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.seeded
}

// admit decides whether run (created at created) may start now. When run is among the
// oldest waiting runs that fit in the free slots, it becomes active with a user id chosen
// from preferred onward (wrapping within [uidMin, uidMin+uidCount)) that no other active
// run has.
func (q *runQueue) admit(run types.NamespacedName, created metav1.Time, preferred, uidMin, uidCount int64) (uid int64, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if uid, ok := q.active[run]; ok {
		return uid, true
	}
	free := q.limit - len(q.active)
	if free <= 0 {
		q.setDepthLocked()
		return 0, false
	}
	me, ok := q.waiting[run]
	if !ok {
		me = q.waitKeyLocked(run, created)
	}
	ahead := 0
	for _, w := range q.order {
		if w.compare(me) >= 0 {
			break
		}
		if _, isActive := q.active[w.key]; isActive {
			continue
		}
		if ahead++; ahead >= free {
			q.setDepthLocked()
			return 0, false
		}
	}
	uid = q.freeUIDLocked(preferred, uidMin, uidCount)
	q.active[run] = uid
	delete(q.arrivals, run) // only waiting runs need their arrival
	activeRuns.Set(float64(len(q.active)))
	return uid, true
}

// freeUIDLocked is the first uid from preferred onward (wrapping within [uidMin,
// uidMin+uidCount)) that no active run and no member has.
func (q *runQueue) freeUIDLocked(preferred, uidMin, uidCount int64) int64 {
	taken := map[int64]bool{}
	for _, u := range q.active {
		taken[u] = true
	}
	for _, u := range q.members {
		taken[u] = true
	}
	uid := preferred
	for taken[uid] {
		uid++
		if uid >= uidMin+uidCount {
			uid = uidMin
		}
	}
	return uid
}

// reserveMember gives the new member key a uid from preferred onward that no active run
// and no other member has, and keeps it until the member is claimed or forgotten.
func (q *runQueue) reserveMember(key types.NamespacedName, preferred, uidMin, uidCount int64) int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	if uid, ok := q.members[key]; ok {
		return uid
	}
	uid := q.freeUIDLocked(preferred, uidMin, uidCount)
	q.members[key] = uid
	return uid
}

// seedMember records the uid of a member that exists (found in the cache), unless the
// member is known already.
func (q *runQueue) seedMember(key types.NamespacedName, uid int64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if _, ok := q.members[key]; !ok {
		q.members[key] = uid
	}
}

// forgetMember drops the uid of a member that is gone.
func (q *runQueue) forgetMember(key types.NamespacedName) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.members, key)
}

// claimMember moves the uid of member to run, which holds a slot: the run now executes
// as the member's uid, and its provisional uid from admit is free again.
func (q *runQueue) claimMember(run, member types.NamespacedName, uid int64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.members, member)
	if _, ok := q.active[run]; ok {
		q.active[run] = uid
	}
}

// renewUID gives run, which holds a slot, a uid of its own again, after the member whose
// uid it took was given up: the member's pod may still be ending under that uid.
func (q *runQueue) renewUID(run types.NamespacedName, preferred, uidMin, uidCount int64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	old, ok := q.active[run]
	if !ok {
		return
	}
	q.members[run] = old // held aside while choosing, so the new uid differs
	q.active[run] = q.freeUIDLocked(preferred, uidMin, uidCount)
	delete(q.members, run)
}

// release frees the slot of key (if it held one) and forgets it.
func (q *runQueue) release(key types.NamespacedName) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.releaseLocked(key)
}

func (q *runQueue) releaseLocked(key types.NamespacedName) {
	delete(q.arrivals, key)
	if _, ok := q.active[key]; ok {
		delete(q.active, key)
		activeRuns.Set(float64(len(q.active)))
	}
}

// freeSlots is how many more runs may start now.
func (q *runQueue) freeSlots() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return max(q.limit-len(q.active), 0)
}

// next returns up to n of the oldest waiting runs that hold no slot, oldest first: the
// runs to wake when n slots are free. It also sets the queue depth gauge.
func (q *runQueue) next(n int) []types.NamespacedName {
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []types.NamespacedName
	for _, w := range q.order {
		if len(out) >= n {
			break
		}
		if _, isActive := q.active[w.key]; !isActive {
			out = append(out, w.key)
		}
	}
	q.setDepthLocked()
	return out
}

// setDepthLocked sets the queue depth gauge: the waiting runs that hold no slot. Active
// runs whose Job the watch has not shown yet are still in order.
func (q *runQueue) setDepthLocked() {
	activeWaiting := 0
	for key := range q.active {
		if _, ok := q.waiting[key]; ok {
			activeWaiting++
		}
	}
	queueDepth.Set(float64(len(q.order) - activeWaiting))
}
