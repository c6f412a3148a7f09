package controllers

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	execv1alpha1 "github.com/coderun-dev/coderun/api/v1alpha1"
)

func queuedRun(name string, created time.Time) *execv1alpha1.CodeRun {
	return &execv1alpha1.CodeRun{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, CreationTimestamp: metav1.NewTime(created)}}
}

func key(name string) types.NamespacedName { return types.NamespacedName{Namespace: "ns", Name: name} }

func TestQueueOrder(t *testing.T) {
	t0 := time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)
	cases := []struct {
		name     string
		runs     []*execv1alpha1.CodeRun
		initial  []string // already there when the watch started
		observed []string // arrival order seen by the watch
		want     []string
	}{
		{"older second first", []*execv1alpha1.CodeRun{queuedRun("b", t0.Add(time.Second)), queuedRun("a", t0)}, nil, nil, []string{"a", "b"}},
		{"same second: arrival order, not name", []*execv1alpha1.CodeRun{queuedRun("a", t0), queuedRun("c", t0), queuedRun("b", t0)}, nil, []string{"c", "a", "b"}, []string{"c", "a", "b"}},
		{"same second, not yet observed: after observed, then by name", []*execv1alpha1.CodeRun{queuedRun("b", t0), queuedRun("a", t0), queuedRun("z", t0)}, nil, []string{"z"}, []string{"z", "a", "b"}},
		{"same second, pre-existing before live, by name", []*execv1alpha1.CodeRun{queuedRun("live", t0), queuedRun("y", t0), queuedRun("x", t0)}, []string{"y", "x"}, []string{"live"}, []string{"x", "y", "live"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			q := newRunQueue(1)
			byName := map[string]*execv1alpha1.CodeRun{}
			for _, r := range tc.runs {
				byName[r.Name] = r
			}
			for _, n := range tc.initial {
				q.observe(byName[n], true)
			}
			for _, n := range tc.observed {
				q.observe(byName[n], false)
			}
			for _, r := range tc.runs { // the rest: waiting, but their creation not delivered yet
				q.track(r)
			}
			var got []string
			for _, k := range q.next(len(tc.runs)) {
				got = append(got, k.Name)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("got %v, want %v", got, tc.want)
				}
			}
		})
	}
}

func TestQueueAdmitsOldestWithinLimit(t *testing.T) {
	t0 := time.Now()
	runs := []*execv1alpha1.CodeRun{queuedRun("a", t0), queuedRun("b", t0), queuedRun("c", t0)}
	t0m := metav1.NewTime(t0)
	q := newRunQueue(2)
	for _, r := range runs {
		q.observe(r, false)
	}
	const min, count = 1000, 10
	// c is third: it must wait even though a slot is free, while a and b have not yet asked.
	if _, ok := q.admit(key("c"), t0m, min, min, count); ok {
		t.Fatal("c admitted ahead of a and b")
	}
	uidB, ok := q.admit(key("b"), t0m, min, min, count)
	if !ok {
		t.Fatal("b (second, 2 free slots) not admitted")
	}
	uidA, ok := q.admit(key("a"), t0m, min, min, count)
	if !ok {
		t.Fatal("a not admitted")
	}
	if uidA == uidB {
		t.Errorf("a and b got the same uid %d", uidA)
	}
	if again, ok := q.admit(key("a"), t0m, min, min, count); !ok || again != uidA {
		t.Errorf("admitting a again gave %d/%v, want its uid %d: admit must be idempotent", again, ok, uidA)
	}
	if _, ok := q.admit(key("c"), t0m, min, min, count); ok {
		t.Fatal("c admitted while 2 of 2 slots are taken")
	}
	if q.freeSlots() != 0 {
		t.Errorf("free slots %d, want 0", q.freeSlots())
	}
	doneA := runs[0].DeepCopy()
	doneA.Status.Result = &execv1alpha1.CodeRunResult{Reason: execv1alpha1.ReasonCompleted}
	q.track(doneA) // a finished: its update event
	q.release(key("a"))
	q.release(key("a")) // releasing again frees nothing more
	if q.freeSlots() != 1 {
		t.Errorf("free slots %d after a left, want 1", q.freeSlots())
	}
	uidC, ok := q.admit(key("c"), t0m, min+count-1, min, count)
	if !ok {
		t.Fatal("c not admitted after a slot freed")
	}
	if uidC != min+count-1 {
		t.Errorf("c got uid %d, want its preferred %d", uidC, min+count-1)
	}
}

func TestQueueUIDProbingWraps(t *testing.T) {
	q := newRunQueue(3)
	q.seed(map[types.NamespacedName]int64{key("x"): 1009})
	y := queuedRun("y", time.Now())
	q.observe(y, false)
	uid, ok := q.admit(key("y"), y.CreationTimestamp, 1009, 1000, 10)
	if !ok || uid != 1000 {
		t.Errorf("uid %d (admitted %v), want 1000: 1009 is taken and the range wraps", uid, ok)
	}
}

// TestFinishedRunWakesTheNextInArrivalOrder drives the CodeRun event handler as the watch
// does: runs created in the same second queue in the order their creations arrive, not by
// name, and a run that finishes hands its slot to the oldest waiting run.
func TestFinishedRunWakesTheNextInArrivalOrder(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	t0 := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	a, b, c := queuedRun("a", t0), queuedRun("b", t0), queuedRun("c", t0)
	cl := fake.NewClientBuilder().WithScheme(testScheme).WithObjects(a, b, c).Build()
	r := &CodeRunReconciler{Client: cl, queue: newRunQueue(1)}
	handler := r.runEvents()
	q := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[reconcile.Request]())
	defer q.ShutDown()
	ctx := context.Background()

	for _, run := range []*execv1alpha1.CodeRun{a, c, b} { // the API server committed them in this order
		handler.Create(ctx, event.TypedCreateEvent[client.Object]{Object: run}, q)
	}
	if _, ok := r.queue.admit(key("a"), a.CreationTimestamp, 1000, 1000, 10); !ok {
		t.Fatal("a, first to arrive, was not admitted to the free slot")
	}
	drain(q)

	done := a.DeepCopy()
	done.Status.Result = &execv1alpha1.CodeRunResult{Reason: execv1alpha1.ReasonCompleted}
	handler.Update(ctx, event.TypedUpdateEvent[client.Object]{ObjectOld: a, ObjectNew: done}, q)
	if got, want := drain(q), []string{"a", "c"}; !slices.Equal(got, want) {
		t.Errorf("a finishing enqueued %v, want %v: itself and c, which arrived before b", got, want)
	}
}

// drain returns the names of the requests in q, in order, and empties it.
func drain(q workqueue.TypedRateLimitingInterface[reconcile.Request]) []string {
	var names []string
	for q.Len() > 0 {
		req, _ := q.Get()
		names = append(names, req.Name)
		q.Done(req)
	}
	return names
}

// The depth gauge counts the runs that wait for a slot, as soon as one is refused.
func TestQueueDepthGauge(t *testing.T) {
	t0 := time.Now()
	a, b, c := queuedRun("a", t0), queuedRun("b", t0), queuedRun("c", t0)
	q := newRunQueue(1)
	for _, r := range []*execv1alpha1.CodeRun{a, b, c} {
		q.observe(r, false)
	}
	if _, ok := q.admit(key("a"), a.CreationTimestamp, 1000, 1000, 10); !ok {
		t.Fatal("a not admitted")
	}
	if _, ok := q.admit(key("c"), c.CreationTimestamp, 1000, 1000, 10); ok {
		t.Fatal("c admitted with no free slot")
	}
	if got := testutil.ToFloat64(queueDepth); got != 2 {
		t.Errorf("queue depth %v, want 2 (b and c; a holds the slot)", got)
	}
}
