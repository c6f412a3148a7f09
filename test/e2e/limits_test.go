//go:build e2e

package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	execv1alpha1 "github.com/coderun-dev/coderun/api/v1alpha1"
)

// TestTimeLimit: a program that never ends is killed at limits.timeoutSeconds, whether it
// burns CPU or sleeps, and what it printed before is kept, in a cold run's pod and in a
// warm member alike.
func TestTimeLimit(t *testing.T) {
	t.Parallel()
	const limit = 2 * time.Second
	for _, tc := range []struct{ name, source, printed string }{
		{"busy-loop", "print('before the loop')\nwhile True:\n    pass\n", "before the loop\n"},
		{"sleeper", "import time\nprint('before the sleep')\ntime.sleep(3600)\n", "before the sleep\n"},
	} {
		for _, path := range bothPaths {
			t.Run(tc.name+"/"+pathName(path), func(t *testing.T) {
				t.Parallel()
				run := runOnPath(t, tc.name, execv1alpha1.CodeRunSpec{Source: tc.source, Limits: timeout(int32(limit / time.Second))}, path)
				expectEnd(t, run, execv1alpha1.PhaseFailed, execv1alpha1.ReasonTimeLimitExceeded, nil)
				res := run.Status.Result
				if res.Output != tc.printed {
					t.Errorf("output %q, want what was printed before the timeout, %q", res.Output, tc.printed)
				}
				if res.Message == "" {
					t.Error("no message explaining the time limit")
				}
				// Killed by the runner at the limit, not by the Job's deadline minutes later (a
				// bound far from any timing: the runner's kill comes milliseconds after it).
				if res.WallTime == nil || res.WallTime.Duration < limit || res.WallTime.Duration > limit+20*time.Second {
					t.Errorf("wall time %s, want between %s and %s", durationString(res.WallTime), limit, limit+20*time.Second)
				}
			})
		}
	}
}

// limitTimeout is the timeout of a run that tests a limit on path: long enough not to
// be what stops it, and within the pool's timeout on the warm path.
func limitTimeout(t *testing.T, path execv1alpha1.RunPath) int32 {
	t.Helper()
	if path == execv1alpha1.PathWarm {
		return *poolShape(t).TimeoutSeconds
	}
	return 30
}

// TestMemoryLimit: a program that allocates far more than limits.memory is stopped with
// MemoryLimitExceeded, in a cold run's pod and in a warm member alike, and neither the
// node nor the next run suffers.
func TestMemoryLimit(t *testing.T) {
	t.Parallel()
	for _, path := range bothPaths {
		t.Run(pathName(path), func(t *testing.T) {
			t.Parallel()
			run := runOnPath(t, "memory-hog", execv1alpha1.CodeRunSpec{
				// 1 GiB in 10 MiB chunks of non-zero bytes, so every page is really used.
				Source: `chunks = []
for i in range(1, 103):
    chunks.append(b'x' * (10 << 20))
    print(f'allocated {i * 10} MiB')
print('survived 1 GiB')
`,
				Limits: execv1alpha1.Limits{Memory: ptr.To(resource.MustParse("64Mi")), TimeoutSeconds: ptr.To(limitTimeout(t, path))},
			}, path)
			expectEnd(t, run, execv1alpha1.PhaseFailed, execv1alpha1.ReasonMemoryLimitExceeded, nil)
			res := run.Status.Result
			if !strings.HasPrefix(res.Output, "allocated 10 MiB\n") || strings.Contains(res.Output, "survived") {
				t.Errorf("output %q: want the first allocations reported and the program stopped before the end", res.Output)
			}
			expectHealthyNodes(t)
			expectNextRunWorks(t)
		})
	}
}

// TestForkBomb: a program that forks as fast as it can is contained by the process limit
// and ends at its time limit with every process gone, in a cold run's pod and in a warm
// member alike; the node and the next run are fine.
func TestForkBomb(t *testing.T) {
	t.Parallel()
	const limit = 3 * time.Second
	for _, path := range bothPaths {
		t.Run(pathName(path), func(t *testing.T) {
			t.Parallel()
			run := runOnPath(t, "fork-bomb", execv1alpha1.CodeRunSpec{
				Source: `import os
print('forking')
while True:
    try:
        os.fork()
    except OSError:
        pass
`,
				Limits: timeout(int32(limit / time.Second)),
			}, path)
			res := run.Status.Result
			// Whatever limit stopped it, the platform must not have failed.
			if run.Status.Phase != execv1alpha1.PhaseFailed || res.Reason == execv1alpha1.ReasonSystemError {
				t.Errorf("ended %s/%s (%s), want Failed by one of the run's limits", run.Status.Phase, res.Reason, res.Message)
			}
			if !strings.HasPrefix(res.Output, "forking\n") {
				t.Errorf("output %s, want it to start with %q", abbreviate(res.Output), "forking\n")
			}
			if res.WallTime != nil && res.WallTime.Duration > limit+20*time.Second {
				t.Errorf("wall time %s: the forked processes outlived the %s limit", res.WallTime.Duration, limit)
			}
			expectHealthyNodes(t)
			expectNextRunWorks(t)
		})
	}
}

// TestOutputFlood: a program that prints without end is stopped at the output limit, and
// the output up to the limit is kept and marked truncated, in a cold run's pod and in a
// warm member alike.
func TestOutputFlood(t *testing.T) {
	t.Parallel()
	for _, path := range bothPaths {
		t.Run(pathName(path), func(t *testing.T) {
			t.Parallel()
			run := runOnPath(t, "flood", execv1alpha1.CodeRunSpec{
				Source: "while True:\n    print('x' * 99)\n",
				Limits: timeout(limitTimeout(t, path)),
			}, path)
			expectEnd(t, run, execv1alpha1.PhaseFailed, execv1alpha1.ReasonOutputLimitExceeded, nil)
			res := run.Status.Result
			limit := operatorConfig.OutputLimitBytes
			if !res.OutputTruncated && len(res.Output) != limit {
				t.Errorf("output of %d bytes, not marked truncated: want it cut at the limit of %d bytes", len(res.Output), limit)
			}
			if len(res.Output) > limit || len(res.Stdout) > limit {
				t.Errorf("output %d bytes, stdout %d bytes: more than the limit of %d", len(res.Output), len(res.Stdout), limit)
			}
			if want := strings.Repeat(strings.Repeat("x", 99)+"\n", limit/100+1); len(res.Output) < limit/2 || !strings.HasPrefix(want, res.Output) {
				t.Errorf("output %s is not the first part of what the program printed", abbreviate(res.Output))
			}
			// Stopped as soon as it passed the limit (within milliseconds), not at its timeout.
			if res.WallTime == nil || res.WallTime.Duration > 8*time.Second {
				t.Errorf("wall time %s, want the program stopped within seconds", durationString(res.WallTime))
			}
		})
	}
}

// TestRejected: a run asking for more than the operator's maximum fails at once with
// reason Rejected, naming the limit, and never gets a Job.
func TestRejected(t *testing.T) {
	t.Parallel()
	tooLong := *operatorConfig.MaxLimits.TimeoutSeconds + 1
	if tooLong > 3600 {
		t.Skipf("the operator's maximum timeout (%ds) is the schema's: no run can exceed it", tooLong-1)
	}
	run := runProgram(t, "rejected", execv1alpha1.CodeRunSpec{Source: "print('never runs')\n", Limits: timeout(tooLong)})
	expectEnd(t, run, execv1alpha1.PhaseFailed, execv1alpha1.ReasonRejected, nil)
	res := run.Status.Result
	if res.ExitCode != nil || res.Output != "" || !strings.Contains(res.Message, "timeoutSeconds") {
		t.Errorf("exit code %s, output %q, message %q: want no exit code, no output and a message naming timeoutSeconds", ptrString(res.ExitCode), res.Output, res.Message)
	}
	var jobs batchv1.JobList
	if err := k8s.List(context.Background(), &jobs, client.InNamespace(runsNamespace)); err != nil {
		t.Fatalf("listing Jobs: %v", err)
	}
	for _, job := range jobs.Items {
		if metav1.IsControlledBy(&job, run) {
			t.Errorf("the rejected run has Job %s", job.Name)
		}
	}
}
