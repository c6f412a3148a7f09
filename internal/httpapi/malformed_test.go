package httpapi

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// outcome is what a malformed request must get.
type outcome struct {
	// status is the answer's status; 0 means the connection is closed without one.
	status int
	// plain marks net/http's own answers (text/plain, before any handler runs); the
	// others are the API's JSON {"error": ...} containing mention.
	plain   bool
	mention string
}

func jsonError(status int, mention string) outcome { return outcome{status: status, mention: mention} }

// byNetHTTP is an answer net/http writes itself: the request never reaches the API.
func byNetHTTP(status int, mention string) outcome {
	return outcome{status: status, plain: true, mention: mention}
}

var closedWithoutAnswer = outcome{}

func (o outcome) check(a wireAnswer) error {
	switch {
	case o.status == 0:
		if a.err != io.EOF {
			return fmt.Errorf("got %v, want the connection closed without an answer", a)
		}
	case a.err != nil:
		return fmt.Errorf("got %v, want %d", a, o.status)
	case a.resp.StatusCode != o.status:
		return fmt.Errorf("got %v, want %d", a, o.status)
	case o.plain:
		if !strings.HasPrefix(a.resp.Header.Get("Content-Type"), "text/plain") || !strings.Contains(string(a.body), o.mention) {
			return fmt.Errorf("got %v, want net/http's plain %d mentioning %q", a, o.status, o.mention)
		}
	default:
		if msg := a.errorJSON(); msg == "" || !strings.Contains(msg, o.mention) {
			return fmt.Errorf("got %v, want a JSON error mentioning %q", a, o.mention)
		}
	}
	return nil
}

// malformed is one hostile request: how it is sent and what it must get.
type malformed struct {
	kind string
	send func(net.Conn) error
	want outcome
}

// programPaths take a program in a JSON body.
var programPaths = []string{"/execute", "/submit", "/snippets"}

const goodBody = `{"code": "print(1)", "stdin": "x", "limits": {"timeout_seconds": 5}}`

// post is a JSON POST of body to path.
func post(path, body string) func(net.Conn) error {
	return sendAll(request("POST", path, body, "Content-Type", "application/json"))
}

// malformedKinds make requests of each kind, varied by rng. The slow kinds are made
// separately (slowKinds): each holds a connection for a read timeout.
var malformedKinds = []func(*rand.Rand) malformed{
	func(rng *rand.Rand) malformed {
		cut := rng.IntN(len(goodBody))
		mention := "not valid JSON"
		if strings.TrimSpace(goodBody[:cut]) == "" {
			mention = "the request body is empty"
		}
		return malformed{"JSON cut short", post(pick(rng, programPaths), goodBody[:cut]), jsonError(400, mention)}
	},
	func(rng *rand.Rand) malformed {
		garbage := make([]byte, 1+rng.IntN(2000))
		for i := range garbage {
			garbage[i] = byte(rng.IntN(256))
		}
		garbage[0] = 0x01 // starts no JSON value, and is valid UTF-8
		return malformed{"random bytes", post(pick(rng, programPaths), string(garbage)), jsonError(400, "")}
	},
	func(rng *rand.Rand) malformed {
		field := pick(rng, []string{`"code"`, `"stdin"`, `"language"`, `"limits"`, `"limits.timeout_seconds"`, `"limits.memory"`, `"limits.cpu"`})
		value := pick(rng, []string{`true`, `[]`, `[1, "a"]`, `{}`, `{"a": 1}`, `false`})
		if !strings.HasPrefix(field, `"limits`) && rng.IntN(2) == 0 {
			value = `12345` // a number where a string is wanted
		}
		if field == `"limits"` && value[0] == '{' {
			value = `"fast"` // an object is right for limits
		}
		var body string
		switch {
		case field == `"code"`:
			body = `{"code": ` + value + `}`
		case strings.HasPrefix(field, `"limits.`):
			body = `{"code": "print(1)", "limits": {"` + strings.Trim(field, `"`)[len("limits."):] + `": ` + value + `}}`
		default:
			body = `{"code": "print(1)", ` + field + `: ` + value + `}`
		}
		return malformed{"wrong type", post(pick(rng, programPaths), body), jsonError(400, "must be")}
	},
	func(rng *rand.Rand) malformed {
		digits := "9" + strings.Repeat("7", 18+rng.IntN(300))
		c := pick(rng, []struct{ body, mention string }{
			{`{"code": "x", "limits": {"timeout_seconds": ` + digits + `}}`, "is out of range"},
			{`{"code": "x", "limits": {"timeout_seconds": -` + digits + `}}`, "is out of range"},
			{`{"code": "x", "limits": {"timeout_seconds": 1e400}}`, "whole number of seconds"},
			{`{"code": "x", "limits": {"timeout_seconds": 5.000000000000000001}}`, "whole number of seconds"},
			{`{"code": "x", "limits": {"memory": ` + digits + `}}`, "limits.memory"},
			{`{"code": "x", "limits": {"memory": -` + digits + `}}`, "limits.memory"},
			{`{"code": "x", "limits": {"cpu": 1e400}}`, "above the maximum of 2"},
			{`{"code": "x", "limits": {"cpu": "` + digits + `Ei"}}`, "limits.cpu"},
		})
		// Limits belong to runs; a snippet keeps only code and stdin.
		return malformed{"huge number", post(pick(rng, programPaths[:2]), c.body), jsonError(422, c.mention)}
	},
	func(rng *rand.Rand) malformed {
		field := pick(rng, []string{"code", "stdin"})
		at := rng.IntN(20)
		text := strings.Repeat("a", at) + `\u0000` + "b"
		body := `{"code": "` + text + `"}`
		if field == "stdin" {
			body = `{"code": "input()", "stdin": "` + text + `"}`
		}
		return malformed{"NUL character", post(pick(rng, programPaths), body), jsonError(422, fmt.Sprintf(`"%s" has a NUL character (\u0000) at byte %d`, field, at))}
	},
	func(rng *rand.Rand) malformed {
		body := pick(rng, []string{"{\"code\": \"print(\x00)\"}", "{\"code\":\x00\"x\"}", "\x00{\"code\": \"x\"}"})
		return malformed{"NUL byte", post(pick(rng, programPaths), body), jsonError(400, "not valid JSON")}
	},
	func(rng *rand.Rand) malformed {
		bad := pick(rng, []string{"\xff", "\xc3", "\xe6\x97", "\xed\xa0\x80", "\xc0\xaf", "\x80"})
		at := rng.IntN(30)
		body := `{"code": "` + strings.Repeat("é", at) + bad + `"}`
		return malformed{"invalid UTF-8", post(pick(rng, programPaths), body), jsonError(400, fmt.Sprintf("not valid UTF-8 (at byte %d)", 10+2*at))}
	},
	func(rng *rand.Rand) malformed {
		depth := 10_001 + rng.IntN(100_000)
		open, closing := "[", "]"
		if rng.IntN(2) == 0 {
			open, closing = `{"a":`, "}"
		}
		nest := strings.Repeat(open, depth) + "1" + strings.Repeat(closing, depth)
		body := pick(rng, []string{nest, `{"code": ` + nest + `}`, `{"code": "x", "limits": {"memory": ` + nest + `}}`})
		if len(body) > DefaultMaxBodyBytes {
			return malformed{"deep nesting", post(pick(rng, programPaths), body), jsonError(413, "at most 262144 bytes")}
		}
		return malformed{"deep nesting", post(pick(rng, programPaths), body), jsonError(400, "exceeded max depth")}
	},
	func(rng *rand.Rand) malformed {
		size := DefaultMaxBodyBytes + 1 + rng.IntN(4<<20)
		body := `{"code": "` + strings.Repeat("x", size) + `"}`
		path := pick(rng, programPaths)
		if rng.IntN(2) == 0 {
			return malformed{"oversized body", sendAll(chunked("POST", path, body, 32<<10)), jsonError(413, "over the limit of 262144 bytes")}
		}
		return malformed{"oversized body", post(path, body), jsonError(413, "at most 262144 bytes are allowed")}
	},
	func(rng *rand.Rand) malformed {
		r := pick(rng, []struct{ method, path string }{
			{"PUT", "/execute"}, {"DELETE", "/submit"}, {"PATCH", "/snippets"}, {"GET", "/execute"},
			{"POST", "/healthz"}, {"PUT", "/submissions"}, {"DELETE", "/snippets/6f1e3f7a-5a43-4a39-9a0e-3a2f0f1a9b77"},
			{"OPTIONS", "/submit"}, {"TRACE", "/execute"}, {"BREW", "/execute"}, {"POST", "/metrics"},
		})
		return malformed{"wrong method", sendAll(request(r.method, r.path, goodBody, "Content-Type", "application/json")),
			jsonError(405, "method "+r.method+" is not allowed on "+r.path)}
	},
	func(rng *rand.Rand) malformed {
		c := pick(rng, []struct{ contentType, body string }{
			{"application/x-www-form-urlencoded", "code=print%281%29&stdin="},
			{"multipart/form-data; boundary=xyz", "--xyz\r\nContent-Disposition: form-data; name=\"code\"\r\n\r\nprint(1)\r\n--xyz--\r\n"},
			{"application/xml", "<run><code>print(1)</code></run>"},
			{"text/yaml", "code: print(1)\n"},
			{"application/octet-stream", "\x01\x02\x03"},
		})
		return malformed{"wrong content type", sendAll(request("POST", pick(rng, programPaths), c.body, "Content-Type", c.contentType)), jsonError(400, "not valid JSON")}
	},
	func(rng *rand.Rand) malformed {
		name := pick(rng, []string{"page", "per_page"})
		value := pick(rng, []string{"-1", "0", "1000001", "abc", "1e3", "%00", "%ff", "99999999999999999999", "%201", "1.5", "0x10", strings.Repeat("9", 1000)})
		return malformed{"bad query parameter", sendAll(request("GET", "/submissions?"+name+"="+value, "")), jsonError(400, "query parameter "+name+" must be a whole number")}
	},
	func(rng *rand.Rand) malformed {
		if rng.IntN(2) == 0 {
			id := pick(rng, []string{"0", "-5", "abc", "99999999999999999999", "%00", "%ff", "1.5", "4242", "%e6%97%a5", strings.Repeat("1", 2000)})
			return malformed{"bad path id", sendAll(request("GET", "/submissions/"+id, "")), jsonError(404, "no submission has id")}
		}
		id := pick(rng, []string{"1", "not-a-uuid", "%00", "%ff", "6f1e3f7a-5a43-4a39-9a0e-3a2f0f1a9b7", "{6f1e3f7a-5a43-4a39-9a0e-3a2f0f1a9b77}", "6f1e3f7a-5a43-4a39-9a0e-3a2f0f1a9b77"})
		return malformed{"bad path id", sendAll(request("GET", "/snippets/"+id, "")), jsonError(404, "no snippet has id")}
	},
	func(rng *rand.Rand) malformed {
		// Over MaxHeaderBytes: net/http refuses before any handler.
		if rng.IntN(2) == 0 {
			big := strings.Repeat("a", MaxHeaderBytes+4096+rng.IntN(1<<20))
			return malformed{"header flood", sendAll(request("GET", "/healthz", "", "X-Big", big)), byNetHTTP(431, "Request Header Fields Too Large")}
		}
		var hs []string
		for i := range 3000 + rng.IntN(3000) {
			hs = append(hs, fmt.Sprintf("X-Flood-%d", i), "0123456789abcdef0123")
		}
		return malformed{"header flood", sendAll(request("POST", "/execute", goodBody, hs...)), byNetHTTP(431, "Request Header Fields Too Large")}
	},
	func(rng *rand.Rand) malformed {
		// Many headers, but within the limit: the API answers as without them.
		var hs []string
		for i := range 500 + rng.IntN(1500) {
			hs = append(hs, fmt.Sprintf("X-Flood-%d", i), "v")
		}
		hs = append(hs, "X-Request-Id", "<script>alert(1)</script>")
		return malformed{"many headers", sendAll(request("GET", "/submissions/abc", "", hs...)), jsonError(404, `no submission has id "abc"`)}
	},
	func(rng *rand.Rand) malformed {
		c := pick(rng, []struct{ raw, mention string }{
			// net/http says what is wrong only for a missing Host.
			{"GARBAGE\r\n\r\n", "400 Bad Request"},
			{"GET /healthz HTTP/1.1\r\n\r\n", "400 Bad Request: missing required Host header"},
			{"POST /execute HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", "400 Bad Request"},
			{"POST /execute HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", "400 Bad Request"},
			{"POST /execute HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}", "400 Bad Request"},
			{"GET /healthz HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\n", "400 Bad Request"},
			{"GET /healthz HTTP/1.1\r\nHost: x\r\nBad Name: v\r\n\r\n", "400 Bad Request"},
			{"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Nul: a\x00b\r\n\r\n", "400 Bad Request"},
			{"GET /healthz HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", "400 Bad Request"},
			{"GET /heal\x00thz HTTP/1.1\r\nHost: x\r\n\r\n", "400 Bad Request"},
		})
		return malformed{"malformed HTTP", sendAll(c.raw), byNetHTTP(400, c.mention)}
	},
	func(rng *rand.Rand) malformed {
		// net/http's two answers outside 4xx: a transfer coding it does not implement, and
		// an HTTP version it does not speak.
		if rng.IntN(2) == 0 {
			return malformed{"unknown HTTP version", sendAll("GET /healthz HTTP/" + pick(rng, []string{"9.9", "2.0", "3.0", "0.9"}) + "\r\nHost: x\r\n\r\n"),
				byNetHTTP(505, "505 HTTP Version Not Supported")}
		}
		return malformed{"unknown transfer coding", sendAll("POST /execute HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: " +
			pick(rng, []string{"gzip", "identity", "br, chunked"}) + "\r\n\r\n"), byNetHTTP(501, "Unsupported transfer encoding")}
	},
	func(rng *rand.Rand) malformed {
		size := pick(rng, []string{"zz", "-1", "ffffffffffffffffffff", "1;\x00"})
		return malformed{"bad chunked body", sendAll("POST /execute HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + size + "\r\n{}\r\n0\r\n\r\n"),
			jsonError(400, "reading the request body")}
	},
	func(rng *rand.Rand) malformed {
		// The body ends (the client shuts its side) before its Content-Length.
		body := goodBody[:rng.IntN(len(goodBody)-1)+1]
		return malformed{"body cut short", func(c net.Conn) error {
			if _, err := fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", pick(rng, programPaths), len(goodBody), body); err != nil {
				return err
			}
			return c.(*net.TCPConn).CloseWrite()
		}, jsonError(400, "reading the request body: unexpected EOF")}
	},
}

// Timeouts of the server in TestMalformedRequests: the service's are 10 s and 30 s.
const (
	testReadHeaderTimeout = time.Second
	testReadTimeout       = 2 * time.Second
)

// slowKinds hold their connection past a read timeout.
var slowKinds = []func(*rand.Rand) malformed{
	func(rng *rand.Rand) malformed {
		// Headers that never end: closed after ReadHeaderTimeout, with no answer
		// (net/http's way; nothing has reached the API).
		partial := pick(rng, []string{"", "POST /execute HTTP/1.1\r\n", "POST /execute HTTP/1.1\r\nHost: x\r\nContent-Length: 5", "P"})
		want := closedWithoutAnswer
		if partial == "P" {
			// Except that a request line cut short is malformed rather than slow.
			want = byNetHTTP(400, "400 Bad Request")
		}
		return malformed{"slow headers", func(c net.Conn) error {
			_, err := io.WriteString(c, partial)
			return err
		}, want}
	},
	func(rng *rand.Rand) malformed {
		// A body trickling in: what has not arrived by ReadTimeout never will.
		path := pick(rng, programPaths)
		return malformed{"slow body", func(c net.Conn) error {
			if _, err := fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", path, len(goodBody)); err != nil {
				return err
			}
			for i := range goodBody[:len(goodBody)-1] {
				if _, err := io.WriteString(c, goodBody[i:i+1]); err != nil {
					return nil // the server gave up on it: read its answer
				}
				time.Sleep(100 * time.Millisecond)
				if time.Duration(i)*100*time.Millisecond > testReadTimeout+time.Second {
					break
				}
			}
			return nil
		}, jsonError(408, "the request body did not arrive within the time allowed")}
	},
}

func pick[T any](rng *rand.Rand, choices []T) T { return choices[rng.IntN(len(choices))] }

// TestMalformedRequests sends 1,000 malformed requests over real TCP connections, 16 at
// a time, to the service's HTTP server (its timeouts shortened): each gets its 4xx and a
// JSON error, or where net/http answers by itself (before any handler), exactly its
// answer: 431 for headers over the limit, 400 or 501 for broken HTTP, and a closed
// connection for headers that never end. Afterwards the service is healthy, runs a
// program, and its heap is back within 16 MiB of where it was.
func TestMalformedRequests(t *testing.T) {
	const total, slow, workers = 1000, 40, 16
	f := newFixture(t, nil)
	addr := f.listen(t, func(s *http.Server) {
		s.ReadHeaderTimeout = testReadHeaderTimeout
		s.ReadTimeout = testReadTimeout
	})
	// Each request is made when it is sent, from a seed of its own, so that the heap
	// measured before holds none of them.
	var reqs []func() malformed
	for i := range total {
		kinds, k := malformedKinds, i-slow
		if i < slow {
			kinds, k = slowKinds, i
		}
		reqs = append(reqs, func() malformed { return kinds[k%len(kinds)](rand.New(rand.NewPCG(14, uint64(i)))) })
	}

	before := heapAfterGC()
	var peak atomic.Uint64
	stopSampling := sampleHeap(&peak)

	results := make(chan malformedResult, total)
	failures := &failureLog{t: t, seen: map[string]int{}}
	work := make(chan func() malformed)
	var wg sync.WaitGroup
	// The slow ones wait out their timeouts side by side, apart from the workers.
	for _, m := range reqs[:slow] {
		wg.Go(func() { results <- runMalformed(addr, m(), failures) })
	}
	for range workers {
		wg.Go(func() {
			for m := range work {
				results <- runMalformed(addr, m(), failures)
			}
		})
	}
	start := time.Now()
	for _, m := range reqs[slow:] {
		work <- m
	}
	close(work)
	wg.Wait()
	close(results)
	elapsed := time.Since(start)
	stopSampling()

	tally := map[string][2]int{}
	n := 0
	for r := range results {
		c := tally[r.kind]
		c[0]++
		if r.ok {
			c[1]++
		}
		tally[r.kind] = c
		n++
	}
	kinds := slices.Sorted(func(yield func(string) bool) {
		for k := range tally {
			if !yield(k) {
				return
			}
		}
	})
	var table strings.Builder
	for _, k := range kinds {
		fmt.Fprintf(&table, "  %-24s %4d sent, %4d answered as expected\n", k, tally[k][0], tally[k][1])
	}
	t.Logf("%d malformed requests in %s:\n%s", n, elapsed.Round(time.Millisecond), table.String())
	if n != total {
		t.Errorf("%d requests sent, want %d", n, total)
	}

	// Still healthy, and still running programs.
	for _, m := range []malformed{
		{"health", sendAll(request("GET", "/healthz", "")), outcome{status: 200}},
		{"readiness", sendAll(request("GET", "/readyz", "")), outcome{status: 200}},
		{"a run", post("/execute", `{"code": "`+helloWorld+`"}`), outcome{status: 200}},
	} {
		if a := exchange(addr, 10*time.Second, m.send); a.err != nil || a.resp.StatusCode != m.want.status {
			t.Errorf("%s after the flood: %v", m.kind, a)
		}
	}
	if calls := f.runner.Calls(); len(calls) != 1 {
		t.Errorf("%d runs started; only the last, good request should have run", len(calls))
	}

	after := heapAfterGC()
	const bound = 16 << 20
	t.Logf("heap in use: %.1f MiB before, %.1f MiB after (peak while sending %.1f MiB, test client's bodies included)",
		mib(before), mib(after), mib(peak.Load()))
	if after > before+bound {
		t.Errorf("heap grew from %.1f MiB to %.1f MiB, over the bound of %d MiB", mib(before), mib(after), bound>>20)
	}
}

type malformedResult struct {
	kind string
	ok   bool
}

// runMalformed sends m and checks its answer.
func runMalformed(addr string, m malformed, failures *failureLog) malformedResult {
	a := exchange(addr, 20*time.Second, m.send)
	if err := m.want.check(a); err != nil {
		failures.add(m.kind, err)
		return malformedResult{kind: m.kind}
	}
	return malformedResult{kind: m.kind, ok: true}
}

// failureLog reports the first few failures of each kind: enough to see what is wrong.
type failureLog struct {
	t    *testing.T
	mu   sync.Mutex
	seen map[string]int
}

func (l *failureLog) add(kind string, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.seen[kind]++; l.seen[kind] <= 3 {
		l.t.Errorf("%s: %v", kind, err)
	}
}

func heapAfterGC() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// sampleHeap records the largest heap seen until the returned function is called.
func sampleHeap(peak *atomic.Uint64) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > peak.Load() {
				peak.Store(ms.HeapAlloc)
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }
