package runs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	execv1alpha1 "github.com/coderun-dev/coderun/api/v1alpha1"
	"github.com/coderun-dev/coderun/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// startClient runs a Client for namespace until the test ends.
func startClient(t *testing.T, namespace string, retention time.Duration) *Client {
	t.Helper()
	cfg, _ := testenv.Start(t)
	ctx, cancel := context.WithCancel(context.Background())
	c, err := New(ctx, cfg, testenv.Scheme, Options{Namespace: namespace, Retention: retention, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Start: %v", err)
		}
	})
	if !c.WaitForSync(ctx) || !c.Synced() {
		t.Fatal("the informer did not sync")
	}
	if err := c.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	return c
}

// behaviourBySource finishes a run according to its source: "hang" never finishes,
// "fail" exits 1, anything else completes and prints its source.
func behaviourBySource(run *execv1alpha1.CodeRun) testenv.Behaviour {
	switch run.Spec.Source {
	case "hang":
		return testenv.Behaviour{}
	case "fail":
		return testenv.Behaviour{Result: testenv.Failed(execv1alpha1.ReasonNonZeroExit, ptr.To[int32](1), "SyntaxError\n", ""), Delay: 50 * time.Millisecond}
	default:
		return testenv.Behaviour{Result: testenv.Completed(run.Spec.Source + "\n"), Delay: 100 * time.Millisecond}
	}
}

func gone(t *testing.T, run *execv1alpha1.CodeRun) {
	t.Helper()
	_, k := testenv.Start(t)
	err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
		err := k.Get(ctx, client.ObjectKeyFromObject(run), &execv1alpha1.CodeRun{})
		return apierrors.IsNotFound(err), nil
	})
	if err != nil {
		t.Fatalf("CodeRun %s was not deleted", run.Name)
	}
}

func TestRunWaitsForResult(t *testing.T) {
	ns := testenv.Namespace(t)
	op := testenv.RunOperator(t, ns, behaviourBySource)
	c := startClient(t, ns, time.Hour)

	for _, tc := range []struct {
		source     string
		wantReason execv1alpha1.ResultReason
		wantExit   int32
		wantOutput string
		keyID      string // "": API keys off, no label
	}{
		{"hello", execv1alpha1.ReasonCompleted, 0, "hello\n", "alice"},
		{"fail", execv1alpha1.ReasonNonZeroExit, 1, "SyntaxError\n", ""},
	} {
		start := time.Now()
		ctx := WithRequestID(context.Background(), "req-"+tc.source)
		if tc.keyID != "" {
			ctx = WithKeyID(ctx, tc.keyID)
		}
		run, err := c.Run(ctx, execv1alpha1.CodeRunSpec{Source: tc.source, Stdin: "in"}, 20*time.Second)
		if err != nil {
			t.Fatalf("Run(%q): %v", tc.source, err)
		}
		res := run.Status.Result
		if res == nil || res.Reason != tc.wantReason || *res.ExitCode != tc.wantExit || res.Output != tc.wantOutput {
			t.Errorf("Run(%q) result %+v, want %s, exit %d, output %q", tc.source, res, tc.wantReason, tc.wantExit, tc.wantOutput)
		}
		if !strings.HasPrefix(run.Name, NamePrefix) || run.Labels[execv1alpha1.LabelManagedBy] != ManagedBy || run.Namespace != ns || run.Spec.Stdin != "in" ||
			run.Annotations[RequestIDAnnotation] != "req-"+tc.source {
			t.Errorf("CodeRun %s/%s labels %v annotations %v stdin %q: not as created", run.Namespace, run.Name, run.Labels, run.Annotations, run.Spec.Stdin)
		}
		if got, ok := run.Labels[KeyIDLabel]; got != tc.keyID || ok != (tc.keyID != "") {
			t.Errorf("CodeRun %s has key id label %q (set %v), want %q", run.Name, got, ok, tc.keyID)
		}
		// Woken by the informer, not by a poll; a timing, not an assertion (timings on
		// shared machines are noisy).
		t.Logf("Run(%q) answered in %s", tc.source, time.Since(start).Round(time.Millisecond))
	}
	if len(op.Seen()) != 2 {
		t.Errorf("operator saw %v, want 2 runs", op.Seen())
	}
}

// TestRunConcurrent checks that many requests share the one informer and each gets its
// own result.
func TestRunConcurrent(t *testing.T) {
	ns := testenv.Namespace(t)
	testenv.RunOperator(t, ns, behaviourBySource)
	c := startClient(t, ns, time.Hour)
	const n = 20
	errs := make(chan error, n)
	for i := range n {
		go func() {
			src := "print(" + strings.Repeat("x", i) + ")"
			run, err := c.Run(context.Background(), execv1alpha1.CodeRunSpec{Source: src}, 30*time.Second)
			if err == nil && run.Status.Result.Output != src+"\n" {
				err = errors.New("got the output of another run: " + run.Status.Result.Output)
			}
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

func TestClientGoneDeletesRun(t *testing.T) {
	ns := testenv.Namespace(t)
	op := testenv.RunOperator(t, ns, behaviourBySource)
	c := startClient(t, ns, time.Hour)

	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		// Cancel once the operator has admitted the run, as a browser tab closed mid-run.
		if err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
			return len(op.Seen()) == 1, nil
		}); err != nil {
			t.Errorf("the operator saw %v within 10s, want one CodeRun", op.Seen()) // Errorf: safe off the test's goroutine
		}
		time.Sleep(100 * time.Millisecond)
		cancel()
	}()
	run, err := c.Run(ctx, execv1alpha1.CodeRunSpec{Source: "hang"}, time.Minute)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Run error %v, want context.Canceled", err)
	}
	gone(t, run)
}

func TestBoundExceeded(t *testing.T) {
	ns := testenv.Namespace(t)
	testenv.RunOperator(t, ns, behaviourBySource)
	c := startClient(t, ns, time.Hour)

	start := time.Now()
	run, err := c.Run(context.Background(), execv1alpha1.CodeRunSpec{Source: "hang"}, 1500*time.Millisecond)
	if !errors.Is(err, ErrBoundExceeded) {
		t.Fatalf("Run error %v, want ErrBoundExceeded", err)
	}
	// Never before the bound; how soon after it is a timing, logged (a hang would hit the
	// test's own timeout).
	if d := time.Since(start); d < 1500*time.Millisecond {
		t.Errorf("Run gave up after %s, before its bound of 1.5s", d)
	} else {
		t.Logf("Run gave up %s after the start (bound 1.5s)", d.Round(time.Millisecond))
	}
	gone(t, run)
}

func TestDeletedByOthers(t *testing.T) {
	ns := testenv.Namespace(t)
	op := testenv.RunOperator(t, ns, behaviourBySource)
	c := startClient(t, ns, time.Hour)
	_, k := testenv.Start(t)
	// The deleter reports back rather than failing on its own: a goroutine may not call
	// t.Fatal, and without the CodeRun it has nothing to delete.
	deleted := make(chan error, 1)
	go func() {
		err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
			return len(op.Seen()) == 1, nil
		})
		if err != nil {
			deleted <- fmt.Errorf("the operator saw %v within 10s, want one CodeRun: %w", op.Seen(), err)
			return
		}
		run := &execv1alpha1.CodeRun{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: op.Seen()[0]}}
		deleted <- k.Delete(context.Background(), run)
	}()
	_, err := c.Run(context.Background(), execv1alpha1.CodeRunSpec{Source: "hang"}, 30*time.Second)
	if derr := <-deleted; derr != nil {
		t.Fatalf("deleting the CodeRun behind the client's back: %v (Run: %v)", derr, err)
	}
	if !errors.Is(err, ErrDeleted) {
		t.Fatalf("Run error %v, want ErrDeleted", err)
	}
}

func TestAPIServerRefusal(t *testing.T) {
	ns := testenv.Namespace(t)
	c := startClient(t, ns, time.Hour)
	run, err := c.Run(context.Background(), execv1alpha1.CodeRunSpec{Source: ""}, 5*time.Second)
	if run != nil || !apierrors.IsInvalid(err) {
		t.Fatalf("Run with empty source: run %v, error %v; want the API server's Invalid", run, err)
	}
}

func TestRetention(t *testing.T) {
	ns := testenv.Namespace(t)
	testenv.RunOperator(t, ns, behaviourBySource)

	t.Run("zero deletes at once", func(t *testing.T) {
		c := startClient(t, ns, 0)
		run, err := c.Run(context.Background(), execv1alpha1.CodeRunSpec{Source: "x"}, 20*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		gone(t, run)
	})
	t.Run("collector deletes old finished runs", func(t *testing.T) {
		c := startClient(t, ns, time.Hour)
		run, err := c.Run(context.Background(), execv1alpha1.CodeRunSpec{Source: "y"}, 20*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		c.collectOnce(context.Background(), time.Now()) // finished just now: kept
		_, k := testenv.Start(t)
		if err := k.Get(context.Background(), client.ObjectKeyFromObject(run), &execv1alpha1.CodeRun{}); err != nil {
			t.Fatalf("a run within its retention was deleted: %v", err)
		}
		c.collectOnce(context.Background(), time.Now().Add(2*time.Hour))
		gone(t, run)
	})
}
