package httpapi

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	execv1alpha1 "github.com/coderun-dev/coderun/api/v1alpha1"
	"github.com/coderun-dev/coderun/internal/runs"
	"github.com/coderun-dev/coderun/internal/runtimes"
	"github.com/coderun-dev/coderun/internal/testenv"
)

// The tests of the language fields (native API) and of the Piston API run on a catalog
// of Runtimes and a runner that plays the operator for several languages: a program's
// source names what the operator would report for it.

// staticCatalog plays internal/runtimes.Catalog.
type staticCatalog struct {
	list   []execv1alpha1.Runtime
	synced bool
	reason string
}

func (c *staticCatalog) Runtimes() []execv1alpha1.Runtime {
	return append([]execv1alpha1.Runtime(nil), c.list...)
}
func (c *staticCatalog) Synced() bool            { return c.synced }
func (c *staticCatalog) NotSyncedReason() string { return c.reason }

// langRuntime is a Runtime of language at version; compiled ones compile within 20 s and
// 512Mi, as the shipped C++.
func langRuntime(name, language, version string, ready, compiled bool, aliases ...string) execv1alpha1.Runtime {
	rt := execv1alpha1.Runtime{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: execv1alpha1.RuntimeSpec{
			Language: language, Version: version, Aliases: aliases, SourceFile: "main." + language,
			Image: "localhost/coderun-" + language + ":dev", Run: execv1alpha1.RunStep{Command: []string{"run"}},
		},
	}
	if compiled {
		rt.Spec.SourceFile = "main.cpp"
		rt.Spec.Compile = &execv1alpha1.CompileStep{Command: []string{"g++", "main.cpp"}, TimeoutSeconds: 20, Memory: ptr.To(resource.MustParse("512Mi"))}
	}
	if ready {
		rt.Status.Conditions = []metav1.Condition{{Type: execv1alpha1.RuntimeConditionReady, Status: metav1.ConditionTrue, Reason: execv1alpha1.RuntimeReasonSmokeTestPassed}}
	} else {
		rt.Status.Conditions = []metav1.Condition{{Type: execv1alpha1.RuntimeConditionReady, Status: metav1.ConditionFalse, Reason: execv1alpha1.RuntimeReasonSmokeTestFailed}}
	}
	return rt
}

// testCatalog: python 3.13.5 and 3.11.2, cpp 14.2.0 (compiled), and cobol, not Ready.
func testCatalog() *staticCatalog {
	return &staticCatalog{synced: true, list: []execv1alpha1.Runtime{
		langRuntime("python-3-13", "python", "3.13.5", true, false, "py", "py3", "python3"),
		langRuntime("cpp-14-2", "cpp", "14.2.0", true, true, "c++", "g++"),
		langRuntime("python-3-11", "python", "3.11.2", true, false, "py"),
		langRuntime("cobol-3-2", "cobol", "3.2.0", false, false),
	}}
}

// Programs of langRunner, by what the operator reports for them.
const (
	progHello        = "print('Hello, World!')"
	progEcho         = "# echoes its stdin"
	progExit3        = "exit(3)"
	progSegfault     = "# dies of SIGSEGV"
	progBusy         = "# runs past its timeout"
	progHog          = "# runs past its memory"
	progFlood        = "# floods stdout"
	progFloodStderr  = "# floods stderr"
	progCompileError = "int main() { return 0 }"
	progCompiled     = "int main() { puts(\"OK\"); }"
	progSystemError  = "# the node failed"
	progRejected     = "# the operator refuses it"
	progDeleted      = "# deleted mid-run"
)

const compilerError = "main.cpp: In function 'int main()':\nmain.cpp:1:23: error: expected ';' before '}' token\n"

// langRunner plays the operator: it resolves the language over its catalog, as the
// operator does, and answers by the program.
type langRunner struct {
	catalog *staticCatalog
	mu      sync.Mutex
	specs   []execv1alpha1.CodeRunSpec
}

func (r *langRunner) Ping(context.Context) error { return nil }
func (r *langRunner) Synced() bool               { return true }

func (r *langRunner) Specs() []execv1alpha1.CodeRunSpec {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]execv1alpha1.CodeRunSpec(nil), r.specs...)
}

func compileOK(c *execv1alpha1.CodeRunResult) *execv1alpha1.CodeRunResult {
	c.Compile = &execv1alpha1.CompileResult{
		Reason: execv1alpha1.ReasonCompleted, ExitCode: ptr.To[int32](0),
		WallTime: &metav1.Duration{Duration: 812 * time.Millisecond}, CPUTime: &metav1.Duration{Duration: 640 * time.Millisecond},
		PeakMemory: ptr.To(resource.MustParse("90000Ki")),
	}
	return c
}

func (r *langRunner) Run(_ context.Context, spec execv1alpha1.CodeRunSpec, _ time.Duration) (*execv1alpha1.CodeRun, error) {
	r.mu.Lock()
	r.specs = append(r.specs, spec)
	name := fmt.Sprintf("%s%05d", runs.NamePrefix, len(r.specs))
	r.mu.Unlock()
	run := &execv1alpha1.CodeRun{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "coderun-runs"}, Spec: spec}
	rt, err := runtimes.Resolve(r.catalog.Runtimes(), string(spec.Language), spec.Version)
	switch {
	case err != nil:
		run.Status.Result = testenv.Failed(execv1alpha1.ReasonRejected, nil, "", err.Error())
		return run, nil
	case !runtimes.Ready(rt):
		run.Status.Result = testenv.Failed(execv1alpha1.ReasonRejected, nil, "", "runtime "+rt.Name+" is not Ready: its smoke test failed")
		return run, nil
	}
	run.Status.Runtime = &execv1alpha1.RuntimeRef{Name: rt.Name, Language: rt.Spec.Language, Version: rt.Spec.Version, Image: rt.Spec.Image}
	var res *execv1alpha1.CodeRunResult
	switch spec.Source {
	case progHello:
		res = testenv.Completed("Hello, World!\n")
	case progExit3:
		res = testenv.Failed(execv1alpha1.ReasonNonZeroExit, ptr.To[int32](3), "", "")
	case progSegfault:
		res = testenv.Failed(execv1alpha1.ReasonSignaled, ptr.To[int32](139), "", "the program was killed by signal SIGSEGV")
		res.Signal = "SIGSEGV"
	case progBusy:
		res = testenv.Failed(execv1alpha1.ReasonTimeLimitExceeded, ptr.To[int32](137), "", "the program ran longer than its 3s timeout and was killed")
		res.Signal = "SIGKILL"
	case progHog:
		res = testenv.Failed(execv1alpha1.ReasonMemoryLimitExceeded, ptr.To[int32](137), "", "the program used more than its 64Mi of memory and was killed")
		res.Signal = "SIGKILL"
	case progFlood:
		res = testenv.Failed(execv1alpha1.ReasonOutputLimitExceeded, ptr.To[int32](137), "", "the program wrote more than 64KiB")
		res.Stdout, res.Output, res.Stderr, res.StdoutTruncated = "yyyy", "yyyy", "", true
	case progFloodStderr:
		res = testenv.Failed(execv1alpha1.ReasonOutputLimitExceeded, ptr.To[int32](137), "eeee", "the program wrote more than 64KiB")
		res.StderrTruncated = true
	case progCompileError:
		res = &execv1alpha1.CodeRunResult{Reason: execv1alpha1.ReasonCompileError, Message: "the compiler exited with 1",
			Compile: &execv1alpha1.CompileResult{
				Reason: execv1alpha1.ReasonNonZeroExit, ExitCode: ptr.To[int32](1), Stderr: compilerError, Output: compilerError,
				WallTime: &metav1.Duration{Duration: 402 * time.Millisecond}, CPUTime: &metav1.Duration{Duration: 350 * time.Millisecond},
				PeakMemory: ptr.To(resource.MustParse("60000Ki")),
			}}
	case progCompiled:
		res = compileOK(testenv.Completed("OK\n"))
	case progSystemError:
		res = testenv.Failed(execv1alpha1.ReasonSystemError, nil, "", "the run's pod could not be scheduled within 2m0s")
	case progRejected:
		res = testenv.Failed(execv1alpha1.ReasonRejected, nil, "", "compileLimits.timeoutSeconds 30 is above the Runtime's 20")
		run.Status.Runtime = nil
	case progDeleted:
		return run, runs.ErrDeleted
	default: // progEcho and anything else: prints its stdin
		res = testenv.Completed(spec.Stdin)
	}
	if rt.Spec.Compile != nil && res.Compile == nil && res.ExitCode != nil {
		compileOK(res)
	}
	run.Status.Result = res
	return run, nil
}

// languageFixture is the API on testCatalog and langRunner.
func languageFixture(t testing.TB, change func(*staticCatalog, *Options)) (*fixture, *langRunner) {
	cat := testCatalog()
	runner := &langRunner{catalog: cat}
	f := newFixture(t, func(_ *fakeRunner, o *Options) {
		o.Runs, o.Runtimes = runner, cat
		if change != nil {
			change(cat, o)
		}
	})
	return f, runner
}

// TestLanguageFields: the native API's language, version, files, args and compile limits
// reach the CodeRun, and the answer names the Runtime that ran and its compile step.
func TestLanguageFields(t *testing.T) {
	f, runner := languageFixture(t, nil)
	a := f.do(t, "POST", "/execute", mustJSON(map[string]any{"code": progCompiled, "language": "c++", "version": "14.x",
		"files": []any{map[string]string{"name": "util.h", "content": "#pragma once\n"}}, "args": []string{"-v"},
		"compile_timeout": 15, "compile_memory": "256Mi"}))
	got := a.json(t)
	compile, _ := got["compile"].(map[string]any)
	if a.status != 200 || got["language"] != "cpp" || got["version"] != "14.2.0" || got["output"] != "OK\n" || got["reason"] != "Completed" ||
		compile == nil || compile["exit_code"] != 0.0 || compile["reason"] != "Completed" || compile["time"] != 0.812 || compile["cpu_time"] != 0.64 ||
		compile["memory"] != 90000.0 || compile["output"] != "" || compile["truncated"] != false {
		t.Errorf("C++: %d %s", a.status, a.body)
	}
	s := runner.Specs()[0]
	if s.Language != "c++" || s.Version != "14.x" || mustJSON(s.Files) != `[{"name":"util.h","content":"#pragma once\n"}]` || mustJSON(s.Args) != `["-v"]` ||
		*s.CompileLimits.TimeoutSeconds != 15 || s.CompileLimits.Memory.String() != "256Mi" {
		t.Errorf("spec %+v compile limits %+v", s, s.CompileLimits)
	}

	// Interpreted: compile is null; the seed's request (code only) answers as before, plus
	// the language and version.
	a = f.do(t, "POST", "/execute", mustJSON(map[string]string{"code": progHello}))
	if got := a.json(t); a.status != 200 || got["compile"] != nil || got["language"] != "python" || got["version"] != "3.13.5" || got["output"] != "Hello, World!\n" {
		t.Errorf("python: %d %s", a.status, a.body)
	}
	if _, ok := a.json(t)["compile"]; !ok {
		t.Error("compile is left out, want null")
	}

	// A compile error: the program did not run; the compiler's messages are in compile.
	a = f.do(t, "POST", "/execute", mustJSON(map[string]any{"code": progCompileError, "language": "cpp"}))
	got = a.json(t)
	compile, _ = got["compile"].(map[string]any)
	if a.status != 200 || got["reason"] != "CompileError" || got["status"] != "Failed" || got["exit_code"] != nil || got["output"] != "" ||
		compile == nil || compile["output"] != compilerError || compile["stderr"] != compilerError || compile["exit_code"] != 1.0 || compile["reason"] != "NonZeroExit" {
		t.Errorf("compile error: %d %s", a.status, a.body)
	}

	// A language no Runtime offers: Rejected, as the operator answers it, naming those there are.
	a = f.do(t, "POST", "/execute", mustJSON(map[string]any{"code": "x", "language": "brainfuck"}))
	got = a.json(t)
	if a.status != 200 || got["reason"] != "Rejected" || got["status"] != "Failed" || got["exit_code"] != nil || got["language"] != "brainfuck" || got["version"] != "" ||
		got["message"] != `no runtime for language "brainfuck"; available: cobol, cpp, python` {
		t.Errorf("unknown language: %d %s", a.status, a.body)
	}

	// /submit keeps the language and version that ran, and the compiler's output.
	a = f.do(t, "POST", "/submit", mustJSON(map[string]any{"code": progCompiled, "language": "g++"}))
	id, _ := a.json(t)["submission_id"].(float64)
	sub := f.do(t, "GET", "/submissions/"+fmt.Sprint(int(id)), "").json(t)
	if id < 1 || sub["language"] != "cpp" || sub["version"] != "14.2.0" || sub["compile_output"] != "" || sub["code"] != progCompiled {
		t.Errorf("submission %v of %s", sub, a.body)
	}
}

func TestListRuntimes(t *testing.T) {
	f, _ := languageFixture(t, nil)
	a := f.do(t, "GET", "/runtimes", "")
	want := `[{"language":"cobol","version":"3.2.0","aliases":[],"display_name":"cobol 3.2.0","compiled":false,"ready":false},` +
		`{"language":"cpp","version":"14.2.0","aliases":["c++","g++"],"display_name":"cpp 14.2.0","compiled":true,"ready":true},` +
		`{"language":"python","version":"3.13.5","aliases":["py","py3","python3"],"display_name":"python 3.13.5","compiled":false,"ready":true},` +
		`{"language":"python","version":"3.11.2","aliases":["py"],"display_name":"python 3.11.2","compiled":false,"ready":true}]`
	if a.status != 200 || strings.TrimSpace(string(a.body)) != want {
		t.Errorf("GET /runtimes: %d %s\nwant %s", a.status, a.body, want)
	}
	if ready := f.do(t, "GET", "/readyz", ""); ready.status != 200 || !strings.Contains(string(ready.body), `"runtimes":"ok"`) {
		t.Errorf("/readyz: %d %s", ready.status, ready.body)
	}

	// No Runtime offers python: the operator's built-in one is listed.
	f, _ = languageFixture(t, func(c *staticCatalog, _ *Options) {
		c.list = []execv1alpha1.Runtime{langRuntime("cpp-14-2", "cpp", "14.2.0", true, true, "c++")}
		c.list[0].Spec.DisplayName = "C++ (GCC 14.2.0)"
	})
	a = f.do(t, "GET", "/runtimes", "")
	want = `[{"language":"cpp","version":"14.2.0","aliases":["c++"],"display_name":"C++ (GCC 14.2.0)","compiled":true,"ready":true},` +
		`{"language":"python","version":"","aliases":["python3"],"display_name":"Python 3 (built-in)","compiled":false,"ready":true}]`
	if a.status != 200 || strings.TrimSpace(string(a.body)) != want {
		t.Errorf("GET /runtimes without python: %d %s\nwant %s", a.status, a.body, want)
	}

	// The catalog not synced (no Runtime CRD): /runtimes is 503 saying why; the replica
	// stays ready, reporting it.
	f, _ = languageFixture(t, func(c *staticCatalog, _ *Options) { c.synced, c.reason = false, "the API server has no Runtime kind" })
	a = f.do(t, "GET", "/runtimes", "")
	if a.status != 503 || !strings.Contains(a.errorMessage(t), "the API server has no Runtime kind") || a.header.Get("Retry-After") == "" {
		t.Errorf("GET /runtimes unsynced: %d %s", a.status, a.body)
	}
	if ready := f.do(t, "GET", "/readyz", ""); ready.status != 200 || !strings.Contains(string(ready.body), `"runtimes":"not synced yet: the API server has no Runtime kind"`) {
		t.Errorf("/readyz unsynced: %d %s", ready.status, ready.body)
	}
}
