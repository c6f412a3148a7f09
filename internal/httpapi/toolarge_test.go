package httpapi

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// TestTooLargeIsReadable sends 8 MiB bodies the way curl does, all of it before reading,
// over real TCP: each gets its JSON 413 (or 404) rather than a connection reset, and the
// connection still serves the next request. Clients that wait for 100 Continue, or whose
// body is declared larger than the service drains, get the 413 at once instead.
func TestTooLargeIsReadable(t *testing.T) {
	f := newFixture(t, nil)
	addr := f.listen(t, nil)
	huge := `{"code": "` + strings.Repeat("x", 8<<20) + `"}`
	hello := request("POST", "/execute", mustJSON(map[string]string{"code": helloWorld}), "Content-Type", "application/json")

	for _, tc := range []struct {
		name, path, header string
		chunked            bool
		status             int
		mention            string
	}{
		{"Content-Length", "/execute", "", false, 413, "the request body is 8388620 bytes; at most 262144 bytes are allowed"},
		{"chunked", "/submit", "", true, 413, "the request body is over the limit of 262144 bytes"},
		{"snippet", "/snippets", "", false, 413, "at most 262144 bytes"},
		{"unknown route", "/api/v1/execute", "", false, 404, "no such route: POST /api/v1/execute"},
		{"GET with a body", "/submissions/1", "", false, 404, "no submission has id 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = conn.Close() }()
			_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
			br := bufio.NewReader(conn)
			method := "POST"
			if strings.HasPrefix(tc.name, "GET") {
				method = "GET"
			}
			var raw string
			if tc.chunked {
				raw = chunked(method, tc.path, huge, 64<<10)
			} else {
				raw = request(method, tc.path, huge, "Content-Type", "application/json")
			}
			// At about 8 MiB/s, as over a fast network rather than loopback's gigabytes:
			// the body is still arriving after net/http's 500 ms grace for closing.
			send := sendPaced(raw, 64<<10, 8*time.Millisecond)
			// curl and most libraries report a failed write as the request's failure,
			// whatever the server may have answered meanwhile.
			if err := send(conn); err != nil {
				t.Fatalf("sending the body: %v", err)
			}
			a := readResponse(br)
			if a.err != nil || a.resp.StatusCode != tc.status || !strings.Contains(a.errorJSON(), tc.mention) {
				t.Fatalf("answer %v, want %d with a JSON error mentioning %q", a, tc.status, tc.mention)
			}
			// Drained to its end, the request left the connection in step: it serves the
			// next one.
			if next := readAnswer(conn, br, sendAll(hello)); next.err != nil || next.resp.StatusCode != 200 {
				t.Errorf("the next request on the connection: %v", next)
			}
		})
	}

	t.Run("Expect 100-continue", func(t *testing.T) {
		// The client sends headers only and waits: the service refuses without asking
		// for the body, and closes the connection, on which the body would otherwise come.
		a := exchange(addr, 10*time.Second, sendAll(fmt.Sprintf(
			"POST /execute HTTP/1.1\r\nHost: coderun.test\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n", len(huge))))
		if a.err != nil || a.resp.StatusCode != 413 || a.errorJSON() == "" || !a.resp.Close {
			t.Errorf("answer %v, want a JSON 413 with Connection: close and no 100 Continue", a)
		}
	})

	t.Run("declared over the drain bound", func(t *testing.T) {
		// 40 MiB are not worth reading: the 413 comes at once, for a client that reads
		// while it sends.
		a := exchange(addr, 10*time.Second, sendAll(fmt.Sprintf(
			"POST /execute HTTP/1.1\r\nHost: coderun.test\r\nContent-Length: %d\r\n\r\n{\"code\": \"", 40<<20)))
		if a.err != nil || a.resp.StatusCode != 413 || !strings.Contains(a.errorJSON(), "at most 262144 bytes") || !a.resp.Close {
			t.Errorf("answer %v, want a JSON 413 with Connection: close", a)
		}
	})

	if a := exchange(addr, 10*time.Second, sendAll(hello)); a.err != nil || a.resp.StatusCode != 200 {
		t.Errorf("a run after the large bodies: %v", a)
	}
}

// chunked is a request whose body is sent in chunks of size bytes, without a
// Content-Length.
func chunked(method, path, body string, size int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: coderun.test\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n", method, path)
	for len(body) > 0 {
		n := min(size, len(body))
		fmt.Fprintf(&b, "%x\r\n%s\r\n", n, body[:n])
		body = body[n:]
	}
	b.WriteString("0\r\n\r\n")
	return b.String()
}

// sendPaced writes data in pieces of size bytes, one every pause.
func sendPaced(data string, size int, pause time.Duration) func(net.Conn) error {
	return func(c net.Conn) error {
		for len(data) > 0 {
			n := min(size, len(data))
			if _, err := io.WriteString(c, data[:n]); err != nil {
				return err
			}
			data = data[n:]
			time.Sleep(pause)
		}
		return nil
	}
}
