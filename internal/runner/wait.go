package runner

import (
	"context"
	"errors"
	"os"
	"time"

	"github.com/coderun-dev/coderun/internal/procfs"
)

// cause is the first event that ended the run, besides the main process's exit.
type cause int

const (
	causeNone cause = iota
	causeTime
	causeOutput
	causeMemory
	causeStopped
)

// waited is how the wait for the program ended.
type waited struct {
	first       cause
	exit        exited
	memExceeded bool  // the sampled memory went over the limit
	sampledPeak int64 // the largest sample
}

// wait samples the program's memory until the main process exits, and kills the process
// group at the first limit it exceeds or when ctx is cancelled.
func (r *run) wait(ctx context.Context, p *process, col *collector) waited {
	memExceeded := make(chan struct{})
	stopSampler := make(chan struct{})
	peakCh := make(chan int64, 1)
	go r.sample(p.pid, stopSampler, memExceeded, peakCh)
	first, exit := awaitExit(ctx, p, col.exceededCh, memExceeded)
	close(stopSampler)
	// The sampler has stopped once it sends the peak: memExceeded is final then.
	w := waited{first: first, exit: exit, sampledPeak: <-peakCh}
	w.memExceeded = isClosed(memExceeded)
	return w
}

// awaitExit waits for the main process's exit. At the first event among the time limit,
// outputExceeded, memExceeded and ctx's end, it kills the process group, and again at each
// later one; it gives up exitAfterKillTimeout after the first. It returns that first
// event (causeNone if none) and the exit.
func awaitExit(ctx context.Context, p *process, outputExceeded, memExceeded <-chan struct{}) (cause, exited) {
	var first cause
	timeCh, outputCh, memCh, doneCh := p.timer.C, outputExceeded, memExceeded, ctx.Done()
	var giveUp <-chan time.Time
	for {
		var c cause
		select {
		case exit := <-p.exited:
			return first, exit
		case <-timeCh:
			c, timeCh = causeTime, nil
		case <-outputCh:
			c, outputCh = causeOutput, nil
		case <-memCh:
			c, memCh = causeMemory, nil
		case <-doneCh:
			c, doneCh = causeStopped, nil
		case <-giveUp:
			return first, exited{err: errors.New("the program did not exit after SIGKILL"), end: time.Now()}
		}
		// An exit that came at the same time wins over the event.
		select {
		case exit := <-p.exited:
			return first, exit
		default:
		}
		if first == causeNone {
			first = c
			giveUp = time.After(exitAfterKillTimeout)
		}
		p.grp.kill()
	}
}

// sample measures the resident memory of the program's processes every sampleInterval
// until stop is closed, closes exceeded when it goes over the memory limit, and then
// sends the peak. As PID 1 or a subreaper, the runner's other children (orphans of the
// program) count too.
func (r *run) sample(pid int, stop <-chan struct{}, exceeded chan<- struct{}, peakCh chan<- int64) {
	ticker := time.NewTicker(sampleInterval)
	defer ticker.Stop()
	roots := func() []int { return []int{pid} }
	if r.cleanup != cleanupUID {
		self := os.Getpid()
		roots = func() []int { return append([]int{pid}, procfs.Children(self)...) }
	}
	var peak int64
	fired := false
	for {
		rss := procfs.TreeMemory(roots())
		peak = max(peak, rss)
		if !fired && r.cfg.MemoryLimit > 0 && rss > r.cfg.MemoryLimit {
			fired = true
			close(exceeded)
		}
		select {
		case <-stop:
			peakCh <- peak
			return
		case <-ticker.C:
		}
	}
}

// isClosed reports whether ch is closed (or has a value).
func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
