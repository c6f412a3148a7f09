package runs

import (
	"context"
	"errors"
	"regexp"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	execv1alpha1 "github.com/coderun-dev/coderun/api/v1alpha1"
	"github.com/coderun-dev/coderun/internal/testenv"
)

// slowBySource finishes "slow" 1.5 s after it is admitted (long enough for a client to go
// away meanwhile), and anything else at once, printing its source.
func slowBySource(run *execv1alpha1.CodeRun) testenv.Behaviour {
	if run.Spec.Source == "slow" {
		return testenv.Behaviour{Result: testenv.Completed("slow\n"), Delay: 1500 * time.Millisecond}
	}
	return behaviourBySource(run)
}

func keyed(key string) context.Context { return WithIdempotencyKey(context.Background(), key) }

func TestNameFor(t *testing.T) {
	name := NameFor("", "8e03978e-40d5-43e8-bc93-6894a57f9324")
	if name != NameFor("", "8e03978e-40d5-43e8-bc93-6894a57f9324") {
		t.Fatal("NameFor is not the same for the same key")
	}
	// A name and a label value (the Job takes the name; pods and labels derive from it).
	if errs := validation.IsDNS1123Label(name); len(errs) > 0 || !regexp.MustCompile(`^run-[a-z2-7]{24}$`).MatchString(name) {
		t.Errorf("NameFor gives %q: %v", name, errs)
	}
	others := map[string]string{}
	for _, p := range [][2]string{{"", "k"}, {"", "k2"}, {"key-a", "k"}, {"key-b", "k"}, {"a", "bc"}, {"ab", "c"}, {"anonymous", "k"}} {
		n := NameFor(p[0], p[1])
		if prev, ok := others[n]; ok {
			t.Errorf("caller %q key %q has the name of %s: %s", p[0], p[1], prev, n)
		}
		others[n] = p[0] + "/" + p[1]
	}
}

// TestSameKeyOneRun: requests with the same key, at once and after the run finished, get
// the one CodeRun's result; the operator sees one CodeRun.
func TestSameKeyOneRun(t *testing.T) {
	ns := testenv.Namespace(t)
	op := testenv.RunOperator(t, ns, slowBySource)
	c := startClient(t, ns, time.Hour)

	const n = 3
	got := make([]*execv1alpha1.CodeRun, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			got[i], errs[i] = c.Run(keyed("k-1"), execv1alpha1.CodeRunSpec{Source: "slow"}, 20*time.Second)
		})
	}
	wg.Wait()
	later, err := c.Run(keyed("k-1"), execv1alpha1.CodeRunSpec{Source: "slow"}, 20*time.Second)
	got, errs = append(got, later), append(errs, err)
	for i := range got {
		if errs[i] != nil {
			t.Fatalf("Run %d: %v", i, errs[i])
		}
		if got[i].Name != NameFor("", "k-1") || got[i].UID != got[0].UID || got[i].Status.Result.Output != "slow\n" {
			t.Errorf("Run %d: CodeRun %s (uid %s) output %q, want %s (uid %s) with slow", i, got[i].Name, got[i].UID,
				got[i].Status.Result.Output, NameFor("", "k-1"), got[0].UID)
		}
	}
	if seen := op.Seen(); len(seen) != 1 {
		t.Errorf("the operator saw %v, want one CodeRun", seen)
	}
	// Another caller's key of the same spelling is another run.
	other, err := c.Run(WithKeyID(keyed("k-1"), "key-b"), execv1alpha1.CodeRunSpec{Source: "x"}, 20*time.Second)
	if err != nil || other.Name == got[0].Name {
		t.Errorf("another caller with the same key: %v, %v; want a CodeRun of its own", other, err)
	}
}

// TestKeyedRunOutlivesItsClient: with a key, a client that goes away mid-run leaves the
// CodeRun running, and a retry gets its result.
func TestKeyedRunOutlivesItsClient(t *testing.T) {
	ns := testenv.Namespace(t)
	op := testenv.RunOperator(t, ns, slowBySource)
	c := startClient(t, ns, time.Hour)

	ctx, cancel := context.WithCancel(keyed("k-2"))
	go func() {
		// Cancel once the operator has admitted the run, as a connection cut mid-run.
		_ = wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
			return len(op.Seen()) == 1, nil
		})
		time.Sleep(100 * time.Millisecond)
		cancel()
	}()
	run, err := c.Run(ctx, execv1alpha1.CodeRunSpec{Source: "slow"}, time.Minute)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Run error %v, want context.Canceled", err)
	}
	_, k := testenv.Start(t)
	time.Sleep(200 * time.Millisecond) // a delete would have reached the API server by now
	kept := &execv1alpha1.CodeRun{}
	if err := k.Get(context.Background(), client.ObjectKeyFromObject(run), kept); err != nil || kept.DeletionTimestamp != nil || kept.Status.Result != nil {
		t.Fatalf("the CodeRun %s, still running when its keyed client went away: %v, deleting %v, result %v; want it kept running",
			run.Name, err, kept.DeletionTimestamp, kept.Status.Result)
	}

	retry, err := c.Run(keyed("k-2"), execv1alpha1.CodeRunSpec{Source: "slow"}, 20*time.Second)
	if err != nil || retry.UID != kept.UID || retry.Status.Result.Output != "slow\n" {
		t.Fatalf("the retry: %v, %v; want the result of CodeRun %s (uid %s)", retry, err, kept.Name, kept.UID)
	}
	if seen := op.Seen(); len(seen) != 1 {
		t.Errorf("the operator saw %v, want one CodeRun", seen)
	}
}

// TestKeyReusedForAnotherSpec: the same key with another program (or stdin, or limits)
// is refused, and nothing more runs.
func TestKeyReusedForAnotherSpec(t *testing.T) {
	ns := testenv.Namespace(t)
	op := testenv.RunOperator(t, ns, slowBySource)
	c := startClient(t, ns, time.Hour)

	if _, err := c.Run(keyed("k-3"), execv1alpha1.CodeRunSpec{Source: "a"}, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	for _, spec := range []execv1alpha1.CodeRunSpec{{Source: "b"}, {Source: "a", Stdin: "1"}} {
		run, err := c.Run(keyed("k-3"), spec, 20*time.Second)
		if run != nil || !errors.Is(err, ErrKeyReused) {
			t.Errorf("the key again for %+v: %v, %v; want ErrKeyReused", spec, run, err)
		}
	}
	if seen := op.Seen(); len(seen) != 1 {
		t.Errorf("the operator saw %v, want one CodeRun", seen)
	}
}

// TestKeyAfterRetention: once the retention has removed a keyed run, the key runs anew
// (its result is gone, so it cannot be given again).
func TestKeyAfterRetention(t *testing.T) {
	ns := testenv.Namespace(t)
	testenv.RunOperator(t, ns, slowBySource)
	c := startClient(t, ns, time.Hour)

	first, err := c.Run(keyed("k-4"), execv1alpha1.CodeRunSpec{Source: "x"}, 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.collectOnce(context.Background(), time.Now().Add(2*time.Hour))
	gone(t, first)
	second, err := c.Run(keyed("k-4"), execv1alpha1.CodeRunSpec{Source: "x"}, 20*time.Second)
	if err != nil || second.Name != first.Name || second.UID == first.UID {
		t.Fatalf("after the retention: %v, %v; want a new CodeRun named %s", second, err, first.Name)
	}
}
