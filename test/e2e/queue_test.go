//go:build e2e

package e2e

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	execv1alpha1 "github.com/coderun-dev/coderun/api/v1alpha1"
)

// podTracker follows run pods and their Jobs through two watches. It counts the pods that
// run a program (a cold run's pod, or a member's pod once a run claimed the member; an
// idle member runs none and holds no slot) and records which pods each run had.
type podTracker struct {
	start time.Time
	runs  map[string]bool // names of the runs under test

	mu        sync.Mutex
	pods      map[types.UID]*corev1.Pod // the last state of every pod seen
	runOfJob  map[string]string         // Job name -> the run it belongs to (a member: once claimed)
	claimed   map[string]bool           // member Jobs that a run claimed
	active    map[types.UID]bool
	maxActive int
	timeline  []string
	// admitted are the runs under test in the order the API server committed their first
	// Job write: the creation of a cold run's Job, or the claim of a member. The operator
	// makes that write as soon as a run leaves the queue; a warm run writes its status only
	// with its result, so the CodeRuns' status writes do not show the order of admission.
	admitted []string
}

func newPodTracker(runs map[string]bool) *podTracker {
	return &podTracker{runs: runs, pods: map[types.UID]*corev1.Pod{}, runOfJob: map[string]string{},
		claimed: map[string]bool{}, active: map[types.UID]bool{}}
}

func (p *podTracker) handle(e watch.Event) (bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch obj := e.Object.(type) {
	case *corev1.Pod:
		if e.Type == watch.Deleted {
			obj = obj.DeepCopy()
			obj.Status.Phase = corev1.PodFailed // gone: no longer active
		}
		p.pods[obj.UID] = obj
		p.update(obj)
	case *batchv1.Job:
		if run := obj.Annotations[execv1alpha1.AnnotationRun]; run != "" {
			p.runOfJob[obj.Name] = run
			if p.runs[run] && !slices.Contains(p.admitted, run) {
				p.admitted = append(p.admitted, run)
			}
		}
		if obj.Labels[execv1alpha1.LabelMember] == execv1alpha1.MemberClaimed {
			p.claimed[obj.Name] = true
		}
		for _, pod := range p.pods {
			if jobOf(pod) == obj.Name {
				p.update(pod)
			}
		}
	}
	return false, nil // bookmarks, and never done: the caller stops the watches
}

// runsProgram reports whether pod runs a program now.
func (p *podTracker) runsProgram(pod *corev1.Pod) bool {
	if !podActive(pod) {
		return false
	}
	_, member := pod.Labels[execv1alpha1.LabelPool]
	return !member || p.claimed[jobOf(pod)]
}

func (p *podTracker) update(pod *corev1.Pod) {
	was, now := p.active[pod.UID], p.runsProgram(pod)
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
		p.timeline = append(p.timeline, fmt.Sprintf("%6.2fs %s %s (pod %s): %d active",
			time.Since(p.start).Seconds(), p.runOfJob[jobOf(pod)], verb, pod.Name, len(p.active)))
	}
}

// podsOf returns the pods that each run under test had: its own Job's, or its member's.
func (p *podTracker) podsOf() map[string][]string {
	p.mu.Lock()
	defer p.mu.Unlock()
	pods := map[string][]string{}
	for _, pod := range p.pods {
		if run := p.runOfJob[jobOf(pod)]; p.runs[run] {
			pods[run] = append(pods[run], pod.Name)
		}
	}
	return pods
}

// concurrencySource is the program of each run of TestTwentyRunsAtOnce: it prints its
// number, and the node's clock when it started and ended, a third of a second later.
const concurrencySource = `import time
start = time.time()
time.sleep(0.3)
print(%d)
print(start, time.time())
`

// mostAtOnce is the most intervals (start, end) that overlap at one moment.
func mostAtOnce(intervals [][2]float64) int {
	type edge struct {
		at    float64
		delta int
	}
	var edges []edge
	for _, iv := range intervals {
		edges = append(edges, edge{iv[0], 1}, edge{iv[1], -1})
	}
	// Ends before starts at the same instant: touching intervals do not overlap.
	slices.SortFunc(edges, func(a, b edge) int {
		if a.at != b.at {
			return cmp.Compare(a.at, b.at)
		}
		return a.delta - b.delta
	})
	most, now := 0, 0
	for _, e := range edges {
		now += e.delta
		most = max(most, now)
	}
	return most
}

// TestTwentyRunsAtOnce applies twenty CodeRuns in one `kubectl apply` and checks that each
// gets its own result, in one pod, while no more than the operator's maxConcurrentRuns
// programs ran at any moment. Runs take the warm path while the pool has ready members and
// the cold path when it has none, so the programs themselves tell when they ran: each
// prints the node's clock when it started and ended (all run pods share the node's clock
// on the single-node local cluster). A watch on run pods and Jobs counts the pods that ran
// a program for the log; a member's pod reports its end only after the kubelet's next
// relist, by which time the operator has already handed the slot on, so that count may
// exceed the limit for a moment and is not checked.
//
// It is not parallel: it counts every run in the namespace, as the operator's limit covers
// every run, so the other tests (which are parallel and start after it) must not run
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
		source := fmt.Sprintf(concurrencySource, i+1)
		docs[i] = manifest(names[i], "  source: |\n    "+strings.ReplaceAll(strings.TrimSuffix(source, "\n"), "\n", "\n    ")+"\n")
	}
	isOurs := map[string]bool{}
	for _, name := range names {
		isOurs[name] = true
	}

	// The watches start from lists made before the apply, so they see every change.
	watchCtx, stopWatching := context.WithCancel(ctx)
	defer stopWatching()
	pods := newPodTracker(isOurs)
	runPods := client.ListOptions{Namespace: runsNamespace, LabelSelector: execv1alpha1.RunPodSelector()}
	podItems, podRV, podWatcher, err := listForWatch(ctx, func() client.ObjectList { return &corev1.PodList{} }, runPods)
	if err != nil {
		t.Fatalf("listing run pods: %v", err)
	}
	jobItems, jobRV, jobWatcher, err := listForWatch(ctx, func() client.ObjectList { return &batchv1.JobList{} }, runPods)
	if err != nil {
		t.Fatalf("listing run Jobs: %v", err)
	}
	runItems, runRV, runWatcher, err := listForWatch(ctx, func() client.ObjectList { return &execv1alpha1.CodeRunList{} },
		client.ListOptions{Namespace: runsNamespace, LabelSelector: labels.SelectorFromSet(labels.Set{suiteLabel: suiteID})})
	if err != nil {
		t.Fatalf("listing CodeRuns: %v", err)
	}

	start := time.Now()
	pods.start = start
	for _, item := range append(jobItems, podItems...) {
		_, _ = pods.handle(watch.Event{Type: watch.Added, Object: item})
	}
	podsDone := make(chan error, 2)
	for _, w := range []struct {
		rv      string
		watcher cache.Watcher
	}{{jobRV, jobWatcher}, {podRV, podWatcher}} {
		go func() {
			_, err := watchtools.Until(watchCtx, w.rv, w.watcher, pods.handle)
			if watchCtx.Err() != nil {
				err = nil // stopped once every run had its result
			}
			podsDone <- err
		}()
	}
	stopPodWatches := func() {
		stopWatching()
		for range 2 {
			if err := <-podsDone; err != nil {
				t.Errorf("a watch on run pods or Jobs ended early, so its record is incomplete: %v", err)
			}
		}
	}

	// The CodeRun watch records results, the most runs in phase Running at once, and which
	// runs were ever Queued.
	results := map[string]*execv1alpha1.CodeRun{}
	finishedAfter := map[string]time.Duration{}
	phase := map[string]execv1alpha1.CodeRunPhase{}
	queued := map[string]bool{}
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
		stopPodWatches()
		t.Fatalf("after %s, %d of %d runs have a result: %v", time.Since(start).Round(time.Second), len(results), n, err)
	}
	took := time.Since(start)
	// The pods' and Jobs' last changes may trail the results by a moment.
	time.Sleep(2 * time.Second)
	stopPodWatches()

	var slowest time.Duration
	var intervals [][2]float64
	paths := map[execv1alpha1.RunPath]int{}
	for _, name := range names {
		run := results[name]
		slowest = max(slowest, finishedAfter[name])
		paths[run.Status.Path]++
		expectEnd(t, run, execv1alpha1.PhaseSucceeded, execv1alpha1.ReasonCompleted, ptr.To[int32](0))
		var printed int
		var began, ended float64
		if _, err := fmt.Sscanf(run.Status.Result.Stdout, "%d\n%f %f\n", &printed, &began, &ended); err != nil || printed != number[name] || ended < began {
			t.Errorf("%s printed %q (%v), want its own number %d and when it ran", name, run.Status.Result.Stdout, err, number[name])
			continue
		}
		intervals = append(intervals, [2]float64{began, ended})
	}
	most := mostAtOnce(intervals)
	t.Logf("all %d results after %s (slowest run %s; %d warm, %d cold); at most %d programs ran at once, %d pods ran programs at once, at most %d CodeRuns in phase Running; %d runs waited in phase Queued",
		n, took.Round(time.Millisecond), slowest.Round(time.Millisecond), paths[execv1alpha1.PathWarm], paths[execv1alpha1.PathCold],
		most, pods.maxActive, maxRunning, len(queued))
	t.Logf("run pod timeline:\n%s", strings.Join(pods.timeline, "\n"))

	if most > limit {
		t.Errorf("%d programs ran at once, above maxConcurrentRuns %d", most, limit)
	}
	// The queue is a limit, not a single file: with twenty runs waiting, runs overlap.
	if limit >= 2 && most < 2 {
		t.Errorf("at most %d program ran at once: runs did not execute concurrently", most)
	}
	if len(queued) == 0 && n > limit {
		t.Errorf("no run was ever in phase Queued, though %d runs exceed the %d slots", n, limit)
	}
	// Oldest first: kubectl created the runs in order, so a run can be overtaken only by
	// younger runs admitted in the same round, when several slots freed at once.
	admitted := pods.admitted
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
	podsOf := pods.podsOf()
	for _, name := range names {
		run := results[name]
		if got := podsOf[name]; len(got) != 1 || got[0] != run.Status.PodName {
			t.Errorf("%s (%s) had pods %v, want exactly one, its status's %q", name, run.Status.Path, got, run.Status.PodName)
		}
	}
}

// waitForNoActiveRunPods waits until no run pod runs a program (idle pool members run
// none), so that the runs of earlier tests (being deleted) do not count toward the limit.
func waitForNoActiveRunPods(ctx context.Context, t *testing.T) {
	t.Helper()
	var active []string
	err := wait.PollUntilContextTimeout(ctx, time.Second, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		var jobs batchv1.JobList
		if err := k8s.List(ctx, &jobs, client.InNamespace(runsNamespace), client.MatchingLabelsSelector{Selector: execv1alpha1.RunPodSelector()}); err != nil {
			return false, err
		}
		var pods corev1.PodList
		if err := k8s.List(ctx, &pods, client.InNamespace(runsNamespace), client.MatchingLabelsSelector{Selector: execv1alpha1.RunPodSelector()}); err != nil {
			return false, err
		}
		tracker := newPodTracker(nil)
		for i := range jobs.Items {
			_, _ = tracker.handle(watch.Event{Type: watch.Added, Object: &jobs.Items[i]})
		}
		active = active[:0]
		for i := range pods.Items {
			if tracker.runsProgram(&pods.Items[i]) {
				active = append(active, pods.Items[i].Name)
			}
		}
		return len(active) == 0, nil
	})
	if err != nil {
		t.Fatalf("run pods %v still run programs in %s (another suite running?): %v", active, runsNamespace, err)
	}
}
