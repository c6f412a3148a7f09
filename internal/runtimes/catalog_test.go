package runtimes

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	execv1alpha1 "github.com/coderun-dev/coderun/api/v1alpha1"
	"github.com/coderun-dev/coderun/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// newRuntime is a minimal valid Runtime object for the API server.
func newRuntime(name, language, version string, aliases ...string) *execv1alpha1.Runtime {
	return &execv1alpha1.Runtime{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: execv1alpha1.RuntimeSpec{
			Language: language, Version: version, Aliases: aliases,
			Image: "localhost/coderun-" + language + ":dev", SourceFile: "main.x",
			Run:       execv1alpha1.RunStep{Command: []string{"./main"}},
			SmokeTest: execv1alpha1.SmokeTest{Source: "x", ExpectedStdout: "OK\n"},
		},
	}
}

// startCatalog runs a Catalog until the test ends.
func startCatalog(t *testing.T, retry time.Duration) *Catalog {
	t.Helper()
	cfg, _ := testenv.Start(t)
	ctx, cancel := context.WithCancel(context.Background())
	c := NewCatalog(cfg, testenv.Scheme, CatalogOptions{Logger: slog.New(slog.DiscardHandler), RetryEvery: retry})
	done := make(chan error, 1)
	go func() { done <- c.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Start: %v", err)
		}
	})
	return c
}

// names is what the catalog holds, as language-version.
func names(list []execv1alpha1.Runtime) []string {
	var out []string
	for _, r := range list {
		out = append(out, r.Spec.Language+"-"+r.Spec.Version)
	}
	return out
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, 20*time.Second, true,
		func(context.Context) (bool, error) { return cond(), nil })
	if err != nil {
		t.Fatalf("%s: not within 20s", what)
	}
}

// TestCatalog: the catalog lists the cluster's Runtimes, sorted, and follows creates,
// status changes and deletes without being asked.
func TestCatalog(t *testing.T) {
	_, admin := testenv.Start(t)
	ctx := context.Background()
	for _, r := range []*execv1alpha1.Runtime{
		newRuntime("cat-python-3-13", "python", "3.13.5", "py", "python3"),
		newRuntime("cat-cpp-14", "cpp", "14.2.0", "c++"),
		newRuntime("cat-python-3-11", "python", "3.11.2"),
	} {
		if err := admin.Create(ctx, r); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = admin.Delete(context.Background(), r) })
	}
	c := startCatalog(t, time.Second)
	if !c.WaitForSync(ctx) || c.NotSyncedReason() != "" {
		t.Fatalf("not synced: %s", c.NotSyncedReason())
	}
	ours := func() []string {
		var out []string
		for _, n := range names(c.Runtimes()) {
			if slices.Contains([]string{"cpp-14.2.0", "python-3.13.5", "python-3.11.2", "go-1.24.4"}, n) {
				out = append(out, n)
			}
		}
		return out
	}
	if got := ours(); !slices.Equal(got, []string{"cpp-14.2.0", "python-3.13.5", "python-3.11.2"}) {
		t.Fatalf("catalog %v, want cpp, then python highest first", got)
	}
	if r, err := Resolve(c.Runtimes(), "py", "3.x"); err != nil || r.Name != "cat-python-3-13" {
		t.Errorf("Resolve(py, 3.x) over the catalog: %v %v", r, err)
	}

	// A new Runtime appears; its Ready condition reaches the catalog; a deleted one goes.
	goRT := newRuntime("cat-go-1-24", "go", "1.24.4", "golang")
	if err := admin.Create(ctx, goRT); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = admin.Delete(context.Background(), goRT) })
	eventually(t, "the new Runtime in the catalog", func() bool { return slices.Contains(ours(), "go-1.24.4") })
	goRT.Status.Conditions = []metav1.Condition{{Type: execv1alpha1.RuntimeConditionReady, Status: metav1.ConditionTrue,
		Reason: execv1alpha1.RuntimeReasonSmokeTestPassed, Message: "printed OK", LastTransitionTime: metav1.Now()}}
	if err := admin.Status().Update(ctx, goRT); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the Ready condition in the catalog", func() bool {
		r, err := Resolve(c.Runtimes(), "golang", "")
		return err == nil && Ready(r)
	})
	if err := admin.Delete(ctx, newRuntime("cat-cpp-14", "cpp", "14.2.0")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the deleted Runtime gone", func() bool { return !slices.Contains(ours(), "cpp-14.2.0") })

	// A snapshot is the caller's: changing it changes nothing in the catalog.
	snap := c.Runtimes()
	for i := range snap {
		snap[i].Spec.Language = "changed"
	}
	if slices.Contains(names(c.Runtimes()), "changed-3.13.5") {
		t.Error("a snapshot shares memory with the cache")
	}
}

// TestCatalogWithoutCRD: on an API server without the Runtime kind (CRDs not upgraded),
// the catalog is empty and says why, and it picks the kind up once the CRD is applied.
func TestCatalogWithoutCRD(t *testing.T) {
	_, admin := testenv.Start(t)
	ctx := context.Background()
	crd := &unstructured.Unstructured{}
	crd.SetGroupVersionKind(schema.GroupVersionKind{Group: "apiextensions.k8s.io", Version: "v1", Kind: "CustomResourceDefinition"})
	crd.SetName("runtimes.exec.coderun.dev")
	if err := admin.Delete(ctx, crd); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the Runtime CRD gone", func() bool {
		return apierrors.IsNotFound(admin.Get(ctx, client.ObjectKeyFromObject(crd), crd.DeepCopy()))
	})
	// Put it back whatever happens: other tests of this binary need it.
	t.Cleanup(func() { testenv.Apply(t, "config/crd/bases/exec.coderun.dev_runtimes.yaml") })

	c := startCatalog(t, 300*time.Millisecond)
	eventually(t, "the reason", func() bool { return strings.Contains(c.NotSyncedReason(), "no Runtime kind") })
	time.Sleep(time.Second)
	if c.Synced() || c.Runtimes() != nil {
		t.Fatalf("synced without the kind: %v", c.Runtimes())
	}

	testenv.Apply(t, "config/crd/bases/exec.coderun.dev_runtimes.yaml")
	eventually(t, "the Runtime kind served", func() bool {
		return admin.List(ctx, &execv1alpha1.RuntimeList{}) == nil
	})
	r := newRuntime("cat-late-ruby", "ruby", "3.3.8")
	eventually(t, "creating a Runtime", func() bool { return admin.Create(ctx, r) == nil })
	t.Cleanup(func() { _ = admin.Delete(context.Background(), r) })
	eventually(t, "the catalog synced with the late Runtime", func() bool {
		return c.Synced() && slices.Contains(names(c.Runtimes()), "ruby-3.3.8")
	})
}
