package httpapi

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// The tests in this file and in malformed_test.go talk to the API over real TCP
// connections on 127.0.0.1, through the http.Server the service runs (Server.HTTPServer),
// because what a hostile client meets is as much net/http's doing as the handlers'.

// listen serves f's API on 127.0.0.1 and returns its address. change may alter the
// server (tests shorten its timeouts) before it starts.
func (f *fixture) listen(t *testing.T, change func(*http.Server)) string {
	t.Helper()
	srv := f.srv.HTTPServer(context.Background())
	if change != nil {
		change(srv.Server)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutting the server down: %v", err)
		}
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serving: %v", err)
		}
	})
	return ln.Addr().String()
}

// wireAnswer is what came back on a connection: a response, or the error that ended it
// before one was read (io.EOF when the server closed the connection without answering).
type wireAnswer struct {
	resp *http.Response
	body []byte
	err  error
}

// String describes the answer for failure messages.
func (a wireAnswer) String() string {
	if a.err != nil {
		return "no answer: " + a.err.Error()
	}
	return fmt.Sprintf("%d %v %.300s", a.resp.StatusCode, a.resp.Header, a.body)
}

// errorJSON returns the "error" of a JSON error answer, or "" when the answer is not one.
func (a wireAnswer) errorJSON() string {
	if a.err != nil || !strings.HasPrefix(a.resp.Header.Get("Content-Type"), "application/json") {
		return ""
	}
	var m map[string]any
	if json.Unmarshal(a.body, &m) != nil {
		return ""
	}
	msg, _ := m["error"].(string)
	return msg
}

// exchange dials addr, lets send write a request (however slowly or oddly it likes), and
// reads one answer. The whole exchange must end within limit.
func exchange(addr string, limit time.Duration, send func(net.Conn) error) wireAnswer {
	conn, err := net.DialTimeout("tcp", addr, limit)
	if err != nil {
		return wireAnswer{err: err}
	}
	defer func() { _ = conn.Close() }()
	if err := conn.SetDeadline(time.Now().Add(limit)); err != nil {
		return wireAnswer{err: err}
	}
	return readAnswer(conn, bufio.NewReader(conn), send)
}

// readAnswer sends a request on conn and reads its answer from br.
func readAnswer(conn net.Conn, br *bufio.Reader, send func(net.Conn) error) wireAnswer {
	if err := send(conn); err != nil {
		// The server may have answered and closed before the request was all written
		// (a 431 for a header flood): the answer is still in the socket.
		if a := readResponse(br); a.err == nil {
			return a
		}
		return wireAnswer{err: fmt.Errorf("sending: %w", err)}
	}
	return readResponse(br)
}

func readResponse(br *bufio.Reader) wireAnswer {
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			err = io.EOF // closed before the first byte of an answer
		}
		return wireAnswer{err: err}
	}
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return wireAnswer{resp: resp, err: fmt.Errorf("reading the body of a %d: %w", resp.StatusCode, err)}
	}
	return wireAnswer{resp: resp, body: body}
}

// sendAll writes the whole of data.
func sendAll(data string) func(net.Conn) error {
	return func(c net.Conn) error {
		_, err := io.WriteString(c, data)
		return err
	}
}

// request is an HTTP/1.1 request as bytes on the wire, with a Content-Length when body is
// not empty and headers given as name, value pairs.
func request(method, path, body string, header ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: coderun.test\r\n", method, path)
	for i := 0; i+1 < len(header); i += 2 {
		fmt.Fprintf(&b, "%s: %s\r\n", header[i], header[i+1])
	}
	if body != "" {
		fmt.Fprintf(&b, "Content-Length: %d\r\n", len(body))
	}
	b.WriteString("\r\n")
	b.WriteString(body)
	return b.String()
}
