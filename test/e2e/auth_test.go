//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	execv1alpha1 "github.com/coderun-dev/coderun/api/v1alpha1"
	"github.com/coderun-dev/coderun/internal/auth"
	"github.com/coderun-dev/coderun/internal/runs"
)

// API keys are tried on the PostgreSQL release of TestChartWithPostgres (a second install
// of the chart costs minutes; this one is there anyway). It is installed with keys on and
// generous anonymous access, which the rest of that test uses; checkAPIKeys, its last step,
// turns anonymous access off (a helm upgrade) and checks what a client of a public
// install sees.
const pgKeysSecret = "e2e-api-keys" // front.auth.existingSecret

// e2eKeys are the keys in pgKeysSecret.
type e2eKeys struct {
	alice, bob string
	// quota may make 2 requests, then one every 500 s: its third request is over the rate.
	quota   string
	entries []auth.Entry // of alice, bob and quota, as in the Secret
}

// keyFile is the key file of entries.
func keyFile(t *testing.T, entries ...auth.Entry) string {
	t.Helper()
	file := "keys:\n"
	for _, e := range entries {
		y, err := auth.EntryYAML(e)
		if err != nil {
			t.Fatal(err)
		}
		file += string(y)
	}
	return file
}

// pgAuthValues are the --set values of the PostgreSQL release for API keys.
var pgAuthValues = []string{
	"--set", "front.auth.enabled=true",
	"--set", "front.auth.existingSecret=" + pgKeysSecret,
	"--set", "front.auth.anonymous.enabled=true",
	// The other steps of the test run anonymously, a few requests at a time.
	"--set", "front.auth.anonymous.rate=50",
	"--set", "front.auth.anonymous.burst=50",
	"--set", "front.auth.anonymous.maxInFlight=8",
}

// createAPIKeysSecret makes three keys and puts their entries (hashes) in pgKeysSecret, as an
// operator of a public install does with `coderun-front keys new`.
func createAPIKeysSecret(ctx context.Context, t *testing.T) e2eKeys {
	t.Helper()
	var keys e2eKeys
	for _, k := range []struct {
		id     string
		limits auth.Limits
		key    *string
	}{
		{"alice", auth.Limits{}, &keys.alice},
		{"bob", auth.Limits{}, &keys.bob},
		{"quota", auth.Limits{Rate: 0.002, Burst: 2}, &keys.quota},
	} {
		key, entry, err := auth.NewKey(k.id, k.limits)
		if err != nil {
			t.Fatal(err)
		}
		*k.key = key
		keys.entries = append(keys.entries, entry)
	}
	createObject(ctx, t, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: pgKeysSecret, Namespace: pgReleaseNamespace, Labels: suiteLabels()},
		StringData: map[string]string{"keys.yaml": keyFile(t, keys.entries...)},
	})
	return keys
}

// keyCall sends a request with key (none when "") to the front at base and returns the
// status, the headers and the JSON answer decoded into into.
func keyCall(ctx context.Context, t *testing.T, base, key, method, path, body string, into any) (int, http.Header) {
	t.Helper()
	var reader io.Reader
	if body != "" {
		reader = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, base+path, reader)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s%s: %v", method, base, path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s%s: reading the answer: %v", method, base, path, err)
	}
	if into != nil {
		if err := json.Unmarshal(raw, into); err != nil {
			t.Fatalf("%s %s%s: answer %d is not JSON: %v: %s", method, base, path, resp.StatusCode, err, raw)
		}
	}
	return resp.StatusCode, resp.Header
}

// checkAPIKeys: with keys on and anonymous access off, a request without a key or with a
// wrong one gets 401; a key over its rate gets 429 with Retry-After; a key cannot read
// another's submission, nor see it listed; a run is labelled with its key's id; refusals
// are counted by key id, never showing a key; and keys rotate without a restart.
func checkAPIKeys(ctx context.Context, t *testing.T, helm string, keys e2eKeys) {
	t.Helper()
	// The anonymous runs of the earlier steps are labelled so.
	var anonymous execv1alpha1.CodeRunList
	if err := k8s.List(ctx, &anonymous, client.InNamespace(pgRunsNamespace), client.MatchingLabels{runs.KeyIDLabel: auth.Anonymous}); err != nil {
		t.Fatal(err)
	}
	if len(anonymous.Items) == 0 {
		t.Errorf("no CodeRun in %s is labelled %s=%s, though the earlier steps ran anonymously", pgRunsNamespace, runs.KeyIDLabel, auth.Anonymous)
	}

	old := pgPodNames(ctx, t, "front", pgFrontReplicas)
	start := time.Now()
	runHelm(ctx, t, helm, pgReleaseNamespace, "upgrade", pgRelease, chartPath, "--reuse-values",
		"--set", "front.auth.anonymous.enabled=false", "--wait", "--timeout", "5m")
	waitForRolledFront(ctx, t, old) // so that the port-forward picks none of the old pods
	t.Logf("helm upgrade turning anonymous access off took %s", time.Since(start).Round(time.Second))
	// One pod behind the port-forward: its quotas are the ones counted (each replica
	// counts its own).
	pf := startPortForward(t, pgReleaseNamespace, "service/"+pgRelease+"-front")
	defer pf.stop()
	waitFrontReady(ctx, t, pf.url, time.Minute, nil)
	hello := codeBody("print('hello from a key')")

	for _, tc := range []struct{ name, key string }{{"no key", ""}, {"a wrong key", auth.KeyPrefix + "not-a-key"}} {
		var ans map[string]any
		status, h := keyCall(ctx, t, pf.url, tc.key, http.MethodPost, "/execute", hello, &ans)
		if status != http.StatusUnauthorized || !strings.HasPrefix(h.Get("WWW-Authenticate"), "Bearer") || ans["error"] == nil {
			t.Errorf("/execute with %s: %d, WWW-Authenticate %q, %v; want 401, a Bearer challenge and a JSON error", tc.name, status, h.Get("WWW-Authenticate"), ans)
		}
	}
	// The page needs no key: it asks for one when the API answers 401.
	if status, _ := keyCall(ctx, t, pf.url, "", http.MethodGet, "/readyz", "", nil); status != http.StatusOK {
		t.Errorf("/readyz without a key: %d", status)
	}

	// Over the rate: 2 requests at once, then one every 500 s.
	for i := range 3 {
		var ans map[string]any
		status, h := keyCall(ctx, t, pf.url, keys.quota, http.MethodGet, "/submissions", "", &ans)
		if i < 2 {
			if status != http.StatusOK {
				t.Errorf("request %d of the quota key's burst of 2: %d %v", i+1, status, ans)
			}
			continue
		}
		secs, err := strconv.Atoi(h.Get("Retry-After"))
		if status != http.StatusTooManyRequests || err != nil || secs < 400 || secs > 500 || ans["limit"] != auth.ReasonRate {
			t.Errorf("the quota key's third request: %d, Retry-After %q, %v; want 429, Retry-After about 500 and limit rate", status, h.Get("Retry-After"), ans)
		}
	}

	// alice's submission is hers.
	var saved runAnswer
	if status, _ := keyCall(ctx, t, pf.url, keys.alice, http.MethodPost, "/submit", hello, &saved); status != http.StatusOK || saved.SubmissionID == nil || *saved.SubmissionID < 1 {
		t.Fatalf("alice's /submit: %d %+v", status, saved)
	}
	path := fmt.Sprintf("/submissions/%d", *saved.SubmissionID)
	if status, _ := keyCall(ctx, t, pf.url, keys.alice, http.MethodGet, path, "", &map[string]any{}); status != http.StatusOK {
		t.Errorf("alice reading her submission: %d", status)
	}
	var refused map[string]any
	if status, _ := keyCall(ctx, t, pf.url, keys.bob, http.MethodGet, path, "", &refused); status != http.StatusNotFound {
		t.Errorf("bob reading alice's submission: %d %v, want 404", status, refused)
	}
	for _, tc := range []struct {
		who, key string
		want     int
	}{{"alice", keys.alice, 1}, {"bob", keys.bob, 0}} {
		var list struct {
			Total int `json:"total"`
		}
		if status, _ := keyCall(ctx, t, pf.url, tc.key, http.MethodGet, "/submissions", "", &list); status != http.StatusOK || list.Total != tc.want {
			t.Errorf("%s lists %d submissions (status %d), want %d", tc.who, list.Total, status, tc.want)
		}
	}

	// The CodeRun of alice's run carries her key's id (the release keeps runs 10 minutes).
	var run execv1alpha1.CodeRun
	getObject(ctx, t, client.ObjectKey{Namespace: pgRunsNamespace, Name: saved.Name}, &run)
	if got := run.Labels[runs.KeyIDLabel]; got != "alice" {
		t.Errorf("CodeRun %s has %s=%q, want alice", run.Name, runs.KeyIDLabel, got)
	}

	status, metrics := getText(ctx, t, pf.url+"/metrics")
	for _, want := range []string{
		`coderun_front_auth_refusals_total{key_id="none",reason="unauthenticated"} 1`,
		`coderun_front_auth_refusals_total{key_id="unknown",reason="unauthenticated"} 1`,
		`coderun_front_auth_refusals_total{key_id="quota",reason="rate"} 1`,
		`coderun_front_api_keys 3`,
	} {
		if status != http.StatusOK || !strings.Contains(metrics, want+"\n") {
			t.Errorf("/metrics (%d) lacks %s", status, want)
		}
	}
	for _, key := range []string{keys.alice, keys.bob, keys.quota} {
		if strings.Contains(metrics, key) {
			t.Error("/metrics shows a key")
		}
	}

	rotateKeys(ctx, t, pf.url, keys)
}

// rotateKeys replaces bob's key by carol's in the Secret, and waits until the running front
// (the same pod: the port-forward would end with it) takes carol's key and refuses bob's:
// the kubelet updates the mounted file on its next sync of the pod (about a minute), and the
// front reads it within front.auth.reloadInterval.
func rotateKeys(ctx context.Context, t *testing.T, base string, keys e2eKeys) {
	t.Helper()
	carol, carolEntry, err := auth.NewKey("carol", auth.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	var secret corev1.Secret
	getObject(ctx, t, client.ObjectKey{Namespace: pgReleaseNamespace, Name: pgKeysSecret}, &secret)
	secret.Data = map[string][]byte{"keys.yaml": []byte(keyFile(t, keys.entries[0], keys.entries[2], carolEntry))}
	if err := k8s.Update(ctx, &secret); err != nil {
		t.Fatalf("updating Secret %s: %v", pgKeysSecret, err)
	}
	start := time.Now()
	status := func(key string) int {
		s, _ := keyCall(ctx, t, base, key, http.MethodGet, "/submissions?per_page=1", "", nil)
		return s
	}
	err = wait.PollUntilContextTimeout(ctx, 2*time.Second, 3*time.Minute, true, func(context.Context) (bool, error) {
		return status(carol) == http.StatusOK, nil
	})
	if err != nil {
		t.Fatalf("carol's key, added to the Secret, still refused after %s: %v", time.Since(start).Round(time.Second), err)
	}
	t.Logf("the front took the rotated keys %s after the Secret changed, without a restart", time.Since(start).Round(time.Second))
	if got := status(keys.bob); got != http.StatusUnauthorized {
		t.Errorf("bob's key, removed from the Secret, answered %d, want 401", got)
	}
	if got := status(keys.alice); got != http.StatusOK {
		t.Errorf("alice's key, kept in the Secret, answered %d after the rotation", got)
	}
	expectNoRestarts(ctx, t, "front")
}

func getText(ctx context.Context, t *testing.T, url string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode, string(b)
}
