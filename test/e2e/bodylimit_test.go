//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestFrontBodyLimit sends 8 MiB programs through FRONT_URL (make dev's forward to the
// deployed front service) the ways real clients do, while a legitimate slow run is in
// flight: each gets the documented 413 with its JSON error, readable rather than a
// connection reset; a client that resets or half-closes mid-body breaks nothing; the
// request right after each, on a new connection, succeeds; and the slow run gets its
// answer. (internal/httpapi's TestTooLarge* show the same on loopback for every route,
// 64 MiB too, and through a forwarder that ends the connection with the service's side.)
func TestFrontBodyLimit(t *testing.T) {
	base, err := url.Parse(frontURL(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	// The slow run: its request is sent (the test waits until it is written) before the
	// bad ones, and its answer is checked after them.
	type outcome struct {
		status int
		ans    runAnswer
		err    error
	}
	slowDone := make(chan outcome, 1)
	slowSent := make(chan struct{})
	go func() {
		trace := &httptrace.ClientTrace{WroteRequest: func(httptrace.WroteRequestInfo) { close(slowSent) }}
		req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), http.MethodPost, base.String()+"/execute",
			strings.NewReader(codeBody("import time\ntime.sleep(2)\nprint('slept')")))
		if err != nil {
			slowDone <- outcome{err: err}
			return
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			slowDone <- outcome{err: err}
			return
		}
		defer func() { _ = resp.Body.Close() }()
		var ans runAnswer
		err = json.NewDecoder(resp.Body).Decode(&ans)
		slowDone <- outcome{status: resp.StatusCode, ans: ans, err: err}
	}()
	select {
	case <-slowSent:
	case o := <-slowDone:
		t.Fatalf("the slow run failed before its request was sent: %+v", o)
	}

	body := codeBody(strings.Repeat("#", 8<<20))
	plain := fmt.Sprintf("POST /execute HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", base.Host, len(body))
	expect := fmt.Sprintf("POST /execute HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n", base.Host, len(body))
	chunkedHead := fmt.Sprintf("POST /execute HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n", base.Host)
	var chunked strings.Builder
	for rest := body; rest != ""; {
		n := min(64<<10, len(rest))
		fmt.Fprintf(&chunked, "%x\r\n%s\r\n", n, rest[:n])
		rest = rest[n:]
	}
	chunked.WriteString("0\r\n\r\n")

	for _, tc := range []struct {
		name, head, body string
		// end is what the client does after sending: "" reads the answer; "reset" and
		// "half-close" stop halfway through the body.
		end string
	}{
		{"whole body before reading", plain, body, ""},
		{"Expect: 100-continue, body sent anyway", expect, body, ""},
		{"chunked", chunkedHead, chunked.String(), ""},
		{"reset mid-body", plain, body[:len(body)/2], "reset"},
		{"half-closed mid-body", plain, body[:len(body)/2], "half-close"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", base.Host)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = conn.Close() }()
			// Only so that a broken forward cannot hang the test; no exchange needs it.
			_ = conn.SetDeadline(time.Now().Add(2 * time.Minute))
			start := time.Now()
			w := bufio.NewWriterSize(conn, 64<<10)
			_, err = io.WriteString(w, tc.head+tc.body)
			if err == nil {
				err = w.Flush()
			}
			// curl and most libraries report a failed write as the request's failure,
			// whatever the service may have answered meanwhile.
			if err != nil {
				t.Fatalf("sending 8 MiB: %v", err)
			}
			switch tc.end {
			case "reset":
				// SO_LINGER 0: Close sends a reset, not a FIN.
				if err := conn.(*net.TCPConn).SetLinger(0); err != nil {
					t.Fatal(err)
				}
				_ = conn.Close()
			case "half-close", "":
				if tc.end == "half-close" {
					if err := conn.(*net.TCPConn).CloseWrite(); err != nil {
						t.Fatal(err)
					}
				}
				br := bufio.NewReader(conn)
				resp, err := http.ReadResponse(br, nil)
				for err == nil && resp.StatusCode == http.StatusContinue { // past a 100 Continue
					resp, err = http.ReadResponse(br, nil)
				}
				if err != nil {
					t.Fatalf("reading the answer to 8 MiB: %v", err)
				}
				raw, err := io.ReadAll(resp.Body)
				_ = resp.Body.Close()
				var answer struct {
					Error string `json:"error"`
				}
				if err != nil || resp.StatusCode != http.StatusRequestEntityTooLarge || json.Unmarshal(raw, &answer) != nil ||
					!strings.Contains(answer.Error, "262144 bytes") {
					t.Fatalf("answer to 8 MiB: %d %s (%v), want 413 with a JSON error naming the limit", resp.StatusCode, raw, err)
				}
				if !resp.Close {
					t.Errorf("answer to 8 MiB without Connection: close: %v", resp.Header)
				}
				t.Logf("8 MiB sent and refused in %s: %s", time.Since(start).Round(time.Millisecond), answer.Error)
			}

			// Right after, on a new connection: the forward and the front still answer.
			var health map[string]string
			if status := call(ctx, t, base.String(), http.MethodGet, "/healthz", "", &health); status != http.StatusOK {
				t.Errorf("GET /healthz right after: %d %v", status, health)
			}
		})
	}

	var slow outcome
	select {
	case slow = <-slowDone:
		t.Errorf("the slow run finished before the bad requests did, so they did not overlap it")
	default:
		slow = <-slowDone
	}
	if slow.err != nil || slow.status != http.StatusOK || slow.ans.Stdout != "slept\n" {
		t.Errorf("the slow run in flight meanwhile: %+v, want 200 with stdout %q", slow, "slept\n")
	}
	if status, ans := post(ctx, t, "/execute", codeBody("print('after 8 MiB')")); status != http.StatusOK || ans.Stdout != "after 8 MiB\n" {
		t.Errorf("a run after the bad requests: %d %+v", status, ans)
	}
}
