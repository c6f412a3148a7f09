//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	execv1alpha1 "github.com/coderun-dev/coderun/api/v1alpha1"
)

// minReadyRuntimes is the bar: `kubectl get runtimes` shows at least this many Ready
// on a cluster with every shipped runtime installed (make dev RUNTIMES=all, as in CI).
const minReadyRuntimes = 20

// requireAllRuntimes says that every runtime of runtimeCases must be installed and Ready:
// make test-e2e RUNTIMES=all sets E2E_REQUIRE_ALL_RUNTIMES=true. Otherwise the tests cover
// the runtimes the cluster has (python alone after a plain make dev).
func requireAllRuntimes() bool { return os.Getenv("E2E_REQUIRE_ALL_RUNTIMES") == "true" }

// onlyRuntimes is the set of rows E2E_RUNTIMES names (comma-separated row names), or nil
// for every row: hack/e2e-gvisor.sh runs the per-runtime tests again under gVisor for a
// few representative runtimes only, to keep CI inside its time.
func onlyRuntimes() map[string]bool {
	list := os.Getenv("E2E_RUNTIMES")
	if list == "" {
		return nil
	}
	only := map[string]bool{}
	for name := range strings.SplitSeq(list, ",") {
		only[strings.TrimSpace(name)] = true
	}
	return only
}

// runtimeSlots returns the semaphore that lets as many runtimes' subtests run at once as
// the operator has run slots: more would only queue their runs and race their timeouts.
func runtimeSlots() chan struct{} {
	return make(chan struct{}, max(1, operatorConfig.MaxConcurrentRuns))
}

// takeRuntimeSlot makes t parallel, waits for one of slots (held until t ends) and
// returns the context that bounds the runtime's programs.
func takeRuntimeSlot(t *testing.T, slots chan struct{}) context.Context {
	t.Helper()
	t.Parallel()
	slots <- struct{}{}
	t.Cleanup(func() { <-slots })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// readyTimeout bounds the wait for the installed Runtimes' smoke tests: a fresh install of
// all 26 runs one cold CodeRun each, compilers included, through the cluster's run slots.
const readyTimeout = 10 * time.Minute

var (
	runtimesOnce  sync.Once
	runtimesReady map[string]execv1alpha1.Runtime // by runtimeCase.Name
	runtimesErr   error
)

// installedRuntimeCases waits (once per suite) until every installed Runtime that a row of
// runtimeCases describes is Ready or has failed its smoke test, and returns the rows whose
// Runtime is Ready (a Runtime of the row's language at the row's version). With
// E2E_REQUIRE_ALL_RUNTIMES=true a row without a Ready Runtime fails the test.
func installedRuntimeCases(t *testing.T) []runtimeCase {
	t.Helper()
	runtimesOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
		defer cancel()
		runtimesReady, runtimesErr = waitRuntimesSettled(ctx, t)
	})
	if runtimesErr != nil {
		t.Fatalf("waiting for the Runtimes' smoke tests: %v", runtimesErr)
	}
	var cases []runtimeCase
	only := onlyRuntimes()
	for _, c := range runtimeCases {
		if only != nil && !only[c.Name] {
			continue
		}
		if _, ok := runtimesReady[c.Name]; ok {
			cases = append(cases, c)
		} else if requireAllRuntimes() {
			t.Errorf("runtime %s (%s %s): no Ready Runtime, and E2E_REQUIRE_ALL_RUNTIMES=true", c.Name, c.Language, c.Version)
		}
	}
	if len(cases) == 0 {
		t.Fatal("no Runtime of runtimeCases is Ready on this cluster")
	}
	return cases
}

// waitRuntimesSettled polls the Runtimes until each one a row describes has settled (Ready
// True, or Ready False with reason SmokeTestFailed, for its current generation), logging
// progress, and returns the Ready ones by row name.
func waitRuntimesSettled(ctx context.Context, t *testing.T) (map[string]execv1alpha1.Runtime, error) {
	start := time.Now()
	var ready map[string]execv1alpha1.Runtime
	var pending []string
	lastLog := time.Now()
	err := wait.PollUntilContextCancel(ctx, 2*time.Second, true, func(ctx context.Context) (bool, error) {
		var list execv1alpha1.RuntimeList
		if err := k8s.List(ctx, &list); err != nil {
			t.Logf("listing Runtimes: %v", err)
			return false, nil
		}
		ready, pending = map[string]execv1alpha1.Runtime{}, nil
		for _, c := range runtimeCases {
			rt, found := runtimeOf(list.Items, c)
			if !found {
				continue
			}
			cond := meta.FindStatusCondition(rt.Status.Conditions, execv1alpha1.RuntimeConditionReady)
			switch {
			case cond == nil || cond.ObservedGeneration != rt.Generation:
				pending = append(pending, rt.Name)
			case cond.Status == metav1.ConditionTrue:
				ready[c.Name] = rt
			case cond.Reason != execv1alpha1.RuntimeReasonSmokeTestFailed:
				pending = append(pending, rt.Name)
			}
		}
		if len(pending) > 0 && time.Since(lastLog) > 30*time.Second {
			t.Logf("%s: %d Runtimes Ready, waiting for the smoke tests of %s", time.Since(start).Round(time.Second), len(ready), strings.Join(pending, ", "))
			lastLog = time.Now()
		}
		return len(pending) == 0, nil
	})
	if err != nil {
		return nil, fmt.Errorf("after %s, smoke tests still running for %s: %w", time.Since(start).Round(time.Second), strings.Join(pending, ", "), err)
	}
	t.Logf("%d Runtimes of the table Ready after %s", len(ready), time.Since(start).Round(time.Second))
	return ready, nil
}

// runtimeOf finds the Runtime of a row: its language, at the row's version.
func runtimeOf(items []execv1alpha1.Runtime, c runtimeCase) (execv1alpha1.Runtime, bool) {
	for _, rt := range items {
		if rt.Spec.Language == c.Language && rt.Spec.Version == c.Version {
			return rt, true
		}
	}
	return execv1alpha1.Runtime{}, false
}

// TestRuntimesReady: every installed Runtime of the table passes its smoke test, and what
// `kubectl get runtimes` prints says so; with every shipped runtime installed, at least
// minReadyRuntimes are Ready.
func TestRuntimesReady(t *testing.T) {
	cases := installedRuntimeCases(t)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var list execv1alpha1.RuntimeList
	if err := k8s.List(ctx, &list); err != nil {
		t.Fatal(err)
	}
	var failed []string
	for _, rt := range list.Items {
		cond := meta.FindStatusCondition(rt.Status.Conditions, execv1alpha1.RuntimeConditionReady)
		if cond == nil || cond.Status != metav1.ConditionTrue {
			failed = append(failed, fmt.Sprintf("%s: %+v", rt.Name, cond))
		}
	}
	if len(failed) > 0 {
		t.Errorf("Runtimes not Ready:\n%s", strings.Join(failed, "\n"))
	}

	out, err := kubectl(ctx, "", "get", "runtimes", "--no-headers")
	if err != nil {
		t.Fatalf("kubectl get runtimes: %v\n%s", err, out)
	}
	readyLines := 0
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		// NAME LANGUAGE VERSION READY REASON AGE
		if f := strings.Fields(line); len(f) >= 5 && f[3] == "True" && f[4] == execv1alpha1.RuntimeReasonSmokeTestPassed {
			readyLines++
		}
	}
	t.Logf("kubectl get runtimes: %d of %d Ready\n%s", readyLines, len(list.Items), out)
	if readyLines < len(cases) {
		t.Errorf("kubectl get runtimes shows %d Ready, want at least the %d of the table that are installed", readyLines, len(cases))
	}
	if requireAllRuntimes() && readyLines < minReadyRuntimes {
		t.Errorf("kubectl get runtimes shows %d Ready, want at least %d", readyLines, minReadyRuntimes)
	}
}

// nativeAnswer is /execute's answer with the fields of runtimes (docs/api.md).
type nativeAnswer struct {
	runAnswer
	Language string         `json:"language"`
	Version  string         `json:"version"`
	Compile  *compileAnswer `json:"compile"`
}

// compileAnswer is the compile step's result in /execute's answer.
type compileAnswer struct {
	Output   string  `json:"output"`
	Stdout   string  `json:"stdout"`
	Stderr   string  `json:"stderr"`
	ExitCode *int32  `json:"exit_code"`
	Reason   string  `json:"reason"`
	Message  string  `json:"message"`
	Time     float64 `json:"time"`
	Memory   int64   `json:"memory"`
}

// executeIn posts a program of the row's language and version range to /execute.
func executeIn(ctx context.Context, t *testing.T, c runtimeCase, code, stdin string) nativeAnswer {
	t.Helper()
	body, err := json.Marshal(map[string]string{"language": c.Language, "version": c.VersionRange, "code": code, "stdin": stdin})
	if err != nil {
		t.Fatal(err)
	}
	var ans nativeAnswer
	start := time.Now()
	status := call(ctx, t, frontURL(t), "POST", "/execute", string(body), &ans)
	if status != 200 {
		t.Fatalf("POST /execute (%s %s): %d %+v", c.Language, c.VersionRange, status, ans)
	}
	if ans.Language != c.Language || ans.Version != c.Version {
		t.Errorf("ran by %s %s, want %s %s", ans.Language, ans.Version, c.Language, c.Version)
	}
	t.Logf("%s in %s: %s exit %s, compile %s", ans.Name, time.Since(start).Round(time.Millisecond), ans.Reason, ptrString(ans.ExitCode), compileSummary(ans.Compile))
	return ans
}

func compileSummary(c *compileAnswer) string {
	if c == nil {
		return "none"
	}
	return fmt.Sprintf("%s exit %s in %.2fs, %d KiB", c.Reason, ptrString(c.ExitCode), c.Time, c.Memory)
}

// expectCompiled checks the compile step of a program that compiles: there is one exactly
// for the compiled languages, and it succeeded.
func expectCompiled(t *testing.T, c runtimeCase, ans nativeAnswer) {
	t.Helper()
	switch {
	case !c.Compiled() && ans.Compile != nil:
		t.Errorf("compile = %+v, want null (%s has no compile step)", *ans.Compile, c.Language)
	case c.Compiled() && ans.Compile == nil:
		t.Errorf("compile = null, want the compile step's result")
	case c.Compiled() && (ans.Compile.Reason != "Completed" || ans.Compile.ExitCode == nil || *ans.Compile.ExitCode != 0):
		t.Errorf("compile = %+v, want Completed with exit code 0", *ans.Compile)
	}
}

// TestRuntimes runs each installed runtime's programs through the native POST /execute:
// hello world, stdin echo, exit code 3 and, for compiled languages, a compile error whose
// compiler messages come back in compile and never in the program's output. Each runtime
// is a subtest; as many run at once as the cluster has run slots. The time each took is
// logged at the end (the README's per-runtime numbers).
func TestRuntimes(t *testing.T) {
	cases := installedRuntimeCases(t)
	slots := runtimeSlots()
	var mu sync.Mutex
	took := map[string]time.Duration{}
	t.Cleanup(func() {
		names := make([]string, 0, len(took))
		for n := range took {
			names = append(names, n)
		}
		sort.Strings(names)
		var b strings.Builder
		for _, n := range names {
			fmt.Fprintf(&b, "\n  %-11s %6.1fs", n, took[n].Seconds())
		}
		t.Logf("time per runtime (its programs one after another, %d runtimes at once):%s", cap(slots), b.String())
	})

	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			ctx := takeRuntimeSlot(t, slots)
			start := time.Now()
			defer func() {
				mu.Lock()
				took[c.Name] = time.Since(start)
				mu.Unlock()
			}()

			ans := executeIn(ctx, t, c, c.Hello, "")
			if ans.Reason != "Completed" || ans.Stdout != helloStdout {
				t.Errorf("hello world: %s exit %s stdout %q stderr %q, want Completed %q", ans.Reason, ptrString(ans.ExitCode), ans.Stdout, ans.Stderr, helloStdout)
			}
			expectCompiled(t, c, ans)

			ans = executeIn(ctx, t, c, c.Echo, echoStdin)
			if ans.Reason != "Completed" || ans.Stdout != echoStdin {
				t.Errorf("stdin echo: %s exit %s stdout %q stderr %q, want Completed %q", ans.Reason, ptrString(ans.ExitCode), ans.Stdout, ans.Stderr, echoStdin)
			}
			expectCompiled(t, c, ans)

			ans = executeIn(ctx, t, c, c.Exit3, "")
			if ans.Reason != "NonZeroExit" || ans.ExitCode == nil || *ans.ExitCode != 3 {
				t.Errorf("exit 3: %s exit %s stderr %q, want NonZeroExit 3", ans.Reason, ptrString(ans.ExitCode), ans.Stderr)
			}
			expectCompiled(t, c, ans)

			if !c.Compiled() {
				return
			}
			ans = executeIn(ctx, t, c, c.CompileError, "")
			switch {
			case ans.Reason != "CompileError":
				t.Errorf("compile error: reason %s, want CompileError (compile %+v)", ans.Reason, ans.Compile)
			case ans.Compile == nil:
				t.Errorf("compile error: compile = null, want the compiler's result")
			case !strings.Contains(ans.Compile.Output, c.CompileErrorOutput):
				t.Errorf("compile error: compile output %q does not contain %q", ans.Compile.Output, c.CompileErrorOutput)
			case ans.Compile.ExitCode != nil && *ans.Compile.ExitCode == 0:
				t.Errorf("compile error: the compiler exited with 0: %+v", *ans.Compile)
			}
			if ans.Output != "" || ans.Stdout != "" || slices.Contains([]string{"Completed", "NonZeroExit"}, ans.Reason) {
				t.Errorf("compile error: the program's output is %q (reason %s), want nothing: it must not run, and compiler messages go to compile", ans.Output, ans.Reason)
			}
		})
	}
}
