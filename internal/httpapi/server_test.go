package httpapi

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	execv1alpha1 "github.com/coderun-dev/coderun/api/v1alpha1"
	"github.com/coderun-dev/coderun/internal/config"
	"github.com/coderun-dev/coderun/internal/runs"
	"github.com/coderun-dev/coderun/internal/store"
	"github.com/coderun-dev/coderun/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// Programs the fake operator knows, with what the real runner reports for them.
const (
	helloWorld   = "print('Hello, World!')"
	syntaxError  = "print('Hello, World!'"
	busyLoop     = "while True: pass"
	hang         = "import time; time.sleep(3600)  # the operator never reports"
	neverRan     = "# rejected by the operator"
	syntaxOutput = "  File \"/coderun/input/main.py\", line 1\n    print('Hello, World!'\n         ^\nSyntaxError: '(' was never closed\n"
)

func playOperator(run *execv1alpha1.CodeRun) testenv.Behaviour {
	switch run.Spec.Source {
	case helloWorld:
		return testenv.Behaviour{Result: testenv.Completed("Hello, World!\n"), Delay: 50 * time.Millisecond}
	case syntaxError:
		return testenv.Behaviour{Result: testenv.Failed(execv1alpha1.ReasonNonZeroExit, ptr.To[int32](1), syntaxOutput, "")}
	case busyLoop:
		r := testenv.Failed(execv1alpha1.ReasonTimeLimitExceeded, ptr.To[int32](137), "", "the program ran longer than its 1s timeout and was killed")
		r.Signal = "SIGKILL"
		return testenv.Behaviour{Result: r}
	case neverRan:
		return testenv.Behaviour{Result: testenv.Failed(execv1alpha1.ReasonRejected, nil, "", "timeoutSeconds 90 is above the maximum of 60")}
	case hang:
		return testenv.Behaviour{}
	default:
		return testenv.Behaviour{Result: testenv.Completed(run.Spec.Stdin)}
	}
}

var testPage = fstest.MapFS{
	"index.html":              {Data: []byte("<!doctype html><title>coderun</title><script src=\"/assets/index-abc123.js\"></script>")},
	"assets/index-abc123.js":  {Data: []byte("console.log('coderun')")},
	"favicon.svg":             {Data: []byte("<svg xmlns=\"http://www.w3.org/2000/svg\"/>")},
	"assets/vendor-def456.js": {Data: bytes.Repeat([]byte("export const editor = 'codemirror';\n"), 200)},
}

type fixture struct {
	srv       *Server
	url       string
	namespace string
	store     *store.Store
	k8s       client.Client
}

// newFixture serves the API over real HTTP, backed by a SQLite file and by a runs client
// against envtest, whose CodeRuns a fake operator finishes.
func newFixture(t *testing.T, change func(*Options)) *fixture {
	t.Helper()
	cfg, k8s := testenv.Start(t)
	ns := testenv.Namespace(t)
	testenv.RunOperator(t, ns, playOperator)

	ctx, cancel := context.WithCancel(context.Background())
	rc, err := runs.New(ctx, cfg, testenv.Scheme, runs.Options{Namespace: ns, Retention: time.Hour, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- rc.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("runs client: %v", err)
		}
	})
	if !rc.WaitForSync(ctx) {
		t.Fatal("informer did not sync")
	}

	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "coderun.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })

	opts := Options{Runs: rc, Store: st, Config: config.Default(), Page: testPage, Logger: slog.New(slog.DiscardHandler)}
	if change != nil {
		change(&opts)
	}
	srv, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	return &fixture{srv: srv, url: hs.URL, namespace: ns, store: st, k8s: k8s}
}

type answer struct {
	status int
	header http.Header
	body   []byte
}

func (a answer) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(a.body, &m); err != nil {
		t.Fatalf("answer %d is not a JSON object: %v\n%s", a.status, err, a.body)
	}
	return m
}

func (f *fixture) do(t *testing.T, method, path, body string, header ...string) answer {
	t.Helper()
	return f.doCtx(context.Background(), t, method, path, body, header...)
}

func (f *fixture) doCtx(ctx context.Context, t *testing.T, method, path, body string, header ...string) answer {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, f.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: b}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// TestBadRequests sends every malformed request to every endpoint that takes a program,
// plus bad paths and parameters: each gets its 4xx and a JSON error, and no CodeRun.
func TestBadRequests(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.MaxBodyBytes = 200 << 10 })
	type bad struct {
		name, method, path, body string
		status                   int
		mention                  string
	}
	var cases []bad
	for _, path := range []string{"/execute", "/submit"} {
		for _, tc := range badRequests {
			cases = append(cases, bad{tc.name, http.MethodPost, path, tc.body, tc.status, tc.mention})
		}
		cases = append(cases, bad{"body over the limit", http.MethodPost, path, `{"code": "` + strings.Repeat("x", 200<<10) + `"}`, 413, "at most 204800 bytes"})
	}
	cases = append(cases,
		bad{"snippet without code", "POST", "/snippets", `{"stdin": "x"}`, 400, `"code" is required`},
		bad{"snippet not JSON", "POST", "/snippets", `code=x`, 400, "not valid JSON"},
		bad{"snippet unknown language", "POST", "/snippets", `{"code": "x", "language": "go"}`, 422, "unknown language"},
		bad{"snippet over the limit", "POST", "/snippets", strings.Repeat(" ", 201<<10), 413, "bytes"},
		bad{"page 0", "GET", "/submissions?page=0", "", 400, "page must be a whole number from 1"},
		bad{"page not a number", "GET", "/submissions?page=two", "", 400, "page"},
		bad{"per_page too large", "GET", "/submissions?per_page=1000", "", 400, "per_page must be a whole number from 1 to 100"},
		bad{"submission id not a number", "GET", "/submissions/abc", "", 404, "no submission"},
		bad{"submission missing", "GET", "/submissions/4242", "", 404, "no submission has id 4242"},
		bad{"snippet id not a UUID", "GET", "/snippets/1234", "", 404, "no snippet"},
		bad{"snippet missing", "GET", "/snippets/6f1e3f7a-5a43-4a39-9a0e-3a2f0f1a9b77", "", 404, "no snippet"},
		bad{"unknown route", "GET", "/api/v2/run", "", 404, "no such route: GET /api/v2/run"},
		bad{"unknown asset", "GET", "/assets/missing.js", "", 404, "no such asset"},
		bad{"wrong method", "GET", "/execute", "", 405, "method GET is not allowed"},
		bad{"wrong method on health", "DELETE", "/healthz", "", 405, "not allowed"},
	)
	for _, tc := range cases {
		t.Run(tc.path+" "+tc.name, func(t *testing.T) {
			a := f.do(t, tc.method, tc.path, tc.body)
			msg, _ := a.json(t)["error"].(string)
			if a.status != tc.status || !strings.Contains(msg, tc.mention) {
				t.Errorf("got %d %q, want %d mentioning %q", a.status, msg, tc.status, tc.mention)
			}
			if ct := a.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type %q", ct)
			}
		})
	}
	list := &execv1alpha1.CodeRunList{}
	if err := f.k8s.List(context.Background(), list, client.InNamespace(f.namespace)); err != nil || len(list.Items) != 0 {
		t.Errorf("bad requests created %d CodeRuns (err %v)", len(list.Items), err)
	}
}

func TestExecute(t *testing.T) {
	f := newFixture(t, nil)
	for _, tc := range []struct {
		name, body string
		want       map[string]any
	}{
		{"hello world", mustJSON(map[string]string{"code": helloWorld}), map[string]any{
			"output": "Hello, World!\n", "stdout": "Hello, World!\n", "stderr": "", "exit_code": 0.0,
			"reason": "Completed", "status": "Succeeded", "time": 0.039, "cpu_time": 0.016, "memory": 8240.0, "truncated": false, "message": "",
		}},
		{"syntax error", mustJSON(map[string]string{"code": syntaxError}), map[string]any{
			"output": syntaxOutput, "stderr": syntaxOutput, "exit_code": 1.0, "reason": "NonZeroExit", "status": "Failed",
		}},
		{"operator's timeout is a 200 with its reason", mustJSON(map[string]any{"code": busyLoop, "limits": map[string]any{"timeout_seconds": 1}}), map[string]any{
			"exit_code": 137.0, "signal": "SIGKILL", "reason": "TimeLimitExceeded", "status": "Failed",
			"message": "the program ran longer than its 1s timeout and was killed",
		}},
		{"never ran", mustJSON(map[string]string{"code": neverRan}), map[string]any{
			"exit_code": nil, "reason": "Rejected", "status": "Failed", "memory": 0.0, "time": 0.0,
		}},
		{"stdin and every limit", mustJSON(map[string]any{"code": "print(input())", "stdin": "42\n", "language": "python",
			"limits": map[string]any{"timeout_seconds": 5, "memory": "128Mi", "cpu": "500m"}}), map[string]any{
			"output": "42\n", "exit_code": 0.0,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := f.do(t, "POST", "/execute", tc.body)
			if a.status != http.StatusOK {
				t.Fatalf("status %d: %s", a.status, a.body)
			}
			got := a.json(t)
			for k, want := range tc.want {
				if v, ok := got[k]; !ok || v != want {
					t.Errorf("%s = %#v, want %#v", k, got[k], want)
				}
			}
			name, _ := got["name"].(string)
			if !strings.HasPrefix(name, runs.NamePrefix) {
				t.Errorf("name %q", name)
			}
			if _, ok := got["submission_id"]; ok {
				t.Error("/execute answered a submission_id")
			}
			// The CodeRun is there, as asked.
			run := &execv1alpha1.CodeRun{}
			if err := f.k8s.Get(context.Background(), client.ObjectKey{Namespace: f.namespace, Name: name}, run); err != nil {
				t.Fatalf("CodeRun %s: %v", name, err)
			}
			if run.Labels[runs.ManagedByLabel] != runs.ManagedBy {
				t.Errorf("labels %v", run.Labels)
			}
		})
	}
	// The stdin-and-limits CodeRun carries the limits asked for.
	list := &execv1alpha1.CodeRunList{}
	if err := f.k8s.List(context.Background(), list, client.InNamespace(f.namespace)); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, run := range list.Items {
		if run.Spec.Stdin == "42\n" {
			found = true
			if l := run.Spec.Limits; *l.TimeoutSeconds != 5 || l.Memory.String() != "128Mi" || l.CPU.String() != "500m" {
				t.Errorf("limits %+v", l)
			}
		}
	}
	if !found {
		t.Error("no CodeRun with the stdin sent")
	}
	metrics := f.do(t, "GET", "/metrics", "")
	for _, want := range []string{`coderun_front_runs_total{reason="Completed"} 2`, `coderun_front_runs_total{reason="Rejected"} 1`,
		`coderun_front_http_requests_total{code="200",method="POST",route="/execute"} 5`, "coderun_front_runs_in_flight 0", "go_goroutines"} {
		if !strings.Contains(string(metrics.body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

func TestSubmitAndList(t *testing.T) {
	f := newFixture(t, nil)
	good := f.do(t, "POST", "/submit", mustJSON(map[string]string{"code": helloWorld})).json(t)
	bad := f.do(t, "POST", "/submit", mustJSON(map[string]string{"code": syntaxError})).json(t)
	rejected := f.do(t, "POST", "/submit", mustJSON(map[string]string{"code": neverRan})).json(t)
	second := f.do(t, "POST", "/submit", mustJSON(map[string]string{"code": "print(input())", "stdin": "second"})).json(t)

	if good["submission_id"] != 1.0 || second["submission_id"] != 2.0 {
		t.Errorf("submission ids %v and %v, want 1 and 2", good["submission_id"], second["submission_id"])
	}
	if bad["submission_id"] != -1.0 || bad["exit_code"] != 1.0 || !strings.Contains(bad["output"].(string), "SyntaxError") {
		t.Errorf("a failing submit answered %v", bad)
	}
	if rejected["submission_id"] != -1.0 || rejected["exit_code"] != nil {
		t.Errorf("a submit that never ran answered %v", rejected)
	}

	list := f.do(t, "GET", "/submissions", "")
	if list.status != 200 {
		t.Fatalf("list: %d %s", list.status, list.body)
	}
	var page struct {
		Submissions []submissionJSON `json:"submissions"`
		Page        int              `json:"page"`
		PerPage     int              `json:"per_page"`
		Total       int              `json:"total"`
	}
	if err := json.Unmarshal(list.body, &page); err != nil {
		t.Fatal(err)
	}
	if page.Total != 2 || page.Page != 1 || page.PerPage != 20 || len(page.Submissions) != 2 || page.Submissions[0].ID != 2 || page.Submissions[1].ID != 1 {
		t.Fatalf("list = %+v, want 2 then 1", page)
	}
	first := page.Submissions[1]
	if first.Code != helloWorld || first.Output != "Hello, World!\n" || *first.ExitCode != 0 || first.Time != 0.039 ||
		first.Memory != 8240 || first.Reason != "Completed" || first.Name != good["name"] || first.Language != "python" ||
		time.Since(first.CreatedAt) > time.Minute {
		t.Errorf("saved submission %+v does not match the run %v", first, good)
	}
	if page.Submissions[0].Stdin != "second" {
		t.Errorf("stdin not saved: %+v", page.Submissions[0])
	}

	paged := f.do(t, "GET", "/submissions?page=2&per_page=1", "").json(t)
	subs := paged["submissions"].([]any)
	if paged["total"] != 2.0 || len(subs) != 1 || subs[0].(map[string]any)["id"] != 1.0 {
		t.Errorf("page 2 of 1: %v", paged)
	}
	empty := f.do(t, "GET", "/submissions?page=9", "").json(t)
	if s := empty["submissions"].([]any); len(s) != 0 {
		t.Errorf("page 9: %v", empty)
	}

	one := f.do(t, "GET", "/submissions/1", "")
	if one.status != 200 || one.json(t)["code"] != helloWorld || one.json(t)["created_at"] == "" {
		t.Errorf("GET /submissions/1: %d %s", one.status, one.body)
	}
}

func TestSnippetsAndPage(t *testing.T) {
	f := newFixture(t, nil)
	a := f.do(t, "POST", "/snippets", mustJSON(map[string]string{"code": "print(input())", "stdin": "hi", "language": "python"}))
	if a.status != http.StatusCreated {
		t.Fatalf("POST /snippets: %d %s", a.status, a.body)
	}
	created := a.json(t)
	id, _ := created["id"].(string)
	if !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(id) || created["url"] != "/s/"+id {
		t.Fatalf("created %v: want a random UUID and its /s/ link", created)
	}
	got := f.do(t, "GET", "/snippets/"+id, "").json(t)
	if got["code"] != "print(input())" || got["stdin"] != "hi" || got["language"] != "python" || got["id"] != id || got["created_at"] == "" {
		t.Errorf("GET /snippets/%s = %v", id, got)
	}

	for _, path := range []string{"/", "/s/" + id} {
		p := f.do(t, "GET", path, "")
		if p.status != 200 || !bytes.Equal(p.body, testPage["index.html"].Data) || p.header.Get("Cache-Control") != "no-cache" ||
			!strings.HasPrefix(p.header.Get("Content-Type"), "text/html") {
			t.Errorf("GET %s: %d %v %s", path, p.status, p.header, p.body)
		}
		if csp := p.header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Errorf("GET %s: Content-Security-Policy %q, want the page's strict policy", path, csp)
		}
		if again := f.do(t, "GET", path, "", "If-None-Match", p.header.Get("ETag")); again.status != http.StatusNotModified {
			t.Errorf("GET %s with its ETag: %d, want 304", path, again.status)
		}
	}
	js := f.do(t, "GET", "/assets/index-abc123.js", "")
	if js.status != 200 || string(js.body) != "console.log('coderun')" || !strings.Contains(js.header.Get("Cache-Control"), "immutable") ||
		!strings.Contains(js.header.Get("Content-Type"), "javascript") {
		t.Errorf("asset: %d %v", js.status, js.header)
	}
	big := testPage["assets/vendor-def456.js"].Data
	gz := f.do(t, "GET", "/assets/vendor-def456.js", "", "Accept-Encoding", "gzip, deflate")
	if gz.status != 200 || gz.header.Get("Content-Encoding") != "gzip" || !strings.Contains(gz.header.Get("Content-Type"), "javascript") ||
		gz.header.Get("Vary") != "Accept-Encoding" || len(gz.body) >= len(big) {
		t.Errorf("asset with Accept-Encoding gzip: %d %v, %d bytes of %d", gz.status, gz.header, len(gz.body), len(big))
	} else if zr, err := gzip.NewReader(bytes.NewReader(gz.body)); err != nil {
		t.Errorf("gzipped asset: %v", err)
	} else if plain, err := io.ReadAll(zr); err != nil || !bytes.Equal(plain, big) {
		t.Errorf("gzipped asset does not decompress to the file (err %v)", err)
	}
	if raw := f.do(t, "GET", "/assets/vendor-def456.js", "", "Accept-Encoding", "identity"); raw.header.Get("Content-Encoding") != "" || !bytes.Equal(raw.body, big) {
		t.Errorf("asset without gzip: %v, %d bytes", raw.header, len(raw.body))
	}
	if icon := f.do(t, "GET", "/favicon.svg", ""); icon.status != 200 || !strings.HasPrefix(icon.header.Get("Content-Type"), "image/svg+xml") {
		t.Errorf("favicon: %d %v", icon.status, icon.header)
	}
	for _, path := range []string{"/assets/../index.html", "/assets/", "/index.html", "/assets/%2e%2e/index.html"} {
		if a := f.do(t, "GET", path, ""); a.status == 200 && !bytes.Equal(a.body, testPage["index.html"].Data) {
			t.Errorf("GET %s served %q", path, a.body)
		}
	}
}

func TestPageNotBuilt(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.Page = fstest.MapFS{".keep": {}} })
	a := f.do(t, "GET", "/", "")
	if a.status != http.StatusServiceUnavailable || !strings.Contains(string(a.body), "make web") {
		t.Errorf("GET / without a page: %d %s", a.status, a.body)
	}
	if a := f.do(t, "POST", "/execute", mustJSON(map[string]string{"code": helloWorld})); a.status != 200 {
		t.Errorf("the API must work without the page: %d %s", a.status, a.body)
	}
}

func TestHealthAndRequestID(t *testing.T) {
	f := newFixture(t, nil)
	if a := f.do(t, "GET", "/healthz", ""); a.status != 200 {
		t.Errorf("/healthz: %d %s", a.status, a.body)
	}
	ready := f.do(t, "GET", "/readyz", "")
	checks, _ := ready.json(t)["checks"].(map[string]any)
	if ready.status != 200 || checks["database"] != "ok" || checks["kubernetes"] != "ok" || checks["informer"] != "ok" {
		t.Errorf("/readyz: %d %s", ready.status, ready.body)
	}

	given := f.do(t, "GET", "/healthz", "", "X-Request-Id", "trace-42.a:b_c")
	if got := given.header.Get("X-Request-Id"); got != "trace-42.a:b_c" {
		t.Errorf("X-Request-Id %q, want the caller's", got)
	}
	// The id follows the run: its CodeRun carries it.
	run := f.do(t, "POST", "/execute", mustJSON(map[string]string{"code": helloWorld}), "X-Request-Id", "trace-43")
	var created execv1alpha1.CodeRun
	if err := f.k8s.Get(context.Background(), client.ObjectKey{Namespace: f.namespace, Name: run.json(t)["name"].(string)}, &created); err != nil {
		t.Fatalf("the run's CodeRun: %v", err)
	}
	if got := created.Annotations[runs.RequestIDAnnotation]; got != "trace-43" {
		t.Errorf("CodeRun annotation %s = %q, want the request's id", runs.RequestIDAnnotation, got)
	}
	for _, bad := range []string{"", "has space", strings.Repeat("x", 129), "<script>"} {
		got := f.do(t, "GET", "/healthz", "", "X-Request-Id", bad).header.Get("X-Request-Id")
		if len(got) != 36 || got == bad {
			t.Errorf("X-Request-Id %q answered %q, want a fresh UUID", bad, got)
		}
	}

	f.srv.SetDraining()
	if a := f.do(t, "GET", "/readyz", ""); a.status != http.StatusServiceUnavailable || !strings.Contains(string(a.body), "shutting down") {
		t.Errorf("/readyz while draining: %d %s", a.status, a.body)
	}
}

// TestReadyzWithoutDatabase closes the database under the service: /readyz must say so.
func TestReadyzWithoutDatabase(t *testing.T) {
	f := newFixture(t, nil)
	_ = f.store.Close()
	a := f.do(t, "GET", "/readyz", "")
	checks, _ := a.json(t)["checks"].(map[string]any)
	if a.status != http.StatusServiceUnavailable || checks["database"] == "ok" {
		t.Errorf("/readyz with a closed database: %d %s", a.status, a.body)
	}
	if a := f.do(t, "GET", "/submissions", ""); a.status != http.StatusServiceUnavailable || a.json(t)["error"] == nil {
		t.Errorf("/submissions with a closed database: %d %s", a.status, a.body)
	}
}

// waitGone waits until no CodeRun is left in the fixture's namespace.
func (f *fixture) waitGone(t *testing.T) {
	t.Helper()
	var left int
	err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
		list := &execv1alpha1.CodeRunList{}
		if err := f.k8s.List(ctx, list, client.InNamespace(f.namespace)); err != nil {
			return false, nil
		}
		left = 0
		for _, run := range list.Items {
			if run.DeletionTimestamp == nil {
				left++
			}
		}
		return left == 0, nil
	})
	if err != nil {
		t.Fatalf("%d CodeRuns were not deleted", left)
	}
}

func (f *fixture) waitInFlight(t *testing.T, n float64) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		return testutil.ToFloat64(f.srv.metrics.runsInFlight) == n, nil
	})
	if err != nil {
		t.Fatalf("in-flight runs stayed at %v, want %v", testutil.ToFloat64(f.srv.metrics.runsInFlight), n)
	}
}

// TestClientGoneDeletesRun closes the connection mid-run, as a closed browser tab does:
// the service deletes its CodeRun.
func TestClientGoneDeletesRun(t *testing.T) {
	f := newFixture(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		req, _ := http.NewRequestWithContext(ctx, "POST", f.url+"/execute", strings.NewReader(mustJSON(map[string]string{"code": hang})))
		if resp, err := http.DefaultClient.Do(req); err == nil {
			_ = resp.Body.Close()
			t.Errorf("the request finished with %d", resp.StatusCode)
		}
	}()
	f.waitInFlight(t, 1)
	time.Sleep(200 * time.Millisecond) // let the fake operator admit it
	cancel()
	<-done
	f.waitGone(t)
	f.waitInFlight(t, 0)
	if got := testutil.ToFloat64(f.srv.metrics.runs.WithLabelValues(outcomeCancelled)); got != 1 {
		t.Errorf("cancelled runs counted %v, want 1", got)
	}
}

// TestBoundExceeded: a run the operator never finishes gets a 504 with reason
// TimeLimitExceeded once its bound (queue wait + start timeout + timeout + slack) passes.
func TestBoundExceeded(t *testing.T) {
	f := newFixture(t, func(o *Options) {
		o.Config.StartTimeout.Duration = 0
		o.QueueWait = 300 * time.Millisecond
		o.Slack = 200 * time.Millisecond
	})
	start := time.Now()
	a := f.do(t, "POST", "/execute", mustJSON(map[string]any{"code": hang, "limits": map[string]any{"timeout_seconds": 1}}))
	elapsed := time.Since(start)
	if a.status != http.StatusGatewayTimeout {
		t.Fatalf("status %d %s, want 504", a.status, a.body)
	}
	got := a.json(t)
	if got["reason"] != "TimeLimitExceeded" || got["status"] != "Failed" || got["exit_code"] != nil ||
		!strings.Contains(got["error"].(string), "no result after 1.5s") || !strings.HasPrefix(got["name"].(string), runs.NamePrefix) {
		t.Errorf("504 answer %v", got)
	}
	if elapsed < 1500*time.Millisecond {
		t.Errorf("answered after %s, before the bound of 1.5s", elapsed)
	}
	t.Logf("answered %s after the request (bound 1.5s)", elapsed.Round(time.Millisecond))
	f.waitGone(t)
}

// TestBackPressure fills --max-pending with runs that do not finish: the next one gets
// 503 with Retry-After at once, and no CodeRun.
func TestBackPressure(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.MaxPending = 2 })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{}, 2)
	for range 2 {
		go func() {
			defer func() { done <- struct{}{} }()
			req, _ := http.NewRequestWithContext(ctx, "POST", f.url+"/execute", strings.NewReader(mustJSON(map[string]string{"code": hang})))
			if resp, err := http.DefaultClient.Do(req); err == nil {
				_ = resp.Body.Close()
			}
		}()
	}
	f.waitInFlight(t, 2)
	// The two runs above never finish, so getting any answer here means it was not queued.
	a := f.do(t, "POST", "/submit", mustJSON(map[string]string{"code": helloWorld}))
	if a.status != http.StatusServiceUnavailable || a.header.Get("Retry-After") == "" || !strings.Contains(a.json(t)["error"].(string), "too many runs") {
		t.Errorf("third run: %d %v %s, want 503 with Retry-After", a.status, a.header, a.body)
	}
	// Bad requests are still told what is wrong, not to come back later.
	if a := f.do(t, "POST", "/execute", `{}`); a.status != http.StatusBadRequest {
		t.Errorf("a bad request while full: %d", a.status)
	}
	cancel()
	<-done
	<-done
	f.waitGone(t)
	f.waitInFlight(t, 0)
	if a := f.do(t, "POST", "/execute", mustJSON(map[string]string{"code": helloWorld})); a.status != 200 {
		t.Errorf("after the slots freed: %d %s", a.status, a.body)
	}
}

// TestDeletedMidRun: someone deletes the CodeRun while the request waits; the answer is a
// SystemError result, not a hang.
func TestDeletedMidRun(t *testing.T) {
	f := newFixture(t, nil)
	go func() {
		_ = wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
			list := &execv1alpha1.CodeRunList{}
			if err := f.k8s.List(ctx, list, client.InNamespace(f.namespace)); err != nil || len(list.Items) == 0 {
				return false, nil
			}
			err := f.k8s.Delete(ctx, &list.Items[0])
			return err == nil || apierrors.IsNotFound(err), nil
		})
	}()
	a := f.do(t, "POST", "/execute", mustJSON(map[string]string{"code": hang}))
	got := a.json(t)
	if a.status != 200 || got["reason"] != "SystemError" || !strings.Contains(got["message"].(string), "deleted") {
		t.Errorf("got %d %v", a.status, got)
	}
}
