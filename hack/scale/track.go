package main

import (
	"slices"
	"sync"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
)

// tracker follows one phase's objects (CodeRuns or plain Jobs) through the informers'
// events: when each was created and finished, which of its pods still run, and how many
// of its Jobs and pods exist.
type tracker struct {
	mu          sync.Mutex
	firstCreate time.Time
	created     map[string]time.Time
	finished    map[string]time.Time
	lastFinish  time.Time
	// wrong counts results that are not what the completion stage reported.
	wrong        int
	wrongExample string
	// livePods are the phase's pods that have not ended (not Succeeded or Failed), and
	// maxLive the most seen at once.
	livePods map[string]bool
	maxLive  int
	jobs     map[string]bool
	pods     map[string]bool
}

func newTracker() *tracker {
	return &tracker{
		created: map[string]time.Time{}, finished: map[string]time.Time{},
		livePods: map[string]bool{}, jobs: map[string]bool{}, pods: map[string]bool{},
	}
}

// creating records that the driver is about to create name.
func (t *tracker) creating(name string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := time.Now()
	if t.firstCreate.IsZero() {
		t.firstCreate = now
	}
	t.created[name] = now
}

// finish records that name has its result; wrong says what was wrong with it ("" if
// nothing). Only the first call for a name counts.
func (t *tracker) finish(name, wrong string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, done := t.finished[name]; done {
		return
	}
	now := time.Now()
	t.finished[name] = now
	t.lastFinish = now
	if wrong != "" {
		t.wrong++
		if t.wrongExample == "" {
			t.wrongExample = name + ": " + wrong
		}
	}
}

func (t *tracker) pod(pod *corev1.Pod, deleted bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if deleted {
		delete(t.pods, pod.Name)
		delete(t.livePods, pod.Name)
		return
	}
	t.pods[pod.Name] = true
	if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		delete(t.livePods, pod.Name)
		return
	}
	t.livePods[pod.Name] = true
	t.maxLive = max(t.maxLive, len(t.livePods))
}

func (t *tracker) job(job *batchv1.Job, deleted bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if deleted {
		delete(t.jobs, job.Name)
	} else {
		t.jobs[job.Name] = true
	}
}

// counts returns how many objects were created and have finished, and how many of the
// phase's Jobs, pods and live pods exist.
func (t *tracker) counts() (created, finished, jobs, pods, live int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.created), len(t.finished), len(t.jobs), len(t.pods), len(t.livePods)
}

// latencies returns creation-to-result times, sorted.
func (t *tracker) latencies() []time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []time.Duration
	for name, end := range t.finished {
		if start, ok := t.created[name]; ok {
			out = append(out, end.Sub(start))
		}
	}
	slices.Sort(out)
	return out
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(int(float64(len(sorted))*p), len(sorted)-1)]
}
