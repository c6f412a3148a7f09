//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	execv1alpha1 "github.com/coderun-dev/coderun/api/v1alpha1"
)

// TestIdempotencyKey is a client that loses its connection mid-run and retries, on the
// deployed front service: the retry with the same Idempotency-Key gets the result of the
// CodeRun the first request started, which ran once, and /submit saved it once.
func TestIdempotencyKey(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	base := frontURL(t)
	// The program names this suite, so that its CodeRuns are told apart from any other's.
	code := fmt.Sprintf("import time\ntime.sleep(8)\nprint('kept %s')", suiteID)
	body := fmt.Sprintf(`{"code": %q, "limits": {"timeout_seconds": 30}}`, code)
	key := "e2e-" + suiteID

	// The first request gives up 3 s after its CodeRun is admitted: mid-run.
	firstCtx, cancelFirst := context.WithCancel(ctx)
	defer cancelFirst()
	firstDone := make(chan error, 1)
	go func() {
		_, _, err := postWithKey(firstCtx, base, "/submit", body, key)
		firstDone <- err
	}()
	var run *execv1alpha1.CodeRun
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		runs := runsOfSource(ctx, t, code)
		if len(runs) == 1 && runs[0].Status.StartTime != nil {
			run = &runs[0]
			return true, nil
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("the first request's CodeRun did not start within a minute: %v", err)
	}
	time.Sleep(3 * time.Second)
	cancelFirst()
	if err := <-firstDone; !errors.Is(err, context.Canceled) {
		t.Fatalf("the first request ended with %v before its client gave up; want it cancelled mid-run", err)
	}
	t.Logf("the client gave up on CodeRun %s mid-run", run.Name)

	// A retry a moment later (a client's backoff): the CodeRun was not deleted.
	time.Sleep(time.Second)
	start := time.Now()
	status, ans, err := postWithKey(ctx, base, "/submit", body, key)
	if err != nil || status != http.StatusOK || ans.Name != run.Name || ans.Output != fmt.Sprintf("kept %s\n", suiteID) ||
		ans.SubmissionID == nil || *ans.SubmissionID < 1 {
		t.Fatalf("the retry: %v %d %+v; want 200 with the output and a submission of CodeRun %s", err, status, ans, run.Name)
	}
	t.Logf("the retry got CodeRun %s's result in %s", ans.Name, time.Since(start).Round(time.Millisecond))
	expectRecorded(ctx, t, ans)

	// Once more after the finish: the same answer at once, the same submission.
	status, again, err := postWithKey(ctx, base, "/submit", body, key)
	if err != nil || status != http.StatusOK || again.Name != run.Name || again.SubmissionID == nil || *again.SubmissionID != *ans.SubmissionID {
		t.Fatalf("a second retry: %v %d %+v; want CodeRun %s and submission %d", err, status, again, run.Name, *ans.SubmissionID)
	}
	if runs := runsOfSource(ctx, t, code); len(runs) != 1 || runs[0].UID != run.UID {
		t.Fatalf("%d CodeRuns ran the program, want the one (uid %s) the first request created", len(runs), run.UID)
	}

	// The key for another program: 422, and nothing runs.
	status, other, err := postWithKey(ctx, base, "/execute", codeBody("print('another program')"), key)
	if err != nil || status != http.StatusUnprocessableEntity || !strings.Contains(other.Error, "Idempotency-Key") {
		t.Fatalf("the key for another program: %v %d %+v; want 422 naming the Idempotency-Key", err, status, other)
	}
	// A key that is not printable ASCII: 400.
	status, bad, err := postWithKey(ctx, base, "/execute", codeBody("print(1)"), strings.Repeat("k", 256))
	if err != nil || status != http.StatusBadRequest || bad.Error == "" {
		t.Fatalf("a key of 256 characters: %v %d %+v; want 400 with a JSON error", err, status, bad)
	}
}

// postWithKey posts body with an Idempotency-Key and decodes the JSON answer; err is the
// client's error (the connection, or ctx).
func postWithKey(ctx context.Context, base, path, body, key string) (int, runAnswer, error) {
	var ans runAnswer
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+path, strings.NewReader(body))
	if err != nil {
		return 0, ans, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, ans, err
	}
	defer func() { _ = resp.Body.Close() }()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, ans, err
	}
	if err := json.Unmarshal(raw, &ans); err != nil {
		return resp.StatusCode, ans, fmt.Errorf("answer %d is not JSON: %w: %s", resp.StatusCode, err, raw)
	}
	return resp.StatusCode, ans, nil
}

// runsOfSource returns the front service's CodeRuns that run code.
func runsOfSource(ctx context.Context, t *testing.T, code string) []execv1alpha1.CodeRun {
	t.Helper()
	var list execv1alpha1.CodeRunList
	if err := k8s.List(ctx, &list, client.InNamespace(runsNamespace), client.MatchingLabels{execv1alpha1.LabelManagedBy: "coderun-front"}); err != nil {
		t.Fatal(err)
	}
	var out []execv1alpha1.CodeRun
	for _, r := range list.Items {
		if r.Spec.Source == code {
			out = append(out, r)
		}
	}
	return out
}
