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
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestFrontTooLargeBodyIsReadable sends an 8 MiB program as curl does, the whole body
// before reading, through make dev's forward to the deployed front service: the answer is
// the documented 413 with its JSON error, not a connection reset, and the next request
// runs its program. (internal/httpapi's TestTooLargeIsReadable shows the same on
// loopback, and that it fails without the front's draining of refused bodies.)
func TestFrontTooLargeBodyIsReadable(t *testing.T) {
	base, err := url.Parse(frontURL(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	body := codeBody(strings.Repeat("#", 8<<20))
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", base.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Minute))
	start := time.Now()
	w := bufio.NewWriterSize(conn, 64<<10)
	fmt.Fprintf(w, "POST /execute HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", base.Host, len(body))
	if _, err := io.WriteString(w, body); err != nil {
		t.Fatalf("sending 8 MiB: %v", err)
	}
	if err := w.Flush(); err != nil {
		t.Fatalf("sending 8 MiB: %v", err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("reading the answer to 8 MiB: %v", err)
	}
	raw, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	var answer struct {
		Error string `json:"error"`
	}
	if err != nil || resp.StatusCode != http.StatusRequestEntityTooLarge || json.Unmarshal(raw, &answer) != nil ||
		!strings.Contains(answer.Error, "bytes are allowed") {
		t.Fatalf("answer to 8 MiB: %d %s (%v), want 413 with a JSON error", resp.StatusCode, raw, err)
	}
	t.Logf("8 MiB sent and refused in %s: %s", time.Since(start).Round(time.Millisecond), answer.Error)

	if status, ans := post(ctx, t, "/execute", codeBody("print('after 8 MiB')")); status != http.StatusOK || ans.Stdout != "after 8 MiB\n" {
		t.Errorf("the run after: %d %+v", status, ans)
	}
}
