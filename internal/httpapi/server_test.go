package httpapi

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"

	execv1alpha1 "github.com/coderun-dev/coderun/api/v1alpha1"
	"github.com/coderun-dev/coderun/internal/config"
	"github.com/coderun-dev/coderun/internal/runs"
	"github.com/coderun-dev/coderun/internal/store"
	"github.com/coderun-dev/coderun/internal/testenv"
)

// The handlers run on a fake Runner: what a run answers is the runs client's and the
// operator's business (internal/runs and cmd/front test them against a real API server);
// here it is how the API turns each answer into HTTP.

// Programs the fake runner knows, with what the real runner reports for them.
const (
	helloWorld   = "print('Hello, World!')"
	syntaxError  = "print('Hello, World!'"
	busyLoop     = "while True: pass"
	neverRan     = "# rejected by the operator"
	syntaxOutput = "  File \"/coderun/input/main.py\", line 1\n    print('Hello, World!'\n         ^\nSyntaxError: '(' was never closed\n"

	// Programs for the runs client's other answers.
	hang         = "import time; time.sleep(3600)  # never finishes; waits for the request to end"
	held         = "import time; time.sleep(2)  # runs until the test releases it"
	outlivesRun  = "# still running when its bound expires"
	deletedRun   = "# deleted by someone else while the request waits"
	refusedRun   = "# the API server refuses the CodeRun"
	apiDown      = "# the API server does not answer"
	panicsRunner = "# the runner panics"
)

// fakeRunner plays internal/runs.Client: Run answers according to the program, at once,
// except hang, which waits until the request ends, and held, which waits for release.
type fakeRunner struct {
	pingErr  error
	unsynced bool
	// waiting gets a value each time a hang run starts waiting, so that tests know it is
	// in flight without polling.
	waiting chan struct{}
	// release ends held runs (they then print "released"); closing it ends them all.
	release chan struct{}

	mu    sync.Mutex
	calls []runCall
}

// runCall is what the API asked of the runner.
type runCall struct {
	spec      execv1alpha1.CodeRunSpec
	bound     time.Duration
	requestID string
	keyID     string // runs.KeyID: the API key the run is labelled with
}

func (f *fakeRunner) Ping(context.Context) error { return f.pingErr }
func (f *fakeRunner) Synced() bool               { return !f.unsynced }

func (f *fakeRunner) Calls() []runCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]runCall(nil), f.calls...)
}

func (f *fakeRunner) Run(ctx context.Context, spec execv1alpha1.CodeRunSpec, bound time.Duration) (*execv1alpha1.CodeRun, error) {
	f.mu.Lock()
	f.calls = append(f.calls, runCall{spec: spec, bound: bound, requestID: runs.RequestID(ctx), keyID: runs.KeyID(ctx)})
	name := fmt.Sprintf("%s%05d", runs.NamePrefix, len(f.calls))
	f.mu.Unlock()
	run := &execv1alpha1.CodeRun{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "coderun-runs"}, Spec: spec}
	finish := func(res *execv1alpha1.CodeRunResult) (*execv1alpha1.CodeRun, error) {
		run.Status.Result = res
		return run, nil
	}
	switch spec.Source {
	case helloWorld:
		return finish(testenv.Completed("Hello, World!\n"))
	case syntaxError:
		return finish(testenv.Failed(execv1alpha1.ReasonNonZeroExit, ptr.To[int32](1), syntaxOutput, ""))
	case busyLoop:
		r := testenv.Failed(execv1alpha1.ReasonTimeLimitExceeded, ptr.To[int32](137), "", "the program ran longer than its 1s timeout and was killed")
		r.Signal = "SIGKILL"
		return finish(r)
	case neverRan:
		return finish(testenv.Failed(execv1alpha1.ReasonRejected, nil, "", "timeoutSeconds 90 is above the maximum of 60"))
	case hang:
		if f.waiting != nil {
			f.waiting <- struct{}{}
		}
		<-ctx.Done()
		return run, ctx.Err()
	case held:
		if f.waiting != nil {
			f.waiting <- struct{}{}
		}
		select {
		case <-f.release:
			return finish(testenv.Completed("released\n"))
		case <-ctx.Done():
			return run, ctx.Err()
		}
	case outlivesRun:
		return run, fmt.Errorf("%w (%s)", runs.ErrBoundExceeded, bound)
	case deletedRun:
		return run, runs.ErrDeleted
	case refusedRun:
		return nil, apierrors.NewInvalid(schema.GroupKind{Group: "exec.coderun.dev", Kind: "CodeRun"}, "",
			field.ErrorList{field.Invalid(field.NewPath("spec", "source"), "", "source must not be empty")})
	case apiDown:
		return nil, errors.New("dial tcp 10.96.0.1:443: connect: connection refused")
	case panicsRunner:
		panic("the runner broke")
	default:
		return finish(testenv.Completed(spec.Stdin))
	}
}

var testPage = fstest.MapFS{
	"index.html":              {Data: []byte("<!doctype html><title>coderun</title><script src=\"/assets/index-abc123.js\"></script>")},
	"assets/index-abc123.js":  {Data: []byte("console.log('coderun')")},
	"favicon.svg":             {Data: []byte("<svg xmlns=\"http://www.w3.org/2000/svg\"/>")},
	"assets/vendor-def456.js": {Data: bytes.Repeat([]byte("export const editor = 'codemirror';\n"), 200)},
}

type fixture struct {
	srv    *Server
	runner *fakeRunner
	store  *store.Store
}

// newFixture returns the API on a fake runner and a SQLite file of its own. change may
// alter the runner and the options before the server is built.
func newFixture(t testing.TB, change func(*fakeRunner, *Options)) *fixture {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "coderun.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	runner := &fakeRunner{}
	opts := Options{Runs: runner, Store: st, Config: config.Default(), Page: testPage, Logger: slog.New(slog.DiscardHandler)}
	if change != nil {
		change(runner, &opts)
	}
	srv, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{srv: srv, runner: runner, store: st}
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

// errorMessage is the "error" of a JSON error answer.
func (a answer) errorMessage(t *testing.T) string {
	t.Helper()
	msg, _ := a.json(t)["error"].(string)
	return msg
}

func (f *fixture) do(t *testing.T, method, path, body string, header ...string) answer {
	t.Helper()
	return f.doCtx(context.Background(), t, method, path, body, header...)
}

// doCtx serves one request with ctx as its context; header holds name, value pairs.
func (f *fixture) doCtx(ctx context.Context, t *testing.T, method, path, body string, header ...string) answer {
	t.Helper()
	return f.serve(httptest.NewRequestWithContext(ctx, method, path, strings.NewReader(body)), body != "", header...)
}

// serve serves req, a JSON request when isJSON is set, with header's name, value pairs.
func (f *fixture) serve(req *http.Request, isJSON bool, header ...string) answer {
	if isJSON {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	f.srv.ServeHTTP(rec, req)
	return answer{status: rec.Code, header: rec.Result().Header, body: rec.Body.Bytes()}
}

// metrics returns what /metrics shows.
func (f *fixture) metrics(t *testing.T) string {
	t.Helper()
	a := f.do(t, "GET", "/metrics", "")
	if a.status != http.StatusOK {
		t.Fatalf("/metrics: %d %s", a.status, a.body)
	}
	return string(a.body)
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// TestBadRequests sends every malformed request to every endpoint that takes a program,
// plus bad paths and parameters: each gets its 4xx and a JSON error, and no run starts.
func TestBadRequests(t *testing.T) {
	f := newFixture(t, func(_ *fakeRunner, o *Options) { o.MaxBodyBytes = 200 << 10 })
	type bad struct {
		name, method, path, body string
		status                   int
		mention                  string
	}
	// Echoes of long input are cut to whole characters: "a" + é (2 bytes) keeps 19 é in
	// 40 bytes, / + 日 (3 bytes) keeps 66 日 in 200, and /assets/x 63 日.
	longID := "a" + strings.Repeat("é", 30)
	var cases []bad
	for _, path := range []string{"/execute", "/submit"} {
		for _, tc := range badRequests {
			cases = append(cases, bad{path + " " + tc.name, http.MethodPost, path, tc.body, tc.status, tc.mention})
		}
		cases = append(cases, bad{path + " body over the limit", http.MethodPost, path, `{"code": "` + strings.Repeat("x", 200<<10) + `"}`, 413, "at most 204800 bytes"})
	}
	cases = append(cases,
		bad{"snippet without code", "POST", "/snippets", `{"stdin": "x"}`, 400, `"code" is required`},
		bad{"snippet not JSON", "POST", "/snippets", `code=x`, 400, "not valid JSON"},
		bad{"snippet unknown language", "POST", "/snippets", `{"code": "x", "language": "go lang"}`, 422, "unknown language"},
		bad{"snippet over the limit", "POST", "/snippets", strings.Repeat(" ", 201<<10), 413, "bytes"},
		bad{"page 0", "GET", "/submissions?page=0", "", 400, "page must be a whole number from 1"},
		bad{"page not a number", "GET", "/submissions?page=two", "", 400, "page"},
		bad{"page long and multi-byte", "GET", "/submissions?page=" + url.QueryEscape(longID), "", 400, `got "a` + strings.Repeat("é", 19) + `..."`},
		bad{"per_page too large", "GET", "/submissions?per_page=1000", "", 400, "per_page must be a whole number from 1 to 100"},
		bad{"submission id not a number", "GET", "/submissions/abc", "", 404, "no submission"},
		bad{"submission id long and multi-byte", "GET", "/submissions/" + url.PathEscape(longID), "", 404, `no submission has id "a` + strings.Repeat("é", 19) + `..."`},
		bad{"submission missing", "GET", "/submissions/4242", "", 404, "no submission has id 4242"},
		bad{"snippet id not a UUID", "GET", "/snippets/1234", "", 404, "no snippet"},
		bad{"snippet id long and multi-byte", "GET", "/snippets/" + url.PathEscape(longID), "", 404, `no snippet has id "a` + strings.Repeat("é", 19) + `..."`},
		bad{"snippet missing", "GET", "/snippets/6f1e3f7a-5a43-4a39-9a0e-3a2f0f1a9b77", "", 404, "no snippet"},
		bad{"unknown route", "GET", "/api/v2/run", "", 404, "no such route: GET /api/v2/run"},
		bad{"unknown route long and multi-byte", "GET", "/" + url.PathEscape(strings.Repeat("日", 100)), "", 404, "no such route: GET /" + strings.Repeat("日", 66) + "..."},
		bad{"unknown asset", "GET", "/assets/missing.js", "", 404, "no such asset"},
		bad{"unknown asset long and multi-byte", "GET", "/assets/x" + url.PathEscape(strings.Repeat("日", 100)), "", 404, "no such asset: /assets/x" + strings.Repeat("日", 63) + "..."},
		bad{"wrong method", "GET", "/execute", "", 405, "method GET is not allowed"},
		bad{"wrong method on health", "DELETE", "/healthz", "", 405, "not allowed"},
	)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := f.do(t, tc.method, tc.path, tc.body)
			msg := a.errorMessage(t)
			if a.status != tc.status || !strings.Contains(msg, tc.mention) {
				t.Errorf("got %d %q, want %d mentioning %q", a.status, msg, tc.status, tc.mention)
			}
			if strings.ContainsRune(msg, '\uFFFD') {
				t.Errorf("the message %q has a replacement character: a cut split a character", msg)
			}
			if ct := a.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type %q", ct)
			}
		})
	}
	if calls := f.runner.Calls(); len(calls) != 0 {
		t.Errorf("bad requests started %d runs: %+v", len(calls), calls)
	}
}

// TestRuns sends one program per row to /execute or /submit, and checks the answer, what
// the runner was asked, and how the run is counted in /metrics.
func TestRuns(t *testing.T) {
	// Options under which a 1s run has a bound of exactly 1.5s.
	shortBound := func(_ *fakeRunner, o *Options) {
		o.Config.StartTimeout.Duration = 0
		o.QueueWait = 300 * time.Millisecond
		o.Slack = 200 * time.Millisecond
	}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel() // the client went away (a closed tab) while the run waited

	for _, tc := range []struct {
		name    string
		path    string
		body    string
		ctx     context.Context
		options func(*fakeRunner, *Options)
		// what the client sees
		status     int
		want       map[string]any // fields of the JSON answer
		wantError  string         // part of its "error"
		retryAfter bool
		// what happened behind
		wantBound  time.Duration // 0: not checked
		wantSpec   func(*testing.T, execv1alpha1.CodeRunSpec)
		wantMetric string // the run's line in /metrics, if it is counted
	}{
		{name: "hello world", path: "/execute", body: mustJSON(map[string]string{"code": helloWorld}),
			status: 200, want: map[string]any{
				"output": "Hello, World!\n", "stdout": "Hello, World!\n", "stderr": "", "exit_code": 0.0, "name": "run-00001",
				"reason": "Completed", "status": "Succeeded", "time": 0.039, "cpu_time": 0.016, "memory": 8240.0, "truncated": false, "message": "",
			},
			// The default limits: 2m queue wait + 2m start timeout + 10s + 15s slack.
			wantBound:  4*time.Minute + 25*time.Second,
			wantMetric: `coderun_front_runs_total{reason="Completed"} 1`},
		{name: "syntax error", path: "/execute", body: mustJSON(map[string]string{"code": syntaxError}),
			status: 200, want: map[string]any{
				"output": syntaxOutput, "stderr": syntaxOutput, "exit_code": 1.0, "reason": "NonZeroExit", "status": "Failed",
			},
			wantMetric: `coderun_front_runs_total{reason="NonZeroExit"} 1`},
		{name: "operator's timeout is a 200 with its reason", path: "/execute",
			body:   mustJSON(map[string]any{"code": busyLoop, "limits": map[string]any{"timeout_seconds": 1}}),
			status: 200, want: map[string]any{
				"exit_code": 137.0, "signal": "SIGKILL", "reason": "TimeLimitExceeded", "status": "Failed",
				"message": "the program ran longer than its 1s timeout and was killed",
			},
			wantBound:  4*time.Minute + 16*time.Second,
			wantMetric: `coderun_front_runs_total{reason="TimeLimitExceeded"} 1`},
		{name: "never ran", path: "/execute", body: mustJSON(map[string]string{"code": neverRan}),
			status: 200, want: map[string]any{"exit_code": nil, "reason": "Rejected", "status": "Failed", "memory": 0.0, "time": 0.0},
			wantMetric: `coderun_front_runs_total{reason="Rejected"} 1`},
		{name: "stdin and every limit reach the CodeRun", path: "/execute",
			body: mustJSON(map[string]any{"code": "print(input())", "stdin": "42\n", "language": "python",
				"limits": map[string]any{"timeout_seconds": 5, "memory": "128Mi", "cpu": "500m"}}),
			status: 200, want: map[string]any{"output": "42\n", "exit_code": 0.0},
			wantSpec: func(t *testing.T, s execv1alpha1.CodeRunSpec) {
				l := s.Limits
				if s.Stdin != "42\n" || s.Language != execv1alpha1.LanguagePython || *l.TimeoutSeconds != 5 || l.Memory.String() != "128Mi" || l.CPU.String() != "500m" {
					t.Errorf("spec %+v, limits %+v", s, l)
				}
			},
			wantMetric: `coderun_front_runs_total{reason="Completed"} 1`},
		{name: "deleted mid-run is a SystemError result, not a hang", path: "/execute", body: mustJSON(map[string]string{"code": deletedRun}),
			status: 200, want: map[string]any{
				"reason": "SystemError", "status": "Failed", "exit_code": nil,
				"message": "the CodeRun run-00001 was deleted before it finished",
			},
			wantMetric: `coderun_front_runs_total{reason="SystemError"} 1`},
		{name: "no result within the bound is a 504", path: "/execute", options: shortBound,
			body:   mustJSON(map[string]any{"code": outlivesRun, "limits": map[string]any{"timeout_seconds": 1}}),
			status: 504, want: map[string]any{"reason": "TimeLimitExceeded", "status": "Failed", "exit_code": nil, "name": "run-00001"},
			wantError:  "the run had no result after 1.5s (queue wait 300ms + start timeout 0s + run timeout + 200ms); it was cancelled",
			wantBound:  1500 * time.Millisecond,
			wantMetric: `coderun_front_runs_total{reason="BoundExceeded"} 1`},
		{name: "the client went away", path: "/execute", body: mustJSON(map[string]string{"code": hang}), ctx: cancelled,
			status: 503, wantError: "the request was cancelled before the run finished; its CodeRun was deleted",
			wantMetric: `coderun_front_runs_total{reason="Cancelled"} 1`},
		{name: "the API server refuses the CodeRun", path: "/execute", body: mustJSON(map[string]string{"code": refusedRun}),
			status: 422, wantError: "the Kubernetes API refused the run: CodeRun.exec.coderun.dev \"\" is invalid: spec.source: Invalid value: \"\": source must not be empty",
			wantMetric: `coderun_front_runs_total{reason="Error"} 1`},
		{name: "the API server does not answer", path: "/execute", body: mustJSON(map[string]string{"code": apiDown}),
			status: 503, retryAfter: true,
			wantError:  "could not start the run: the Kubernetes API is unavailable or refused it; try again shortly",
			wantMetric: `coderun_front_runs_total{reason="Error"} 1`},
		{name: "a panic is a 500 naming the request", path: "/execute", body: mustJSON(map[string]string{"code": panicsRunner}),
			status: 500, wantError: "internal error; the request id is "},
		{name: "submit saves a run that exited 0", path: "/submit", body: mustJSON(map[string]string{"code": helloWorld}),
			status: 200, want: map[string]any{"submission_id": 1.0, "exit_code": 0.0, "output": "Hello, World!\n"},
			wantMetric: `coderun_front_runs_total{reason="Completed"} 1`},
		{name: "submit does not save a failed run", path: "/submit", body: mustJSON(map[string]string{"code": syntaxError}),
			status: 200, want: map[string]any{"submission_id": -1.0, "exit_code": 1.0, "output": syntaxOutput},
			wantMetric: `coderun_front_runs_total{reason="NonZeroExit"} 1`},
		{name: "submit does not save a run that never ran", path: "/submit", body: mustJSON(map[string]string{"code": neverRan}),
			status: 200, want: map[string]any{"submission_id": -1.0, "exit_code": nil},
			wantMetric: `coderun_front_runs_total{reason="Rejected"} 1`},
		{name: "submit's errors are execute's", path: "/submit", body: mustJSON(map[string]string{"code": apiDown}),
			status: 503, retryAfter: true, wantError: "could not start the run",
			wantMetric: `coderun_front_runs_total{reason="Error"} 1`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, tc.options)
			ctx := tc.ctx
			if ctx == nil {
				ctx = context.Background()
			}
			a := f.doCtx(ctx, t, "POST", tc.path, tc.body)
			if a.status != tc.status {
				t.Fatalf("status %d, want %d: %s", a.status, tc.status, a.body)
			}
			got := a.json(t)
			for k, want := range tc.want {
				if v, ok := got[k]; !ok || v != want {
					t.Errorf("%s = %#v, want %#v", k, got[k], want)
				}
			}
			if msg, _ := got["error"].(string); !strings.Contains(msg, tc.wantError) || (tc.wantError == "") != (msg == "") {
				t.Errorf("error %q, want %q", msg, tc.wantError)
			}
			if _, ok := got["submission_id"]; ok != (tc.path == "/submit" && tc.status == 200) {
				t.Errorf("%s answered %d with submission_id %v", tc.path, tc.status, got["submission_id"])
			}
			if ra := a.header.Get("Retry-After"); (ra != "") != tc.retryAfter {
				t.Errorf("Retry-After %q", ra)
			}
			calls := f.runner.Calls()
			if len(calls) != 1 {
				t.Fatalf("the runner got %d runs, want 1", len(calls))
			}
			if tc.wantBound != 0 && calls[0].bound != tc.wantBound {
				t.Errorf("bound %s, want %s", calls[0].bound, tc.wantBound)
			}
			if tc.wantSpec != nil {
				tc.wantSpec(t, calls[0].spec)
			}
			metrics := f.metrics(t)
			for _, want := range []string{
				tc.wantMetric, "coderun_front_runs_in_flight 0",
				fmt.Sprintf(`coderun_front_http_requests_total{code="%d",method="POST",route="%s"} 1`, tc.status, tc.path),
			} {
				if want != "" && !strings.Contains(metrics, want+"\n") {
					t.Errorf("/metrics lacks %q", want)
				}
			}
			if !strings.Contains(metrics, "\ngo_goroutines ") {
				t.Error("/metrics lacks the Go runtime's metrics")
			}
		})
	}
}

func TestSubmitAndList(t *testing.T) {
	f := newFixture(t, nil)
	good := f.do(t, "POST", "/submit", mustJSON(map[string]string{"code": helloWorld})).json(t)
	f.do(t, "POST", "/submit", mustJSON(map[string]string{"code": syntaxError})) // not saved
	second := f.do(t, "POST", "/submit", mustJSON(map[string]string{"code": "print(input())", "stdin": "second"})).json(t)
	if good["submission_id"] != 1.0 || second["submission_id"] != 2.0 {
		t.Fatalf("submission ids %v and %v, want 1 and 2", good["submission_id"], second["submission_id"])
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
	subs, _ := paged["submissions"].([]any)
	if paged["total"] != 2.0 || len(subs) != 1 || subs[0].(map[string]any)["id"] != 1.0 {
		t.Errorf("page 2 of 1: %v", paged)
	}
	empty := f.do(t, "GET", "/submissions?page=9", "").json(t)
	if s, ok := empty["submissions"].([]any); !ok || len(s) != 0 {
		t.Errorf("page 9: %v, want an empty list", empty)
	}

	one := f.do(t, "GET", "/submissions/1", "")
	if one.status != 200 || one.json(t)["code"] != helloWorld || one.json(t)["created_at"] == "" {
		t.Errorf("GET /submissions/1: %d %s", one.status, one.body)
	}
}

// TestDatabaseDown closes the database under the service: reads answer 503 with
// Retry-After, and a run that finished is reported as not saved.
func TestDatabaseDown(t *testing.T) {
	f := newFixture(t, nil)
	_ = f.store.Close()
	for _, tc := range []struct {
		method, path, body string
		status             int
		mention            string
		retryAfter         bool
	}{
		{"GET", "/submissions", "", 503, "the database is unavailable", true},
		{"GET", "/submissions/1", "", 503, "the database is unavailable", true},
		{"GET", "/snippets/6f1e3f7a-5a43-4a39-9a0e-3a2f0f1a9b77", "", 503, "the database is unavailable", true},
		{"POST", "/snippets", `{"code": "x"}`, 503, "the database is unavailable", true},
		{"POST", "/submit", mustJSON(map[string]string{"code": helloWorld}), 500, "the program ran, but saving the submission failed; try again", false},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			a := f.do(t, tc.method, tc.path, tc.body)
			if msg := a.errorMessage(t); a.status != tc.status || !strings.Contains(msg, tc.mention) {
				t.Errorf("got %d %q, want %d mentioning %q", a.status, msg, tc.status, tc.mention)
			}
			if ra := a.header.Get("Retry-After"); (ra != "") != tc.retryAfter {
				t.Errorf("Retry-After %q", ra)
			}
		})
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
	if !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(id) || created["url"] != "/s/"+id ||
		a.header.Get("Location") != "/snippets/"+id {
		t.Fatalf("created %v at %q: want a random UUID, its /s/ link and its Location", created, a.header.Get("Location"))
	}
	got := f.do(t, "GET", "/snippets/"+id, "").json(t)
	if got["code"] != "print(input())" || got["stdin"] != "hi" || got["language"] != "python" || got["id"] != id || got["created_at"] == "" {
		t.Errorf("GET /snippets/%s = %v", id, got)
	}
	if calls := f.runner.Calls(); len(calls) != 0 {
		t.Errorf("saving a snippet started %d runs", len(calls))
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
	f := newFixture(t, func(_ *fakeRunner, o *Options) { o.Page = fstest.MapFS{".keep": {}} })
	a := f.do(t, "GET", "/", "")
	if a.status != http.StatusServiceUnavailable || !strings.Contains(string(a.body), "make web") {
		t.Errorf("GET / without a page: %d %s", a.status, a.body)
	}
	if a := f.do(t, "POST", "/execute", mustJSON(map[string]string{"code": helloWorld})); a.status != 200 {
		t.Errorf("the API must work without the page: %d %s", a.status, a.body)
	}
}

func TestHealth(t *testing.T) {
	for _, tc := range []struct {
		name       string
		setup      func(*fixture)
		status     int
		wantChecks map[string]string
	}{
		{"ready", nil, 200, map[string]string{"database": "ok", "kubernetes": "ok", "informer": "ok"}},
		{"database closed", func(f *fixture) { _ = f.store.Close() }, 503,
			map[string]string{"database": "pinging the database: sql: database is closed", "kubernetes": "ok", "informer": "ok"}},
		{"Kubernetes API down", func(f *fixture) { f.runner.pingErr = errors.New("listing CodeRuns in coderun-runs: forbidden") }, 503,
			map[string]string{"database": "ok", "kubernetes": "listing CodeRuns in coderun-runs: forbidden", "informer": "ok"}},
		{"informer not synced", func(f *fixture) { f.runner.unsynced = true }, 503,
			map[string]string{"database": "ok", "kubernetes": "ok", "informer": "not synced yet"}},
		{"draining", func(f *fixture) { f.srv.SetDraining() }, 503,
			map[string]string{"database": "ok", "kubernetes": "ok", "informer": "ok", "server": "shutting down"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, nil)
			if tc.setup != nil {
				tc.setup(f)
			}
			// Alive whatever its dependencies say, so that they never get the pod restarted.
			if a := f.do(t, "GET", "/healthz", ""); a.status != 200 || a.json(t)["status"] != "ok" {
				t.Errorf("/healthz: %d %s", a.status, a.body)
			}
			ready := f.do(t, "GET", "/readyz", "")
			var got struct {
				Checks map[string]string `json:"checks"`
			}
			if err := json.Unmarshal(ready.body, &got); err != nil {
				t.Fatalf("/readyz %d: %v: %s", ready.status, err, ready.body)
			}
			if ready.status != tc.status || mustJSON(got.Checks) != mustJSON(tc.wantChecks) {
				t.Errorf("/readyz: %d %v, want %d %v", ready.status, got.Checks, tc.status, tc.wantChecks)
			}
		})
	}
}

func TestRequestID(t *testing.T) {
	f := newFixture(t, nil)
	given := f.do(t, "GET", "/healthz", "", "X-Request-Id", "trace-42.a:b_c")
	if got := given.header.Get("X-Request-Id"); got != "trace-42.a:b_c" {
		t.Errorf("X-Request-Id %q, want the caller's", got)
	}
	if got := given.header.Get("X-Content-Type-Options"); got != "nosniff" {
		t.Errorf("X-Content-Type-Options %q", got)
	}
	// The id follows the run: the runs client puts it on the CodeRun.
	f.do(t, "POST", "/execute", mustJSON(map[string]string{"code": helloWorld}), "X-Request-Id", "trace-43")
	if calls := f.runner.Calls(); len(calls) != 1 || calls[0].requestID != "trace-43" {
		t.Errorf("runs %+v, want one with the request's id", calls)
	}
	for _, bad := range []string{"", "has space", strings.Repeat("x", 129), "<script>", "é"} {
		got := f.do(t, "GET", "/healthz", "", "X-Request-Id", bad).header.Get("X-Request-Id")
		if len(got) != 36 || got == bad {
			t.Errorf("X-Request-Id %q answered %q, want a fresh UUID", bad, got)
		}
	}
}

// TestBackPressure fills MaxPending with runs that do not finish: the next one gets 503
// with Retry-After at once, and is not started.
func TestBackPressure(t *testing.T) {
	f := newFixture(t, func(r *fakeRunner, o *Options) {
		o.MaxPending = 2
		r.waiting = make(chan struct{}, 2)
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() { f.doCtx(ctx, t, "POST", "/execute", mustJSON(map[string]string{"code": hang})) })
	}
	<-f.runner.waiting
	<-f.runner.waiting
	a := f.do(t, "POST", "/submit", mustJSON(map[string]string{"code": helloWorld}))
	if a.status != http.StatusServiceUnavailable || a.header.Get("Retry-After") != "5" ||
		a.errorMessage(t) != "too many runs in progress (2); try again in a few seconds" {
		t.Errorf("third run: %d %v %s, want 503 with Retry-After", a.status, a.header, a.body)
	}
	// Bad requests are still told what is wrong, not to come back later.
	if a := f.do(t, "POST", "/execute", `{}`); a.status != http.StatusBadRequest {
		t.Errorf("a bad request while full: %d", a.status)
	}
	if m := f.metrics(t); !strings.Contains(m, "coderun_front_runs_in_flight 2\n") || !strings.Contains(m, "coderun_front_runs_refused_total 1\n") {
		t.Errorf("/metrics while full lacks 2 in flight and 1 refused")
	}
	cancel()
	wg.Wait()
	if a := f.do(t, "POST", "/execute", mustJSON(map[string]string{"code": helloWorld})); a.status != 200 {
		t.Errorf("after the slots freed: %d %s", a.status, a.body)
	}
	if n := len(f.runner.Calls()); n != 3 {
		t.Errorf("the runner got %d runs, want the 2 that hung and the last", n)
	}
	if m := f.metrics(t); !strings.Contains(m, "coderun_front_runs_in_flight 0\n") {
		t.Errorf("/metrics does not show the slots freed")
	}
}
