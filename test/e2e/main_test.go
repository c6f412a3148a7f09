//go:build e2e

// Package e2e tests a deployed coderun end to end: real CodeRuns applied to a real cluster,
// run by the operator as deployed, in real pods with the runner image's python3.
//
// Run with `make test-e2e`, or against any cluster that has coderun deployed:
//
//	KUBECONFIG=/path/to/kubeconfig go test -tags e2e ./test/e2e -count=1 -timeout 30m -v
//
// Every test creates its own CodeRuns (unique names, in the runs namespace) and deletes them
// when it ends. No test contacts any address outside the cluster under test: the network
// checks target only the cluster's own API server and node addresses, read from the cluster.
package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	execv1alpha1 "github.com/coderun-dev/coderun/api/v1alpha1"
	"github.com/coderun-dev/coderun/internal/config"
)

// Where the chart (release coderun in coderun-system, as make dev installs it) and the
// kustomize manifests (config/default) put things.
const (
	runsNamespace      = "coderun-runs"
	operatorNamespace  = "coderun-system"
	operatorDeployment = "coderun-operator"
)

// Labels on every CodeRun this suite creates: partOfLabel finds leftovers of aborted
// suites, suiteLabel this process's runs.
const (
	partOfLabel = "app.kubernetes.io/part-of"
	partOfValue = "coderun-e2e"
	suiteLabel  = "e2e.coderun.dev/suite"
)

var (
	scheme = runtime.NewScheme()
	// k8s talks to the cluster under test directly (no cache), with watches.
	k8s client.WithWatch
	// operatorConfig is the operator's configuration as deployed (its ConfigMap).
	operatorConfig config.Config
	// suiteID makes this process's CodeRun names unique in the cluster.
	suiteID string
)

func TestMain(m *testing.M) {
	os.Exit(runSuite(m))
}

func runSuite(m *testing.M) int {
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(execv1alpha1.AddToScheme(scheme))

	// An explicit KUBECONFIG, not whatever ~/.kube/config points at: these tests create
	// workloads, and kubectl (run by some tests) must talk to the same cluster.
	if os.Getenv("KUBECONFIG") == "" {
		fmt.Fprintln(os.Stderr, "e2e: set KUBECONFIG to the kubeconfig of the cluster to test (make test-e2e does)")
		return 2
	}
	restConfig, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
		clientcmd.NewDefaultClientConfigLoadingRules(), nil).ClientConfig()
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: loading KUBECONFIG: %v\n", err)
		return 2
	}
	// Twenty runs and several watches at once: the default 5 QPS would throttle the tests.
	restConfig.QPS, restConfig.Burst = 50, 100
	k8s, err = client.NewWithWatch(restConfig, client.Options{Scheme: scheme})
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: client: %v\n", err)
		return 2
	}
	suiteID = randomID(3)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	if err := waitForOperator(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: coderun is not deployed and ready: %v\n", err)
		return 1
	}
	operatorConfig, err = deployedConfig(ctx)
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: reading the operator's configuration: %v\n", err)
		return 1
	}
	fmt.Printf("e2e: suite %s; operator ready after %s; maxConcurrentRuns=%d outputLimitBytes=%d\n",
		suiteID, time.Since(start).Round(time.Millisecond), operatorConfig.MaxConcurrentRuns, operatorConfig.OutputLimitBytes)
	deleteStaleRuns(ctx)

	code := m.Run()

	// Each test deletes its own runs; this catches those of a test that was interrupted.
	cleanupCtx, cancelCleanup := context.WithTimeout(context.Background(), time.Minute)
	defer cancelCleanup()
	if err := k8s.DeleteAllOf(cleanupCtx, &execv1alpha1.CodeRun{}, client.InNamespace(runsNamespace),
		client.MatchingLabels{suiteLabel: suiteID}, client.PropagationPolicy(metav1.DeletePropagationBackground)); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: deleting this suite's CodeRuns: %v\n", err)
	}
	return code
}

// randomID returns n random bytes in hex.
func randomID(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// waitForOperator waits until the operator's Deployment is available and the runs
// namespace exists: `make test-e2e` may start the suite right after deploying.
func waitForOperator(ctx context.Context) error {
	var last error
	err := wait.PollUntilContextCancel(ctx, 2*time.Second, true, func(ctx context.Context) (bool, error) {
		// A cluster that is restarting may hold a request open: give each check its own bound.
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		var ns corev1.Namespace
		if last = k8s.Get(ctx, client.ObjectKey{Name: runsNamespace}, &ns); last != nil {
			return false, nil
		}
		var dep appsv1.Deployment
		if last = k8s.Get(ctx, client.ObjectKey{Namespace: operatorNamespace, Name: operatorDeployment}, &dep); last != nil {
			return false, nil
		}
		for _, c := range dep.Status.Conditions {
			if c.Type == appsv1.DeploymentAvailable && c.Status == corev1.ConditionTrue && dep.Status.ReadyReplicas > 0 {
				return true, nil
			}
		}
		last = fmt.Errorf("deployment %s/%s is not available (%d ready replicas)", operatorNamespace, operatorDeployment, dep.Status.ReadyReplicas)
		return false, nil
	})
	if err != nil {
		return fmt.Errorf("%w (last check: %v)", err, last)
	}
	return nil
}

// deployedConfig reads the operator's configuration the way the operator does: the file
// its --config flag names, found through the Deployment's volume mounts in the ConfigMap
// that backs it (whose name kustomize suffixes with a hash).
func deployedConfig(ctx context.Context) (config.Config, error) {
	var dep appsv1.Deployment
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: operatorNamespace, Name: operatorDeployment}, &dep); err != nil {
		return config.Config{}, err
	}
	pod := dep.Spec.Template.Spec
	for _, c := range pod.Containers {
		configPath := ""
		for i, arg := range c.Args {
			if v, ok := strings.CutPrefix(arg, "--config="); ok {
				configPath = v
			} else if arg == "--config" && i+1 < len(c.Args) {
				configPath = c.Args[i+1]
			}
		}
		if configPath == "" {
			continue
		}
		for _, mount := range c.VolumeMounts {
			rel, ok := strings.CutPrefix(configPath, strings.TrimSuffix(mount.MountPath, "/")+"/")
			if !ok {
				continue
			}
			for _, vol := range pod.Volumes {
				if vol.Name != mount.Name || vol.ConfigMap == nil {
					continue
				}
				key := path.Join(mount.SubPath, rel)
				for _, item := range vol.ConfigMap.Items {
					if item.Path == key {
						key = item.Key
					}
				}
				var cm corev1.ConfigMap
				if err := k8s.Get(ctx, client.ObjectKey{Namespace: dep.Namespace, Name: vol.ConfigMap.Name}, &cm); err != nil {
					return config.Config{}, err
				}
				data, ok := cm.Data[key]
				if !ok {
					return config.Config{}, fmt.Errorf("ConfigMap %s has no key %q", cm.Name, key)
				}
				// config.Load reads a file, as the operator does; going through it applies the
				// same defaults and strict parsing.
				file := filepath.Join(os.TempDir(), "coderun-e2e-operator-config-"+randomID(3)+".yaml")
				if err := os.WriteFile(file, []byte(data), 0o600); err != nil {
					return config.Config{}, err
				}
				defer func() { _ = os.Remove(file) }()
				return config.Load(file)
			}
		}
		return config.Config{}, fmt.Errorf("--config=%s is not on a ConfigMap volume of container %s", configPath, c.Name)
	}
	// The operator runs on its defaults when it has no --config.
	return config.Default(), nil
}

// deleteStaleRuns removes CodeRuns of earlier suites that were killed before they could
// clean up (a suite never runs longer than its 30-minute test timeout), so that they do
// not take run slots. Runs of a suite that may still be running are left alone.
func deleteStaleRuns(ctx context.Context) {
	var runs execv1alpha1.CodeRunList
	if err := k8s.List(ctx, &runs, client.InNamespace(runsNamespace), client.MatchingLabels{partOfLabel: partOfValue}); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: listing stale CodeRuns: %v\n", err)
		return
	}
	for i := range runs.Items {
		run := &runs.Items[i]
		if time.Since(run.CreationTimestamp.Time) < 40*time.Minute {
			continue
		}
		fmt.Printf("e2e: deleting stale CodeRun %s from an earlier suite\n", run.Name)
		if err := k8s.Delete(ctx, run, client.PropagationPolicy(metav1.DeletePropagationBackground)); client.IgnoreNotFound(err) != nil {
			fmt.Fprintf(os.Stderr, "e2e: deleting stale CodeRun %s: %v\n", run.Name, err)
		}
	}
}
