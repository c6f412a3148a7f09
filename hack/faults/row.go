package main

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	execv1alpha1 "github.com/coderun-dev/coderun/api/v1alpha1"
)

// row is what one fault did to the load: a line of the table.
type row struct {
	Fault string `json:"fault"`
	// Sent counts the /execute and /submit requests and the CodeRuns created directly.
	Sent    int `json:"sent"`
	Correct int `json:"correct"`
	// Retried: requests that needed more than one attempt (CodeRuns more than one create).
	Retried int `json:"retried"`
	// Failed: answered with a SystemError (an honest failure, not a lost run).
	Failed int `json:"failed"`
	// Lost: no correct answer after retries, a wrong result, or a CodeRun that never
	// finished.
	Lost int `json:"lost"`
	// Duplicated: requests for which the front made more than one CodeRun.
	Duplicated      int `json:"duplicated"`
	Submissions     int `json:"submissions"`
	LostSubmissions int `json:"lostSubmissions"`
	// Recovery: from the fault until the first correct answer to a probe (a hello world
	// through /submit) sent after it.
	Recovery time.Duration `json:"recovery"`
	Took     time.Duration `json:"took"`
	// Problems are the failed checks (runs left past their TTL, memory above baseline,
	// lost runs) and a sample of the SystemError messages.
	Problems []string `json:"problems,omitempty"`
	Notes    []string `json:"notes,omitempty"`
}

// load is the traffic of one row: HTTP clients and a creator of CodeRuns, until stopped.
type load struct {
	s        *suite
	slug     string
	stopNew  chan struct{}
	wg       sync.WaitGroup
	mu       sync.Mutex
	requests []*request
	created  []directRun
	// injected is when the fault was injected.
	injected time.Time
	// recovered is set by the first probe answered correctly.
	recovered atomic.Bool
}

// probe starts, once a second from now, a hello world through /submit (the run and the
// database), at most probesInFlight at a time, until one is answered correctly: the time
// from the fault to that answer is the row's recovery. Probes are requests of the load,
// retried and counted like the others.
func (l *load) probe(ctx context.Context) {
	const probesInFlight = 4
	var inFlight atomic.Int32
	l.wg.Go(func() {
		for !l.stopped() && !l.recovered.Load() {
			if inFlight.Load() < probesInFlight {
				inFlight.Add(1)
				l.wg.Go(func() {
					defer inFlight.Add(-1)
					r := newRequest(programs[0], "/submit")
					r.probe = true
					l.s.front.do(ctx, r)
					if r.verdict == correct {
						l.recovered.Store(true)
					}
					l.mu.Lock()
					l.requests = append(l.requests, r)
					l.mu.Unlock()
				})
			}
			sleep(ctx, time.Second)
		}
	})
}

type directRun struct {
	name     string
	program  *program
	attempts int
	err      error
}

var requestSeq atomic.Int64

func (s *suite) startLoad(ctx context.Context, slug string) *load {
	l := &load{s: s, slug: slug, stopNew: make(chan struct{})}
	for range s.clients {
		l.wg.Go(func() {
			for !l.stopped() {
				n := requestSeq.Add(1)
				endpoint := "/execute"
				if (n/int64(len(programs)))%2 == 1 {
					endpoint = "/submit"
				}
				r := newRequest(programs[n%int64(len(programs))], endpoint)
				s.front.do(ctx, r)
				l.mu.Lock()
				l.requests = append(l.requests, r)
				l.mu.Unlock()
			}
		})
	}
	l.wg.Go(func() {
		for n := 0; !l.stopped(); n++ {
			d := directRun{name: fmt.Sprintf("faults-%s-%d", slug, n), program: programs[n%len(programs)]}
			createCtx, cancel := context.WithTimeout(ctx, s.patience)
			d.attempts, d.err = s.k.createRun(createCtx, d.name, slug, d.program)
			cancel()
			l.mu.Lock()
			l.created = append(l.created, d)
			l.mu.Unlock()
			select {
			case <-l.stopNew:
			case <-time.After(s.createEvery):
			}
		}
	})
	return l
}

func (l *load) stopped() bool {
	select {
	case <-l.stopNew:
		return true
	default:
		return false
	}
}

// stop stops new requests and waits for those in flight (each bounded by the patience).
func (l *load) stop() {
	close(l.stopNew)
	l.wg.Wait()
}

// runRow runs the load, injects f after the warm-up, keeps the load on for a while after
// it, then drains and checks everything the fault could have broken.
func (s *suite) runRow(ctx context.Context, index int, f fault) row {
	start := time.Now()
	slug := fmt.Sprintf("r%d-%s", index, s.id)
	slog.Info("row: load starts", "row", index, "fault", f.name)
	l := s.startLoad(ctx, slug)
	sleep(ctx, s.before)
	injected := time.Now()
	l.injected = injected
	desc, err := f.inject(ctx, s)
	r := row{Fault: desc}
	if err != nil {
		r.Fault = f.name
		r.Problems = append(r.Problems, fmt.Sprintf("injecting the fault: %v", err))
	}
	slog.Info("row: fault injected", "row", index, "fault", r.Fault, "took", time.Since(injected).Round(time.Millisecond), "error", err)
	l.probe(ctx)
	sleep(ctx, s.after)
	slog.Info("row: load stops; waiting for the requests in flight", "row", index)
	l.stop()
	slog.Info("row: checking", "row", index, "requests", len(l.requests), "coderuns", len(l.created))
	s.judgeRequests(ctx, l, &r)
	// The CodeRuns get the patience, from now, to finish: all of them together.
	drainCtx, cancel := context.WithTimeout(ctx, s.patience)
	s.judgeDirectRuns(drainCtx, l, &r)
	s.checkUnfinished(drainCtx, start, &r)
	cancel()
	s.checkPastTTL(ctx, &r)
	s.checkMemory(ctx, &r)
	if err := s.k.deleteSuiteRuns(ctx); err != nil {
		r.Notes = append(r.Notes, fmt.Sprintf("deleting the suite's CodeRuns: %v", err))
	}
	r.Took = time.Since(start)
	slog.Info("row: done", "row", index, "fault", r.Fault, "sent", r.Sent, "correct", r.Correct, "lost", r.Lost,
		"lostSubmissions", r.LostSubmissions, "took", r.Took.Round(time.Second))
	return r
}

// judgeRequests counts the HTTP requests' outcomes and checks that every accepted /submit
// is in the database.
func (s *suite) judgeRequests(ctx context.Context, l *load, r *row) {
	systemErrors := map[string]int{}
	for _, q := range l.requests {
		r.Sent++
		if q.attempts > 1 {
			r.Retried++
		}
		if n := s.requestRuns.runsOf(q.key); n > 1 {
			r.Duplicated++
		}
		switch q.verdict {
		case correct:
			r.Correct++
			if q.probe && (r.Recovery == 0 || q.answered.Sub(l.injected) < r.Recovery) {
				r.Recovery = q.answered.Sub(l.injected)
			}
		case systemError:
			r.Failed++
			systemErrors[q.answer.Message]++
		case wrong:
			r.Lost++
			r.Problems = append(r.Problems, fmt.Sprintf("lost %s %s (%s): %s", q.program.name, q.endpoint, q.key, q.problem))
		}
		if q.endpoint != "/submit" || q.answer.SubmissionID == nil || *q.answer.SubmissionID < 0 {
			continue
		}
		r.Submissions++
		id := *q.answer.SubmissionID
		sub, found, err := s.front.getSubmission(ctx, id)
		switch {
		case err != nil:
			r.LostSubmissions++
			r.Problems = append(r.Problems, fmt.Sprintf("submission %d (%s): cannot read it: %v", id, q.key, err))
		case !found:
			r.LostSubmissions++
			r.Problems = append(r.Problems, fmt.Sprintf("submission %d (%s) accepted but not in the database (404)", id, q.key))
		case sub.Code != q.program.source(q.key):
			r.LostSubmissions++
			r.Problems = append(r.Problems, fmt.Sprintf("submission %d (%s) holds another program: %.80q", id, q.key, sub.Code))
		}
	}
	for msg, n := range systemErrors {
		r.Notes = append(r.Notes, fmt.Sprintf("SystemError x%d: %s", n, msg))
	}
}

// judgeDirectRuns waits for the CodeRuns the suite created to finish (until waitCtx ends)
// and judges them.
func (s *suite) judgeDirectRuns(waitCtx context.Context, l *load, r *row) {
	byName := map[string]execv1alpha1.CodeRun{}
	for {
		list, err := s.k.suiteRuns(waitCtx, l.slug)
		if err == nil {
			clear(byName)
			pending := 0
			for _, run := range list {
				byName[run.Name] = run
				if run.Status.Result == nil {
					pending++
				}
			}
			if pending == 0 {
				break
			}
		}
		if waitCtx.Err() != nil {
			break
		}
		sleep(waitCtx, 2*time.Second)
	}
	systemErrors := map[string]int{}
	for _, d := range l.created {
		r.Sent++
		if d.attempts > 1 {
			r.Retried++
		}
		run, ok := byName[d.name]
		switch {
		case d.err != nil:
			r.Lost++
			r.Problems = append(r.Problems, fmt.Sprintf("lost CodeRun %s (%s): never created: %v", d.name, d.program.name, d.err))
			continue
		case !ok:
			r.Lost++
			r.Problems = append(r.Problems, fmt.Sprintf("lost CodeRun %s (%s): created, then gone", d.name, d.program.name))
			continue
		case run.Status.Result == nil:
			r.Lost++
			r.Problems = append(r.Problems, fmt.Sprintf("lost CodeRun %s (%s): no result after %s (phase %q)", d.name, d.program.name, s.patience, run.Status.Phase))
			continue
		}
		res := run.Status.Result
		switch d.program.judge(d.name, string(res.Reason), res.Output) {
		case correct:
			r.Correct++
		case systemError:
			r.Failed++
			systemErrors[res.Message]++
		case wrong:
			r.Lost++
			r.Problems = append(r.Problems, fmt.Sprintf("lost CodeRun %s (%s): ended %s/%s (%s) with output %.120q", d.name, d.program.name, run.Status.Phase, res.Reason, res.Message, res.Output))
		}
	}
	for msg, n := range systemErrors {
		r.Notes = append(r.Notes, fmt.Sprintf("SystemError x%d (CodeRuns): %s", n, msg))
	}
}

// checkUnfinished waits for every CodeRun created during the row (the front's too, such as
// the first CodeRun of a request retried into a second one) to finish; those that have not
// when waitCtx ends are lost.
func (s *suite) checkUnfinished(waitCtx context.Context, since time.Time, r *row) {
	var left []string
	for {
		var err error
		left, err = s.k.unfinished(waitCtx, since)
		if err == nil && len(left) == 0 || waitCtx.Err() != nil {
			break
		}
		sleep(waitCtx, 2*time.Second)
	}
	for _, name := range left {
		if !slices.ContainsFunc(r.Problems, func(p string) bool { return containsWord(p, name) }) {
			r.Lost++
			r.Problems = append(r.Problems, fmt.Sprintf("CodeRun %s never finished", name))
		}
	}
}

func containsWord(s, w string) bool {
	for i := 0; i+len(w) <= len(s); i++ {
		if s[i:i+len(w)] == w && (i+len(w) == len(s) || s[i+len(w)] == ' ') {
			return true
		}
	}
	return false
}

// checkPastTTL waits (up to a minute) until no run Job or pod is left past its TTL.
func (s *suite) checkPastTTL(ctx context.Context, r *row) {
	var left []string
	waitCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		var err error
		left, err = s.k.pastTTL(waitCtx, s.jobTTL, s.ttlGrace)
		if err == nil && len(left) == 0 || waitCtx.Err() != nil {
			break
		}
		sleep(waitCtx, 5*time.Second)
	}
	if len(left) > 0 {
		r.Problems = append(r.Problems, fmt.Sprintf("%d run Jobs/pods left past their TTL (%s + %s): %v", len(left), s.jobTTL, s.ttlGrace, left))
	}
}

// memory returns the largest anonymous memory of any running pod of component.
func (s *suite) memory(ctx context.Context, component string) (int64, error) {
	pods, err := s.k.pods(ctx, s.k.system, componentSelector(component))
	if err != nil {
		return 0, err
	}
	var most int64
	for i := range pods {
		m, err := containerMemory(&pods[i], component)
		if err != nil {
			return 0, err
		}
		most = max(most, m)
	}
	return most, nil
}

// memoryComponents are the containers whose memory must come back to its baseline.
var memoryComponents = []string{"operator", "front"}

// checkMemory waits (up to a minute) until the operator's and the front's memory are back
// within their baseline plus a margin (the Go runtime returns freed memory to the kernel
// only gradually): the larger of 32 MiB and half the baseline.
func (s *suite) checkMemory(ctx context.Context, r *row) {
	for _, c := range memoryComponents {
		base, ok := s.baseline[c]
		if !ok {
			continue // the first row, which sets the baseline
		}
		limit := base + max(32<<20, base/2)
		var last int64
		var err error
		waitCtx, cancel := context.WithTimeout(ctx, time.Minute)
		for {
			last, err = s.memory(waitCtx, c)
			if err == nil && last <= limit || waitCtx.Err() != nil {
				break
			}
			sleep(waitCtx, 5*time.Second)
		}
		cancel()
		switch {
		case err != nil:
			r.Problems = append(r.Problems, fmt.Sprintf("%s memory: %v", c, err))
		case last > limit:
			r.Problems = append(r.Problems, fmt.Sprintf("%s memory %s, above its baseline %s + margin", c, mib(last), mib(base)))
		default:
			r.Notes = append(r.Notes, fmt.Sprintf("%s memory %s (baseline %s)", c, mib(last), mib(base)))
		}
	}
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
