package main

import (
	"context"
	"encoding/json"
	"flag"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	execv1alpha1 "github.com/coderun-dev/coderun/api/v1alpha1"
	"github.com/coderun-dev/coderun/internal/runs"
	"github.com/coderun-dev/coderun/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestParseFlags(t *testing.T) {
	t.Setenv("CODERUN_MAX_PENDING", "7")
	t.Setenv("CODERUN_DATABASE", "postgres://front@db/coderun")
	f, err := parseFlags(flag.NewFlagSet("front", flag.ContinueOnError), []string{"--namespace=runs", "--max-pending=9"})
	if err != nil {
		t.Fatal(err)
	}
	// Flags win over the environment; the environment over defaults.
	if f.namespace != "runs" || f.maxPending != 9 || f.database != "postgres://front@db/coderun" || f.listenAddress != ":8080" || f.maxBodyBytes != 256<<10 {
		t.Errorf("flags %+v", f)
	}
	for _, args := range [][]string{{"--max-pending=0"}, {"--queue-wait=-1s"}, {"--max-body-bytes=10"}, {"--nope"}} {
		if _, err := parseFlags(flag.NewFlagSet("front", flag.ContinueOnError), args); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
	t.Setenv("CODERUN_MAX_PENDING", "many")
	if _, err := parseFlags(flag.NewFlagSet("front", flag.ContinueOnError), nil); err == nil || !strings.Contains(err.Error(), "CODERUN_MAX_PENDING") {
		t.Errorf("a bad environment variable: %v", err)
	}
}

const frontUser = "system:serviceaccount:coderun-system:coderun-front"

// asFrontServiceAccount sets the test up to run the service as its ServiceAccount on the
// envtest API server: the runs namespace, the shipped RBAC of config/runs, and KUBECONFIG
// naming that user, authorised by nothing else. It returns that kubeconfig's path.
func asFrontServiceAccount(t *testing.T) string {
	t.Helper()
	testenv.EnsureNamespace(t, "coderun-runs")
	testenv.Apply(t, "config/runs/front_rbac.yaml")
	kubeconfig := testenv.Kubeconfig(t, frontUser, "system:serviceaccounts", "system:serviceaccounts:coderun-system", "system:authenticated")
	t.Setenv("KUBECONFIG", kubeconfig)
	return kubeconfig
}

// TestServiceWithShippedRBAC runs the whole service as its ServiceAccount, authorised by
// nothing but config/runs/front_rbac.yaml, against a real API server: it becomes ready,
// runs a program (the test plays the operator), saves a submission, stops on its signal,
// and after a restart on the same SQLite file still has the submission.
func TestServiceWithShippedRBAC(t *testing.T) {
	kubeconfig := asFrontServiceAccount(t)
	testenv.RunOperator(t, "coderun-runs", func(run *execv1alpha1.CodeRun) testenv.Behaviour {
		return testenv.Behaviour{Result: testenv.Completed("Hello, World!\n")}
	})

	f, err := parseFlags(flag.NewFlagSet("front", flag.ContinueOnError), []string{
		"--listen-address=127.0.0.1:0",
		"--database=" + filepath.Join(t.TempDir(), "coderun.db"),
		"--operator-config=../../config/manager/operator-config.yaml",
		"--run-retention=1h",
	})
	if err != nil {
		t.Fatal(err)
	}

	// A Runtime made by an administrator: the service lists it through its informer,
	// authorised by the shipped ClusterRole (get, list, watch on runtimes).
	_, admin := testenv.Start(t)
	rt := &execv1alpha1.Runtime{
		ObjectMeta: metav1.ObjectMeta{Name: "rbac-ruby-3-3"},
		Spec: execv1alpha1.RuntimeSpec{Language: "ruby", Version: "3.3.8", Aliases: []string{"rb"}, Image: "localhost/coderun-ruby:dev",
			SourceFile: "main.rb", Run: execv1alpha1.RunStep{Command: []string{"ruby", "main.rb"}},
			SmokeTest: execv1alpha1.SmokeTest{Source: "puts 'OK'", ExpectedStdout: "OK\n"}},
	}
	if err := admin.Create(context.Background(), rt); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = admin.Delete(context.Background(), rt) })

	base, stop := start(t, f)
	waitReady(t, base)
	var langs []struct {
		Language string   `json:"language"`
		Version  string   `json:"version"`
		Aliases  []string `json:"aliases"`
		Ready    bool     `json:"ready"`
	}
	// The catalog syncs alongside readiness, not before it: wait for it.
	if err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		resp, err := http.Get(base + "/runtimes")
		if err != nil {
			return false, nil
		}
		defer func() { _ = resp.Body.Close() }()
		return resp.StatusCode == http.StatusOK && json.NewDecoder(resp.Body).Decode(&langs) == nil, nil
	}); err != nil {
		t.Fatalf("GET /runtimes did not answer 200 within 30s")
	}
	found := false
	for _, l := range langs {
		found = found || l.Language == "ruby" && l.Version == "3.3.8" && len(l.Aliases) == 1 && !l.Ready
	}
	if !found {
		t.Errorf("GET /runtimes = %+v, want the ruby Runtime (not Ready: no operator runs its smoke test here)", langs)
	}
	var out struct {
		Output       string `json:"output"`
		ExitCode     *int   `json:"exit_code"`
		SubmissionID int64  `json:"submission_id"`
		Name         string `json:"name"`
	}
	post(t, base+"/submit", `{"code": "print('Hello, World!')", "stdin": "42\n", "limits": {"timeout_seconds": 5, "memory": "128Mi", "cpu": "500m"}}`,
		&out, "X-Request-Id", "trace-43")
	if out.Output != "Hello, World!\n" || out.ExitCode == nil || *out.ExitCode != 0 || out.SubmissionID != 1 {
		t.Fatalf("/submit answered %+v", out)
	}
	// The request reached the CodeRun whole: stdin, limits, the request's id, and the label
	// that the service's own cache selects by (--run-retention keeps the CodeRun).
	var created execv1alpha1.CodeRun
	if err := admin.Get(context.Background(), client.ObjectKey{Namespace: "coderun-runs", Name: out.Name}, &created); err != nil {
		t.Fatalf("the run's CodeRun: %v", err)
	}
	if l := created.Spec.Limits; created.Spec.Stdin != "42\n" || *l.TimeoutSeconds != 5 || l.Memory.String() != "128Mi" || l.CPU.String() != "500m" {
		t.Errorf("CodeRun spec %+v, want the stdin and limits sent", created.Spec)
	}
	if created.Annotations[runs.RequestIDAnnotation] != "trace-43" || created.Labels[execv1alpha1.LabelManagedBy] != runs.ManagedBy {
		t.Errorf("CodeRun annotations %v labels %v, want the request's id and managed-by %s", created.Annotations, created.Labels, runs.ManagedBy)
	}
	// Limits above the shipped maxima are refused before any CodeRun exists.
	resp, err := http.Post(base+"/execute", "application/json", strings.NewReader(`{"code": "x", "limits": {"memory": "4Gi"}}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(string(body), "maximum of 1Gi") {
		t.Errorf("4Gi: %d %s", resp.StatusCode, body)
	}
	stop()

	// The same identity can do nothing else: no writes to Runtimes either.
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	front, err := client.New(cfg, client.Options{Scheme: testenv.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for what, err := range map[string]error{
		"list pods in coderun-runs":          front.List(ctx, &corev1.PodList{}, client.InNamespace("coderun-runs")),
		"list CodeRuns in default":           front.List(ctx, &execv1alpha1.CodeRunList{}, client.InNamespace("default")),
		"update a CodeRun's status":          front.Status().Update(ctx, &execv1alpha1.CodeRun{ObjectMeta: metav1.ObjectMeta{Name: out.Name, Namespace: "coderun-runs"}, Spec: execv1alpha1.CodeRunSpec{Source: "x"}}),
		"create a ConfigMap in coderun-runs": front.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "x", Namespace: "coderun-runs"}}),
		"create a Runtime":                   front.Create(ctx, &execv1alpha1.Runtime{ObjectMeta: metav1.ObjectMeta{Name: "x"}, Spec: rt.Spec}),
		"delete a Runtime":                   front.Delete(ctx, rt.DeepCopy()),
		"update a Runtime's status":          front.Status().Update(ctx, rt.DeepCopy()),
	} {
		if !apierrors.IsForbidden(err) {
			t.Errorf("the front's ServiceAccount may %s (err %v)", what, err)
		}
	}

	// A restart on the same file: the submission is still there.
	base, stop = start(t, f)
	defer stop()
	waitReady(t, base)
	var sub struct {
		ID     int64  `json:"id"`
		Output string `json:"output"`
		Name   string `json:"name"`
	}
	get(t, base+"/submissions/1", &sub)
	if sub.ID != 1 || sub.Output != "Hello, World!\n" || sub.Name != out.Name {
		t.Errorf("after a restart: %+v", sub)
	}
}

// start runs the service in this process until stop is called; stop checks that it
// shut down cleanly.
func start(t *testing.T, f flags) (base string, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	addr := make(chan net.Addr, 1)
	done := make(chan error, 1)
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	go func() { done <- run(ctx, f, log, func(a net.Addr) { addr <- a }) }()
	select {
	case a := <-addr:
		base = "http://" + a.String()
	case err := <-done:
		t.Fatalf("the service did not start: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("the service did not listen within 30s")
	}
	stopped := false
	return base, func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("the service stopped with %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("the service did not stop within 30s of its signal")
		}
	}
}

func waitReady(t *testing.T, base string) {
	t.Helper()
	var last string
	err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			last = err.Error()
			return false, nil
		}
		b, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		last = string(b)
		return resp.StatusCode == http.StatusOK, nil
	})
	if err != nil {
		t.Fatalf("not ready within 30s: %s", last)
	}
}

// post sends body as JSON, with header's name, value pairs, and decodes a 200 answer.
func post(t *testing.T, url, body string, out any, header ...string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	decode(t, resp, out)
}

func get(t *testing.T, url string, out any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	decode(t, resp, out)
}

func decode(t *testing.T, resp *http.Response, out any) {
	t.Helper()
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s %s: %d %s", resp.Request.Method, resp.Request.URL, resp.StatusCode, b)
	}
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
}
