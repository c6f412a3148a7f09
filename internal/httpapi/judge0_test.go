package httpapi

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	execv1alpha1 "github.com/coderun-dev/coderun/api/v1alpha1"
	"github.com/coderun-dev/coderun/internal/runs"
	"github.com/coderun-dev/coderun/internal/store"
	"github.com/coderun-dev/coderun/internal/testenv"
)

// The Judge0 API's conformance tests, written from Judge0 CE 1.13's documentation and
// code (/work/shared/docs/compat-apis.md section 3): every field, status, error message and
// status code this API claims. Runs are played by judge0Runner; the database is a real
// SQLite file.

// Programs judge0Runner knows.
const (
	j0Hello              = "print('Hello, World!')"
	j0Exit3              = "import sys; sys.exit(3)"
	j0CompileErrorSource = "int main( { return 0; }"
	j0Blocks             = "# blocks until the test releases it"
	j0Mixed              = "# writes to stdout and stderr"
)

// judge0Runner plays internal/runs.Client for the Judge0 tests, recording each call's
// spec, Idempotency-Key and key id.
type judge0Runner struct {
	fakeRunner
	release chan struct{} // j0Blocks finishes when it is closed
	started chan string   // gets the key of each j0Blocks run as it starts

	mu sync.Mutex
	j0 []judge0Call
}

type judge0Call struct {
	spec           execv1alpha1.CodeRunSpec
	idempotencyKey string
	keyID          string
}

func (r *judge0Runner) calls() []judge0Call {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]judge0Call(nil), r.j0...)
}

func (r *judge0Runner) Run(ctx context.Context, spec execv1alpha1.CodeRunSpec, bound time.Duration) (*execv1alpha1.CodeRun, error) {
	key := runs.IdempotencyKey(ctx)
	r.mu.Lock()
	r.j0 = append(r.j0, judge0Call{spec: spec, idempotencyKey: key, keyID: runs.KeyID(ctx)})
	r.mu.Unlock()
	run := &execv1alpha1.CodeRun{ObjectMeta: metav1.ObjectMeta{Name: runs.NameFor(runs.KeyID(ctx), key), Namespace: "coderun-runs"}, Spec: spec}
	finish := func(res *execv1alpha1.CodeRunResult) (*execv1alpha1.CodeRun, error) {
		res.WallTime = &metav1.Duration{Duration: 34 * time.Millisecond}
		res.CPUTime = &metav1.Duration{Duration: 12 * time.Millisecond}
		res.PeakMemory = ptr.To(resource.MustParse("8240Ki"))
		run.Status.Result = res
		return run, nil
	}
	switch spec.Source {
	case j0Hello:
		return finish(testenv.Completed("Hello, World!\n"))
	case j0Exit3:
		return finish(testenv.Failed(execv1alpha1.ReasonNonZeroExit, ptr.To[int32](3), "bye\n", ""))
	case j0CompileErrorSource:
		return finish(&execv1alpha1.CodeRunResult{Reason: execv1alpha1.ReasonCompileError, Message: "the compiler exited with 1",
			Compile: &execv1alpha1.CompileResult{Reason: execv1alpha1.ReasonNonZeroExit, ExitCode: ptr.To[int32](1),
				Output: "main.cpp:1:10: error: expected ')'\n", Stderr: "main.cpp:1:10: error: expected ')'\n"}})
	case j0Mixed:
		res := testenv.Completed("out\n")
		res.Stderr, res.Output = "err\n", "out\nerr\n"
		return finish(res)
	case j0Blocks:
		r.started <- key
		select {
		case <-r.release:
			return finish(testenv.Completed("released\n"))
		case <-ctx.Done():
			return run, ctx.Err()
		}
	default:
		return finish(testenv.Completed(spec.Stdin))
	}
}

// fakeRuntimes is a RuntimeLister with a fixed list.
type fakeRuntimes []execv1alpha1.Runtime

func (f fakeRuntimes) Runtimes() []execv1alpha1.Runtime { return f }

func testRuntime(name, language, version string, judge0ID int32, ready bool, compile ...string) execv1alpha1.Runtime {
	rt := execv1alpha1.Runtime{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: execv1alpha1.RuntimeSpec{
			Language: language, Version: version, Image: "localhost/coderun-" + name + ":dev",
			SourceFile: "main." + name, Run: execv1alpha1.RunStep{Command: []string{"./main"}},
			Judge0LanguageID: &judge0ID,
		},
	}
	if compile != nil {
		rt.Spec.Compile = &execv1alpha1.CompileStep{Command: compile}
	}
	status := metav1.ConditionTrue
	reason := execv1alpha1.RuntimeReasonSmokeTestPassed
	if !ready {
		status, reason = metav1.ConditionFalse, execv1alpha1.RuntimeReasonSmokeTestFailed
	}
	rt.Status.Conditions = []metav1.Condition{{Type: execv1alpha1.RuntimeConditionReady, Status: status, Reason: reason, Message: "printed nothing"}}
	return rt
}

var judge0TestRuntimes = fakeRuntimes{
	func() execv1alpha1.Runtime {
		rt := testRuntime("python", "python", "3.13.5", 71, true)
		rt.Spec.DisplayName = "Python (3.13.5)"
		rt.Spec.SourceFile = "main.py"
		rt.Spec.Run.Command = []string{"python3", "main.py"}
		return rt
	}(),
	func() execv1alpha1.Runtime {
		rt := testRuntime("cpp", "cpp", "14.2.0", 54, true, "g++", "-O2", "-o", "main", "main.cpp")
		rt.Spec.DisplayName = "C++ (GCC 14.2.0)"
		rt.Spec.SourceFile = "main.cpp"
		return rt
	}(),
	testRuntime("java", "java", "21.0.8", 62, false),
	// Not offered to Judge0 clients: no id.
	func() execv1alpha1.Runtime {
		rt := testRuntime("lua", "lua", "5.4.7", 0, true)
		rt.Spec.Judge0LanguageID = nil
		return rt
	}(),
}

type judge0Fixture struct {
	*fixture
	runner *judge0Runner
}

// newJudge0Fixture is the API with judge0TestRuntimes and judge0Runner; change may alter
// the options. Its background runs are stopped when the test ends.
func newJudge0Fixture(t *testing.T, change func(*Options)) *judge0Fixture {
	t.Helper()
	r := &judge0Runner{release: make(chan struct{}), started: make(chan string, 32)}
	f := newFixture(t, func(_ *fakeRunner, o *Options) {
		o.Runs = r
		o.Runtimes = judge0TestRuntimes
		if change != nil {
			change(o)
		}
	})
	t.Cleanup(f.srv.Close)
	return &judge0Fixture{fixture: f, runner: r}
}

// post sends a Judge0 submission (a JSON body).
func (f *judge0Fixture) post(t *testing.T, path string, body any, header ...string) answer {
	t.Helper()
	return f.do(t, http.MethodPost, path, mustJSON(body), header...)
}

// decoded is an answer's JSON, any shape.
func (a answer) decoded(t *testing.T) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(a.body, &v); err != nil {
		t.Fatalf("answer %d is not JSON: %v\n%s", a.status, err, a.body)
	}
	return v
}

// keys returns the keys of a JSON object in the order the answer wrote them.
func keys(t *testing.T, body []byte) []string {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(string(body)))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("not a JSON object: %s", body)
	}
	var out []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, tok.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func wantJSON(t *testing.T, what string, got answer, status int, want string) {
	t.Helper()
	var w any
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("%s: bad want %s: %v", what, want, err)
	}
	if got.status != status || !reflect.DeepEqual(got.decoded(t), w) {
		t.Errorf("%s: got %d %s\nwant %d %s", what, got.status, got.body, status, want)
	}
}

func TestJudge0CreateWait(t *testing.T) {
	f := newJudge0Fixture(t, nil)

	a := f.post(t, "/judge0/submissions?wait=true", map[string]any{"source_code": j0Hello, "language_id": 71})
	if a.status != http.StatusCreated {
		t.Fatalf("POST wait=true: %d %s", a.status, a.body)
	}
	if got, want := keys(t, a.body), judge0DefaultFields; !reflect.DeepEqual(got, want) {
		t.Errorf("default fields %v, want Judge0's %v", got, want)
	}
	m := a.json(t)
	if _, err := uuid.Parse(m["token"].(string)); err != nil {
		t.Errorf("token %v is not a UUID", m["token"])
	}
	delete(m, "token")
	wantJSON(t, "the finished submission", answer{status: a.status, body: []byte(mustJSON(m))}, http.StatusCreated,
		`{"time":"0.012","memory":8240,"stdout":"Hello, World!\n","stderr":null,"compile_output":null,"message":null,
		  "status":{"id":3,"description":"Accepted"}}`)

	// What ran: the Runtime of id 71 at its exact version, under the token as the key.
	calls := f.runner.calls()
	if len(calls) != 1 {
		t.Fatalf("%d runs, want 1", len(calls))
	}
	c := calls[0]
	if c.spec.Language != "python" || c.spec.Version != "3.13.5" || c.spec.Source != j0Hello || c.idempotencyKey != a.json(t)["token"] {
		t.Errorf("ran %+v with key %q", c.spec, c.idempotencyKey)
	}
	// Without limits: the operator's default timeout (10 s = Judge0's wall default) and memory.
	if *c.spec.Limits.TimeoutSeconds != 10 || c.spec.Limits.Memory.Value() != 256<<20 {
		t.Errorf("limits %d s, %s; want the defaults 10 s and 256Mi", *c.spec.Limits.TimeoutSeconds, c.spec.Limits.Memory)
	}

	// Every field, with Judge0's types and units.
	a = f.post(t, "/judge0/submissions?wait=true&fields=*", map[string]any{
		"source_code": j0Exit3, "language_id": "71", "stdin": "in", "cpu_time_limit": 2, "cpu_extra_time": 0.5,
		"wall_time_limit": 5, "memory_limit": 128000, "command_line_arguments": `a "b c" 'd e' f\ g $(rm)`,
		"number_of_runs": 3, "stack_limit": 1000, "max_processes_and_or_threads": 8, "max_file_size": 100,
	})
	if a.status != http.StatusCreated {
		t.Fatalf("POST fields=*: %d %s", a.status, a.body)
	}
	if got, want := keys(t, a.body), judge0SubmissionFields; !reflect.DeepEqual(got, want) {
		t.Errorf("fields=* gave %v, want %v", got, want)
	}
	m = a.json(t)
	for _, k := range []string{"token", "created_at", "finished_at"} {
		if m[k] == nil {
			t.Errorf("%s is null", k)
		}
		delete(m, k)
	}
	wantJSON(t, "fields=*", answer{status: a.status, body: []byte(mustJSON(m))}, http.StatusCreated, `{
		"source_code":"import sys; sys.exit(3)","language_id":71,"stdin":"in","expected_output":null,"stdout":null,
		"status_id":11,"time":"0.012","memory":8240,"stderr":"bye\n","number_of_runs":3,"cpu_time_limit":"2.0",
		"cpu_extra_time":"0.5","wall_time_limit":"5.0","memory_limit":128000,"stack_limit":1000,
		"max_processes_and_or_threads":8,"enable_per_process_and_thread_time_limit":false,
		"enable_per_process_and_thread_memory_limit":false,"max_file_size":100,"compile_output":null,"exit_code":3,
		"exit_signal":null,"message":"Exited with error status 3","wall_time":"0.034","compiler_options":null,
		"command_line_arguments":"a \"b c\" 'd e' f\\ g $(rm)","redirect_stderr_to_stdout":false,"callback_url":null,
		"additional_files":null,"enable_network":false,"status":{"id":11,"description":"Runtime Error (NZEC)"},
		"language":{"id":71,"name":"Python (3.13.5)"}}`)
	c = f.runner.calls()[1]
	// The limits: min(wall 5, cpu 2 + extra 0.5) rounded up to whole seconds; 128000 KB.
	if *c.spec.Limits.TimeoutSeconds != 3 || c.spec.Limits.Memory.Value() != 128000*1024 || c.spec.Stdin != "in" {
		t.Errorf("limits %d s, %s, stdin %q; want 3 s, 128000Ki, in", *c.spec.Limits.TimeoutSeconds, c.spec.Limits.Memory, c.spec.Stdin)
	}
	// Arguments split as the shell would, after Judge0's removal of $&;<>|`.
	if want := []string{"a", "b c", "d e", "f g", "(rm)"}; !reflect.DeepEqual(c.spec.Args, want) {
		t.Errorf("args %q, want %q", c.spec.Args, want)
	}
}

func TestJudge0ExpectedOutput(t *testing.T) {
	f := newJudge0Fixture(t, nil)
	for _, tc := range []struct {
		stdin, expected string
		status          float64
	}{
		{"1 2\n3\n", "1 2\n3\n", 3},
		{"1 2  \n3\n\n\n", "1 2\n3", 3}, // trailing spaces on a line, trailing blank lines
		{"1 2\n3", "1 2   \n3 \t\n", 3}, // either side
		{" 1 2\n3\n", "1 2\n3\n", 4},    // leading whitespace counts
		{"1 2\n\n3\n", "1 2\n3\n", 4},   // a blank line in the middle counts
		{"1 2\r\n3\r\n", "1 2\n3\n", 3}, // \r is whitespace to Ruby's rstrip
		{"Hello", "hello", 4},           // case counts
		{"", "", 3},                     // nothing expected, nothing printed
	} {
		a := f.post(t, "/judge0/submissions?wait=true&fields=status,stdout", map[string]any{
			"source_code": "echo", "language_id": 71, "stdin": tc.stdin, "expected_output": tc.expected,
		})
		if got := a.json(t)["status"].(map[string]any)["id"]; got != tc.status {
			t.Errorf("stdout %q, expected_output %q: status %v, want %v", tc.stdin, tc.expected, got, tc.status)
		}
	}
	a := f.post(t, "/judge0/submissions?wait=true&fields=status", map[string]any{"source_code": "echo", "language_id": 71, "stdin": "x", "expected_output": "y"})
	wantJSON(t, "Wrong Answer", a, http.StatusCreated, `{"status":{"id":4,"description":"Wrong Answer"}}`)
}

func TestJudge0Base64(t *testing.T) {
	f := newJudge0Fixture(t, nil)
	b64 := base64.StdEncoding.EncodeToString
	long := strings.Repeat("0123456789", 7) // 70 bytes: 96 characters of base64, broken after 60
	a := f.post(t, "/judge0/submissions?wait=true&base64_encoded=true&fields=stdout,stdin,source_code,expected_output,status", map[string]any{
		"source_code": b64([]byte("echo")), "language_id": 71, "stdin": b64([]byte(long)), "expected_output": b64([]byte(long)),
	})
	enc := b64([]byte(long))
	wantEnc := enc[:60] + "\n" + enc[60:] + "\n"
	wantJSON(t, "base64 both ways", a, http.StatusCreated, mustJSON(map[string]any{
		"stdout": wantEnc, "stdin": wantEnc, "source_code": "ZWNobw==\n", "expected_output": wantEnc,
		"status": map[string]any{"id": 3, "description": "Accepted"},
	}))
	if got := f.runner.calls()[0].spec.Stdin; got != long {
		t.Errorf("the program got stdin %q, want it decoded", got)
	}

	// Judge0's clients' base64: line breaks, no padding, the URL alphabet.
	for _, in := range []string{"aGVs\nbG8=\n", "aGVsbG8", "aGVsbG8="} {
		a := f.post(t, "/judge0/submissions?wait=true&base64_encoded=true&fields=stdout", map[string]any{"source_code": b64([]byte("echo")), "language_id": 71, "stdin": in})
		wantJSON(t, "stdin "+in, a, http.StatusCreated, `{"stdout":"aGVsbG8=\n"}`)
	}

	// The same submission read without base64_encoded is plain text.
	token := f.post(t, "/judge0/submissions?wait=true&base64_encoded=true&fields=token", map[string]any{"source_code": b64([]byte("echo")), "language_id": 71, "stdin": b64([]byte("hi"))}).json(t)["token"].(string)
	wantJSON(t, "read back plain", f.do(t, http.MethodGet, "/judge0/submissions/"+token+"?fields=stdout,source_code", ""), http.StatusOK, `{"stdout":"hi","source_code":"echo"}`)

	// Not base64, or not UTF-8 once decoded: 422 naming the field; nothing runs.
	before := len(f.runner.calls())
	a = f.post(t, "/judge0/submissions?base64_encoded=true", map[string]any{"source_code": "not base64!", "language_id": 71, "stdin": b64([]byte{0xff, 0xfe})})
	m := a.json(t)
	if a.status != http.StatusUnprocessableEntity || len(m) != 2 ||
		!strings.HasPrefix(m["source_code"].([]any)[0].(string), "is not valid base64") ||
		m["stdin"].([]any)[0] != "is not UTF-8 text once decoded from base64" {
		t.Errorf("bad base64: %d %s", a.status, a.body)
	}
	if len(f.runner.calls()) != before {
		t.Error("a refused submission ran")
	}
}

func TestJudge0Refusals(t *testing.T) {
	f := newJudge0Fixture(t, nil)
	for _, tc := range []struct {
		name string
		body map[string]any
		want string
	}{
		{"nothing", map[string]any{}, `{"source_code":["can't be blank"],"language_id":["can't be blank"]}`},
		{"blank source", map[string]any{"source_code": "  ", "language_id": 71}, `{"source_code":["can't be blank"]}`},
		{"unknown language", map[string]any{"source_code": "x", "language_id": 150000}, `{"language_id":["language with id 150000 doesn't exist"]}`},
		{"not a number", map[string]any{"source_code": "x", "language_id": "abc"}, `{"language_id":["language with id abc doesn't exist"]}`},
		{"a Runtime without an id", map[string]any{"source_code": "x", "language_id": 0}, `{"language_id":["language with id 0 doesn't exist"]}`},
		{"not Ready", map[string]any{"source_code": "x", "language_id": 62},
			`{"language_id":["language with id 62 is not available on this cluster: its Runtime java is not Ready (SmokeTestFailed: printed nothing)"]}`},
		{"over the maxima", map[string]any{"source_code": "x", "language_id": 71, "wall_time_limit": 61, "cpu_time_limit": 60.5,
			"memory_limit": 1048577, "cpu_extra_time": 6, "stack_limit": 128001, "max_processes_and_or_threads": 1000,
			"max_file_size": 1 << 30, "number_of_runs": 21},
			`{"wall_time_limit":["must be less than or equal to 60.0"],"cpu_time_limit":["must be less than or equal to 60.0"],
			  "memory_limit":["must be less than or equal to 1048576"],"cpu_extra_time":["must be less than or equal to 5.0"],
			  "stack_limit":["must be less than or equal to 128000"],"max_processes_and_or_threads":["must be less than or equal to 64"],
			  "max_file_size":["must be less than or equal to 16384"],"number_of_runs":["must be less than or equal to 20"]}`},
		{"under the minima", map[string]any{"source_code": "x", "language_id": 71, "wall_time_limit": 0.5, "cpu_time_limit": -1,
			"memory_limit": 2048, "max_processes_and_or_threads": 0, "number_of_runs": 0},
			`{"wall_time_limit":["must be greater than or equal to 1.0"],"cpu_time_limit":["must be greater than or equal to 0.0"],
			  "memory_limit":["must be greater than or equal to 16384"],"max_processes_and_or_threads":["must be greater than 0"],
			  "number_of_runs":["must be greater than 0"]}`},
		{"not numbers", map[string]any{"source_code": "x", "language_id": 71, "memory_limit": "lots", "wall_time_limit": true},
			`{"memory_limit":["is not a number"],"wall_time_limit":["is not a number"]}`},
		{"objects", map[string]any{"source_code": map[string]any{}, "language_id": 71, "stdin": []int{1}},
			`{"source_code":["is invalid"],"stdin":["is invalid"]}`},
		{"switched off", map[string]any{"source_code": "x", "language_id": 71, "enable_network": true, "compiler_options": "-O3",
			"callback_url": "http://10.0.0.1/hook"},
			`{"enable_network":["enabling network is not allowed"],"compiler_options":["setting compiler options is not allowed"],
			  "callback_url":["setting callback is not allowed"]}`},
		{"arguments", map[string]any{"source_code": "x", "language_id": 71, "command_line_arguments": `"open`},
			`{"command_line_arguments":["has an unclosed \" quote"]}`},
		{"long arguments", map[string]any{"source_code": "x", "language_id": 71, "command_line_arguments": strings.Repeat("a", 513)},
			`{"command_line_arguments":["is too long (maximum is 512 characters)"]}`},
		{"many arguments", map[string]any{"source_code": "x", "language_id": 71, "command_line_arguments": strings.Repeat("a ", 33)},
			`{"command_line_arguments":["has 33 arguments; at most 32 are allowed"]}`},
		{"NUL", map[string]any{"source_code": "x\x00", "language_id": 71}, `{"source_code":["contains a NUL character"]}`},
		{"too long", map[string]any{"source_code": strings.Repeat("x", 65537), "language_id": 71}, `{"source_code":["is too long (maximum is 65536 bytes)"]}`},
	} {
		wantJSON(t, tc.name, f.post(t, "/judge0/submissions?wait=true", tc.body), http.StatusUnprocessableEntity, tc.want)
	}
	// Switches that are off stay accepted when off.
	a := f.post(t, "/judge0/submissions?wait=true&fields=status_id", map[string]any{"source_code": j0Hello, "language_id": 71,
		"enable_network": false, "compiler_options": "", "callback_url": nil, "enable_per_process_and_thread_time_limit": true})
	wantJSON(t, "switches off", a, http.StatusCreated, `{"status_id":3}`)
	if n := len(f.runner.calls()); n != 1 {
		t.Errorf("%d runs; only the last submission should have run", n)
	}

	// Errors of the request itself: Judge0's {"error": ...} with 400.
	wantJSON(t, "invalid fields", f.do(t, http.MethodPost, "/judge0/submissions?fields=stdout,foo,status,bar", `{}`),
		http.StatusBadRequest, `{"error":"invalid fields: [foo, bar]"}`)
	wantJSON(t, "invalid fields on GET", f.do(t, http.MethodGet, "/judge0/submissions/x?fields=nope", ""),
		http.StatusBadRequest, `{"error":"invalid fields: [nope]"}`)
	if a := f.do(t, http.MethodPost, "/judge0/submissions", `{"source_code": `); a.status != http.StatusBadRequest || a.errorMessage(t) == "" {
		t.Errorf("malformed JSON: %d %s", a.status, a.body)
	}
	wantJSON(t, "unknown token", f.do(t, http.MethodGet, "/judge0/submissions/abc", ""),
		http.StatusNotFound, `{"error":"submission abc not found"}`)

	// Not served: the list and the delete (Judge0 needs X-Auth-User for them), the system routes.
	for _, tc := range []struct {
		method, path string
		status       int
	}{
		{http.MethodGet, "/judge0/submissions", http.StatusMethodNotAllowed},
		{http.MethodDelete, "/judge0/submissions/abc", http.StatusMethodNotAllowed},
		{http.MethodGet, "/judge0/workers", http.StatusNotFound},
		{http.MethodGet, "/judge0/system_info", http.StatusNotFound},
	} {
		if a := f.do(t, tc.method, tc.path, ""); a.status != tc.status || a.errorMessage(t) == "" {
			t.Errorf("%s %s: %d %s, want %d with an error", tc.method, tc.path, a.status, a.body, tc.status)
		}
	}
}

func TestJudge0FormAndQuery(t *testing.T) {
	f := newJudge0Fixture(t, nil)
	form := url.Values{"source_code": {"echo"}, "language_id": {"71"}, "stdin": {"from a form"}, "redirect_stderr_to_stdout": {"false"}}
	a := f.serve(httptest.NewRequest(http.MethodPost, "/judge0/submissions?wait=true&fields=stdout", strings.NewReader(form.Encode())), false, "Content-Type", "application/x-www-form-urlencoded")
	wantJSON(t, "a form", a, http.StatusCreated, `{"stdout":"from a form"}`)
	a = f.do(t, http.MethodPost, "/judge0/submissions?wait=true&fields=stdout&source_code=echo&language_id=71&stdin=from+the+query", "")
	wantJSON(t, "the query", a, http.StatusCreated, `{"stdout":"from the query"}`)
}

func TestJudge0RedirectStderr(t *testing.T) {
	f := newJudge0Fixture(t, nil)
	a := f.post(t, "/judge0/submissions?wait=true&fields=stdout,stderr", map[string]any{"source_code": j0Mixed, "language_id": 71})
	wantJSON(t, "apart", a, http.StatusCreated, `{"stdout":"out\n","stderr":"err\n"}`)
	a = f.post(t, "/judge0/submissions?wait=true&fields=stdout,stderr", map[string]any{"source_code": j0Mixed, "language_id": 71, "redirect_stderr_to_stdout": true})
	wantJSON(t, "merged", a, http.StatusCreated, `{"stdout":"out\nerr\n","stderr":null}`)
}

func TestJudge0CompileError(t *testing.T) {
	f := newJudge0Fixture(t, nil)
	a := f.post(t, "/judge0/submissions?wait=true&fields=status,compile_output,stdout,time,memory,exit_code,exit_signal,message,wall_time",
		map[string]any{"source_code": j0CompileErrorSource, "language_id": 54})
	wantJSON(t, "compile error", a, http.StatusCreated, `{"status":{"id":6,"description":"Compilation Error"},
		"compile_output":"main.cpp:1:10: error: expected ')'\n","stdout":null,"time":null,"memory":null,"exit_code":null,
		"exit_signal":null,"message":null,"wall_time":null}`)
	if c := f.runner.calls()[0]; c.spec.Language != "cpp" || c.spec.Version != "14.2.0" {
		t.Errorf("ran %s %s, want cpp 14.2.0", c.spec.Language, c.spec.Version)
	}
}

// TestJudge0Async: without wait the answer is the token alone, at once; the submission
// reads In Queue or Processing with nulls until its run ends, then its result.
func TestJudge0Async(t *testing.T) {
	f := newJudge0Fixture(t, nil)
	a := f.post(t, "/judge0/submissions", map[string]any{"source_code": j0Blocks, "language_id": 71})
	if a.status != http.StatusCreated || !reflect.DeepEqual(keys(t, a.body), []string{"token"}) {
		t.Fatalf("POST without wait: %d %s; want 201 and the token only", a.status, a.body)
	}
	token := a.json(t)["token"].(string)
	if key := <-f.runner.started; key != token {
		t.Errorf("the run's Idempotency-Key is %q, want the token %q", key, token)
	}
	wantJSON(t, "while it runs", f.do(t, http.MethodGet, "/judge0/submissions/"+token, ""), http.StatusOK, fmt.Sprintf(`{
		"token":%q,"time":null,"memory":null,"stdout":null,"stderr":null,"compile_output":null,"message":null,
		"status":{"id":2,"description":"Processing"}}`, token))
	// A read of a submission this replica is running starts nothing more.
	if n := len(f.runner.calls()); n != 1 {
		t.Errorf("%d runs after a read, want 1", n)
	}
	close(f.runner.release)
	<-f.srv.judge0Done(token)
	wantJSON(t, "finished", f.do(t, http.MethodGet, "/judge0/submissions/"+token+"?fields=stdout,status_id", ""),
		http.StatusOK, `{"stdout":"released\n","status_id":3}`)
}

// TestJudge0CollectAfterRestart: a submission left Processing by a replica that stopped
// is collected by the next read, on a new server: the same spec under the same key (so
// the runs client joins the CodeRun that went on), and its result saved.
func TestJudge0CollectAfterRestart(t *testing.T) {
	f := newJudge0Fixture(t, nil)
	a := f.post(t, "/judge0/submissions", map[string]any{"source_code": j0Blocks, "language_id": 71, "stdin": "x"})
	token := a.json(t)["token"].(string)
	<-f.runner.started
	f.srv.Close() // the replica stops; its run's context ends, and the row stays Processing
	row, err := f.store.Judge0(context.Background(), token)
	if err != nil || row.StatusID != store.Judge0Processing {
		t.Fatalf("after the stop: %+v, %v; want Processing", row, err)
	}
	if a := f.post(t, "/judge0/submissions", map[string]any{"source_code": j0Hello, "language_id": 71}); a.status != http.StatusServiceUnavailable {
		t.Errorf("a submission to a stopped replica: %d %s, want 503", a.status, a.body)
	}

	// A new replica on the same database.
	r2 := &judge0Runner{release: make(chan struct{}), started: make(chan string, 1)}
	close(r2.release)
	srv2, err := New(Options{Runs: r2, Store: f.store, Runtimes: judge0TestRuntimes, Config: f.srv.opts.Config, Page: testPage, Logger: f.srv.opts.Logger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv2.Close)
	f2 := &fixture{srv: srv2, store: f.store}
	wantJSON(t, "first read", f2.do(t, http.MethodGet, "/judge0/submissions/"+token+"?fields=status_id", ""), http.StatusOK, `{"status_id":2}`)
	<-r2.started
	<-srv2.judge0Done(token)
	wantJSON(t, "collected", f2.do(t, http.MethodGet, "/judge0/submissions/"+token+"?fields=status_id,stdout", ""), http.StatusOK, `{"status_id":3,"stdout":"released\n"}`)
	first, again := f.runner.calls()[0], r2.calls()[0]
	if again.idempotencyKey != token || !reflect.DeepEqual(again.spec, first.spec) {
		t.Errorf("collected with key %q and spec %+v; want the token and the first spec %+v", again.idempotencyKey, again.spec, first.spec)
	}
}

func TestJudge0Batch(t *testing.T) {
	f := newJudge0Fixture(t, nil)
	a := f.post(t, "/judge0/submissions/batch", map[string]any{"submissions": []any{
		map[string]any{"source_code": j0Hello, "language_id": 71},
		map[string]any{"source_code": "x", "language_id": 150000},
		map[string]any{"source_code": "echo", "language_id": 71, "stdin": "two"},
	}})
	if a.status != http.StatusCreated {
		t.Fatalf("batch: %d %s", a.status, a.body)
	}
	var got []map[string]any
	if err := json.Unmarshal(a.body, &got); err != nil || len(got) != 3 {
		t.Fatalf("batch answer %s: %v", a.body, err)
	}
	if !reflect.DeepEqual(got[1], map[string]any{"language_id": []any{"language with id 150000 doesn't exist"}}) {
		t.Errorf("the invalid one: %v", got[1])
	}
	t1, t3 := got[0]["token"].(string), got[2]["token"].(string)
	<-f.srv.judge0Done(t1)
	<-f.srv.judge0Done(t3)
	unknown := uuid.NewString()
	wantJSON(t, "batch show", f.do(t, http.MethodGet, "/judge0/submissions/batch?fields=stdout,status_id&tokens="+t1+","+unknown+","+t3, ""),
		http.StatusOK, `{"submissions":[{"stdout":"Hello, World!\n","status_id":3},null,{"stdout":"two","status_id":3}]}`)
	wantJSON(t, "tokens as a header", f.do(t, http.MethodGet, "/judge0/submissions/batch?fields=status_id", "", "tokens", t3),
		http.StatusOK, `{"submissions":[{"status_id":3}]}`)

	wantJSON(t, "none valid", f.post(t, "/judge0/submissions/batch", map[string]any{"submissions": []any{map[string]any{}}}),
		http.StatusUnprocessableEntity, `[{"source_code":["can't be blank"],"language_id":["can't be blank"]}]`)
	wantJSON(t, "empty", f.post(t, "/judge0/submissions/batch", map[string]any{"submissions": []any{}}),
		http.StatusBadRequest, `{"error":"there should be at least one submission in a batch"}`)
	many := make([]any, 21)
	for i := range many {
		many[i] = map[string]any{"source_code": "x", "language_id": 71}
	}
	wantJSON(t, "21", f.post(t, "/judge0/submissions/batch", map[string]any{"submissions": many}),
		http.StatusBadRequest, `{"error":"number of submissions in a batch should be less than or equal to 20"}`)
	wantJSON(t, "no tokens", f.do(t, http.MethodGet, "/judge0/submissions/batch", ""),
		http.StatusBadRequest, `{"error":"there should be at least one submission in a batch"}`)
	wantJSON(t, "21 tokens", f.do(t, http.MethodGet, "/judge0/submissions/batch?tokens="+strings.Repeat("a,", 21), ""),
		http.StatusBadRequest, `{"error":"number of submissions in a batch should be less than or equal to 20"}`)
}

func TestJudge0Languages(t *testing.T) {
	f := newJudge0Fixture(t, nil)
	wantJSON(t, "languages", f.do(t, http.MethodGet, "/judge0/languages", ""), http.StatusOK,
		`[{"id":54,"name":"C++ (GCC 14.2.0)"},{"id":71,"name":"Python (3.13.5)"},{"id":62,"name":"java (21.0.8)"}]`)
	wantJSON(t, "all", f.do(t, http.MethodGet, "/judge0/languages/all", ""), http.StatusOK,
		`[{"id":54,"name":"C++ (GCC 14.2.0)","is_archived":false},{"id":71,"name":"Python (3.13.5)","is_archived":false},
		  {"id":62,"name":"java (21.0.8)","is_archived":false}]`)
	wantJSON(t, "a compiled one", f.do(t, http.MethodGet, "/judge0/languages/54", ""), http.StatusOK,
		`{"id":54,"name":"C++ (GCC 14.2.0)","is_archived":false,"source_file":"main.cpp","compile_cmd":"g++ -O2 -o main main.cpp","run_cmd":"./main"}`)
	wantJSON(t, "an interpreted one", f.do(t, http.MethodGet, "/judge0/languages/71", ""), http.StatusOK,
		`{"id":71,"name":"Python (3.13.5)","is_archived":false,"source_file":"main.py","compile_cmd":null,"run_cmd":"python3 main.py"}`)
	wantJSON(t, "unknown", f.do(t, http.MethodGet, "/judge0/languages/999", ""), http.StatusNotFound, `{"error":"language with id 999 doesn't exist"}`)

	// Judge0's other ids of a language run its highest version, unlisted: C++ 105 (GCC 14.1.0
	// in Judge0 CE) is the cpp Runtime, which claims 54; Java 91 is the java Runtime, not Ready.
	wantJSON(t, "another id of C++", f.do(t, http.MethodGet, "/judge0/languages/105", ""), http.StatusOK,
		`{"id":105,"name":"C++ (GCC 14.2.0)","is_archived":false,"source_file":"main.cpp","compile_cmd":"g++ -O2 -o main main.cpp","run_cmd":"./main"}`)
	a := f.post(t, "/judge0/submissions?wait=true&fields=stdout,language", map[string]any{"source_code": j0Hello, "language_id": 105})
	wantJSON(t, "runs as C++", a, http.StatusCreated, `{"stdout":"Hello, World!\n","language":{"id":105,"name":"C++ (GCC 14.2.0)"}}`)
	if c := f.runner.calls()[0]; c.spec.Language != "cpp" || c.spec.Version != "14.2.0" {
		t.Errorf("id 105 ran %q %q, want cpp 14.2.0", c.spec.Language, c.spec.Version)
	}
	wantJSON(t, "another id of a language not Ready", f.post(t, "/judge0/submissions", map[string]any{"source_code": "x", "language_id": 91}),
		http.StatusUnprocessableEntity, `{"language_id":["language with id 91 is not available on this cluster: its Runtime java is not Ready (SmokeTestFailed: printed nothing)"]}`)
	wantJSON(t, "Python 2 is another language", f.post(t, "/judge0/submissions", map[string]any{"source_code": "x", "language_id": 70}),
		http.StatusUnprocessableEntity, `{"language_id":["language with id 70 doesn't exist"]}`)

	// Without Runtimes (or none for python), the operator's built-in python is 71.
	bare := newJudge0Fixture(t, func(o *Options) { o.Runtimes = nil })
	wantJSON(t, "built-in python", bare.do(t, http.MethodGet, "/judge0/languages", ""), http.StatusOK, `[{"id":71,"name":"Python (3.13)"}]`)
	for i, id := range []int{71, 109} {
		a := bare.post(t, "/judge0/submissions?wait=true&fields=stdout", map[string]any{"source_code": j0Hello, "language_id": id})
		wantJSON(t, "runs on built-in python", a, http.StatusCreated, `{"stdout":"Hello, World!\n"}`)
		if c := bare.runner.calls()[i]; c.spec.Language != "python" || c.spec.Version != "" {
			t.Errorf("built-in python (id %d) ran %q %q, want python and no version", id, c.spec.Language, c.spec.Version)
		}
	}
}

func TestJudge0StatusesAboutConfig(t *testing.T) {
	f := newJudge0Fixture(t, nil)
	wantJSON(t, "statuses", f.do(t, http.MethodGet, "/judge0/statuses", ""), http.StatusOK, `[
		{"id":1,"description":"In Queue"},{"id":2,"description":"Processing"},{"id":3,"description":"Accepted"},
		{"id":4,"description":"Wrong Answer"},{"id":5,"description":"Time Limit Exceeded"},
		{"id":6,"description":"Compilation Error"},{"id":7,"description":"Runtime Error (SIGSEGV)"},
		{"id":8,"description":"Runtime Error (SIGXFSZ)"},{"id":9,"description":"Runtime Error (SIGFPE)"},
		{"id":10,"description":"Runtime Error (SIGABRT)"},{"id":11,"description":"Runtime Error (NZEC)"},
		{"id":12,"description":"Runtime Error (Other)"},{"id":13,"description":"Internal Error"},
		{"id":14,"description":"Exec Format Error"}]`)
	about := f.do(t, http.MethodGet, "/judge0/about", "").json(t)
	if about["version"] != Judge0Version || about["homepage"] == nil || about["source_code"] == nil || about["maintainer"] == nil {
		t.Errorf("about: %v", about)
	}
	cfg := f.do(t, http.MethodGet, "/judge0/config_info", "").json(t)
	for k, want := range map[string]any{
		"cpu_time_limit": 10.0, "max_cpu_time_limit": 60.0, "wall_time_limit": 10.0, "max_wall_time_limit": 60.0,
		"memory_limit": 262144.0, "max_memory_limit": 1048576.0, "enable_wait_result": true, "enable_callbacks": false,
		"enable_compiler_options": false, "enable_additional_files": true, "allow_enable_network": false,
		"max_submission_batch_size": 20.0, "max_queue_size": float64(DefaultMaxPending), "enable_batched_submissions": true,
		"max_processes_and_or_threads": 64.0, "max_file_size": 16384.0,
	} {
		if cfg[k] != want {
			t.Errorf("config_info %s = %v, want %v", k, cfg[k], want)
		}
	}
}

// TestJudge0QueueFull: with every run slot of the replica taken, a submission gets
// Judge0's 503 "queue is full", and nothing is saved.
func TestJudge0QueueFull(t *testing.T) {
	f := newJudge0Fixture(t, func(o *Options) { o.MaxPending = 1 })
	first := f.post(t, "/judge0/submissions", map[string]any{"source_code": j0Blocks, "language_id": 71})
	<-f.runner.started
	a := f.post(t, "/judge0/submissions", map[string]any{"source_code": j0Hello, "language_id": 71})
	wantJSON(t, "queue full", a, http.StatusServiceUnavailable, `{"error":"queue is full"}`)
	if a.header.Get("Retry-After") == "" {
		t.Error("no Retry-After")
	}
	close(f.runner.release)
	<-f.srv.judge0Done(first.json(t)["token"].(string))
	if a := f.post(t, "/judge0/submissions?wait=true&fields=status_id", map[string]any{"source_code": j0Hello, "language_id": 71}); a.status != http.StatusCreated {
		t.Errorf("after the slot freed: %d %s", a.status, a.body)
	}
}

// TestJudge0Auth: Judge0 clients' X-Auth-Token is an API key; a key reads only its own
// submissions (another key's token is 404, as an unknown one), and its runs carry its id.
func TestJudge0Auth(t *testing.T) {
	alice, bob := newTestKey(t, "alice", defaultLimits), newTestKey(t, "bob", defaultLimits)
	r := &judge0Runner{release: make(chan struct{}), started: make(chan string, 1)}
	f := newAuthFixture(t, func(_ *fakeRunner, o *Options) { o.Runs = r; o.Runtimes = judge0TestRuntimes }, alice, bob)
	t.Cleanup(f.srv.Close)
	body := mustJSON(map[string]any{"source_code": j0Hello, "language_id": 71})
	if a := f.do(t, http.MethodPost, "/judge0/submissions?wait=true", body); a.status != http.StatusUnauthorized {
		t.Errorf("without a key: %d %s", a.status, a.body)
	}
	for _, path := range []string{"/judge0/languages", "/judge0/statuses", "/judge0/submissions/x"} {
		if a := f.do(t, http.MethodGet, path, ""); a.status != http.StatusUnauthorized {
			t.Errorf("GET %s without a key: %d", path, a.status)
		}
	}
	a := f.do(t, http.MethodPost, "/judge0/submissions?wait=true&fields=token,status_id", body, "X-Auth-Token", alice.key)
	if a.status != http.StatusCreated {
		t.Fatalf("with X-Auth-Token: %d %s", a.status, a.body)
	}
	token := a.json(t)["token"].(string)
	if c := r.calls()[0]; c.keyID != "alice" {
		t.Errorf("the run's key id is %q, want alice", c.keyID)
	}
	if a := f.do(t, http.MethodGet, "/judge0/submissions/"+token, "", "X-Auth-Token", alice.key); a.status != http.StatusOK {
		t.Errorf("alice reading hers: %d", a.status)
	}
	if a := f.do(t, http.MethodGet, "/judge0/submissions/"+token, "", "X-Auth-Token", bob.key); a.status != http.StatusNotFound {
		t.Errorf("bob reading alice's: %d %s, want 404", a.status, a.body)
	}
	wantJSON(t, "bob's batch", f.do(t, http.MethodGet, "/judge0/submissions/batch?fields=status_id&tokens="+token, "", "X-Auth-Token", bob.key),
		http.StatusOK, `{"submissions":[null]}`)
}

// zipOf is a zip archive of files (name, content pairs), in base64.
func zipOf(t *testing.T, files ...string) string {
	t.Helper()
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for i := 0; i < len(files); i += 2 {
		w, err := zw.Create(files[i])
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte(files[i+1])); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b.Bytes())
}

// TestJudge0AdditionalFiles: the zip's files are the CodeRun's files beside the program
// (always base64, whatever base64_encoded says); the program's own file is not
// overwritten; what a CodeRun cannot hold is a 422 naming additional_files.
func TestJudge0AdditionalFiles(t *testing.T) {
	f := newJudge0Fixture(t, nil)
	files := zipOf(t, "helper.py", "X = 42\n", "data.txt", "a,b\n", "main.py", "print('overwritten')", "lib/", "")
	a := f.post(t, "/judge0/submissions?wait=true&base64_encoded=true&fields=status_id,additional_files", map[string]any{
		"source_code": base64.StdEncoding.EncodeToString([]byte(j0Hello)), "language_id": 71, "additional_files": files})
	wantJSON(t, "with files", a, http.StatusCreated, mustJSON(map[string]any{"status_id": 3, "additional_files": files}))
	want := []execv1alpha1.SourceFile{{Name: "helper.py", Content: "X = 42\n"}, {Name: "data.txt", Content: "a,b\n"}}
	if got := f.runner.calls()[0].spec; !reflect.DeepEqual(got.Files, want) || got.Source != j0Hello {
		t.Errorf("ran source %q with files %+v; want the program and %+v", got.Source, got.Files, want)
	}

	many := make([]string, 0, 34)
	for i := range 17 {
		many = append(many, fmt.Sprintf("f%d.txt", i), "x")
	}
	for _, tc := range []struct{ name, files, want string }{
		{"not base64", "%%%", "is not valid base64: illegal base64 data at input byte 0"},
		{"not a zip", base64.StdEncoding.EncodeToString([]byte("hello")), "is not a zip archive: zip: not a valid zip file"},
		{"a folder", zipOf(t, "lib/helper.py", "x"), `holds "lib/helper.py" in a folder; only files at the top level of the zip are supported`},
		{"a bad name", zipOf(t, ".hidden", "x"), `holds a file named ".hidden"; names must be letters, digits, '.', '_' and '-' (at most 64), not starting with '.' or '-'`},
		{"too many", zipOf(t, many...), "holds more than 16 files"},
		{"too big", zipOf(t, "big.txt", strings.Repeat("x", 65536)), "holds more than source_code and files may hold together: 65536 bytes"},
		{"binary", zipOf(t, "blob.bin", "\x00\xff"), `holds "blob.bin", which is not UTF-8 text (files beside the program are text)`},
	} {
		a := f.post(t, "/judge0/submissions", map[string]any{"source_code": j0Hello, "language_id": 71, "additional_files": tc.files})
		wantJSON(t, tc.name, a, http.StatusUnprocessableEntity, mustJSON(map[string]any{"additional_files": []string{tc.want}}))
	}
}
