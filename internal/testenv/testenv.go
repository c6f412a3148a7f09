// Package testenv starts one real kube-apiserver and etcd (envtest) per test binary, on
// first use, with the CodeRun CRD installed, and plays the operator's part for tests of
// code that creates CodeRuns and waits for their results.
//
// The binaries come from KUBEBUILDER_ASSETS, or bin/k8s/<version> of the repository, which
// `make test` builds (hack/kube-binaries.sh).
package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	kruntime "k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	execv1alpha1 "github.com/coderun-dev/coderun/api/v1alpha1"
	"github.com/coderun-dev/coderun/internal/testneed"
)

// KubeVersion is the version of kube-apiserver that `make test` builds for envtest.
const KubeVersion = "v1.37.2"

// Scheme knows the built-in types and CodeRuns.
var Scheme = kruntime.NewScheme()

func init() {
	utilruntime.Must(clientgoscheme.AddToScheme(Scheme))
	utilruntime.Must(execv1alpha1.AddToScheme(Scheme))
}

var (
	once   sync.Once
	env    *envtest.Environment
	cfg    *rest.Config
	cl     client.WithWatch
	envErr error
	// noBinaries: kube-apiserver is not there; a missing tool, not a failure to start.
	noBinaries bool
)

// repoRoot is the repository's top folder, found from this file's place in it.
func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Start returns a rest config and client for the shared API server, starting it on the
// first call. Without the binaries the test is skipped, or fails under
// CODERUN_TEST_REQUIRE_ALL=1 (testneed). Call Stop from TestMain.
func Start(t testing.TB) (*rest.Config, client.WithWatch) {
	t.Helper()
	if testing.Short() {
		// `make unit` (go test -short) runs only what needs no API server.
		t.Skip("needs an API server (envtest); not in -short mode")
	}
	once.Do(func() {
		assets := os.Getenv("KUBEBUILDER_ASSETS")
		if assets == "" {
			assets = filepath.Join(repoRoot(), "bin", "k8s", KubeVersion)
		}
		if _, err := os.Stat(filepath.Join(assets, "kube-apiserver")); err != nil {
			envErr = fmt.Errorf("envtest needs kube-apiserver and etcd in %s: run `make test`, or hack/kube-binaries.sh and set KUBEBUILDER_ASSETS (%w)", assets, err)
			noBinaries = true
			return
		}
		e := &envtest.Environment{
			CRDDirectoryPaths:     []string{filepath.Join(repoRoot(), "config", "crd", "bases")},
			ErrorIfCRDPathMissing: true,
			BinaryAssetsDirectory: assets,
		}
		start := time.Now()
		c, err := e.Start()
		if err != nil {
			envErr = fmt.Errorf("starting envtest: %w", err)
			return
		}
		env, cfg = e, c
		fmt.Fprintf(os.Stderr, "envtest: kube-apiserver and etcd ready in %s\n", time.Since(start).Round(time.Millisecond))
		cl, envErr = client.NewWithWatch(c, client.Options{Scheme: Scheme})
	})
	if noBinaries {
		testneed.Skip(t, "%v", envErr)
	}
	if envErr != nil {
		t.Fatal(envErr)
	}
	return cfg, cl
}

// Main runs a package's tests and then stops the API server: the body of TestMain in every
// package that uses this one.
func Main(m *testing.M) {
	code := m.Run()
	Stop()
	os.Exit(code)
}

// Stop stops the API server if Start started one.
func Stop() {
	if env != nil {
		if err := env.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "stopping envtest: %v\n", err)
		}
	}
}

// Namespace creates a fresh namespace for one test and returns its name.
func Namespace(t testing.TB) string {
	t.Helper()
	_, c := Start(t)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "runs-"}}
	if err := c.Create(context.Background(), ns); err != nil {
		t.Fatalf("creating namespace: %v", err)
	}
	return ns.Name
}

// Kubeconfig writes a kubeconfig for a user of the shared API server with the given name
// and groups, authorised only by the RBAC objects that apply to them, and returns its path.
func Kubeconfig(t testing.TB, user string, groups ...string) string {
	t.Helper()
	Start(t)
	u, err := env.AddUser(envtest.User{Name: user, Groups: groups}, nil)
	if err != nil {
		t.Fatalf("adding user %s to envtest: %v", user, err)
	}
	data, err := u.KubeConfig()
	if err != nil {
		t.Fatalf("kubeconfig of %s: %v", user, err)
	}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// Apply creates every object of a multi-document YAML file of the repository (path from
// its top folder), tolerating objects that already exist.
func Apply(t testing.TB, path string) {
	t.Helper()
	_, c := Start(t)
	data, err := os.ReadFile(filepath.Join(repoRoot(), path))
	if err != nil {
		t.Fatal(err)
	}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	for {
		obj := &unstructured.Unstructured{}
		if err := dec.Decode(&obj.Object); errors.Is(err, io.EOF) {
			return
		} else if err != nil {
			t.Fatalf("decoding %s: %v", path, err)
		}
		if len(obj.Object) == 0 {
			continue
		}
		if err := c.Create(context.Background(), obj); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatalf("creating %s %s from %s: %v", obj.GetKind(), obj.GetName(), path, err)
		}
	}
}

// EnsureNamespace creates the namespace name unless it exists.
func EnsureNamespace(t testing.TB, name string) {
	t.Helper()
	_, c := Start(t)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := c.Create(context.Background(), ns); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("creating namespace %s: %v", name, err)
	}
}
