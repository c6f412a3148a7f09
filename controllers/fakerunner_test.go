package controllers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/coderun-dev/coderun/internal/delivery"
	"github.com/coderun-dev/coderun/internal/report"
)

// fakeRunner plays the runners of warm pool members behind pods/attach, for tests without
// a kubelet: for each pod it reads one delivery frame from the attach stream's stdin
// (delivery.Read, as cmd/runner --request=stdin does), "runs" the program and writes the
// report line (report.Encode) to stdout. Like the real runner, a member takes one frame
// for good: an attach to a pod that already has its program reads nothing and only sees
// the report of that program, if it is still running.
//
// It counts what each member received and ran, so tests can check that every program ran
// exactly once.
type fakeRunner struct {
	// behave says what the runner of pod does on its first attach (nil: runs the program
	// and reports helloReport at once).
	behave func(pod string) fakeBehaviour

	mu       sync.Mutex
	members  map[string]*fakeMember // by namespace/pod
	attaches int
}

// fakeMode is what a member's runner does with its first attach.
type fakeMode int

const (
	// runnerReports reads the frame, runs the program and reports on the stream.
	runnerReports fakeMode = iota
	// runnerFailsBeforeRead: the attach fails before any byte of stdin is read (the pod
	// is gone, or the API server refused the attach).
	runnerFailsBeforeRead
	// runnerNotRun reads the frame and refuses it: a NotRun report, no program.
	runnerNotRun
)

// fakeBehaviour is what a member's runner does on its first attach.
type fakeBehaviour struct {
	mode fakeMode
	// breakStream: the stream breaks once the whole frame was read, before the report
	// comes back (the runner goes on without it).
	breakStream bool
	// report is what the program's run reports (zero: helloReport).
	report report.Report
	// release, when not nil, keeps the program running until it is closed: a slow run.
	release <-chan struct{}
}

// fakeMember is what one member's runner received and did. The "program" is no
// goroutine of its own: it has ended once end is closed.
type fakeMember struct {
	frames []delivery.Request // frames read: a runner reads one at most
	ran    int                // programs started
	end    <-chan struct{}    // closed when the program ended
	report report.Report      // its report
}

func newFakeRunner(behave func(pod string) fakeBehaviour) *fakeRunner {
	return &fakeRunner{behave: behave, members: map[string]*fakeMember{}}
}

// connect returns an Attacher for one operator process. Closing it breaks every stream
// it has open, as the death of the process does.
func (f *fakeRunner) connect() *fakeConn {
	ctx, cancel := context.WithCancel(context.Background())
	return &fakeConn{runner: f, ctx: ctx, close: cancel}
}

// Attach implements Attacher on a connection that is never closed.
func (f *fakeRunner) Attach(ctx context.Context, namespace, pod, container string, stdin io.Reader, stdout, stderr io.Writer) error {
	return f.attach(ctx, context.Background(), namespace, pod, stdin, stdout)
}

// fakeConn is one operator process's connection to the fake runners.
type fakeConn struct {
	runner *fakeRunner
	ctx    context.Context
	close  context.CancelFunc
}

func (c *fakeConn) Attach(ctx context.Context, namespace, pod, container string, stdin io.Reader, stdout, stderr io.Writer) error {
	return c.runner.attach(ctx, c.ctx, namespace, pod, stdin, stdout)
}

var errStreamBroken = errors.New("the attach stream broke: connection reset by peer")

// endedAtOnce is a closed channel: a program that ends at once.
var endedAtOnce = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

func (f *fakeRunner) attach(ctx, conn context.Context, namespace, pod string, stdin io.Reader, stdout io.Writer) error {
	key := namespace + "/" + pod
	f.mu.Lock()
	f.attaches++
	m := f.members[key]
	f.mu.Unlock()

	if m != nil {
		// The runner closed its stdin for good after its one frame: nothing is read. A
		// running program's report still comes out on this stream; an exited
		// container cannot be attached to.
		select {
		case <-m.end:
			return fmt.Errorf("pod %s: container run is not running", key)
		default:
		}
		return waitAndReport(ctx, conn, m, stdout)
	}

	b := fakeBehaviour{}
	if f.behave != nil {
		b = f.behave(pod)
	}
	if b.mode == runnerFailsBeforeRead {
		return fmt.Errorf("pods %q not found", pod)
	}
	req, err := delivery.Read(stdin)
	if err != nil {
		// The real runner reports NotRun for a frame it could not read, and exits.
		_, _ = stdout.Write(append(report.Encode(notRunReport("the request was incomplete: "+err.Error())), '\n'))
		return nil
	}
	m = &fakeMember{frames: []delivery.Request{req}, end: endedAtOnce, report: b.report}
	switch b.mode {
	case runnerNotRun:
		m.report = notRunReport("the request asks for more than this member serves")
	case runnerReports:
		m.ran = 1
		if b.release != nil {
			m.end = b.release
		}
		if m.report.Reason == "" {
			m.report = helloReport()
		}
	}
	f.mu.Lock()
	f.members[key] = m
	f.mu.Unlock()
	if b.breakStream {
		return errStreamBroken
	}
	return waitAndReport(ctx, conn, m, stdout)
}

// waitAndReport waits for the member's program to end and writes its report line to the
// stream, as the runner does on its stdout.
func waitAndReport(ctx, conn context.Context, m *fakeMember, stdout io.Writer) error {
	select {
	case <-m.end:
	case <-ctx.Done():
		return ctx.Err()
	case <-conn.Done():
		return errStreamBroken
	}
	_, _ = stdout.Write([]byte("runner: request received\n"))
	_, _ = stdout.Write(append(report.Encode(m.report), '\n'))
	return nil
}

func notRunReport(why string) report.Report {
	return report.Report{Reason: report.SystemError, Message: why + "; the member was not used", NotRun: true}
}

// member returns a copy of what pod's runner received and did (zero: never attached).
func (f *fakeRunner) member(namespace, pod string) (frames []delivery.Request, ran int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := f.members[namespace+"/"+pod]
	if m == nil {
		return nil, 0
	}
	return append([]delivery.Request(nil), m.frames...), m.ran
}

// programsRun counts the programs started for each run (namespace/name), in every member.
func (f *fakeRunner) programsRun() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := map[string]int{}
	for _, m := range f.members {
		if m.ran > 0 {
			n[m.frames[0].Run] += m.ran
		}
	}
	return n
}

// attachCount is how many attaches the runners have seen.
func (f *fakeRunner) attachCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.attaches
}

// hasFrame reports whether pod's runner has read its frame.
func (f *fakeRunner) hasFrame(namespace, pod string) bool {
	frames, _ := f.member(namespace, pod)
	return len(frames) > 0
}

// startedBefore records that pod's runner read req and is running its program (as a
// delivery by an earlier operator process left it) until release is closed.
func (f *fakeRunner) startedBefore(namespace, pod string, req delivery.Request, release <-chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.members[namespace+"/"+pod] = &fakeMember{frames: []delivery.Request{req}, ran: 1, end: release, report: helloReport()}
}
