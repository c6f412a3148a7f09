//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	watchtools "k8s.io/client-go/tools/watch"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	execv1alpha1 "github.com/coderun-dev/coderun/api/v1alpha1"
)

// podTracker follows run pods through a watch and records the most that held a run slot
// at once.
type podTracker struct {
	start time.Time
	runs  map[string]bool // names of the runs under test

	mu        sync.Mutex
	active    map[types.UID]bool
	maxActive int
	podsOf    map[string]map[types.UID]bool // run name -> its pods
	timeline  []string
}

func (p *podTracker) handle(e watch.Event) (bool, error) {
	pod, ok := e.Object.(*corev1.Pod)
	if !ok {
		return false, nil // bookmarks
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	run := pod.Annotations[execv1alpha1.AnnotationRun]
	if p.runs[run] {
		if p.podsOf[run] == nil {
			p.podsOf[run] = map[types.UID]bool{}
		}
		p.podsOf[run][pod.UID] = true
	}
	was := p.active[pod.UID]
	now := e.Type != watch.Deleted && podActive(pod)
	if now {
		p.active[pod.UID] = true
	} else {
		delete(p.active, pod.UID)
	}
	if was != now {
		p.maxActive = max(p.maxActive, len(p.active))
		verb := "ended"
		if now {
			verb = "started"
		}
		p.timeline = append(p.timeline, fmt.Sprintf("%6.2fs %s %s: %d active",
			time.Since(p.start).Seconds(), run, verb, len(p.active)))
	}
	return false, nil
}

// TestTwentyRunsAtOnce applies twenty CodeRuns in one `kubectl apply` and checks that each
// gets its own result while no more than the operator's maxConcurrentRuns run pods were
// active at any moment, as seen by a watch on the run pods.
//
// It is not parallel: it counts every run pod in the namespace, as the operator's limit
// covers every run, so the other tests (which are parallel and start after it) must not run
// meanwhile.
func TestTwentyRunsAtOnce(t *testing.T) {
	const n = 20
	limit := operatorConfig.MaxConcurrentRuns
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	waitForNoActiveRunPods(ctx, t)

	names := make([]string, n)
	number := map[string]int{}
	docs := make([]string, n)
	for i := range n {
		names[i] = runName(fmt.Sprintf("batch%02d", i+1))
		number[names[i]] = i + 1
		docs[i] = manifest(names[i], fmt.Sprintf("  source: |\n    print(%d)\n", i+1))
	}
	isOurs := map[string]bool{}
	for _, name := range names {
		isOurs[name] = true
	}

	// Both watches start from lists made before the apply, so they see every change.
	watchCtx, stopWatching := context.WithCancel(ctx)
	defer stopWatching()
	pods := &podTracker{runs: isOurs, active: map[types.UID]bool{}, podsOf: map[string]map[types.UID]bool{}}
	podItems, podRV, podWatcher, err := listForWatch(ctx, func() client.ObjectList { return &corev1.PodList{} },
		client.ListOptions{Namespace: runsNamespace, LabelSelector: execv1alpha1.RunPodSelector()})
	if err != nil {
		t.Fatalf("listing run pods: %v", err)
	}
	runItems, runRV, runWatcher, err := listForWatch(ctx, func() client.ObjectList { return &execv1alpha1.CodeRunList{} },
		client.ListOptions{Namespace: runsNamespace, LabelSelector: labels.SelectorFromSet(labels.Set{suiteLabel: suiteID})})
	if err != nil {
		t.Fatalf("listing CodeRuns: %v", err)
	}

	start := time.Now()
	pods.start = start
	for _, item := range podItems {
		_, _ = pods.handle(watch.Event{Type: watch.Added, Object: item})
	}
	podsDone := make(chan error, 1)
	go func() {
		_, err := watchtools.Until(watchCtx, podRV, podWatcher, pods.handle)
		if watchCtx.Err() != nil {
			err = nil // stopped once every run had its result
		}
		podsDone <- err
	}()

	// The CodeRun watch records results, the most runs in phase Running at once, and which
	// runs were ever Queued.
	results := map[string]*execv1alpha1.CodeRun{}
	finishedAfter := map[string]time.Duration{}
	phase := map[string]execv1alpha1.CodeRunPhase{}
	queued := map[string]bool{}
	var admitted []string // runs in the order the watch saw them leave the queue
	maxRunning := 0
	handleRun := func(e watch.Event) (bool, error) {
		run, ok := e.Object.(*execv1alpha1.CodeRun)
		if !ok || !isOurs[run.Name] {
			return false, nil
		}
		if e.Type == watch.Deleted {
			return false, fmt.Errorf("CodeRun %s was deleted before it had a result", run.Name)
		}
		phase[run.Name] = run.Status.Phase
		if run.Status.Phase == execv1alpha1.PhaseQueued {
			queued[run.Name] = true
		} else if run.Status.Phase != "" && !slices.Contains(admitted, run.Name) {
			admitted = append(admitted, run.Name)
		}
		running := 0
		for _, p := range phase {
			if p == execv1alpha1.PhaseRunning {
				running++
			}
		}
		maxRunning = max(maxRunning, running)
		if run.Status.Result != nil && results[run.Name] == nil {
			results[run.Name] = run
			finishedAfter[run.Name] = time.Since(start)
		}
		return len(results) == n, nil
	}
	for _, item := range runItems {
		_, _ = handleRun(watch.Event{Type: watch.Added, Object: item})
	}
	runsDone := make(chan error, 1)
	go func() {
		_, err := watchtools.Until(watchCtx, runRV, runWatcher, handleRun)
		runsDone <- err
	}()

	apply(t, strings.Join(docs, "---\n"), names...)
	t.Logf("applied %d CodeRuns in %s; maxConcurrentRuns is %d", n, time.Since(start).Round(time.Millisecond), limit)

	if err := <-runsDone; err != nil {
		stopWatching()
		if err := <-podsDone; err != nil {
			t.Logf("the watch on run pods ended early: %v", err)
		}
		t.Fatalf("after %s, %d of %d runs have a result: %v", time.Since(start).Round(time.Second), len(results), n, err)
	}
	took := time.Since(start)
	stopWatching()
	if err := <-podsDone; err != nil {
		t.Errorf("the watch on run pods ended early, so its count is incomplete: %v", err)
	}

	var slowest time.Duration
	for _, name := range names {
		run := results[name]
		slowest = max(slowest, finishedAfter[name])
		expectEnd(t, run, execv1alpha1.PhaseSucceeded, execv1alpha1.ReasonCompleted, ptr.To[int32](0))
		if want := fmt.Sprintf("%d\n", number[name]); run.Status.Result.Output != want {
			t.Errorf("%s printed %q, want its own number %q", name, run.Status.Result.Output, want)
		}
	}
	t.Logf("all %d results after %s (slowest run %s); at most %d run pods active at once, at most %d CodeRuns in phase Running; %d runs waited in phase Queued",
		n, took.Round(time.Millisecond), slowest.Round(time.Millisecond), pods.maxActive, maxRunning, len(queued))
	t.Logf("run pod timeline:\n%s", strings.Join(pods.timeline, "\n"))

	pods.mu.Lock()
	defer pods.mu.Unlock()
	if pods.maxActive > limit {
		t.Errorf("%d run pods were active at once, above maxConcurrentRuns %d", pods.maxActive, limit)
	}
	// The queue is a limit, not a single file: with twenty runs waiting, runs overlap.
	if limit >= 2 && pods.maxActive < 2 {
		t.Errorf("at most %d run pod was active at once: runs did not execute concurrently", pods.maxActive)
	}
	if len(queued) == 0 && n > limit {
		t.Errorf("no run was ever in phase Queued, though %d runs exceed the %d slots", n, limit)
	}
	// Oldest first: kubectl created the runs in order, so a run can be overtaken only by
	// younger runs admitted in the same round, when several slots freed at once.
	if len(admitted) != n {
		t.Errorf("saw %d of %d runs leave the queue", len(admitted), n)
	}
	for pos, name := range admitted {
		overtaken := 0
		for _, earlier := range admitted[:pos] {
			if number[earlier] > number[name] {
				overtaken++
			}
		}
		if overtaken >= limit {
			t.Errorf("%s was admitted as number %d, after %d younger runs: the queue is not oldest first (order %v)", name, pos+1, overtaken, admitted)
		}
	}
	for _, name := range names {
		if got := len(pods.podsOf[name]); got != 1 {
			t.Errorf("%s had %d pods, want exactly one", name, got)
		}
	}
}

// waitForNoActiveRunPods waits until no run pod holds a run slot, so that the runs of
// earlier tests (being deleted) do not count toward the limit.
func waitForNoActiveRunPods(ctx context.Context, t *testing.T) {
	t.Helper()
	var active []string
	err := wait.PollUntilContextTimeout(ctx, time.Second, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		var pods corev1.PodList
		if err := k8s.List(ctx, &pods, client.InNamespace(runsNamespace), client.MatchingLabelsSelector{Selector: execv1alpha1.RunPodSelector()}); err != nil {
			return false, err
		}
		active = active[:0]
		for i := range pods.Items {
			if podActive(&pods.Items[i]) {
				active = append(active, pods.Items[i].Name)
			}
		}
		return len(active) == 0, nil
	})
	if err != nil {
		t.Fatalf("run pods %v are still active in %s (another suite running?): %v", active, runsNamespace, err)
	}
}
