// Package testenv starts one real kube-apiserver and etcd (envtest) per test binary, on
// first use, with the CodeRun CRD installed, and plays the operator's part for tests of
// code that creates CodeRuns and waits for their results.
//
// The binaries come from KUBEBUILDER_ASSETS, or bin/k8s/<version> of the repository, which
// `make test` builds (hack/kube-binaries.sh).
package testenv

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kruntime "k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	execv1alpha1 "github.com/coderun-dev/coderun/api/v1alpha1"
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
)

// repoRoot is the repository's top folder, found from this file's place in it.
func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Start returns a rest config and client for the shared API server, starting it on the
// first call. Call Stop from TestMain.
func Start(t testing.TB) (*rest.Config, client.WithWatch) {
	t.Helper()
	once.Do(func() {
		assets := os.Getenv("KUBEBUILDER_ASSETS")
		if assets == "" {
			assets = filepath.Join(repoRoot(), "bin", "k8s", KubeVersion)
		}
		if _, err := os.Stat(filepath.Join(assets, "kube-apiserver")); err != nil {
			envErr = fmt.Errorf("envtest needs kube-apiserver and etcd in %s: run `make test`, or hack/kube-binaries.sh and set KUBEBUILDER_ASSETS (%w)", assets, err)
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
	if envErr != nil {
		t.Fatal(envErr)
	}
	return cfg, cl
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
