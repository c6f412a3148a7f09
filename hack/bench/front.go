package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	execv1alpha1 "github.com/coderun-dev/coderun/api/v1alpha1"
)

// helloRequest is hello world as a new user sends it to /execute: no limits, so it gets the
// defaults, which are the default pool's shape.
var helloRequest = []byte(`{"code": "print(1)\n"}`)

// newHTTPClient returns a client for the front service that keeps a connection per
// concurrent client open and never goes through a proxy.
func newHTTPClient(clients int, timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			Proxy:               nil,
			MaxIdleConns:        clients + 4,
			MaxIdleConnsPerHost: clients + 4,
			IdleConnTimeout:     5 * time.Minute,
		},
	}
}

// checkFront makes sure the front service answers before anything is measured.
func (b *bench) checkFront(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.front+"/readyz", nil)
	if err != nil {
		return err
	}
	resp, err := b.http.Do(req)
	if err != nil {
		return fmt.Errorf("the front service at %s does not answer (make dev forwards it to 127.0.0.1:8080; -front sets another): %w", b.front, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("the front service at %s is not ready: %s %s", b.front, resp.Status, bytes.TrimSpace(body))
	}
	return nil
}

// runAnswer is the part of /execute's answer the benchmark reads.
type runAnswer struct {
	Output  string  `json:"output"`
	Time    float64 `json:"time"`
	Reason  string  `json:"reason"`
	Message string  `json:"message"`
	Name    string  `json:"name"`
	Error   string  `json:"error"`
}

// answer is the outcome of one /execute request.
type answer struct {
	took time.Duration
	// err is set when no answer came (the request is lost); status is the HTTP status
	// otherwise.
	err    error
	status int
	body   runAnswer
}

// problem says why the answer is not a correct answer to hello world, or returns "".
func (a answer) problem() string {
	switch {
	case a.err != nil:
		return fmt.Sprintf("no answer: %v", a.err)
	case a.status != http.StatusOK:
		return fmt.Sprintf("answered %d: %s", a.status, a.body.Error)
	case a.body.Output != helloOutput:
		return fmt.Sprintf("answered %s (%s) with output %q, want %q", a.body.Reason, a.body.Message, a.body.Output, helloOutput)
	}
	return ""
}

// execute sends hello world to /execute and times it until the whole answer is read. It
// notes the answer's CodeRun, for cleanup.
func (b *bench) execute(ctx context.Context) answer {
	var a answer
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.front+"/execute", bytes.NewReader(helloRequest))
	if err != nil {
		a.err = err
		return a
	}
	req.Header.Set("Content-Type", "application/json")
	start := time.Now()
	resp, err := b.http.Do(req)
	if err != nil {
		a.took, a.err = time.Since(start), err
		return a
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	a.took, a.status = time.Since(start), resp.StatusCode
	if err != nil {
		a.err = fmt.Errorf("reading the answer: %w", err)
		return a
	}
	if err := json.Unmarshal(body, &a.body); err != nil {
		a.body.Error = fmt.Sprintf("not JSON (%v): %.200q", err, body)
		if a.status == http.StatusOK {
			a.status = 0
		}
	}
	if a.body.Name != "" {
		b.addFrontRuns(a.body.Name)
	}
	return a
}

// frontRun reads the CodeRun of an answer; nil when it is gone already (a front service
// that keeps no finished runs).
func (b *bench) frontRun(ctx context.Context, name string) (*execv1alpha1.CodeRun, error) {
	var run execv1alpha1.CodeRun
	err := b.c.Get(ctx, client.ObjectKey{Namespace: b.runNamespace, Name: name}, &run)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading CodeRun %s/%s: %w", b.runNamespace, name, err)
	}
	return &run, nil
}
