package controllers

import (
	"context"
	"io"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/coderun-dev/coderun/internal/delivery"
	"github.com/coderun-dev/coderun/internal/report"
)

// heldConnectTimeout bounds the wait for a held stream that is still connecting when a run
// claims its member.
const heldConnectTimeout = 10 * time.Second

// heldStream is an attach stream opened to an idle, ready member ahead of any claim, so
// that a run that takes the member only writes its request: opening a stream costs two
// TLS handshakes and the runtime's attach, tens of milliseconds that a warm run would
// otherwise pay. The member's stdin stays open and empty until then.
//
// A member has at most one attach client, its holder: with stdinOnce, the first client to
// leave closes the member's stdin for good, so a held stream that breaks (or an operator
// that stops) makes the runner report notRun and exit, and the pool replaces the member.
type heldStream struct {
	pod    string
	stdin  *io.PipeWriter
	stdinR *io.PipeReader
	stdout *boundedBuffer
	cancel context.CancelFunc
	done   chan struct{} // closed when the stream ended
	err    error         // why it ended, once done
}

// hold opens a stream to member's pod, unless one is held already. A nil deliveries, or
// one without an attacher, holds nothing.
func (d *deliveries) hold(member types.NamespacedName, pod string) {
	if d == nil || d.attacher == nil {
		return
	}
	d.mu.Lock()
	// A run that has the member (the cache has not shown its claim yet) streams itself.
	if _, ok := d.held[member]; ok || d.inUseLocked(member) {
		d.mu.Unlock()
		return
	}
	ctx, cancel := context.WithCancel(d.base)
	pr, pw := io.Pipe()
	h := &heldStream{pod: pod, stdin: pw, stdinR: pr, cancel: cancel, done: make(chan struct{})}
	h.stdout = &boundedBuffer{limit: maxStreamOutput, onReport: cancel}
	d.held[member] = h
	d.mu.Unlock()
	go func() {
		err := d.attacher.Attach(ctx, member.Namespace, pod, containerName, pr, h.stdout, io.Discard)
		// Unblock a request being written, and the stream's own stdin copier.
		pr.CloseWithError(io.ErrClosedPipe)
		h.err = err
		close(h.done)
		cancel()
		d.mu.Lock()
		if d.held[member] == h {
			delete(d.held, member) // not taken by a run: the member is gone or burnt
		}
		d.mu.Unlock()
	}()
}

// isHeld reports whether a stream to member is open and waiting for a request.
func (d *deliveries) isHeld(member types.NamespacedName) bool {
	if d == nil {
		return false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	_, ok := d.held[member]
	return ok
}

// take removes and returns the stream held to member, if any.
func (d *deliveries) take(member types.NamespacedName) *heldStream {
	d.mu.Lock()
	defer d.mu.Unlock()
	h := d.held[member]
	delete(d.held, member)
	return h
}

// deliverHeld writes the request into a held stream and waits for the report. The
// request counts as sent once the stream has taken every byte of it (an io.Pipe write
// returns only then); a stream that ended before that never gave the member the program.
func (d *deliveries) deliverHeld(s *session, req delivery.Request, h *heldStream) (*report.Report, error) {
	frame, err := delivery.Encode(req)
	if err != nil {
		h.cancel()
		return nil, err
	}
	// A stream still connecting takes the request once it is up; one that never comes up
	// is given up, and the request was then never sent.
	written := make(chan struct{})
	go func() {
		select {
		case <-written:
		case <-time.After(heldConnectTimeout):
			h.cancel()
		}
	}()
	_, err = h.stdin.Write(frame)
	close(written)
	if err != nil {
		h.cancel()
		<-h.done
		return nil, streamError(h.err, err)
	}
	s.mu.Lock()
	s.sent = d.clock.Now()
	s.mu.Unlock()
	_ = h.stdin.Close() // end of stdin: the runtime closes the member's stdin for good
	timer := time.NewTimer(time.Duration(req.TimeoutSeconds)*time.Second + deliveryMargin)
	defer timer.Stop()
	select {
	case <-h.done:
	case <-timer.C:
		h.cancel()
		<-h.done
	}
	if rep, ferr := report.FindInLog(h.stdout.Bytes()); ferr == nil {
		return &rep, nil
	} else if h.err == nil {
		return nil, streamError(ferr, nil)
	}
	return nil, h.err
}

// streamError prefers the stream's own error to the one seen writing into it.
func streamError(streamErr, writeErr error) error {
	if streamErr != nil {
		return streamErr
	}
	return writeErr
}
