package httpapi

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// Refused bodies and the lingering close.
//
// A handler refuses a request (413, 401, 404, ...) without reading its body, or after
// reading only part of it. net/http sends the answer, complete with its Content-Length,
// and closes the connection (after 500 ms, or at once for a client that sent Expect:
// 100-continue and then its body anyway) while the body is still arriving. Closing a
// socket with unread data makes the kernel send a reset instead of a FIN: a client still
// sending fails its write with "connection reset by peer" and reports that, not the 413
// waiting in its buffer, and a forwarder in between (kubectl port-forward, a proxy) that
// sees the reset drops the answer it had not passed on yet.
//
// So such a connection closes with a lingering close (RFC 9112, section 9.6): after the
// answer, the service reads and discards what the client still sends until the client
// closes its side, and only then closes the socket, with nothing unread. It does not
// half-close first, as the RFC suggests: a forwarder such as kubectl port-forward tears
// the whole connection down when the service's side ends, and so would reset a client
// still sending. The answer needs no FIN: it carries its length and Connection: close, so
// a client knows it has all of it and closes. The middleware unreadBody marks the
// connection when a handler left its request's body unread; only marked connections
// linger, and net/http's own half-close (CloseWrite) is skipped on them. Unmarked ones
// keep it: net/http's own refusals (431 for a header flood) end their answer with the FIN.
//
// The bounds: a lingering connection reads at most maxDrainBytes and for at most
// drainTimeout, whichever comes first, and then closes with whatever is left unread (a
// reset for a client still sending). A client that reads while it sends (curl, net/http,
// most libraries) stops at its answer and closes, which ends the linger at once; one that
// sends everything before it reads (8 MiB, 64 MiB) is read to its end, at loopback or
// network speed, within both. maxDrainBytes is what one refused request can make the
// service read: no more than the client itself sends, thrown away 32 KiB at a time, so it
// amplifies nothing; drainTimeout is how long a client can hold the connection and its
// goroutine after its answer (no new goroutine lingers: it is net/http's own for the
// connection). Once the server's listener is closed (Shutdown, Close), connections no
// longer linger, and Close cuts short those that do.
const (
	maxDrainBytes = 128 << 20
	drainTimeout  = 10 * time.Second
)

// lingerer is what the connections of one http.Server share: the bounds, and whether the
// server is still accepting.
type lingerer struct {
	drainBytes   int64
	drainTimeout time.Duration
	logger       *slog.Logger
	stopped      atomic.Bool // the listener is closed: close at once from now on
}

// lingerListener hands out lingerConns.
type lingerListener struct {
	net.Listener
	l *lingerer
}

func (ll *lingerListener) Accept() (net.Conn, error) {
	c, err := ll.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &lingerConn{Conn: c, l: ll.l}, nil
}

func (ll *lingerListener) Close() error {
	ll.l.stopped.Store(true)
	return ll.Listener.Close()
}

// lingerConn is a connection that closes with a lingering close when the request it
// serves left its body unread.
type lingerConn struct {
	net.Conn
	l *lingerer
	// unread is set by unreadBody, and cleared when net/http keeps the connection for
	// another request (it then read the rest of the body itself).
	unread    atomic.Bool
	requestID atomic.Value // of the request that left its body unread, for the log
	closing   atomic.Bool
}

type lingerConnKey struct{}

// markUnread notes that the request with id left its body unread.
func (c *lingerConn) markUnread(id string) {
	c.requestID.Store(id)
	c.unread.Store(true)
}

// CloseWrite half-closes the connection, as net/http does before it closes one that may
// have unread data, except on a marked one (see above).
func (c *lingerConn) CloseWrite() error {
	if c.unread.Load() {
		return nil
	}
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// Close closes the connection; with a body left unread, after the lingering close above.
// A second Close, while the first lingers (http.Server.Close), closes at once.
func (c *lingerConn) Close() error {
	if c.closing.Swap(true) || !c.unread.Load() || c.l.stopped.Load() {
		return c.Conn.Close()
	}
	start := time.Now()
	var n int64
	err := c.SetReadDeadline(start.Add(c.l.drainTimeout))
	if err == nil {
		n, err = io.CopyN(io.Discard, c.Conn, c.l.drainBytes)
	}
	level, outcome := slog.LevelDebug, "the client closed" // a clean close follows
	var ne net.Error
	switch {
	case err == nil:
		level, outcome = slog.LevelInfo, "over the drain bound; closing with the rest unread"
	case errors.As(err, &ne) && ne.Timeout():
		level, outcome = slog.LevelInfo, "still sending after the drain timeout; closing with the rest unread"
	case errors.Is(err, io.EOF):
	default:
		outcome = "the connection failed: " + err.Error() // a reset, or Close cut it short
	}
	id, _ := c.requestID.Load().(string)
	c.l.logger.LogAttrs(context.Background(), level, "discarded the rest of a refused request body before closing",
		slog.String("request_id", id), slog.String("client", c.RemoteAddr().String()), slog.Int64("bytes", n),
		slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000), slog.String("outcome", outcome))
	return c.Conn.Close()
}

// connState clears a connection's mark when net/http keeps it for another request.
func connState(c net.Conn, state http.ConnState) {
	if lc, ok := c.(*lingerConn); ok && state == http.StateIdle {
		lc.unread.Store(false)
	}
}

// connContext lets unreadBody find the request's connection.
func connContext(ctx context.Context, c net.Conn) context.Context {
	if lc, ok := c.(*lingerConn); ok {
		return context.WithValue(ctx, lingerConnKey{}, lc)
	}
	return ctx
}

// bodyWatch is a request body that notes when a read fails: at its end (io.EOF) or
// because the connection did.
type bodyWatch struct {
	io.ReadCloser
	ended bool
}

func (b *bodyWatch) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil {
		b.ended = true
	}
	return n, err
}
