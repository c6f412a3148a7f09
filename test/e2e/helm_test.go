//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	execv1alpha1 "github.com/coderun-dev/coderun/api/v1alpha1"
	"github.com/coderun-dev/coderun/internal/testneed"
)

// The Helm release under test, as make dev (hack/dev-deploy.sh) installs it.
const (
	releaseName     = "coderun"
	chartPath       = "../../charts/coderun"
	frontDeployment = "coderun-front"
	submitPerPage   = 100
	// The Lease the operator's replicas hold for leader election (cmd/main.go).
	leaderLease = "operator.exec.coderun.dev"
)

// TestHelmUpgradeKeepsSubmissions moves the release to new images the way a user upgrades
// (helm upgrade with another image tag), checks that every saved submission is still there
// and that runs work on the new images, then rolls back and checks the same again. It is
// not parallel, so no other test runs while the operator and the front service restart.
func TestHelmUpgradeKeepsSubmissions(t *testing.T) {
	helm, newTag := os.Getenv("HELM"), os.Getenv("E2E_UPGRADE_TAG")
	if helm == "" || newTag == "" {
		testneed.Skip(t, "HELM and E2E_UPGRADE_TAG are not set; make test-e2e sets them (and loads the images under that tag)")
	}
	frontURL(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()

	// Something to keep: three submissions of this test, next to whatever earlier tests saved.
	for i := range 3 {
		status, ans := post(ctx, t, "/submit", codeBody(fmt.Sprintf("print('kept %s %d')", suiteID, i)))
		if status != http.StatusOK || ans.SubmissionID == nil || *ans.SubmissionID < 1 {
			t.Fatalf("/submit: %d %+v, want 200 with a submission_id", status, ans)
		}
	}
	saved := allSubmissions(ctx, t, frontURL(t))
	oldTag := imageTag(ctx, t, operatorDeployment)
	revision := helmRevision(ctx, t, helm)
	t.Logf("release %s at revision %d, images tagged %s; %d submissions saved", releaseName, revision, oldTag, len(saved))

	rolledBack := false
	t.Cleanup(func() {
		if !rolledBack { // leave the cluster as the other tests expect it
			runHelm(context.Background(), t, helm, operatorNamespace, "rollback", releaseName, fmt.Sprint(revision), "--wait", "--timeout", "5m")
			// The front's pod was replaced: wait until make dev's forward (to the Service)
			// reaches the new one, so that the next test does not send its requests into the
			// old one.
			waitFrontReady(context.Background(), t, frontURL(t), 2*time.Minute, nil)
		}
	})

	start := time.Now()
	runHelm(ctx, t, helm, operatorNamespace, "upgrade", releaseName, chartPath, "--reuse-values", "--set", "image.tag="+newTag, "--wait", "--timeout", "5m")
	t.Logf("helm upgrade to %s took %s", newTag, time.Since(start).Round(time.Second))
	expectRelease(ctx, t, newTag, saved)

	start = time.Now()
	runHelm(ctx, t, helm, operatorNamespace, "rollback", releaseName, fmt.Sprint(revision), "--wait", "--timeout", "5m")
	rolledBack = true
	t.Logf("helm rollback to revision %d took %s", revision, time.Since(start).Round(time.Second))
	expectRelease(ctx, t, oldTag, saved)
}

// TestOperatorFailover runs two operator replicas (helm upgrade --set
// operator.replicaCount=2), deletes the leader while a run is in flight, and checks that the
// other replica takes the Lease over and records that run's result; then rolls back. Not
// parallel, like the upgrade test.
func TestOperatorFailover(t *testing.T) {
	helm := os.Getenv("HELM")
	if helm == "" {
		testneed.Skip(t, "HELM is not set; make test-e2e sets it")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	revision := helmRevision(ctx, t, helm)
	t.Cleanup(func() {
		runHelm(context.Background(), t, helm, operatorNamespace, "rollback", releaseName, fmt.Sprint(revision), "--wait", "--timeout", "5m")
	})
	runHelm(ctx, t, helm, operatorNamespace, "upgrade", releaseName, chartPath, "--reuse-values", "--set", "operator.replicaCount=2", "--wait", "--timeout", "5m")
	leader := waitForLeader(ctx, t, operatorNamespace, "")
	t.Logf("two operator replicas; %s leads", leader)

	run := newRun(runName("failover"), execv1alpha1.CodeRunSpec{
		Source: "import time\ntime.sleep(4)\nprint('survived the failover')\n",
		Limits: timeout(30),
	})
	createRun(t, run)
	if err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, resultTimeout(run), true, func(ctx context.Context) (bool, error) {
		var got execv1alpha1.CodeRun
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(run), &got); err != nil {
			return false, err
		}
		return got.Status.Phase == execv1alpha1.PhaseRunning, nil
	}); err != nil {
		t.Fatalf("CodeRun %s did not start: %v", run.Name, err)
	}
	deleted := time.Now()
	if err := k8s.Delete(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: operatorNamespace, Name: leader}}); err != nil {
		t.Fatalf("deleting the leader %s: %v", leader, err)
	}
	next := waitForLeader(ctx, t, operatorNamespace, leader)
	t.Logf("deleted the leader %s while %s ran; %s took over after %s", leader, run.Name, next, time.Since(deleted).Round(time.Millisecond))

	done := waitForResult(t, run.Name, resultTimeout(run))
	expectEnd(t, done, execv1alpha1.PhaseSucceeded, execv1alpha1.ReasonCompleted, ptr.To[int32](0))
	if done.Status.Result.Stdout != "survived the failover\n" {
		t.Fatalf("stdout %q, want the program's line", done.Status.Result.Stdout)
	}
}

// waitForLeader waits until the operator's Lease in namespace is held by a running pod
// other than previous, and returns that pod's name.
func waitForLeader(ctx context.Context, t *testing.T, namespace, previous string) string {
	t.Helper()
	var holder string
	err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		var lease coordinationv1.Lease
		if err := k8s.Get(ctx, client.ObjectKey{Namespace: namespace, Name: leaderLease}, &lease); err != nil || lease.Spec.HolderIdentity == nil {
			return false, nil
		}
		// controller-runtime's identity is <pod name>_<uuid>.
		holder, _, _ = strings.Cut(*lease.Spec.HolderIdentity, "_")
		if holder == previous {
			return false, nil
		}
		var pod corev1.Pod
		if err := k8s.Get(ctx, client.ObjectKey{Namespace: namespace, Name: holder}, &pod); err != nil {
			return false, nil
		}
		return pod.Status.Phase == corev1.PodRunning && pod.DeletionTimestamp == nil, nil
	})
	if err != nil {
		t.Fatalf("no running operator pod other than %q holds Lease %s/%s (last holder %q): %v", previous, namespace, leaderLease, holder, err)
	}
	return holder
}

// expectRelease checks the deployed release after an upgrade or a rollback: both
// Deployments and the runner image carry tag, the front service answers, every submission
// in saved is there unchanged and none other, and a program runs, in a Job of its python
// Runtime's image (or of the runner image with tag, for the operator's built-in python).
func expectRelease(ctx context.Context, t *testing.T, tag string, saved []json.RawMessage) {
	t.Helper()
	for _, name := range []string{operatorDeployment, frontDeployment} {
		if got := imageTag(ctx, t, name); got != tag {
			t.Fatalf("deployment %s runs images tagged %q, want %q", name, got, tag)
		}
	}
	// make dev's forward goes to the Service: it reaches the new pod once that is ready.
	waitFrontReady(ctx, t, frontURL(t), 2*time.Minute, nil)
	if got := allSubmissions(ctx, t, frontURL(t)); !reflect.DeepEqual(got, saved) {
		t.Fatalf("submissions changed:\nbefore: %s\nafter:  %s", saved, got)
	}

	status, ans := post(ctx, t, "/execute", codeBody("print(sum(range(10)))"))
	if status != http.StatusOK || ans.Output != "45\n" {
		t.Fatalf("/execute after the change: %d %+v, want 200 with output 45", status, ans)
	}
	var run execv1alpha1.CodeRun
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: runsNamespace, Name: ans.Name}, &run); err != nil {
		t.Fatalf("CodeRun %s of the run: %v", ans.Name, err)
	}
	var job batchv1.Job
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: runsNamespace, Name: run.Status.JobName}, &job); err != nil {
		t.Fatalf("Job %q of CodeRun %s: %v", run.Status.JobName, ans.Name, err)
	}
	// A python Runtime's image is its own (make dev pins runtimes.imageTag, so that an
	// upgrade to a tag built for python alone keeps every language); only the operator's
	// built-in python runs on the release's runner image.
	want := ":" + tag
	if run.Status.Runtime != nil && run.Status.Runtime.Name != "" {
		want = run.Status.Runtime.Image
	}
	if image := job.Spec.Template.Spec.Containers[0].Image; !strings.HasSuffix(image, want) {
		t.Fatalf("the run's Job used image %s, want %s (status.runtime %+v)", image, want, run.Status.Runtime)
	}
}

// allSubmissions returns every saved submission of the front service at base as the API
// answers them, newest first.
func allSubmissions(ctx context.Context, t *testing.T, base string) []json.RawMessage {
	t.Helper()
	var all []json.RawMessage
	for page := 1; ; page++ {
		var answer struct {
			Submissions []json.RawMessage `json:"submissions"`
			Total       int               `json:"total"`
		}
		path := fmt.Sprintf("/submissions?page=%d&per_page=%d", page, submitPerPage)
		if status := call(ctx, t, base, http.MethodGet, path, "", &answer); status != http.StatusOK {
			t.Fatalf("GET %s%s: status %d", base, path, status)
		}
		all = append(all, answer.Submissions...)
		if len(answer.Submissions) < submitPerPage {
			if len(all) != answer.Total {
				t.Fatalf("GET %s/submissions: %d listed, total %d", base, len(all), answer.Total)
			}
			return all
		}
	}
}

// waitFrontReady waits up to limit until the front service at base answers /readyz: after
// its pod was replaced, or through a port-forward just started. alive, if set, tells why
// waiting longer is pointless (the port-forward ended).
func waitFrontReady(ctx context.Context, t *testing.T, base string, limit time.Duration, alive func() error) {
	t.Helper()
	var last error
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, limit, true, func(ctx context.Context) (bool, error) {
		if alive != nil {
			if err := alive(); err != nil {
				return false, err
			}
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/readyz", nil)
		if err != nil {
			return false, err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			last = err
			return false, nil
		}
		_ = resp.Body.Close()
		last = fmt.Errorf("status %d", resp.StatusCode)
		return resp.StatusCode == http.StatusOK, nil
	})
	if err != nil {
		t.Fatalf("the front service did not become ready at %s: %v (last: %v)", base, err, last)
	}
}

// imageTag returns the tag of the first container image of a Deployment in the release
// namespace (helm --wait has waited for its rollout).
func imageTag(ctx context.Context, t *testing.T, name string) string {
	t.Helper()
	var dep appsv1.Deployment
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: operatorNamespace, Name: name}, &dep); err != nil {
		t.Fatalf("deployment %s: %v", name, err)
	}
	image := dep.Spec.Template.Spec.Containers[0].Image
	return image[strings.LastIndex(image, ":")+1:]
}

// helmRevision returns the release's current revision.
func helmRevision(ctx context.Context, t *testing.T, helm string) int {
	t.Helper()
	var status struct {
		Version int `json:"version"`
	}
	if err := json.Unmarshal([]byte(runHelm(ctx, t, helm, operatorNamespace, "status", releaseName, "-o", "json")), &status); err != nil || status.Version < 1 {
		t.Fatalf("helm status -o json: revision %d, %v", status.Version, err)
	}
	return status.Version
}

// runHelm runs helm against the suite's cluster in namespace and returns stdout; an error
// fails the test.
func runHelm(ctx context.Context, t *testing.T, helm, namespace string, args ...string) string {
	t.Helper()
	out, err := helmIn(ctx, helm, namespace, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// helmIn runs helm against the suite's cluster in namespace and returns stdout.
func helmIn(ctx context.Context, helm, namespace string, args ...string) (string, error) {
	args = append(args, "--namespace", namespace)
	cmd := exec.CommandContext(ctx, helm, args...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("helm %s: %w\n%s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String(), nil
}
