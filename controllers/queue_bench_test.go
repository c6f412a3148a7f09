package controllers

import (
	"fmt"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	execv1alpha1 "github.com/coderun-dev/coderun/api/v1alpha1"
)

// manyQueuedRuns returns n waiting runs, 100 created in each second.
func manyQueuedRuns(n int) []*execv1alpha1.CodeRun {
	t0 := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)
	runs := make([]*execv1alpha1.CodeRun, n)
	for i := range runs {
		runs[i] = queuedRun(fmt.Sprintf("run-%05d", i), t0.Add(time.Duration(i/100)*time.Second))
	}
	return runs
}

// TestQueueTenThousandRunsInOrder admits 10,000 waiting runs through 1,000 slots as the
// controller does (a finished run frees its slot and wakes the next) and checks that
// they start strictly oldest first and that the bound holds throughout.
func TestQueueTenThousandRunsInOrder(t *testing.T) {
	const n, limit = 10000, 1000
	runs := manyQueuedRuns(n)
	q := newRunQueue(limit)
	for _, r := range runs {
		q.observe(r, false)
	}
	var started []types.NamespacedName
	for len(started) < n {
		woken := q.next(q.freeSlots())
		if len(woken) == 0 {
			t.Fatalf("nothing to wake with %d free slots after %d started", q.freeSlots(), len(started))
		}
		// The youngest woken run asks first: it must still wait for the older ones only
		// if there are not enough slots for all of them, which there are.
		for i := len(woken) - 1; i >= 0; i-- {
			created := runs[indexOf(woken[i])].CreationTimestamp
			if _, ok := q.admit(woken[i], created, 1000, 1000, 100000); !ok {
				t.Fatalf("%s, woken for a free slot, was not admitted", woken[i].Name)
			}
		}
		for i := range woken {
			started = append(started, woken[i])
			// Its Job exists: the run no longer waits.
			run := runs[indexOf(woken[i])].DeepCopy()
			run.Status.JobName = run.Name
			q.track(run)
		}
		if got := limit - q.freeSlots(); got > limit {
			t.Fatalf("%d runs active, limit %d", got, limit)
		}
		// The oldest active run finishes.
		q.release(started[len(started)-len(woken)])
	}
	for i, k := range started {
		if k.Name != runs[i].Name {
			t.Fatalf("run %d to start was %s, want %s (oldest first)", i, k.Name, runs[i].Name)
		}
	}
}

func indexOf(k types.NamespacedName) int {
	var i int
	_, _ = fmt.Sscanf(k.Name, "run-%05d", &i)
	return i
}

// BenchmarkAdmitTenThousand admits 10,000 waiting runs one by one, oldest first, each
// finishing at once. Before the queue kept its own view of the waiting runs, each
// admission sorted every waiting run (and listed every CodeRun first): 6.5 s per
// 10,000 for the sorting alone on the 2-core CI machine.
func BenchmarkAdmitTenThousand(b *testing.B) {
	const n = 10000
	runs := manyQueuedRuns(n)
	for b.Loop() {
		q := newRunQueue(1000)
		for _, r := range runs {
			q.observe(r, false)
		}
		for _, r := range runs {
			k := client.ObjectKeyFromObject(r)
			if _, ok := q.admit(k, r.CreationTimestamp, 1000, 1000, 100000); !ok {
				b.Fatal("not admitted")
			}
			done := r.DeepCopy()
			done.Status.Result = &execv1alpha1.CodeRunResult{Reason: execv1alpha1.ReasonCompleted}
			q.track(done)
			q.release(k)
		}
	}
}
