//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"k8s.io/utils/ptr"

	execv1alpha1 "github.com/coderun-dev/coderun/api/v1alpha1"
)

// manifest is a CodeRun as a user would write it for `kubectl apply -f -`; spec is the
// YAML of its spec, indented by two spaces. The label values are quoted: a suite ID of
// only digits would otherwise be a YAML number, which no label value may be.
func manifest(name, spec string) string {
	return fmt.Sprintf(`apiVersion: exec.coderun.dev/v1alpha1
kind: CodeRun
metadata:
  name: %s
  namespace: %s
  labels:
    %s: %q
    %s: %q
spec:
%s`, name, runsNamespace, partOfLabel, partOfValue, suiteLabel, suiteID, spec)
}

// bigOutput is what the big-output program writes: a line to stderr, then two 24000-byte
// lines and a line of 2000 two- and three-byte characters to stdout (58 KB in all, under
// the 64 KiB output limit). Its report is far above the 4 KiB of a termination message,
// so it travels through the pod's log, where the container runtime splits lines longer
// than 16 KiB (the multi-byte characters may be cut there too).
const bigOutputSource = `import string, sys
print('about to print 58 KB', file=sys.stderr)
alphabet = string.ascii_letters + string.digits
line = ''.join(alphabet[i % len(alphabet)] for i in range(24000))
print(line)
print(line[::-1])
print('é✓' * 2000)
`

func bigOutput() (stdout, stderr string) {
	alphabet := "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	var line strings.Builder
	for i := range 24000 {
		line.WriteByte(alphabet[i%len(alphabet)])
	}
	reversed := []byte(line.String())
	for i, j := 0, len(reversed)-1; i < j; i, j = i+1, j-1 {
		reversed[i], reversed[j] = reversed[j], reversed[i]
	}
	return line.String() + "\n" + string(reversed) + "\n" + strings.Repeat("é✓", 2000) + "\n", "about to print 58 KB\n"
}

// TestPrograms runs ordinary programs and checks what a user reads in status.result. The
// first three are applied with kubectl from YAML, the rest created with the Go client.
func TestPrograms(t *testing.T) {
	t.Parallel()
	bigStdout, bigStderr := bigOutput()
	cases := []struct {
		name string
		// yamlSpec, if set, is applied with kubectl; else spec is created with the client.
		yamlSpec string
		spec     execv1alpha1.CodeRunSpec
		phase    execv1alpha1.CodeRunPhase
		reason   execv1alpha1.ResultReason
		exitCode int32
		check    func(t *testing.T, res *execv1alpha1.CodeRunResult)
	}{{
		name:     "hello",
		yamlSpec: "  source: |\n    print('Hello, World!')\n",
		phase:    execv1alpha1.PhaseSucceeded, reason: execv1alpha1.ReasonCompleted, exitCode: 0,
		check: func(t *testing.T, res *execv1alpha1.CodeRunResult) {
			expectStreams(t, res, "Hello, World!\n", "Hello, World!\n", "")
		},
	}, {
		name:     "syntax-error",
		yamlSpec: "  source: |\n    print('unclosed\n",
		phase:    execv1alpha1.PhaseFailed, reason: execv1alpha1.ReasonNonZeroExit, exitCode: 1,
		check: func(t *testing.T, res *execv1alpha1.CodeRunResult) {
			if !strings.Contains(res.Output, "SyntaxError") || !strings.Contains(res.Stderr, "SyntaxError") || res.Stdout != "" {
				t.Errorf("want SyntaxError in output and stderr, nothing on stdout; got output %q, stdout %q", res.Output, res.Stdout)
			}
		},
	}, {
		name: "exit-3",
		yamlSpec: `  source: |
    import sys
    print('exiting with 3')
    sys.exit(3)
`,
		phase: execv1alpha1.PhaseFailed, reason: execv1alpha1.ReasonNonZeroExit, exitCode: 3,
		check: func(t *testing.T, res *execv1alpha1.CodeRunResult) {
			expectStreams(t, res, "exiting with 3\n", "exiting with 3\n", "")
		},
	}, {
		name: "exception",
		spec: execv1alpha1.CodeRunSpec{Source: "print('dividing')\nprint(1 / 0)\n"},
		// An uncaught exception: the traceback goes to stderr, after what was printed.
		phase: execv1alpha1.PhaseFailed, reason: execv1alpha1.ReasonNonZeroExit, exitCode: 1,
		check: func(t *testing.T, res *execv1alpha1.CodeRunResult) {
			if res.Stdout != "dividing\n" || !strings.HasPrefix(res.Output, "dividing\nTraceback") ||
				!strings.HasSuffix(res.Stderr, "ZeroDivisionError: division by zero\n") {
				t.Errorf("want stdout %q then a ZeroDivisionError traceback; got output %q", "dividing\n", res.Output)
			}
		},
	}, {
		name: "libraries",
		spec: execv1alpha1.CodeRunSpec{
			Source: `import numpy, pandas, scipy
from scipy.special import comb
print('pandas', pandas.__version__)
print('scipy', scipy.__version__)
print('numpy', numpy.__version__)
print('sum', pandas.DataFrame({'x': [1, 2, 3]})['x'].sum())
print('comb', int(comb(5, 2)))
`,
			// Importing pandas and scipy takes a few seconds on a busy node.
			Limits: timeout(60),
		},
		phase: execv1alpha1.PhaseSucceeded, reason: execv1alpha1.ReasonCompleted, exitCode: 0,
		check: func(t *testing.T, res *execv1alpha1.CodeRunResult) {
			want := regexp.MustCompile(`^pandas 2\.\d+\S*\nscipy 1\.\d+\S*\nnumpy 2\.\d+\S*\nsum 6\ncomb 10\n$`)
			if !want.MatchString(res.Output) {
				t.Errorf("output %q does not match %s (pandas 2.x, scipy 1.x, numpy 2.x)", res.Output, want)
			}
		},
	}, {
		name: "stdin",
		spec: execv1alpha1.CodeRunSpec{
			Source: `import sys
n = int(sys.stdin.readline())
words = [sys.stdin.readline().rstrip('\n') for _ in range(n)]
print(' | '.join(reversed(words)))
print('rest', repr(sys.stdin.read()))
`,
			Stdin: "3\nalpha\nbeta\ngamma ✓\n",
		},
		phase: execv1alpha1.PhaseSucceeded, reason: execv1alpha1.ReasonCompleted, exitCode: 0,
		check: func(t *testing.T, res *execv1alpha1.CodeRunResult) {
			// The program reads all of stdin and then sees end-of-file.
			want := "gamma ✓ | beta | alpha\nrest ''\n"
			expectStreams(t, res, want, want, "")
		},
	}, {
		name: "big-output",
		spec: execv1alpha1.CodeRunSpec{Source: bigOutputSource},
		// The report (over 100 KB with stdout and output) comes through pods/log.
		phase: execv1alpha1.PhaseSucceeded, reason: execv1alpha1.ReasonCompleted, exitCode: 0,
		check: func(t *testing.T, res *execv1alpha1.CodeRunResult) {
			expectStreams(t, res, bigStderr+bigStdout, bigStdout, bigStderr)
			if res.OutputTruncated || res.StdoutTruncated || res.StderrTruncated {
				t.Errorf("output marked truncated (output %t, stdout %t, stderr %t), want whole", res.OutputTruncated, res.StdoutTruncated, res.StderrTruncated)
			}
		},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var run *execv1alpha1.CodeRun
			start := time.Now()
			if tc.yamlSpec != "" {
				name := runName(tc.name)
				apply(t, manifest(name, tc.yamlSpec), name)
				run = waitForResult(t, name, resultTimeout(&execv1alpha1.CodeRun{}))
				logResult(t, run, time.Since(start))
			} else {
				run = runProgram(t, tc.name, tc.spec)
			}
			expectEnd(t, run, tc.phase, tc.reason, ptr.To(tc.exitCode))
			tc.check(t, run.Status.Result)
			if tc.name == "hello" {
				expectKubectlView(t, run.Name)
			}
		})
	}
}

// expectKubectlView checks what `kubectl get` shows a user of a finished hello world.
func expectKubectlView(t *testing.T, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := kubectl(ctx, "", "-n", runsNamespace, "get", "coderun", name, "-o", "jsonpath={.status.result.output}")
	if err != nil || out != "Hello, World!\n" {
		t.Errorf("kubectl get -o jsonpath={.status.result.output}: %q (%v), want %q", out, err, "Hello, World!\n")
	}
	out, err = kubectl(ctx, "", "-n", runsNamespace, "get", "crun", name, "--no-headers")
	if fields := strings.Fields(out); err != nil || len(fields) < 5 || fields[0] != name || fields[1] != "python" || fields[2] != "Succeeded" || fields[3] != "0" || fields[4] != "Completed" {
		t.Errorf("kubectl get crun %s: %q (%v), want NAME python Succeeded 0 Completed ...", name, out, err)
	}
}

// expectStreams checks output, stdout and stderr exactly.
func expectStreams(t *testing.T, res *execv1alpha1.CodeRunResult, output, stdout, stderr string) {
	t.Helper()
	for _, f := range []struct{ field, got, want string }{
		{"output", res.Output, output}, {"stdout", res.Stdout, stdout}, {"stderr", res.Stderr, stderr},
	} {
		if f.got != f.want {
			t.Errorf("%s differs from byte %d on: got %s, want %s", f.field, firstDifference(f.got, f.want), abbreviate(f.got), abbreviate(f.want))
		}
	}
}

// abbreviate quotes s, eliding the middle of long strings, with its length.
func abbreviate(s string) string {
	if len(s) <= 300 {
		return fmt.Sprintf("%q", s)
	}
	return fmt.Sprintf("%q...%q (%d bytes)", s[:150], s[len(s)-150:], len(s))
}

func firstDifference(a, b string) int {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	return i
}
