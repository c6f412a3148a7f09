package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"
)

// frontClient sends the load's requests to the front service as a careful client does:
// every request carries an Idempotency-Key (a new UUID per request, the same on each of
// its retries) and, as X-Request-Id, the same key, so that the CodeRuns the front creates
// for it carry it too (exec.coderun.dev/request-id) and runs made twice can be counted.
type frontClient struct {
	base string
	http *http.Client
	// patience bounds the retries of one request, from its first attempt.
	patience time.Duration
}

func newFrontClient(base string, clients int, patience time.Duration) *frontClient {
	return &frontClient{
		base: base,
		http: &http.Client{
			// One attempt may wait for a queued run: the front's own bound is longer, but
			// a retry with the same key is harmless.
			Timeout: 3 * time.Minute,
			Transport: &http.Transport{
				Proxy:               nil,
				MaxIdleConns:        clients + 4,
				MaxIdleConnsPerHost: clients + 4,
				IdleConnTimeout:     30 * time.Second,
			},
		},
		patience: patience,
	}
}

// runAnswer is the part of /execute's and /submit's answer the suite reads.
type runAnswer struct {
	Output       string `json:"output"`
	Reason       string `json:"reason"`
	Message      string `json:"message"`
	Name         string `json:"name"`
	SubmissionID *int64 `json:"submission_id"`
	Error        string `json:"error"`
}

// request is one /execute or /submit of the load and what became of it.
type request struct {
	key      string
	program  *program
	endpoint string
	sent     time.Time
	// attempts is how many times it was sent; answered is when the last answer came.
	attempts int
	answered time.Time
	answer   runAnswer
	verdict  verdict
	// problem says why it is lost (empty when it was answered correctly or as SystemError).
	problem string
	// probe: sent after the fault to time the recovery.
	probe bool
}

func newRequest(p *program, endpoint string) *request {
	return &request{key: uuid.NewString(), program: p, endpoint: endpoint}
}

// retryable reports whether an answer with status says "try again": the front (or what
// stands before it) is unavailable, overloaded, or lost the run or its submission.
func retryable(status int) bool {
	switch status {
	case http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusBadGateway,
		http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// do sends r until it gets a final answer (200, or an error the client cannot fix by
// retrying) or its patience runs out, retrying connection errors, resets and retryable
// statuses with the same key. stop ends the retries early (the suite is being interrupted).
func (f *frontClient) do(stop context.Context, r *request) {
	body := r.program.requestBody(r.key)
	r.sent = time.Now()
	deadline := r.sent.Add(f.patience)
	backoff := 250 * time.Millisecond
	var last string
	for {
		r.attempts++
		status, ans, wait, err := f.send(stop, r, body)
		switch {
		case err == nil && status == http.StatusOK:
			r.answered, r.answer = time.Now(), ans
			r.verdict = r.program.judge(r.key, ans.Reason, ans.Output)
			if r.verdict == wrong {
				r.problem = fmt.Sprintf("answered %s (%s) with output %.120q", ans.Reason, ans.Message, ans.Output)
			}
			return
		case err == nil && !retryable(status):
			r.answered, r.answer, r.verdict = time.Now(), ans, wrong
			r.problem = fmt.Sprintf("answered %d: %s", status, ans.Error)
			return
		case err != nil:
			last = err.Error()
		default:
			last = fmt.Sprintf("%d %s", status, ans.Error)
		}
		if wait == 0 {
			wait = backoff
			backoff = min(2*backoff, 2*time.Second)
		}
		if time.Now().Add(wait).After(deadline) || stop.Err() != nil {
			r.verdict = wrong
			r.problem = fmt.Sprintf("no answer after %d attempts in %s; last: %s", r.attempts, time.Since(r.sent).Round(time.Second), last)
			return
		}
		select {
		case <-time.After(wait):
		case <-stop.Done():
		}
	}
}

// send makes one attempt. It returns the status and answer, or an error when no complete
// answer came (connection refused or reset, timeout, a body cut off); wait is the
// Retry-After the answer asked for, capped so that a long one does not stall the load.
func (f *frontClient) send(ctx context.Context, r *request, body []byte) (int, runAnswer, time.Duration, error) {
	var ans runAnswer
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.base+r.endpoint, bytes.NewReader(body))
	if err != nil {
		return 0, ans, 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", r.key)
	req.Header.Set("X-Request-Id", r.key)
	resp, err := f.http.Do(req)
	if err != nil {
		return 0, ans, 0, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return 0, ans, 0, fmt.Errorf("reading the answer (%s): %w", resp.Status, err)
	}
	if err := json.Unmarshal(data, &ans); err != nil {
		ans.Error = fmt.Sprintf("not JSON: %.200q", data)
	}
	var wait time.Duration
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
		wait = min(time.Duration(s)*time.Second, 3*time.Second)
	}
	return resp.StatusCode, ans, wait, nil
}

// submission is the part of GET /submissions/<id> the suite checks.
type submission struct {
	ID   int64  `json:"id"`
	Code string `json:"code"`
	Name string `json:"name"`
}

// getSubmission reads a saved submission, retrying while the front is unavailable; found
// is false when the front answers 404.
func (f *frontClient) getSubmission(ctx context.Context, id int64) (sub submission, found bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		var req *http.Request
		req, err = http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/submissions/%d", f.base, id), nil)
		if err != nil {
			return sub, false, err
		}
		var resp *http.Response
		resp, err = f.http.Do(req)
		if err == nil {
			data, readErr := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
			switch {
			case readErr != nil:
				err = readErr
			case resp.StatusCode == http.StatusOK:
				return sub, true, json.Unmarshal(data, &sub)
			case resp.StatusCode == http.StatusNotFound:
				return sub, false, nil
			case !retryable(resp.StatusCode):
				return sub, false, fmt.Errorf("GET /submissions/%d: %s: %.200s", id, resp.Status, data)
			default:
				err = fmt.Errorf("GET /submissions/%d: %s", id, resp.Status)
			}
		}
		select {
		case <-ctx.Done():
			return sub, false, errors.Join(err, ctx.Err())
		case <-time.After(time.Second):
		}
	}
}
