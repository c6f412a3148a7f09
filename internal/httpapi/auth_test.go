package httpapi

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coderun-dev/coderun/internal/auth"
)

// testKey is a key and its entry for the key file.
type testKey struct {
	key   string
	entry auth.Entry
}

func newTestKey(t *testing.T, id string, limits auth.Limits) testKey {
	t.Helper()
	key, e, err := auth.NewKey(id, limits)
	if err != nil {
		t.Fatal(err)
	}
	return testKey{key, e}
}

func keyFile(t *testing.T, keys ...testKey) []byte {
	t.Helper()
	out := []byte("keys:\n")
	for _, k := range keys {
		y, err := auth.EntryYAML(k.entry)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, y...)
	}
	return out
}

// defaultLimits are generous: tests that hit a limit set it on the key.
var defaultLimits = auth.Limits{Rate: 100, Burst: 100, MaxInFlight: 10}

// newAuthFixture returns the API with API keys on, holding keys.
func newAuthFixture(t *testing.T, change func(*fakeRunner, *Options), keys ...testKey) *fixture {
	t.Helper()
	ring, err := auth.NewKeyring(defaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	if err := ring.Load(keyFile(t, keys...)); err != nil {
		t.Fatal(err)
	}
	return newFixture(t, func(r *fakeRunner, o *Options) {
		o.Keys = ring
		if change != nil {
			change(r, o)
		}
	})
}

// doFrom serves a request from the peer remote (host:port); header holds name, value pairs.
func (f *fixture) doFrom(t *testing.T, remote, method, path, body string, header ...string) answer {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.RemoteAddr = remote
	return f.serve(req, body != "", header...)
}

func bearer(k testKey) []string { return []string{"Authorization", "Bearer " + k.key} }

var hello = mustJSON(map[string]string{"code": helloWorld})

func TestAuthRefusesWithoutAValidKey(t *testing.T) {
	alice := newTestKey(t, "alice", auth.Limits{})
	f := newAuthFixture(t, nil, alice)
	cases := []struct {
		name, challenge, mention string
		header                   []string
	}{
		{"no key", "Bearer", "needs a key", nil},
		{"wrong key", `Bearer error="invalid_token"`, "not valid", []string{"Authorization", "Bearer crk_not-a-key"}},
		{"wrong token", `Bearer error="invalid_token"`, "not valid", []string{"X-Auth-Token", alice.key + "x"}},
		{"basic", `Bearer error="invalid_request"`, "malformed", []string{"Authorization", "Basic YWxpY2U6c2VjcmV0"}},
	}
	routes := [][2]string{{"POST", "/execute"}, {"POST", "/submit"}, {"GET", "/submissions"}, {"GET", "/submissions/1"}, {"POST", "/snippets"}, {"GET", "/snippets/6f1e3f7a-5a43-4a39-9a0e-3a2f0f1a9b77"}}
	for _, tc := range cases {
		for _, rt := range routes {
			a := f.do(t, rt[0], rt[1], hello, tc.header...)
			if a.status != http.StatusUnauthorized || a.header.Get("WWW-Authenticate") != tc.challenge || !strings.Contains(a.errorMessage(t), tc.mention) {
				t.Errorf("%s %s with %s: %d %q %s; want 401, challenge %q and an error mentioning %q",
					rt[0], rt[1], tc.name, a.status, a.header.Get("WWW-Authenticate"), a.body, tc.challenge, tc.mention)
			}
		}
	}
	if calls := f.runner.Calls(); len(calls) != 0 {
		t.Errorf("unauthenticated requests started %d runs", len(calls))
	}
	// The page, the probes and the metrics need no key.
	for _, path := range []string{"/", "/s/6f1e3f7a-5a43-4a39-9a0e-3a2f0f1a9b77", "/assets/index-abc123.js", "/healthz", "/readyz", "/metrics"} {
		if a := f.do(t, "GET", path, ""); a.status != http.StatusOK {
			t.Errorf("GET %s without a key: %d %s", path, a.status, a.body)
		}
	}
	// Both headers work; the run is labelled with the key's id.
	for _, h := range [][]string{bearer(alice), {"X-Auth-Token", alice.key}} {
		if a := f.do(t, "POST", "/execute", hello, h...); a.status != http.StatusOK {
			t.Errorf("/execute with %s: %d %s", h[0], a.status, a.body)
		}
	}
	for _, c := range f.runner.Calls() {
		if c.keyID != "alice" {
			t.Errorf("a run of alice's is labelled %q", c.keyID)
		}
	}
	m := f.metrics(t)
	for _, want := range []string{
		`coderun_front_auth_refusals_total{key_id="none",reason="unauthenticated"} 6`,
		`coderun_front_auth_refusals_total{key_id="unknown",reason="unauthenticated"} 18`,
		`coderun_front_api_keys 1`,
	} {
		if !strings.Contains(m, want+"\n") {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(m, "crk_") {
		t.Error("/metrics shows a key")
	}
}

// TestAuthLogsKeyID: the request log line names the key id (never the key).
func TestAuthLogsKeyID(t *testing.T) {
	alice := newTestKey(t, "alice", auth.Limits{})
	var logs strings.Builder
	f := newAuthFixture(t, func(_ *fakeRunner, o *Options) { o.Logger = slog.New(slog.NewJSONHandler(&logs, nil)) }, alice)
	if a := f.do(t, "POST", "/execute", hello, bearer(alice)...); a.status != http.StatusOK {
		t.Fatalf("/execute: %d %s", a.status, a.body)
	}
	if !strings.Contains(logs.String(), `"key_id":"alice"`) || strings.Contains(logs.String(), alice.key) {
		t.Errorf("the request log does not name the key id, or shows the key:\n%s", logs.String())
	}
}

func TestAuthRateLimit(t *testing.T) {
	// One request a minute, two at once.
	alice := newTestKey(t, "alice", auth.Limits{Rate: 1.0 / 60, Burst: 2})
	bob := newTestKey(t, "bob", auth.Limits{})
	f := newAuthFixture(t, nil, alice, bob)
	for i := range 2 {
		if a := f.do(t, "GET", "/submissions", "", bearer(alice)...); a.status != http.StatusOK {
			t.Fatalf("request %d of alice's burst: %d %s", i+1, a.status, a.body)
		}
	}
	a := f.do(t, "POST", "/execute", hello, bearer(alice)...)
	if a.status != http.StatusTooManyRequests {
		t.Fatalf("alice's third request: %d %s, want 429", a.status, a.body)
	}
	// A token comes back a minute after the first: Retry-After is from the bucket.
	if secs, err := strconv.Atoi(a.header.Get("Retry-After")); err != nil || secs < 58 || secs > 60 {
		t.Errorf("Retry-After %q, want about 60", a.header.Get("Retry-After"))
	}
	if got := a.json(t); got["limit"] != "rate" || !strings.Contains(got["error"].(string), `key "alice" is over its rate`) {
		t.Errorf("429 answer %s: want limit rate and the key named", a.body)
	}
	// Others are not limited by alice.
	if a := f.do(t, "POST", "/execute", hello, bearer(bob)...); a.status != http.StatusOK {
		t.Errorf("bob after alice's refusal: %d %s", a.status, a.body)
	}
	if !strings.Contains(f.metrics(t), `coderun_front_auth_refusals_total{key_id="alice",reason="rate"} 1`+"\n") {
		t.Error("/metrics does not count alice's refusal")
	}
	if len(f.runner.Calls()) != 1 {
		t.Errorf("%d runs started; want only bob's", len(f.runner.Calls()))
	}
}

func TestAuthRunsInFlight(t *testing.T) {
	alice := newTestKey(t, "alice", auth.Limits{MaxInFlight: 1})
	f := newAuthFixture(t, func(r *fakeRunner, _ *Options) { r.waiting = make(chan struct{}, 1) }, alice)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan answer, 1)
	go func() {
		done <- f.doCtx(ctx, t, "POST", "/execute", mustJSON(map[string]string{"code": hang}), bearer(alice)...)
	}()
	<-f.runner.waiting

	a := f.do(t, "POST", "/submit", hello, bearer(alice)...)
	if a.status != http.StatusTooManyRequests || a.json(t)["limit"] != "in_flight" || !strings.Contains(a.errorMessage(t), "1 runs in flight") {
		t.Errorf("a second run while one is in flight: %d %s, want 429 for in_flight", a.status, a.body)
	}
	if secs, err := strconv.Atoi(a.header.Get("Retry-After")); err != nil || secs < 1 || secs > 2 {
		t.Errorf("Retry-After %q, want 1 or 2 (the estimate of a run, 2 s, from its start)", a.header.Get("Retry-After"))
	}
	// Reads are not runs: they go through while the run is in flight.
	if a := f.do(t, "GET", "/submissions", "", bearer(alice)...); a.status != http.StatusOK {
		t.Errorf("a read while a run is in flight: %d %s", a.status, a.body)
	}
	cancel()
	<-done
	if a := f.do(t, "POST", "/execute", hello, bearer(alice)...); a.status != http.StatusOK {
		t.Errorf("a run after the first ended: %d %s", a.status, a.body)
	}
	if !strings.Contains(f.metrics(t), `coderun_front_auth_refusals_total{key_id="alice",reason="in_flight"} 1`+"\n") {
		t.Error("/metrics does not count the in-flight refusal")
	}
}

func TestAuthAnonymousPerAddress(t *testing.T) {
	anon, err := auth.NewAddressQuotas(auth.Limits{Rate: 1.0 / 60, Burst: 1, MaxInFlight: 1}, 0)
	if err != nil {
		t.Fatal(err)
	}
	alice := newTestKey(t, "alice", auth.Limits{})
	f := newAuthFixture(t, func(_ *fakeRunner, o *Options) { o.Anonymous = anon }, alice)

	if a := f.doFrom(t, "192.0.2.1:4000", "POST", "/execute", hello); a.status != http.StatusOK {
		t.Fatalf("anonymous run: %d %s", a.status, a.body)
	}
	if c := f.runner.Calls(); c[0].keyID != auth.Anonymous {
		t.Errorf("an anonymous run is labelled %q", c[0].keyID)
	}
	a := f.doFrom(t, "192.0.2.1:4001", "POST", "/execute", hello)
	if a.status != http.StatusTooManyRequests || a.header.Get("Retry-After") == "" || !strings.Contains(a.errorMessage(t), "anonymous access from this address") {
		t.Errorf("a second anonymous request from the same address: %d %s", a.status, a.body)
	}
	// X-Forwarded-For from a peer that is not a trusted proxy changes nothing.
	if a := f.doFrom(t, "192.0.2.1:4002", "POST", "/execute", hello, "X-Forwarded-For", "198.51.100.7"); a.status != http.StatusTooManyRequests {
		t.Errorf("X-Forwarded-For from an untrusted peer escaped the limit: %d", a.status)
	}
	if a := f.doFrom(t, "192.0.2.2:4000", "POST", "/execute", hello); a.status != http.StatusOK {
		t.Errorf("another address: %d %s", a.status, a.body)
	}
	// A wrong key is not downgraded to anonymous.
	if a := f.doFrom(t, "192.0.2.3:4000", "POST", "/execute", hello, "X-Auth-Token", "nope"); a.status != http.StatusUnauthorized {
		t.Errorf("a wrong key with anonymous access on: %d, want 401", a.status)
	}
	if a := f.doFrom(t, "192.0.2.1:4003", "POST", "/execute", hello, bearer(alice)...); a.status != http.StatusOK {
		t.Errorf("a key from a limited address: %d %s", a.status, a.body)
	}
	if !strings.Contains(f.metrics(t), `coderun_front_auth_refusals_total{key_id="anonymous",reason="rate"} 2`+"\n") {
		t.Error("/metrics does not count the anonymous refusals")
	}
}

func TestAuthTrustedProxies(t *testing.T) {
	anon, _ := auth.NewAddressQuotas(auth.Limits{Rate: 1.0 / 60, Burst: 1, MaxInFlight: 1}, 0)
	f := newAuthFixture(t, func(_ *fakeRunner, o *Options) {
		o.Anonymous = anon
		o.TrustedProxies = []string{"10.0.0.0/8"}
	})
	proxy := "10.1.2.3:5000"
	if a := f.doFrom(t, proxy, "GET", "/submissions", "", "X-Forwarded-For", "198.51.100.7"); a.status != http.StatusOK {
		t.Fatalf("first from 198.51.100.7: %d", a.status)
	}
	if a := f.doFrom(t, proxy, "GET", "/submissions", "", "X-Forwarded-For", "198.51.100.7"); a.status != http.StatusTooManyRequests {
		t.Errorf("second from 198.51.100.7 through the proxy: %d, want 429", a.status)
	}
	// The proxy's other clients have their own quota, and so does the proxy itself.
	if a := f.doFrom(t, proxy, "GET", "/submissions", "", "X-Forwarded-For", "198.51.100.8"); a.status != http.StatusOK {
		t.Errorf("198.51.100.8 through the proxy: %d", a.status)
	}
	// A client that sends its own X-Forwarded-For through the proxy gets the address the
	// proxy saw appended; the right-most untrusted address is the client.
	if a := f.doFrom(t, proxy, "GET", "/submissions", "", "X-Forwarded-For", "203.0.113.9, 198.51.100.7"); a.status != http.StatusTooManyRequests {
		t.Errorf("a forged left-most X-Forwarded-For escaped the limit: %d", a.status)
	}

	if _, err := New(Options{Runs: &fakeRunner{}, Store: f.store, Config: f.srv.opts.Config, TrustedProxies: []string{"10.0.0.0/33"}}); err == nil {
		t.Error("New took a trusted proxy that is not an address or range")
	}
}

// TestAuthSubmissionsScoped: a key lists and reads only its own submissions; another
// key's id answers 404 like one that does not exist.
func TestAuthSubmissionsScoped(t *testing.T) {
	alice := newTestKey(t, "alice", auth.Limits{})
	bob := newTestKey(t, "bob", auth.Limits{})
	f := newAuthFixture(t, nil, alice, bob)
	a := f.do(t, "POST", "/submit", hello, bearer(alice)...)
	id, _ := a.json(t)["submission_id"].(float64)
	if a.status != http.StatusOK || id < 1 {
		t.Fatalf("alice's /submit: %d %s", a.status, a.body)
	}
	path := fmt.Sprintf("/submissions/%d", int(id))
	if a := f.do(t, "GET", path, "", bearer(alice)...); a.status != http.StatusOK {
		t.Errorf("alice reading her submission: %d %s", a.status, a.body)
	}
	mine, theirs := f.do(t, "GET", path, "", bearer(bob)...), f.do(t, "GET", "/submissions/4242", "", bearer(bob)...)
	if mine.status != http.StatusNotFound || strings.Replace(mine.errorMessage(t), strconv.Itoa(int(id)), "4242", 1) != theirs.errorMessage(t) {
		t.Errorf("bob reading alice's submission: %d %s; want the 404 of a missing one (%s)", mine.status, mine.body, theirs.body)
	}
	for _, tc := range []struct {
		key  testKey
		want float64
	}{{alice, 1}, {bob, 0}} {
		got := f.do(t, "GET", "/submissions", "", bearer(tc.key)...).json(t)
		if got["total"] != tc.want || len(got["submissions"].([]any)) != int(tc.want) {
			t.Errorf("%s lists %v of %v, want %v", tc.key.entry.ID, len(got["submissions"].([]any)), got["total"], tc.want)
		}
	}
}

// TestAuthKeyRotation: the service re-reads the key file while it serves (as the kubelet
// updates a mounted Secret), so a key added works and a key removed is refused, with no
// restart.
func TestAuthKeyRotation(t *testing.T) {
	alice := newTestKey(t, "alice", auth.Limits{})
	bob := newTestKey(t, "bob", auth.Limits{})
	path := filepath.Join(t.TempDir(), "keys.yaml")
	write := func(content []byte) {
		tmp := path + ".new"
		if err := os.WriteFile(tmp, content, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
	write(keyFile(t, alice))
	ring, _ := auth.NewKeyring(defaultLimits)
	if err := ring.LoadFile(path); err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, func(_ *fakeRunner, o *Options) { o.Keys = ring })
	loaded := make(chan error, 10)
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		ring.Watch(ctx, path, 20*time.Millisecond, slog.New(slog.DiscardHandler), func(err error) {
			f.srv.KeysReloaded(err)
			loaded <- err
		})
	}()
	t.Cleanup(func() { cancel(); <-stopped })

	status := func(k testKey) int { return f.do(t, "GET", "/submissions", "", bearer(k)...).status }
	if status(alice) != http.StatusOK || status(bob) != http.StatusUnauthorized {
		t.Fatalf("before: alice %d, bob %d", status(alice), status(bob))
	}
	write(keyFile(t, bob))
	select {
	case err := <-loaded:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the changed key file was not loaded")
	}
	if status(alice) != http.StatusUnauthorized || status(bob) != http.StatusOK {
		t.Errorf("after the rotation: alice %d (want 401), bob %d (want 200)", status(alice), status(bob))
	}
	if !strings.Contains(f.metrics(t), `coderun_front_api_key_reloads_total{result="loaded"} 1`+"\n") {
		t.Error("/metrics does not count the reload")
	}
}
