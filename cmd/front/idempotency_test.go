package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	execv1alpha1 "github.com/coderun-dev/coderun/api/v1alpha1"
	"github.com/coderun-dev/coderun/internal/testenv"
)

// slowProgram finishes 2 s after the fake operator admits it: long enough for a client to
// give up while it runs.
const slowProgram = "import time; time.sleep(2); print('slow')"

// TestIdempotencyKey runs the whole service (real API server, the shipped RBAC, a SQLite
// file) and retries /submit and /execute the way a client that lost its connection does:
// every retry with the key gets the one CodeRun's result, the operator sees that CodeRun
// once, and /submit saves it once.
func TestIdempotencyKey(t *testing.T) {
	asFrontServiceAccount(t)
	op := testenv.RunOperator(t, "coderun-runs", func(run *execv1alpha1.CodeRun) testenv.Behaviour {
		if run.Spec.Source == slowProgram {
			return testenv.Behaviour{Result: testenv.Completed("slow\n"), Delay: 2 * time.Second}
		}
		return testenv.Behaviour{Result: testenv.Completed("fast\n"), Delay: 100 * time.Millisecond}
	})
	f, err := parseFlags(flag.NewFlagSet("front", flag.ContinueOnError), []string{
		"--listen-address=127.0.0.1:0",
		"--database=" + filepath.Join(t.TempDir(), "coderun.db"),
		"--run-retention=1h",
	})
	if err != nil {
		t.Fatal(err)
	}
	base, stop := start(t, f)
	defer stop()
	waitReady(t, base)

	// seenOnce fails the test unless the operator saw exactly one CodeRun named name.
	seenOnce := func(name string) {
		t.Helper()
		if n := countOf(op.Seen(), name); n != 1 {
			t.Errorf("the operator saw CodeRun %s %d times, want once (all seen: %v)", name, n, op.Seen())
		}
	}

	t.Run("concurrent and later retries of /submit share one run and one submission", func(t *testing.T) {
		body := `{"code": "` + slowProgram + `"}`
		var answers [3]keyedAnswer
		var wg sync.WaitGroup
		start := time.Now()
		for i := range 2 { // two at once: one creates the CodeRun, the other joins it
			wg.Go(func() { answers[i] = postKeyed(t, base+"/submit", body, "submit-1") })
		}
		wg.Wait()
		t.Logf("two requests at once answered in %s (the program takes 2 s after its admission)", time.Since(start).Round(time.Millisecond))
		start = time.Now()
		answers[2] = postKeyed(t, base+"/submit", body, `"submit-1"`) // the draft's quoted form names the same key
		t.Logf("a retry after the run finished answered in %s", time.Since(start).Round(time.Millisecond))
		for i, a := range answers {
			if a.status != http.StatusOK || a.Output != "slow\n" || a.SubmissionID == nil || a.Name == "" {
				t.Fatalf("answer %d: %d %+v", i, a.status, a)
			}
			if a.Name != answers[0].Name || *a.SubmissionID != *answers[0].SubmissionID {
				t.Fatalf("answers name CodeRuns %s, %s, %s and submissions %d, %d, %d; want one of each",
					answers[0].Name, answers[1].Name, answers[2].Name, *answers[0].SubmissionID, *answers[1].SubmissionID, *answers[2].SubmissionID)
			}
		}
		seenOnce(answers[0].Name)
		var list struct {
			Total int `json:"total"`
		}
		get(t, base+"/submissions", &list)
		if list.Total != 1 {
			t.Errorf("%d submissions saved, want 1", list.Total)
		}

		// The same key for another program: refused, nothing runs.
		before := len(op.Seen())
		a := postKeyed(t, base+"/submit", `{"code": "print('other')"}`, "submit-1")
		if a.status != http.StatusUnprocessableEntity || !strings.Contains(a.Error, "Idempotency-Key") {
			t.Errorf("the key again with another program: %d %+v, want 422 naming the Idempotency-Key", a.status, a)
		}
		if len(op.Seen()) != before {
			t.Errorf("a refused reuse of a key created a CodeRun: %v", op.Seen()[before:])
		}
	})

	t.Run("a client that goes away mid-run gets the result on retry", func(t *testing.T) {
		before := len(op.Seen())
		body := `{"code": "` + slowProgram + `", "stdin": "execute-1"}`
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		if a, err := postKeyedCtx(ctx, base+"/execute", body, "execute-1"); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("the request that should time out on the client's side: %+v, %v", a, err)
		}
		var name string
		err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, 5*time.Second, true, func(context.Context) (bool, error) {
			if seen := op.Seen(); len(seen) > before {
				name = seen[before]
				return true, nil
			}
			return false, nil
		})
		if err != nil {
			t.Fatalf("no CodeRun was created for the request: %v", err)
		}
		// Past the server's reaction to the disconnect: without a key the CodeRun would be
		// deleted by now.
		time.Sleep(300 * time.Millisecond)
		_, admin := testenv.Start(t)
		kept := &execv1alpha1.CodeRun{}
		if err := admin.Get(context.Background(), client.ObjectKey{Namespace: "coderun-runs", Name: name}, kept); err != nil || kept.DeletionTimestamp != nil {
			t.Fatalf("the CodeRun %s of a keyed request whose client went away was not kept: %v", name, err)
		}

		a := postKeyed(t, base+"/execute", body, "execute-1")
		if a.status != http.StatusOK || a.Output != "slow\n" || a.Name != name {
			t.Fatalf("the retry: %d %+v, want the result of CodeRun %s", a.status, a, name)
		}
		seenOnce(name)
	})

	t.Run("without a key every request runs", func(t *testing.T) {
		var names []string
		for range 2 {
			var out struct {
				Name string `json:"name"`
			}
			post(t, base+"/execute", `{"code": "print('fast')"}`, &out)
			names = append(names, out.Name)
		}
		if names[0] == names[1] {
			t.Errorf("two requests without a key ran as one CodeRun %s", names[0])
		}
	})
}

// keyedAnswer is what a test reads of an answer of /execute or /submit.
type keyedAnswer struct {
	status       int
	Output       string `json:"output"`
	Name         string `json:"name"`
	SubmissionID *int64 `json:"submission_id"`
	Error        string `json:"error"`
}

func postKeyed(t *testing.T, url, body, key string) keyedAnswer {
	t.Helper()
	a, err := postKeyedCtx(context.Background(), url, body, key)
	if err != nil {
		t.Error(err) // Error, not Fatal: called from goroutines too
	}
	return a
}

func postKeyedCtx(ctx context.Context, url, body, key string) (keyedAnswer, error) {
	var a keyedAnswer
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		return a, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return a, err
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return a, err
	}
	if err := json.Unmarshal(b, &a); err != nil {
		return a, errors.New("the answer is not JSON: " + string(b))
	}
	a.status = resp.StatusCode
	return a, nil
}

func countOf(names []string, name string) int {
	n := 0
	for _, s := range names {
		if s == name {
			n++
		}
	}
	return n
}
