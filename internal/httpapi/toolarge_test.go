package httpapi

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// The tests in this file send bodies over the service's limit (8 MiB and 64 MiB against
// 256 KiB) over real TCP to the service's own http.Server, the way real clients do: some
// send the whole body before they read anything (a client that reports a failed write as
// the request's failure, as curl does when the connection is reset under it), some wait for
// 100 Continue, some read while they send (net/http's Transport). Each must read its JSON
// 413, and the next request must run. Before the service drained refused bodies after
// answering, a body the service did not read made it close the connection with unread data
// in its socket: the kernel then sends a reset, and the client (or a forwarder in between,
// such as kubectl port-forward) loses the answer.

// bodyRoute is a route that takes a body, and the field of its JSON error.
type bodyRoute struct{ path, errorField string }

var bodyRoutes = []bodyRoute{
	{"/execute", "error"},
	{"/submit", "error"},
	{"/snippets", "error"},
	{"/api/v2/execute", "message"}, // Piston's errors are {"message": ...}
	{"/judge0/submissions", "error"},
	{"/judge0/submissions/batch", "error"},
}

// oversized is the body of one size, plain and in chunked framing, built once: 64 MiB
// strings are not worth building per case.
type oversized struct {
	size    int
	plain   []byte
	chunked []byte
}

func newOversized(size int) oversized {
	plain := []byte(`{"code": "` + strings.Repeat("#", size) + `"}`)
	return oversized{size: size, plain: plain, chunked: chunkedBody(plain, 64<<10)}
}

// framed is the body as a client sends it with framing ("Content-Length" or "chunked") and
// the Content-Length it declares (-1: chunked).
func (o oversized) framed(framing string) (wire []byte, length int) {
	if framing == "chunked" {
		return o.chunked, -1
	}
	return o.plain, len(o.plain)
}

// sendWhole sends a request whose body goes out whole, in one write, before the client
// reads, and returns the final answer. The write must not fail: a client would report the
// reset, not the answer.
func sendWhole(t *testing.T, addr, path string, wire []byte, length int, expect bool) wireAnswer {
	t.Helper()
	conn := dial(t, addr)
	if _, err := io.WriteString(conn, head(path, length, expect)); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write(wire); err != nil {
		t.Fatalf("sending the %d MiB body: %v", len(wire)>>20, err)
	}
	return readFinal(bufio.NewReader(conn))
}

// chunkedBody is body in chunks of size bytes, with the last chunk.
func chunkedBody(body []byte, size int) []byte {
	var b bytes.Buffer
	for len(body) > 0 {
		n := min(size, len(body))
		fmt.Fprintf(&b, "%x\r\n%s\r\n", n, body[:n])
		body = body[n:]
	}
	b.WriteString("0\r\n\r\n")
	return b.Bytes()
}

// head is a request's header block: with a Content-Length of length, or chunked when length
// is negative, and Expect: 100-continue when expect is set.
func head(path string, length int, expect bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "POST %s HTTP/1.1\r\nHost: coderun.test\r\nContent-Type: application/json\r\n", path)
	if length < 0 {
		b.WriteString("Transfer-Encoding: chunked\r\n")
	} else {
		fmt.Fprintf(&b, "Content-Length: %d\r\n", length)
	}
	if expect {
		b.WriteString("Expect: 100-continue\r\n")
	}
	b.WriteString("\r\n")
	return b.String()
}

// wantTooLarge checks that a is a 413 whose JSON error of route is a sentence about the
// limit, and that the service closes the connection after it (it did not read the whole
// body, so the connection cannot carry another request).
func wantTooLarge(t *testing.T, route bodyRoute, a wireAnswer) {
	t.Helper()
	if a.err != nil || a.resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("answer %v, want 413", a)
	}
	var msg string
	if a.resp.Header.Get("Content-Type") == "application/json; charset=utf-8" {
		var m map[string]any
		if err := json.Unmarshal(a.body, &m); err == nil {
			msg, _ = m[route.errorField].(string)
		}
	}
	if !strings.Contains(msg, "262144 bytes") {
		t.Errorf("answer %v, want a JSON %q naming the limit of 262144 bytes", a, route.errorField)
	}
	if !a.resp.Close {
		t.Errorf("answer %v, want Connection: close", a)
	}
}

// readFinal reads the final answer, past a 100 Continue (which the service sends when a
// handler starts reading a body announced with Expect: 100-continue).
func readFinal(br *bufio.Reader) wireAnswer {
	a := readResponse(br)
	for a.err == nil && a.resp.StatusCode == http.StatusContinue {
		a = readResponse(br)
	}
	return a
}

// runsAfter checks that a run right after, on a new connection, succeeds.
func runsAfter(t *testing.T, addr string) {
	t.Helper()
	hello := request("POST", "/execute", mustJSON(map[string]string{"code": helloWorld}), "Content-Type", "application/json")
	if a := exchange(addr, 30*time.Second, sendAll(hello)); a.err != nil || a.resp.StatusCode != 200 {
		t.Errorf("a run after the large body: %v", a)
	}
}

// TestTooLargeIsReadable: clients that send the whole body before reading, with and
// without Expect: 100-continue, and clients that send only the headers and wait for 100
// Continue, each get their JSON 413 on every route that takes a body.
func TestTooLargeIsReadable(t *testing.T) {
	f := newFixture(t, nil)
	addr := f.listen(t, nil)
	for _, size := range []int{8 << 20, 64 << 20} {
		body := newOversized(size)
		for _, route := range bodyRoutes {
			for _, framing := range []string{"Content-Length", "chunked"} {
				wire, length := body.framed(framing)
				for _, expect := range []bool{false, true} {
					t.Run(fmt.Sprintf("%s expect=%v whole body first", caseName(size, route, framing), expect), func(t *testing.T) {
						// A client that sent Expect: 100-continue may send its body
						// without waiting (RFC 9110, 10.1.1).
						wantTooLarge(t, route, sendWhole(t, addr, route.path, wire, length, expect))
						runsAfter(t, addr)
					})
				}
				t.Run(caseName(size, route, framing)+" waits for 100 Continue", func(t *testing.T) {
					// As curl does: the headers, then the body only on 100 Continue. A
					// declared length over the limit is refused without asking for the
					// body; a chunked body is asked for (only reading it tells its size),
					// and refused once it is over the limit.
					conn := dial(t, addr)
					if _, err := io.WriteString(conn, head(route.path, length, true)); err != nil {
						t.Fatal(err)
					}
					br := bufio.NewReader(conn)
					a := readResponse(br)
					if a.err == nil && a.resp.StatusCode == http.StatusContinue {
						if framing != "chunked" {
							t.Errorf("100 Continue for a body declared %d bytes", length)
						}
						if _, err := conn.Write(wire); err != nil {
							t.Fatalf("sending the %d MiB body after 100 Continue: %v", size>>20, err)
						}
						a = readResponse(br)
					}
					wantTooLarge(t, route, a)
					runsAfter(t, addr)
				})
			}
		}
	}
}

func caseName(size int, route bodyRoute, framing string) string {
	return fmt.Sprintf("%dMiB %s %s", size>>20, route.path, framing)
}

// TestTooLargeThroughForwarder: the same clients, through a forwarder that ends the whole
// connection when the service's side of it ends, as kubectl port-forward does. The service
// must not end its side (a reset, or a FIN) while the client is still sending, or the
// forwarder resets the client.
func TestTooLargeThroughForwarder(t *testing.T) {
	f := newFixture(t, nil)
	addr := forwarder(t, f.listen(t, nil))
	route := bodyRoutes[0]
	for _, size := range []int{8 << 20, 64 << 20} {
		body := newOversized(size)
		for _, framing := range []string{"Content-Length", "chunked"} {
			wire, length := body.framed(framing)
			for _, expect := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s expect=%v", caseName(size, route, framing), expect), func(t *testing.T) {
					wantTooLarge(t, route, sendWhole(t, addr, route.path, wire, length, expect))
					runsAfter(t, addr)
				})
			}
		}
	}
}

// forwarder forwards connections on 127.0.0.1 to addr the way kubectl port-forward does:
// it copies both ways, passes on the end of the client's side, and when the copy from the
// service ends (EOF or an error), it closes both connections, whatever the client is still
// sending.
func forwarder(t *testing.T, addr string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		_ = ln.Close()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { _ = client.Close() }()
				service, err := net.Dial("tcp", addr)
				if err != nil {
					return
				}
				defer func() { _ = service.Close() }()
				toService := make(chan struct{})
				go func() {
					defer close(toService)
					_, _ = io.Copy(service, client)
					// The client is done sending: so is the forwarder.
					_ = service.(*net.TCPConn).CloseWrite()
				}()
				_, _ = io.Copy(client, service)
				_ = client.Close()
				_ = service.Close()
				<-toService
			}()
		}
	}()
	return ln.Addr().String()
}

// TestTooLargeGoClient: net/http's client, which reads while it sends, with a known length
// and chunked, with and without Expect: 100-continue, gets the 413 as its answer (not an
// error) and runs a program right after, with the same client.
func TestTooLargeGoClient(t *testing.T) {
	f := newFixture(t, nil)
	addr := f.listen(t, nil)
	tr := &http.Transport{ExpectContinueTimeout: 5 * time.Second}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: time.Minute}
	for _, size := range []int{8 << 20, 64 << 20} {
		body := newOversized(size)
		for _, route := range bodyRoutes {
			for _, framing := range []string{"Content-Length", "chunked"} {
				for _, expect := range []bool{false, true} {
					t.Run(fmt.Sprintf("%s expect=%v", caseName(size, route, framing), expect), func(t *testing.T) {
						var r io.Reader = bytes.NewReader(body.plain)
						if framing == "chunked" {
							r = io.MultiReader(r) // no length known: net/http sends it chunked
						}
						req, err := http.NewRequest("POST", "http://"+addr+route.path, r)
						if err != nil {
							t.Fatal(err)
						}
						req.Header.Set("Content-Type", "application/json")
						if expect {
							req.Header.Set("Expect", "100-continue")
						}
						resp, err := client.Do(req)
						if err != nil {
							t.Fatalf("POST of %d MiB: %v", size>>20, err)
						}
						raw, err := io.ReadAll(resp.Body)
						_ = resp.Body.Close()
						wantTooLarge(t, route, wireAnswer{resp: resp, body: raw, err: err})

						run, err := client.Post("http://"+addr+"/execute", "application/json", strings.NewReader(mustJSON(map[string]string{"code": helloWorld})))
						if err != nil {
							t.Fatalf("the run after: %v", err)
						}
						_, _ = io.Copy(io.Discard, run.Body)
						_ = run.Body.Close()
						if run.StatusCode != 200 {
							t.Errorf("the run after: %d", run.StatusCode)
						}
					})
				}
			}
		}
	}
}

// TestTooLargeBrokenClients: a client that sends half its body and resets the connection,
// and one that sends half and closes its side, leave the service healthy; the one that
// half-closed still reads its 413. A run in flight on another connection meanwhile is not
// disturbed.
func TestTooLargeBrokenClients(t *testing.T) {
	f := newFixture(t, nil)
	addr := f.listen(t, nil)
	body := newOversized(8 << 20)
	route := bodyRoutes[0]

	// A run that answers only once the test releases it: it is in flight throughout.
	inFlight := make(chan wireAnswer, 1)
	release := make(chan struct{})
	f.runner.waiting = make(chan struct{}, 1)
	f.runner.release = make(chan struct{})
	go func() {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			inFlight <- wireAnswer{err: err}
			return
		}
		defer func() { _ = conn.Close() }()
		br := bufio.NewReader(conn)
		if _, err := io.WriteString(conn, request("POST", "/execute", mustJSON(map[string]string{"code": held}), "Content-Type", "application/json")); err != nil {
			inFlight <- wireAnswer{err: err}
			return
		}
		<-release
		inFlight <- readResponse(br)
	}()
	<-f.runner.waiting

	for _, framing := range []string{"Content-Length", "chunked"} {
		wire, length := body.framed(framing)
		half := wire[:len(wire)/2]
		t.Run(framing+" reset mid-body", func(t *testing.T) {
			conn := dial(t, addr)
			if _, err := io.WriteString(conn, head(route.path, length, false)); err != nil {
				t.Fatal(err)
			}
			if _, err := conn.Write(half); err != nil {
				t.Fatal(err)
			}
			// SO_LINGER 0: Close sends a reset, not a FIN.
			if err := conn.(*net.TCPConn).SetLinger(0); err != nil {
				t.Fatal(err)
			}
			_ = conn.Close()
			runsAfter(t, addr)
		})
		t.Run(framing+" half-closed mid-body", func(t *testing.T) {
			conn := dial(t, addr)
			if _, err := io.WriteString(conn, head(route.path, length, false)); err != nil {
				t.Fatal(err)
			}
			if _, err := conn.Write(half); err != nil {
				t.Fatal(err)
			}
			if err := conn.(*net.TCPConn).CloseWrite(); err != nil {
				t.Fatal(err)
			}
			wantTooLarge(t, route, readResponse(bufio.NewReader(conn)))
			runsAfter(t, addr)
		})
	}

	close(f.runner.release)
	close(release)
	if a := <-inFlight; a.err != nil || a.resp.StatusCode != 200 || !strings.Contains(string(a.body), "released") {
		t.Errorf("the run in flight: %v, want its 200", a)
	}
}

// TestTooLargeDrainIsBounded: the service reads a refused body only up to its bounds. A
// client that never stops sending has its connection closed once drainBytes are read, and
// one that trickles after its answer once drainTimeout has passed; neither holds the
// service, which runs the next program.
func TestTooLargeDrainIsBounded(t *testing.T) {
	f := newFixture(t, nil)
	f.srv.drainBytes = 4 << 20
	f.srv.drainTimeout = time.Second
	addr := f.listen(t, nil)

	t.Run("endless body", func(t *testing.T) {
		conn := dial(t, addr)
		if _, err := io.WriteString(conn, head("/execute", -1, false)); err != nil {
			t.Fatal(err)
		}
		chunk := chunkedBody(bytes.Repeat([]byte("#"), 64<<10), 64<<10)
		chunk = chunk[:len(chunk)-len("0\r\n\r\n")] // never the last chunk
		var sent int64
		var err error
		for err == nil {
			var n int
			n, err = conn.Write(chunk)
			sent += int64(n)
		}
		if isTimeout(err) {
			t.Fatalf("after %d bytes the service still read: %v", sent, err)
		}
		// What the service read, plus what the sockets buffer: far less than endless.
		if sent < f.srv.drainBytes || sent > f.srv.drainBytes+64<<20 {
			t.Errorf("sent %d bytes before the service closed the connection, want %d plus socket buffers", sent, f.srv.drainBytes)
		}
		runsAfter(t, addr)
	})

	t.Run("trickle after the answer", func(t *testing.T) {
		conn := dial(t, addr)
		if _, err := io.WriteString(conn, head("/execute", 1<<30, false)); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(conn)
		wantTooLarge(t, bodyRoutes[0], readResponse(br))
		// One byte at a time, slower than any transfer: the service gives up after
		// drainTimeout and closes; the client's deadline (a minute) is never reached.
		var err error
		for err == nil {
			_, err = conn.Write([]byte("#"))
			time.Sleep(50 * time.Millisecond)
		}
		if isTimeout(err) {
			t.Fatalf("the service kept reading a trickling body until the client gave up: %v", err)
		}
		runsAfter(t, addr)
	})
}

// isTimeout tells the client's own deadline from the service closing the connection.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// dial connects to addr with a deadline of a minute for everything on the connection, far
// beyond what any exchange here needs: it only stops a broken service from hanging the test.
func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	if err := conn.SetDeadline(time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	return conn
}

// chunked is a request whose body is sent in chunks of size bytes, without a
// Content-Length.
func chunked(method, path, body string, size int) string {
	return strings.Replace(head(path, -1, false), "POST", method, 1) + string(chunkedBody([]byte(body), size))
}
