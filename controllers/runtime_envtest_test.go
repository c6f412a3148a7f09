package controllers

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	execv1alpha1 "github.com/coderun-dev/coderun/api/v1alpha1"
	"github.com/coderun-dev/coderun/internal/report"
)

// The tests of Runtimes: how runs resolve to one, the Job of a compiled language, compile
// results, smoke tests and pools per Runtime. Runtimes are cluster-scoped, so each test
// deletes those it created; the built-in python runs whenever none offers python.

// testRuntime is an interpreted Runtime: its image runs `<language> main.<language>`.
func testRuntime(name, language, version string, aliases ...string) *execv1alpha1.Runtime {
	return &execv1alpha1.Runtime{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: execv1alpha1.RuntimeSpec{
			Language: language, Version: version, Aliases: aliases,
			Image:      "localhost/coderun-" + name + ":0.1.0",
			SourceFile: "main." + language,
			Run:        execv1alpha1.RunStep{Command: []string{language, "main." + language}},
			SmokeTest:  execv1alpha1.SmokeTest{Source: "print hi", ExpectedStdout: "hi\n"},
		},
	}
}

// cppRuntime is a compiled Runtime with its own sizes and environment.
func cppRuntime() *execv1alpha1.Runtime {
	rt := testRuntime("cpp-14", "cpp", "14.2.0", "c++", "g++")
	rt.Spec.SourceFile = "main.cpp"
	rt.Spec.Compile = &execv1alpha1.CompileStep{
		Command:        []string{"g++", "-O2", "-o", "main", "main.cpp"},
		TimeoutSeconds: 30,
		Memory:         ptr.To(resource.MustParse("1Gi")),
	}
	rt.Spec.Run = execv1alpha1.RunStep{Command: []string{"./main"}}
	rt.Spec.Env = []execv1alpha1.EnvVar{{Name: "LANG", Value: "C.UTF-8"}}
	rt.Spec.ScratchSize = ptr.To(resource.MustParse("64Mi"))
	rt.Spec.MaxProcesses = ptr.To[int32](128)
	return rt
}

// createRuntime creates rt with a Ready condition (ready nil: none, as before its smoke
// test ran) and deletes it when the test ends.
func createRuntime(t *testing.T, rt *execv1alpha1.Runtime, ready *metav1.Condition) *execv1alpha1.Runtime {
	t.Helper()
	needEnvtest(t)
	ctx := context.Background()
	if err := k8sClient.Create(ctx, rt); err != nil {
		t.Fatalf("creating Runtime %s: %v", rt.Name, err)
	}
	t.Cleanup(func() {
		if err := k8sClient.Delete(context.Background(), rt); client.IgnoreNotFound(err) != nil {
			t.Errorf("deleting Runtime %s: %v", rt.Name, err)
		}
	})
	if ready != nil {
		ready.LastTransitionTime = metav1.Now()
		meta.SetStatusCondition(&rt.Status.Conditions, *ready)
		if err := k8sClient.Status().Update(ctx, rt); err != nil {
			t.Fatalf("writing Runtime %s status: %v", rt.Name, err)
		}
	}
	return rt
}

func readyCondition() *metav1.Condition {
	return &metav1.Condition{Type: execv1alpha1.RuntimeConditionReady, Status: metav1.ConditionTrue,
		Reason: execv1alpha1.RuntimeReasonSmokeTestPassed, Message: "the smoke test printed what it should"}
}

// waitForRuntimeCache waits until the operator's cache shows n Runtimes.
func waitForRuntimeCache(t *testing.T, op *operator, n int) {
	t.Helper()
	eventually(t, 10*time.Second, "the operator to see the Runtimes", func() (bool, error) {
		list, err := listRuntimes(context.Background(), op.reconciler.Client)
		return len(list) == n, err
	})
}

// TestRunsResolveTheirRuntime creates Runtimes and runs that ask for languages and versions
// in every way, and checks what a user sees: the run's Runtime, or Rejected with a message
// that says what there is.
func TestRunsResolveTheirRuntime(t *testing.T) {
	cfg := testConfig()
	cfg.MaxConcurrentRuns = 8 // admitted runs keep their slots: no kubelet ends them
	op := startOperator(t, cfg)
	createRuntime(t, testRuntime("python-3-11", "python", "3.11.9", "py"), readyCondition())
	createRuntime(t, testRuntime("python-3-13", "python", "3.13.5", "py", "python3"), readyCondition())
	createRuntime(t, cppRuntime(), readyCondition())
	createRuntime(t, testRuntime("ruby", "ruby", "3.3.8"), &metav1.Condition{Type: execv1alpha1.RuntimeConditionReady,
		Status: metav1.ConditionFalse, Reason: execv1alpha1.RuntimeReasonSmokeTestFailed,
		Message: `the smoke test runs/smoke-ruby-0123456789 ended with NonZeroExit, exit code 127; it printed: ruby: not found`})
	createRuntime(t, testRuntime("lua", "lua", "5.4.7"), nil) // its smoke test has not run
	createRuntime(t, testRuntime("perl", "perl", "5.40.1"), &metav1.Condition{Type: execv1alpha1.RuntimeConditionReady,
		Status: metav1.ConditionFalse, Reason: execv1alpha1.RuntimeReasonSmokeTestRunning, Message: "the smoke test runs/smoke-perl-0123456789 is running"})
	waitForRuntimeCache(t, op, 6)

	rejectedWith := func(t *testing.T, run *execv1alpha1.CodeRun, want ...string) {
		t.Helper()
		got := waitForResult(t, op.create(t, run))
		if got.Status.Result.Reason != execv1alpha1.ReasonRejected || got.Status.Phase != execv1alpha1.PhaseFailed {
			t.Fatalf("reason %s phase %s, want Rejected and Failed", got.Status.Result.Reason, got.Status.Phase)
		}
		for _, w := range want {
			if !strings.Contains(got.Status.Result.Message, w) {
				t.Errorf("message %q does not contain %q", got.Status.Result.Message, w)
			}
		}
		if c := meta.FindStatusCondition(got.Status.Conditions, execv1alpha1.ConditionAdmitted.String()); c == nil || c.Status != metav1.ConditionFalse {
			t.Errorf("Admitted condition %+v, want False", c)
		}
		if _, err := getJob(run); err == nil {
			t.Error("a rejected run got a Job")
		}
	}
	admittedTo := func(t *testing.T, run *execv1alpha1.CodeRun, runtime string) (*execv1alpha1.CodeRun, *batchv1.Job) {
		t.Helper()
		op.create(t, run)
		job := waitForJob(t, run)
		var got *execv1alpha1.CodeRun
		eventually(t, 10*time.Second, "the run's status to name its Runtime", func() (bool, error) {
			got = getRun(t, run)
			return got.Status.Runtime != nil, nil
		})
		if got.Status.Runtime.Name != runtime {
			t.Fatalf("status.runtime %+v, want %s", got.Status.Runtime, runtime)
		}
		if img := job.Spec.Template.Spec.Containers[0].Image; img != "localhost/coderun-"+runtime+":0.1.0" {
			t.Errorf("image %s, want the image of %s", img, runtime)
		}
		return got, job
	}
	run := func(name, language, version string) *execv1alpha1.CodeRun {
		r := op.newRun(name, "print 1")
		r.Spec.Language, r.Spec.Version = execv1alpha1.Language(language), version
		return r
	}

	t.Run("unknown language", func(t *testing.T) {
		rejectedWith(t, run("cobol", "cobol", ""), `no runtime for language "cobol"; available: `, "cpp", "lua", "python", "ruby")
	})
	t.Run("unknown version", func(t *testing.T) {
		rejectedWith(t, run("python2", "python", "2.x"), `language "python" has no version matching "2.x"; available: 3.11.9, 3.13.5`)
	})
	t.Run("a range that is no range", func(t *testing.T) {
		rejectedWith(t, run("bad-range", "python", "three"), `version "three" is not a semantic version range`)
	})
	t.Run("the highest version when none is asked for", func(t *testing.T) {
		got, _ := admittedTo(t, run("latest", "python", ""), "python-3-13")
		if *got.Status.Runtime != (execv1alpha1.RuntimeRef{Name: "python-3-13", Language: "python", Version: "3.13.5", Image: "localhost/coderun-python-3-13:0.1.0"}) {
			t.Errorf("status.runtime %+v", got.Status.Runtime)
		}
	})
	t.Run("the highest matching version", func(t *testing.T) {
		admittedTo(t, run("py-lt-313", "python", "<3.13"), "python-3-11")
	})
	t.Run("an alias", func(t *testing.T) {
		got, _ := admittedTo(t, run("alias", "c++", ""), "cpp-14")
		if got.Status.Runtime.Language != "cpp" {
			t.Errorf("status.runtime.language %q, want the Runtime's language cpp", got.Status.Runtime.Language)
		}
	})
	t.Run("a Runtime whose smoke test failed", func(t *testing.T) {
		rejectedWith(t, run("ruby", "ruby", ""), "runtime ruby (ruby 3.3.8) is not Ready: the smoke test runs/smoke-ruby-0123456789 ended with NonZeroExit, exit code 127; it printed: ruby: not found")
	})
	t.Run("a Runtime whose smoke test is running (a new image on upgrade) takes runs", func(t *testing.T) {
		admittedTo(t, run("perl", "perl", ""), "perl")
	})
	t.Run("a Runtime not smoke-tested yet", func(t *testing.T) {
		rejectedWith(t, run("lua", "lua", ""), "runtime lua (lua 5.4.7) is not Ready: its smoke test has not run yet")
	})
	t.Run("compile limits above the Runtime's", func(t *testing.T) {
		r := run("greedy", "cpp", "")
		r.Spec.CompileLimits = &execv1alpha1.CompileLimits{TimeoutSeconds: ptr.To[int32](60), Memory: ptr.To(resource.MustParse("2Gi"))}
		rejectedWith(t, r, "compileLimits.timeoutSeconds 60 is above the maximum of 30 of runtime cpp-14",
			"compileLimits.memory 2Gi is above the maximum of 1Gi of runtime cpp-14")
	})
	t.Run("a file named like the program", func(t *testing.T) {
		r := run("clash", "cpp", "")
		r.Spec.Files = []execv1alpha1.SourceFile{{Name: "main.cpp", Content: "int x;"}}
		rejectedWith(t, r, `files: "main.cpp" is the name of the program's own file`)
	})
	t.Run("the Job of a compiled language", func(t *testing.T) {
		r := run("compiled", "cpp", "")
		r.Spec.Source = "#include \"util.h\"\nint main() { return f(); }\n"
		r.Spec.Files = []execv1alpha1.SourceFile{{Name: "util.h", Content: "int f() { return 0; }\n"}, {Name: "data.txt", Content: "1 2 3\n"}}
		r.Spec.Args = []string{"a b", "--flag"}
		r.Spec.Stdin = "42\n"
		r.Spec.CompileLimits = &execv1alpha1.CompileLimits{TimeoutSeconds: ptr.To[int32](20)}
		_, job := admittedTo(t, r, "cpp-14")
		pod := job.Spec.Template.Spec
		c := pod.Containers[0]
		for _, want := range []string{
			"--files=/coderun/input/files",
			"--stdin=/coderun/input/stdin",
			`--run-command=["./main","a b","--flag"]`,
			`--compile-command=["g++","-O2","-o","main","main.cpp"]`,
			"--compile-timeout=20s",
			"--compile-memory-limit=1073741824",
			"--env=LANG=C.UTF-8",
			"--max-processes=128",
			"--memory-limit=268435456",
			"--workdir=/tmp",
		} {
			if !slices.Contains(c.Args, want) {
				t.Errorf("args %q lack %s", c.Args, want)
			}
		}
		for _, legacy := range []string{"--source", "--python"} {
			if slices.ContainsFunc(c.Args, func(a string) bool { return strings.HasPrefix(a, legacy+"=") }) {
				t.Errorf("args %q hold the legacy %s flag", c.Args, legacy)
			}
		}
		// The compiler's 1Gi, not the program's 256Mi, plus 64Mi of scratch and the runner's 32Mi.
		if got := c.Resources.Limits.Memory().String(); got != "1120Mi" {
			t.Errorf("memory limit %s, want 1120Mi", got)
		}
		for _, v := range pod.Volumes {
			if v.Name == "scratch" && v.EmptyDir.SizeLimit.String() != "64Mi" {
				t.Errorf("scratch size %s, want the Runtime's 64Mi", v.EmptyDir.SizeLimit)
			}
		}
		var paths []string
		annotations := job.Spec.Template.Annotations
		for _, item := range pod.Volumes[0].DownwardAPI.Items {
			paths = append(paths, item.Path)
			key := strings.TrimSuffix(strings.TrimPrefix(item.FieldRef.FieldPath, "metadata.annotations['"), "']")
			content, ok := annotations[key]
			want := map[string]string{"files/main.cpp": r.Spec.Source, "files/util.h": r.Spec.Files[0].Content,
				"files/data.txt": r.Spec.Files[1].Content, "stdin": "42\n"}[item.Path]
			if !ok || content != want {
				t.Errorf("%s comes from annotation %s = %q, want %q", item.Path, key, content, want)
			}
		}
		if want := []string{"files/main.cpp", "stdin", "files/util.h", "files/data.txt"}; !slices.Equal(paths, want) {
			t.Errorf("input files %v, want %v", paths, want)
		}
		// 60 s start, 10 s run, 20 s compile, 30 s slack.
		if got := *job.Spec.ActiveDeadlineSeconds; got != 120 {
			t.Errorf("activeDeadlineSeconds %d, want 120", got)
		}
		startPod(t, job) // the restricted namespace admits it
	})
}

// getJob reads the Job of run from the API server.
func getJob(run *execv1alpha1.CodeRun) (*batchv1.Job, error) {
	job := &batchv1.Job{}
	return job, k8sClient.Get(context.Background(), client.ObjectKey{Namespace: run.Namespace, Name: jobName(run)}, job)
}

// TestBuiltinPython runs python without any Runtime offering it: the operator's own runner
// image, with the legacy flags, as before Runtimes existed.
func TestBuiltinPython(t *testing.T) {
	op := startOperator(t, testConfig())
	createRuntime(t, cppRuntime(), readyCondition()) // another language does not matter
	waitForRuntimeCache(t, op, 1)
	run := op.newRun("builtin", "print(1)")
	run.Spec.Files = []execv1alpha1.SourceFile{{Name: "util.py", Content: "X = 1\n"}}
	op.create(t, run)
	job := waitForJob(t, run)
	c := job.Spec.Template.Spec.Containers[0]
	if c.Image != testConfig().RunnerImage {
		t.Errorf("image %s, want the operator's runnerImage", c.Image)
	}
	for _, want := range []string{"--source=/coderun/input/files/main.py", "--python=/usr/bin/python3", "--files=/coderun/input/files"} {
		if !slices.Contains(c.Args, want) {
			t.Errorf("args %q lack %s", c.Args, want)
		}
	}
	if got := getRun(t, run).Status.Runtime; got == nil || got.Name != "" || got.Language != "python" || got.Image != testConfig().RunnerImage {
		t.Errorf("status.runtime %+v, want the built-in python", got)
	}

	withArgs := op.newRun("builtin-args", "import sys; print(sys.argv)")
	withArgs.Spec.Args = []string{"a"}
	if got := waitForResult(t, op.create(t, withArgs)); got.Status.Result.Reason != execv1alpha1.ReasonRejected ||
		!strings.Contains(got.Status.Result.Message, "args need a python Runtime") {
		t.Errorf("result %s %q, want Rejected: args need a python Runtime", got.Status.Result.Reason, got.Status.Result.Message)
	}

	versioned := op.newRun("builtin-2", "print(1)")
	versioned.Spec.Version = "2.7"
	got := waitForResult(t, op.create(t, versioned))
	if got.Status.Result.Reason != execv1alpha1.ReasonRejected || !strings.Contains(got.Status.Result.Message, `available: `+builtinPythonVersion) {
		t.Errorf("result %s %q, want Rejected naming %s", got.Status.Result.Reason, got.Status.Result.Message, builtinPythonVersion)
	}
}

// TestCompileResults plays the runner's report of a compiled program's pod: the compile
// step's result lands in status.result.compile, and a failed compile ends the run as
// CompileError without a program result.
func TestCompileResults(t *testing.T) {
	op := startOperator(t, testConfig())
	createRuntime(t, cppRuntime(), readyCondition())
	waitForRuntimeCache(t, op, 1)

	syntaxError := "main.cpp:1:25: error: expected ';' before '}' token\n"
	cases := []struct {
		name        string
		rep         report.Report
		wantReason  execv1alpha1.ResultReason
		wantMessage string
		wantCompile execv1alpha1.CompileResult
	}{
		{
			name: "compile error",
			rep: report.Report{Reason: report.CompileError, Message: "the compile step ended with NonZeroExit: exit code 1",
				Compile: &report.Stage{Reason: report.NonZeroExit, ExitCode: 1, Stderr: syntaxError, Output: syntaxError,
					WallTimeMicros: 412_000, CPUTimeMicros: 380_000, PeakMemoryBytes: 91 << 20}},
			wantReason:  execv1alpha1.ReasonCompileError,
			wantMessage: "compilation failed (NonZeroExit, exit code 1); the program was not run",
			wantCompile: execv1alpha1.CompileResult{Reason: execv1alpha1.ReasonNonZeroExit, ExitCode: ptr.To[int32](1),
				Stderr: syntaxError, Output: syntaxError, WallTime: &metav1.Duration{Duration: 412 * time.Millisecond},
				CPUTime: &metav1.Duration{Duration: 380 * time.Millisecond}, PeakMemory: ptr.To(resource.MustParse("93184Ki"))},
		},
		{
			name: "compile time limit",
			rep: report.Report{Reason: report.CompileError,
				Compile: &report.Stage{Reason: report.TimeLimitExceeded, ExitCode: 137, Signal: "SIGKILL", Message: "time limit of 30s exceeded",
					WallTimeMicros: 30_001_000, CPUTimeMicros: 29_500_000, PeakMemoryBytes: 300 << 20}},
			wantReason:  execv1alpha1.ReasonCompileError,
			wantMessage: "compilation failed (TimeLimitExceeded, SIGKILL): time limit of 30s exceeded; the program was not run",
			wantCompile: execv1alpha1.CompileResult{Reason: execv1alpha1.ReasonTimeLimitExceeded, ExitCode: ptr.To[int32](137), Signal: "SIGKILL",
				Message: "time limit of 30s exceeded", WallTime: &metav1.Duration{Duration: 30001 * time.Millisecond},
				CPUTime: &metav1.Duration{Duration: 29500 * time.Millisecond}, PeakMemory: ptr.To(resource.MustParse("307200Ki"))},
		},
		{
			name: "compiled and ran",
			rep: func() report.Report {
				r := helloReport()
				r.Compile = &report.Stage{Reason: report.Completed, Stderr: "warning: unused\n", Output: "warning: unused\n",
					WallTimeMicros: 900_000, CPUTimeMicros: 850_000, PeakMemoryBytes: 120 << 20}
				return r
			}(),
			wantReason: execv1alpha1.ReasonCompleted,
			wantCompile: execv1alpha1.CompileResult{Reason: execv1alpha1.ReasonCompleted, ExitCode: ptr.To[int32](0),
				Stderr: "warning: unused\n", Output: "warning: unused\n", WallTime: &metav1.Duration{Duration: 900 * time.Millisecond},
				CPUTime: &metav1.Duration{Duration: 850 * time.Millisecond}, PeakMemory: ptr.To(resource.MustParse("122880Ki"))},
		},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			run := op.newRun("c"+string(rune('a'+i)), "int main() { return 0 }")
			run.Spec.Language = "cpp"
			op.create(t, run)
			pod := startPod(t, waitForJob(t, run))
			setContainerState(t, pod, terminated(0, "Completed", reportMessage(tc.rep)))
			got := waitForResult(t, run)
			res := got.Status.Result
			if res.Reason != tc.wantReason || res.Message != tc.wantMessage {
				t.Errorf("result %s %q, want %s %q", res.Reason, res.Message, tc.wantReason, tc.wantMessage)
			}
			if res.Compile == nil {
				t.Fatal("no status.result.compile")
			}
			if !apiEqual(*res.Compile, tc.wantCompile) {
				gotJSON, _ := json.Marshal(res.Compile)
				wantJSON, _ := json.Marshal(tc.wantCompile)
				t.Errorf("compile\n got %s\nwant %s", gotJSON, wantJSON)
			}
			if tc.wantReason == execv1alpha1.ReasonCompileError {
				// The program did not run: nothing of it is shown as if it had.
				if got.Status.Phase != execv1alpha1.PhaseFailed || res.ExitCode != nil || res.WallTime != nil || res.PeakMemory != nil || res.Output != "" {
					t.Errorf("phase %s exitCode %v wallTime %v peakMemory %v output %q, want Failed and no program result",
						got.Status.Phase, res.ExitCode, res.WallTime, res.PeakMemory, res.Output)
				}
				c := meta.FindStatusCondition(got.Status.Conditions, execv1alpha1.ConditionFinished.String())
				if c == nil || c.Reason != "CompileError" || c.Message != "CompileError: "+tc.wantMessage {
					t.Errorf("Finished condition %+v", c)
				}
			} else if res.Stdout != "Hello, World!\n" || res.Compile.Output == res.Output {
				t.Errorf("stdout %q output %q: the program's output mixed with the compiler's", res.Stdout, res.Output)
			}
		})
	}
}

// apiEqual compares API values by their JSON: quantities and durations by value.
func apiEqual(a, b any) bool {
	ja, erra := json.Marshal(a)
	jb, errb := json.Marshal(b)
	return erra == nil && errb == nil && string(ja) == string(jb)
}

// TestRuntimeSmokeTests runs the Runtime controller: each Runtime's smoke test becomes a
// CodeRun, played here as the kubelet would, and its outcome the Runtime's Ready condition;
// a changed image runs it again and deletes the old run; a run for a Runtime whose test
// failed is Rejected with the reason.
func TestRuntimeSmokeTests(t *testing.T) {
	ns := newRunsNamespace(t)
	cfg := testConfig()
	cfg.MaxConcurrentRuns = 8
	cfg.ManageRuntimes, cfg.SmokeTestNamespace = true, ns
	op, stop := runOperator(t, cfg, ns)
	t.Cleanup(stop)

	// smokeRunOf waits for the smoke run of rt's current spec.
	smokeRunOf := func(t *testing.T, name string) (*execv1alpha1.Runtime, *execv1alpha1.CodeRun) {
		t.Helper()
		rt := &execv1alpha1.Runtime{}
		run := &execv1alpha1.CodeRun{}
		eventually(t, 20*time.Second, "the smoke run of "+name, func() (bool, error) {
			if err := k8sClient.Get(context.Background(), client.ObjectKey{Name: name}, rt); err != nil {
				return false, err
			}
			if rt.Status.SmokeTestRun == "" || rt.Status.SpecHash != specHash(&rt.Spec) {
				return false, nil
			}
			err := k8sClient.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: rt.Status.SmokeTestRun}, run)
			return err == nil, client.IgnoreNotFound(err)
		})
		return rt, run
	}
	// finishSmokeRun plays the pod of a smoke run to the end with rep.
	finishSmokeRun := func(t *testing.T, run *execv1alpha1.CodeRun, rep report.Report) {
		t.Helper()
		pod := startPod(t, waitForJob(t, run))
		setContainerState(t, pod, terminated(0, "Completed", reportMessage(rep)))
	}
	readyOf := func(t *testing.T, name, reason string) *metav1.Condition {
		t.Helper()
		var c *metav1.Condition
		eventually(t, 20*time.Second, name+" to be "+reason, func() (bool, error) {
			rt := &execv1alpha1.Runtime{}
			err := k8sClient.Get(context.Background(), client.ObjectKey{Name: name}, rt)
			c = meta.FindStatusCondition(rt.Status.Conditions, execv1alpha1.RuntimeConditionReady)
			return err == nil && c != nil && c.Reason == reason, err
		})
		return c
	}

	good := createRuntime(t, cppRuntime(), nil)
	rt, run := smokeRunOf(t, good.Name)
	if !strings.HasPrefix(run.Name, "smoke-cpp-14-") || run.Annotations[AnnotationSmokeTestOf] != "cpp-14" ||
		run.Spec.Source != good.Spec.SmokeTest.Source || run.Spec.Language != "cpp" || run.Spec.Version != "14.2.0" {
		t.Errorf("smoke run %s annotations %v spec %+v", run.Name, run.Annotations, run.Spec)
	}
	if !metav1.IsControlledBy(run, rt) {
		t.Errorf("the smoke run is not owned by its Runtime: %+v", run.OwnerReferences)
	}
	if c := readyOf(t, "cpp-14", execv1alpha1.RuntimeReasonSmokeTestRunning); c.Status != metav1.ConditionFalse {
		t.Errorf("Ready %+v while the smoke test runs", c)
	}
	// The smoke test is not Rejected although its Runtime is not Ready: it is how it gets so.
	job := waitForJob(t, run)
	if img := job.Spec.Template.Spec.Containers[0].Image; img != good.Spec.Image {
		t.Errorf("smoke run image %s, want %s", img, good.Spec.Image)
	}
	hello := report.Report{Reason: report.Completed, Stdout: "hi\n", Output: "hi\n", Compile: &report.Stage{Reason: report.Completed}}
	finishSmokeRun(t, run, hello)
	if c := readyOf(t, "cpp-14", execv1alpha1.RuntimeReasonSmokeTestPassed); c.Status != metav1.ConditionTrue || c.ObservedGeneration != rt.Generation {
		t.Errorf("Ready %+v, want True for generation %d", c, rt.Generation)
	}
	// Now runs use it.
	user := op.newRun("user", "int main() {}")
	user.Spec.Language = "c++"
	op.create(t, user)
	waitForJob(t, user)

	t.Run("a smoke test that prints something else", func(t *testing.T) {
		bad := createRuntime(t, testRuntime("bash", "bash", "5.2.37"), nil)
		_, run := smokeRunOf(t, bad.Name)
		finishSmokeRun(t, run, report.Report{Reason: report.Completed, Stdout: "hello\n", Output: "hello\n"})
		c := readyOf(t, "bash", execv1alpha1.RuntimeReasonSmokeTestFailed)
		if want := `printed "hello\n", want "hi\n"`; c.Status != metav1.ConditionFalse || !strings.Contains(c.Message, want) {
			t.Errorf("Ready %+v, want False with a message containing %s", c, want)
		}
		// A run for it is Rejected, and says why.
		r := op.newRun("for-bash", "echo hi")
		r.Spec.Language = "bash"
		got := waitForResult(t, op.create(t, r))
		if got.Status.Result.Reason != execv1alpha1.ReasonRejected ||
			!strings.Contains(got.Status.Result.Message, "runtime bash (bash 5.2.37) is not Ready: the smoke test "+ns+"/"+run.Name+` printed "hello\n"`) {
			t.Errorf("result %s %q", got.Status.Result.Reason, got.Status.Result.Message)
		}
	})

	t.Run("a smoke test whose program fails", func(t *testing.T) {
		broken := createRuntime(t, testRuntime("perl", "perl", "5.40.1"), nil)
		_, run := smokeRunOf(t, broken.Name)
		out := "exec: \"perl\": executable file not found in $PATH\n"
		finishSmokeRun(t, run, report.Report{Reason: report.NonZeroExit, ExitCode: 127, Stderr: out, Output: out})
		c := readyOf(t, "perl", execv1alpha1.RuntimeReasonSmokeTestFailed)
		if want := "ended with NonZeroExit, exit code 127; it printed: " + out; !strings.Contains(c.Message, want) {
			t.Errorf("Ready message %q does not contain %q", c.Message, want)
		}
	})

	t.Run("a smoke test that does not compile", func(t *testing.T) {
		rt := cppRuntime()
		rt.Name = "cpp-broken"
		createRuntime(t, rt, nil)
		_, run := smokeRunOf(t, rt.Name)
		diag := "main.cpp:1:1: error: 'x' does not name a type\n"
		finishSmokeRun(t, run, report.Report{Reason: report.CompileError,
			Compile: &report.Stage{Reason: report.NonZeroExit, ExitCode: 1, Stderr: diag, Output: diag}})
		c := readyOf(t, rt.Name, execv1alpha1.RuntimeReasonSmokeTestFailed)
		if want := "ended with CompileError: compilation failed (NonZeroExit, exit code 1); the program was not run; it printed: " + diag; !strings.Contains(c.Message, want) {
			t.Errorf("Ready message %q does not contain %q", c.Message, want)
		}
	})

	t.Run("a new image runs the smoke test again", func(t *testing.T) {
		rt := &execv1alpha1.Runtime{}
		if err := k8sClient.Get(context.Background(), client.ObjectKey{Name: "cpp-14"}, rt); err != nil {
			t.Fatal(err)
		}
		old := rt.Status.SmokeTestRun
		if err := retryOnConflict(func() error {
			if err := k8sClient.Get(context.Background(), client.ObjectKeyFromObject(rt), rt); err != nil {
				return err
			}
			rt.Spec.Image = "localhost/coderun-cpp-14:0.2.0"
			return k8sClient.Update(context.Background(), rt)
		}); err != nil {
			t.Fatal(err)
		}
		rt, run := smokeRunOf(t, "cpp-14")
		if run.Name == old {
			t.Fatalf("the smoke run %s did not change with the image", old)
		}
		readyOf(t, "cpp-14", execv1alpha1.RuntimeReasonSmokeTestRunning)
		eventually(t, 20*time.Second, "the old smoke run to be deleted", func() (bool, error) {
			err := k8sClient.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: old}, &execv1alpha1.CodeRun{})
			return err != nil, client.IgnoreNotFound(err)
		})
		finishSmokeRun(t, run, hello)
		readyOf(t, "cpp-14", execv1alpha1.RuntimeReasonSmokeTestPassed)

		// One smoke run per spec: a label change (no new generation of the spec... nor
		// hash) and a deleted smoke run start none.
		if err := k8sClient.Delete(context.Background(), run); err != nil {
			t.Fatal(err)
		}
		if err := retryOnConflict(func() error {
			if err := k8sClient.Get(context.Background(), client.ObjectKeyFromObject(rt), rt); err != nil {
				return err
			}
			rt.Spec.DisplayName = "C++ (GCC 14.2.0)"
			return k8sClient.Update(context.Background(), rt)
		}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Second)
		runs := &execv1alpha1.CodeRunList{}
		if err := k8sClient.List(context.Background(), runs, client.InNamespace(ns), client.MatchingLabels{LabelSmokeTestRuntimeUID: string(rt.UID)}); err != nil {
			t.Fatal(err)
		}
		if len(runs.Items) != 0 {
			t.Errorf("%d smoke runs after a display name change, want none", len(runs.Items))
		}
		if c := readyOf(t, "cpp-14", execv1alpha1.RuntimeReasonSmokeTestPassed); c.ObservedGeneration != rt.Generation {
			t.Errorf("Ready observedGeneration %d, want %d", c.ObservedGeneration, rt.Generation)
		}
	})
}

// TestPoolsPerRuntime runs pools of two Runtimes: each pool's members run its Runtime's
// image and commands, a run takes a member of its own Runtime only, and the request
// carries its files, args and compile limits; a pool of a language no Runtime offers keeps
// no members and says why.
func TestPoolsPerRuntime(t *testing.T) {
	ns := newRunsNamespace(t)
	runner := newFakeRunner(nil)
	op, stop := startPoolOperator(t, testConfig(), ns, runner)
	t.Cleanup(stop)
	createRuntime(t, cppRuntime(), readyCondition())
	createRuntime(t, testRuntime("python-3-13", "python", "3.13.5"), readyCondition())
	waitForRuntimeCache(t, op, 2)

	ctx := context.Background()
	for _, p := range []*execv1alpha1.CodeRunPool{
		{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "cpp"}, Spec: execv1alpha1.CodeRunPoolSpec{Replicas: ptr.To[int32](1), Language: "c++"}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "python"}, Spec: execv1alpha1.CodeRunPoolSpec{Replicas: ptr.To[int32](1)}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "cobol"}, Spec: execv1alpha1.CodeRunPoolSpec{Replicas: ptr.To[int32](1), Language: "cobol"}},
	} {
		if err := k8sClient.Create(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	cppPods := startMembers(t, ns, "cpp", 1)
	startMembers(t, ns, "python", 1)
	for job, pod := range cppPods {
		c := pod.Spec.Containers[0]
		if c.Image != "localhost/coderun-cpp-14:0.1.0" || !slices.Contains(c.Args, `--run-command=["./main"]`) ||
			!slices.Contains(c.Args, `--compile-command=["g++","-O2","-o","main","main.cpp"]`) || !slices.Contains(c.Args, "--request=stdin") {
			t.Errorf("member %s image %s args %q, want the cpp Runtime's", job, c.Image, c.Args)
		}
	}
	eventually(t, 20*time.Second, "pool cobol to say why it has no members", func() (bool, error) {
		p := &execv1alpha1.CodeRunPool{}
		err := k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "cobol"}, p)
		c := meta.FindStatusCondition(p.Status.Conditions, execv1alpha1.PoolConditionReady)
		return err == nil && c != nil && c.Reason == execv1alpha1.PoolReasonInvalidShape &&
			strings.Contains(c.Message, `no runtime for language "cobol"`) && p.Status.Replicas == 0, err
	})

	run := op.newRun("warm-cpp", "#include \"util.h\"\nint main() {}\n")
	run.Spec.Language = "cpp"
	run.Spec.Files = []execv1alpha1.SourceFile{{Name: "util.h", Content: "// util\n"}}
	run.Spec.Args = []string{"x"}
	run.Spec.CompileLimits = &execv1alpha1.CompileLimits{Memory: ptr.To(resource.MustParse("512Mi"))}
	got := waitForResult(t, op.create(t, run))
	if got.Status.Path != execv1alpha1.PathWarm || got.Status.Pool != "cpp" || got.Status.Result.Reason != execv1alpha1.ReasonCompleted {
		t.Fatalf("path %s pool %s reason %s, want a warm run in pool cpp", got.Status.Path, got.Status.Pool, got.Status.Result.Reason)
	}
	var pod string
	for _, p := range cppPods {
		pod = p.Name
	}
	frames, _ := runner.member(ns, pod)
	if len(frames) != 1 {
		t.Fatalf("the cpp member got %d requests, want 1", len(frames))
	}
	req := frames[0]
	wantFiles := []string{"main.cpp=" + run.Spec.Source, "util.h=// util\n"}
	var files []string
	for _, f := range req.Files {
		files = append(files, f.Name+"="+f.Content)
	}
	if req.Source != "" || !slices.Equal(files, wantFiles) || !slices.Equal(req.Args, []string{"x"}) ||
		req.CompileTimeoutSeconds != 30 || req.CompileMemoryBytes != 512<<20 {
		t.Errorf("request source %q files %q args %q compile %ds %d bytes, want the program among the files, args x, 30s and 512Mi",
			req.Source, files, req.Args, req.CompileTimeoutSeconds, req.CompileMemoryBytes)
	}
	if got.Status.Runtime == nil || got.Status.Runtime.Name != "cpp-14" {
		t.Errorf("status.runtime %+v", got.Status.Runtime)
	}

	// A python run takes the python pool's member, never the cpp one's.
	py := waitForResult(t, op.create(t, op.newRun("warm-python", "print(1)")))
	if py.Status.Pool != "python" {
		t.Errorf("the python run ran in pool %q, want python", py.Status.Pool)
	}
	// A Runtime of the pool that stops being Ready: the pool keeps no members.
	rt := &execv1alpha1.Runtime{}
	if err := k8sClient.Get(ctx, client.ObjectKey{Name: "cpp-14"}, rt); err != nil {
		t.Fatal(err)
	}
	meta.SetStatusCondition(&rt.Status.Conditions, metav1.Condition{Type: execv1alpha1.RuntimeConditionReady, Status: metav1.ConditionFalse,
		Reason: execv1alpha1.RuntimeReasonSmokeTestFailed, Message: "the smoke test x ended with SystemError"})
	if err := k8sClient.Status().Update(ctx, rt); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "pool cpp to say its Runtime is not Ready", func() (bool, error) {
		p := &execv1alpha1.CodeRunPool{}
		err := k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "cpp"}, p)
		c := meta.FindStatusCondition(p.Status.Conditions, execv1alpha1.PoolConditionReady)
		return err == nil && c != nil && c.Reason == execv1alpha1.PoolReasonInvalidShape &&
			strings.Contains(c.Message, "runtime cpp-14 (cpp 14.2.0) is not Ready"), err
	})
}
