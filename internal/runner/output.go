package runner

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"golang.org/x/sys/unix"
)

// stream names one of the program's two output streams.
type stream int

const (
	streamStdout stream = iota
	streamStderr
)

// collector keeps the program's output: each stream apart and both interleaved in the
// order the runner read them, at most limit bytes in total. The reader goroutines of the
// two pipes write to it concurrently; every field is behind mu.
type collector struct {
	mu       sync.Mutex
	limit    int
	total    int       // bytes kept so far, ≤ limit
	streams  [2][]byte // each stream's kept bytes
	combined []byte    // both streams' kept bytes, whole characters only (see pending)
	// pending holds a stream's last bytes when they are the start of a multibyte UTF-8
	// character not yet complete: they go to combined once the character is, so the
	// other stream's bytes cannot land inside it.
	pending   [2][]byte
	truncated [2]bool
	exceeded  bool
	// exceededCh is closed the first time the program writes past the limit.
	exceededCh chan struct{}
}

func newCollector(limit int) *collector {
	return &collector{limit: limit, exceededCh: make(chan struct{})}
}

// write takes one chunk of a stream. Bytes up to the limit are kept; the first byte past
// it marks the stream truncated and the limit exceeded, and is dropped with every later
// byte.
func (c *collector) write(s stream, p []byte) {
	if len(p) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	keep := p
	if room := c.limit - c.total; len(p) > room {
		keep = p[:room]
		c.truncated[s] = true
		if !c.exceeded {
			c.exceeded = true
			close(c.exceededCh)
		}
	}
	if len(keep) == 0 {
		return
	}
	c.total += len(keep)
	c.streams[s] = append(c.streams[s], keep...)
	data := append(c.pending[s], keep...)
	whole := len(data) - incompleteTail(data)
	c.combined = append(c.combined, data[:whole]...)
	c.pending[s] = append([]byte(nil), data[whole:]...)
}

// collected is what a collector kept, as valid UTF-8.
type collected struct {
	stdout, stderr, combined         string
	stdoutTruncated, stderrTruncated bool
	exceeded                         bool
}

// result returns the output kept so far. A character cut in two by the truncation is
// dropped whole; any other byte that is not UTF-8 becomes U+FFFD.
func (c *collector) result() collected {
	c.mu.Lock()
	defer c.mu.Unlock()
	var streams [2][]byte
	combined := c.combined
	for s := range streams {
		streams[s] = c.streams[s]
		if c.truncated[s] {
			// The pending bytes began a character whose rest was dropped.
			streams[s] = streams[s][:len(streams[s])-len(c.pending[s])]
		} else {
			// The stream ended inside a character: what there is of it is invalid.
			combined = append(combined[:len(combined):len(combined)], c.pending[s]...)
		}
	}
	return collected{
		stdout:          validUTF8(streams[streamStdout]),
		stderr:          validUTF8(streams[streamStderr]),
		combined:        validUTF8(combined),
		stdoutTruncated: c.truncated[streamStdout],
		stderrTruncated: c.truncated[streamStderr],
		exceeded:        c.exceeded,
	}
}

// incompleteTail returns how many bytes at the end of b are the start of a UTF-8 encoded
// character that is valid so far but not complete (0 to 3).
func incompleteTail(b []byte) int {
	for i := len(b) - 1; i >= 0 && i > len(b)-utf8.UTFMax; i-- {
		if utf8.RuneStart(b[i]) {
			if utf8.FullRune(b[i:]) {
				return 0
			}
			return len(b) - i
		}
	}
	return 0
}

func validUTF8(b []byte) string {
	return strings.ToValidUTF8(string(b), string(utf8.RuneError))
}

// pipeReader reads the program's two output pipes into a collector from one goroutine,
// in the order the pipes became readable: epoll keeps its ready list in that order, so
// when both pipes have data by the time the runner gets to run, what was written first is
// still read first (the bytes of one pipe that came after the other pipe's are still read
// with the earlier ones). Two reader goroutines would race instead.
type pipeReader struct {
	epfd    int
	fds     [2]int // read ends, non-blocking; -1 once at EOF and closed
	stopAt  atomic.Int64
	done    chan struct{}
	pollErr error // set before done is closed
}

// pollInterval bounds how long the reader waits before it looks at its deadline.
const pollInterval = 20 * time.Millisecond

// newPipeReader takes ownership of the read ends r (indexed by stream) and reads them into
// c until both reach EOF or the deadline set by stop passes.
func newPipeReader(c *collector, r [2]int) (*pipeReader, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	p := &pipeReader{epfd: epfd, fds: r, done: make(chan struct{})}
	for s, fd := range r {
		// Level-triggered: a pipe with data left is queued again behind the other.
		ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(s)}
		if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
			unix.Close(epfd)
			return nil, fmt.Errorf("epoll_ctl: %w", err)
		}
	}
	go p.loop(c)
	return p, nil
}

// stop makes the reader give up at deadline, and waits for it to finish.
func (p *pipeReader) stop(deadline time.Time) error {
	p.stopAt.Store(deadline.UnixNano())
	<-p.done
	return p.pollErr
}

func (p *pipeReader) loop(c *collector) {
	defer close(p.done)
	defer func() {
		for _, fd := range p.fds {
			if fd >= 0 {
				unix.Close(fd)
			}
		}
		unix.Close(p.epfd)
	}()
	buf := make([]byte, 32*1024)
	// One event at a time: the head of the ready list is the pipe that became readable
	// first.
	events := make([]unix.EpollEvent, 1)
	open := len(p.fds)
	for open > 0 {
		if at := p.stopAt.Load(); at != 0 && time.Now().UnixNano() >= at {
			return
		}
		n, err := unix.EpollWait(p.epfd, events, int(pollInterval/time.Millisecond))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			p.pollErr = fmt.Errorf("epoll_wait: %w", err)
			return
		}
		if n == 0 {
			continue
		}
		s := stream(events[0].Fd)
		fd := p.fds[s]
		m, err := unix.Read(fd, buf)
		if m > 0 {
			c.write(s, buf[:m])
		}
		if m == 0 || (err != nil && err != unix.EAGAIN && err != unix.EINTR) {
			// EOF: every writer has closed the pipe.
			_ = unix.EpollCtl(p.epfd, unix.EPOLL_CTL_DEL, fd, nil)
			unix.Close(fd)
			p.fds[s] = -1
			open--
		}
	}
}

// outputPipe returns a pipe whose read end is non-blocking (for the pipeReader) and whose
// write end is blocking (for the program). Both are close-on-exec.
func outputPipe() (r, w int, err error) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		return -1, -1, err
	}
	if err := unix.SetNonblock(p[0], true); err != nil {
		unix.Close(p[0])
		unix.Close(p[1])
		return -1, -1, err
	}
	return p[0], p[1], nil
}
