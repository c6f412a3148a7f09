//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	execv1alpha1 "github.com/coderun-dev/coderun/api/v1alpha1"
	"github.com/coderun-dev/coderun/internal/testneed"
)

// The front service's answer to /execute and /submit (docs/api.md).
type runAnswer struct {
	Output       string  `json:"output"`
	Stdout       string  `json:"stdout"`
	Stderr       string  `json:"stderr"`
	Time         float64 `json:"time"`
	Memory       int64   `json:"memory"`
	ExitCode     *int32  `json:"exit_code"`
	Reason       string  `json:"reason"`
	Message      string  `json:"message"`
	Status       string  `json:"status"`
	Name         string  `json:"name"`
	SubmissionID *int64  `json:"submission_id"`
	Error        string  `json:"error"`
}

// frontURL is the deployed front service (make dev forwards it to 127.0.0.1).
func frontURL(t *testing.T) string {
	t.Helper()
	u := os.Getenv("FRONT_URL")
	if u == "" {
		testneed.Skip(t, "FRONT_URL is not set; make test-e2e sets it to make dev's forward to the front service")
	}
	return strings.TrimSuffix(u, "/")
}

// post sends body to the front service of FRONT_URL and decodes the JSON answer.
func post(ctx context.Context, t *testing.T, path, body string) (int, runAnswer) {
	t.Helper()
	var ans runAnswer
	status := call(ctx, t, frontURL(t), http.MethodPost, path, body, &ans)
	return status, ans
}

// call sends a request with an optional JSON body to the front service at base, decodes
// its JSON answer into into and returns the status code.
func call(ctx context.Context, t *testing.T, base, method, path, body string, into any) int {
	t.Helper()
	status, _ := keyCall(ctx, t, base, "", method, path, body, into)
	return status
}

func codeBody(code string) string {
	b, err := json.Marshal(map[string]string{"code": code})
	if err != nil {
		panic(err)
	}
	return string(b)
}

// TestFrontService drives the HTTP API as the original project's clients do, and checks
// that each answer is the result the CodeRun recorded in the cluster.
func TestFrontService(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	t.Run("hello world", func(t *testing.T) {
		status, ans := post(ctx, t, "/execute", codeBody("print('Hello, World!')"))
		if status != http.StatusOK || ans.Output != "Hello, World!\n" || ans.ExitCode == nil || *ans.ExitCode != 0 {
			t.Fatalf("answer %d %+v, want 200 with output %q and exit code 0", status, ans, "Hello, World!\n")
		}
		if ans.Time <= 0 || ans.Memory <= 0 {
			t.Errorf("time %v s and memory %d KiB, want both measured", ans.Time, ans.Memory)
		}
		expectRecorded(ctx, t, ans)
	})
	t.Run("syntax error", func(t *testing.T) {
		status, ans := post(ctx, t, "/execute", codeBody("print('Hello, World!'"))
		if status != http.StatusOK || ans.ExitCode == nil || *ans.ExitCode != 1 || !strings.Contains(ans.Output, "SyntaxError") {
			t.Fatalf("answer %d %+v, want 200, exit code 1 and SyntaxError in the output", status, ans)
		}
		expectRecorded(ctx, t, ans)
	})
	t.Run("pandas 2 and scipy 1", func(t *testing.T) {
		status, ans := post(ctx, t, "/execute", codeBody("import pandas, scipy\nprint(pandas.__version__)\nprint(scipy.__version__)"))
		lines := strings.Fields(ans.Output)
		if status != http.StatusOK || len(lines) != 2 || !strings.HasPrefix(lines[0], "2.") || !strings.HasPrefix(lines[1], "1.") {
			t.Fatalf("answer %d %+v, want pandas 2.x and scipy 1.x", status, ans)
		}
	})
	t.Run("stdin", func(t *testing.T) {
		status, ans := post(ctx, t, "/execute", `{"code": "print(input()[::-1])", "stdin": "coderun\n"}`)
		if status != http.StatusOK || ans.Output != "nuredoc\n" {
			t.Fatalf("answer %d %+v, want output %q", status, ans, "nuredoc\n")
		}
	})
	t.Run("submit saves good code only", func(t *testing.T) {
		code := fmt.Sprintf("print('submitted %s')", suiteID)
		status, good := post(ctx, t, "/submit", codeBody(code))
		if status != http.StatusOK || good.SubmissionID == nil || *good.SubmissionID <= 0 {
			t.Fatalf("answer %d %+v, want a submission_id", status, good)
		}
		var saved struct {
			Code   string `json:"code"`
			Output string `json:"output"`
		}
		getJSON(ctx, t, fmt.Sprintf("/submissions/%d", *good.SubmissionID), &saved)
		if saved.Code != code || saved.Output != good.Output {
			t.Fatalf("submission %d = %+v, want the submitted code and its output", *good.SubmissionID, saved)
		}
		status, bad := post(ctx, t, "/submit", codeBody("import sys; sys.exit(3)"))
		if status != http.StatusOK || bad.SubmissionID == nil || *bad.SubmissionID != -1 {
			t.Fatalf("answer %d %+v, want submission_id -1 for a failing run", status, bad)
		}
	})
	t.Run("timeout answers with its reason", func(t *testing.T) {
		status, ans := post(ctx, t, "/execute", `{"code": "print('before', flush=True)\nwhile True: pass", "limits": {"timeout_seconds": 2}}`)
		if status != http.StatusOK || ans.Reason != string(execv1alpha1.ReasonTimeLimitExceeded) || ans.Output != "before\n" {
			t.Fatalf("answer %d %+v, want 200 with reason TimeLimitExceeded and the output before the loop", status, ans)
		}
	})

	t.Run("unknown language is Rejected naming the languages", func(t *testing.T) {
		// A language no Runtime offers reaches the operator, which refuses it as it refuses
		// a limit above its maxima: the run's answer says which languages there are.
		status, ans := post(ctx, t, "/execute", `{"code": "print(1)", "language": "cobol"}`)
		if status != http.StatusOK || ans.Reason != string(execv1alpha1.ReasonRejected) || ans.ExitCode != nil ||
			!strings.Contains(ans.Message, `no runtime for language "cobol"`) || !strings.Contains(ans.Message, "python") {
			t.Fatalf("answer %d %+v, want 200 Rejected naming the available languages", status, ans)
		}
	})

	bad := []struct {
		name, body string
		status     int
	}{
		{"not JSON", "print(1)", http.StatusBadRequest},
		{"no code", `{"stdin": "x"}`, 0},
		{"code not a string", `{"code": 42}`, 0},
		{"empty code", `{"code": ""}`, 0},
		{"not a language name", `{"code": "print(1)", "language": "co bol"}`, http.StatusUnprocessableEntity},
		{"timeout above the maximum", `{"code": "print(1)", "limits": {"timeout_seconds": 100000}}`, http.StatusUnprocessableEntity},
		{"memory above the maximum", `{"code": "print(1)", "limits": {"memory": "64Gi"}}`, http.StatusUnprocessableEntity},
		{"body too large", codeBody(strings.Repeat("#", 1<<20)), http.StatusRequestEntityTooLarge},
	}
	for _, tc := range bad {
		t.Run("bad request: "+tc.name, func(t *testing.T) {
			status, ans := post(ctx, t, "/execute", tc.body)
			if status < 400 || status >= 500 || (tc.status != 0 && status != tc.status) || ans.Error == "" {
				t.Fatalf("answer %d %+v, want %s with a JSON error", status, ans, statusWanted(tc.status))
			}
			t.Logf("%d: %s", status, ans.Error)
		})
	}

	t.Run("client gone cancels its run", func(t *testing.T) {
		before := frontRuns(ctx, t)
		reqCtx, cancelReq := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			req, _ := http.NewRequestWithContext(reqCtx, http.MethodPost, frontURL(t)+"/execute",
				bytes.NewBufferString(`{"code": "import time; time.sleep(50)", "limits": {"timeout_seconds": 60}}`))
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
			}
		}()
		var name string
		if err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
			for n := range frontRuns(ctx, t) {
				if !before[n] {
					name = n
					return true, nil
				}
			}
			return false, nil
		}); err != nil {
			t.Fatalf("the request created no CodeRun: %v", err)
		}
		cancelReq()
		<-done
		err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
			err := k8s.Get(ctx, client.ObjectKey{Namespace: runsNamespace, Name: name}, &execv1alpha1.CodeRun{})
			return apierrors.IsNotFound(err), nil
		})
		if err != nil {
			t.Fatalf("CodeRun %s still exists a minute after its client went away", name)
		}
	})
}

func statusWanted(status int) string {
	if status == 0 {
		return "a 4xx"
	}
	return fmt.Sprint(status)
}

// expectRecorded checks that the answer is what the CodeRun it names recorded.
func expectRecorded(ctx context.Context, t *testing.T, ans runAnswer) {
	t.Helper()
	var run execv1alpha1.CodeRun
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: runsNamespace, Name: ans.Name}, &run); err != nil {
		t.Fatalf("CodeRun %q named by the answer: %v", ans.Name, err)
	}
	res := run.Status.Result
	if res == nil || res.Output != ans.Output || string(res.Reason) != ans.Reason {
		t.Fatalf("CodeRun %s recorded %+v; the answer said output %q reason %s", ans.Name, res, ans.Output, ans.Reason)
	}
}

// frontRuns returns the names of the CodeRuns the front service created.
func frontRuns(ctx context.Context, t *testing.T) map[string]bool {
	t.Helper()
	var list execv1alpha1.CodeRunList
	if err := k8s.List(ctx, &list, client.InNamespace(runsNamespace), client.MatchingLabels{execv1alpha1.LabelManagedBy: "coderun-front"}); err != nil {
		t.Fatal(err)
	}
	names := make(map[string]bool, len(list.Items))
	for _, r := range list.Items {
		names[r.Name] = true
	}
	return names
}

// getJSON reads path of the front service of FRONT_URL into into; anything but 200 fails.
func getJSON(ctx context.Context, t *testing.T, path string, into any) {
	t.Helper()
	if status := call(ctx, t, frontURL(t), http.MethodGet, path, "", into); status != http.StatusOK {
		t.Fatalf("GET %s: status %d", path, status)
	}
}
