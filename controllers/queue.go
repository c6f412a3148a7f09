package controllers

import (
	"cmp"
	"slices"
	"sync"

	"k8s.io/apimachinery/pkg/types"

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
	active   map[types.NamespacedName]int64 // run -> uid it runs as (0: unknown)
	// members holds the uids of pool members that no run has claimed yet, so that no run
	// or other member gets the uid of a member that may run a program at any moment.
	members map[types.NamespacedName]int64
	seeded  bool
}

func newRunQueue(limit int) *runQueue {
	return &runQueue{
		limit:    limit,
		arrivals: map[types.NamespacedName]uint64{},
		active:   map[types.NamespacedName]int64{},
		members:  map[types.NamespacedName]int64{},
	}
}

// observe records that a run arrived, the first time it is seen. Runs that already
// existed when the watch started (initial) arrive in no meaningful order (the informer
// replays its store, a map): they rank before every live arrival and among themselves by
// name.
func (q *runQueue) observe(key types.NamespacedName, initial bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if _, ok := q.arrivals[key]; ok {
		return
	}
	if initial {
		q.arrivals[key] = 0
		return
	}
	q.seq++
	q.arrivals[key] = q.seq
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

// isActive reports whether key holds a slot.
func (q *runQueue) isActive(key types.NamespacedName) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	_, ok := q.active[key]
	return ok
}

// admit decides whether run may start now. waiting holds every run that has not started
// and not finished (run among them). When run is among the oldest waiting runs that fit
// in the free slots, it becomes active with a user id chosen from preferred onward
// (wrapping within [uidMin, uidMin+uidCount)) that no other active run has.
func (q *runQueue) admit(run types.NamespacedName, waiting []*execv1alpha1.CodeRun, preferred, uidMin, uidCount int64) (uid int64, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if uid, ok := q.active[run]; ok {
		return uid, true
	}
	free := q.limit - len(q.active)
	if free <= 0 {
		return 0, false
	}
	ahead := 0
	for _, w := range q.orderLocked(waiting) {
		key := types.NamespacedName{Namespace: w.Namespace, Name: w.Name}
		if key == run {
			break
		}
		if _, isActive := q.active[key]; !isActive {
			ahead++
		}
	}
	if ahead >= free {
		return 0, false
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

// order returns waiting sorted oldest first.
func (q *runQueue) order(waiting []*execv1alpha1.CodeRun) []*execv1alpha1.CodeRun {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.orderLocked(waiting)
}

func (q *runQueue) orderLocked(waiting []*execv1alpha1.CodeRun) []*execv1alpha1.CodeRun {
	sorted := slices.Clone(waiting)
	arrival := func(r *execv1alpha1.CodeRun) uint64 {
		if s, ok := q.arrivals[types.NamespacedName{Namespace: r.Namespace, Name: r.Name}]; ok {
			return s
		}
		return ^uint64(0) // not seen yet: after those that were
	}
	slices.SortStableFunc(sorted, func(a, b *execv1alpha1.CodeRun) int {
		return cmp.Or(
			a.CreationTimestamp.Compare(b.CreationTimestamp.Time),
			cmp.Compare(arrival(a), arrival(b)),
			cmp.Compare(a.Namespace, b.Namespace),
			cmp.Compare(a.Name, b.Name),
		)
	})
	return sorted
}
