package httpapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	execv1alpha1 "github.com/coderun-dev/coderun/api/v1alpha1"
	"github.com/coderun-dev/coderun/internal/runs"
)

// retryAfterSeconds is what a refused client is told to wait: about one short run.
const retryAfterSeconds = "5"

// IdempotencyKeyHeader makes /execute and /submit safe to retry (the IETF httpapi
// Idempotency-Key draft): requests of one caller with the same key get the same CodeRun,
// which runs once, and /submit saves it once.
const IdempotencyKeyHeader = "Idempotency-Key"

// maxIdempotencyKeyLength is the longest key accepted, in bytes: room for any UUID, ULID or
// hash a client may use, with a bound on what the service hashes.
const maxIdempotencyKeyLength = 255

// idempotencyKey returns the request's Idempotency-Key, "" when it has none, or a 400 for
// a key that is empty, too long, repeated or not printable ASCII.
func idempotencyKey(h http.Header) (string, *apiError) {
	values := h.Values(IdempotencyKeyHeader)
	switch len(values) {
	case 0:
		return "", nil
	case 1:
	default:
		return "", badRequest("send one %s header, not %d", IdempotencyKeyHeader, len(values))
	}
	key := values[0]
	// The draft spells the key as a Structured Field string ("quoted"); many clients send
	// it bare. Both name the same key.
	if len(key) >= 2 && key[0] == '"' && key[len(key)-1] == '"' {
		key = key[1 : len(key)-1]
	}
	if key == "" || len(key) > maxIdempotencyKeyLength {
		return "", badRequest("the %s header must hold 1 to %d characters; it holds %d", IdempotencyKeyHeader, maxIdempotencyKeyLength, len(key))
	}
	for i := range len(key) {
		if key[i] < 0x20 || key[i] > 0x7e {
			return "", badRequest("the %s header must hold printable ASCII characters only; byte %d is 0x%02x", IdempotencyKeyHeader, i+1, key[i])
		}
	}
	return key, nil
}

// readBody reads the request body up to the configured limit.
func (s *Server) readBody(c *gin.Context) ([]byte, *apiError) {
	limit := s.opts.MaxBodyBytes
	if c.Request.ContentLength > limit {
		return nil, tooLarge("the request body is %d bytes; at most %d bytes are allowed", c.Request.ContentLength, limit)
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, limit))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, tooLarge("the request body is over the limit of %d bytes", limit)
		}
		return nil, bodyReadFailed(err)
	}
	return body, nil
}

func (s *Server) execute(c *gin.Context) {
	if _, resp, ok := s.runOrFail(c); ok {
		c.PureJSON(http.StatusOK, resp)
	}
}

// submit runs the program like execute and saves it when it exited with 0; otherwise the
// answer's submission_id is -1, as in the project coderun grew from.
func (s *Server) submit(c *gin.Context) {
	spec, resp, ok := s.runOrFail(c)
	if !ok {
		return
	}
	id := int64(-1)
	if resp.ExitCode != nil && *resp.ExitCode == 0 {
		sub := submissionOf(spec, resp)
		sub.KeyID = runs.KeyID(c.Request.Context()) // whose it is, with API keys on; "" when off
		// Save even if the client has gone meanwhile: the run happened. A retry of this
		// request (same Idempotency-Key, so the same CodeRun) finds this submission saved
		// and answers its id: the store keeps one per CodeRun UID.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(c.Request.Context()), 10*time.Second)
		defer cancel()
		if err := s.opts.Store.SaveSubmission(ctx, sub); err != nil {
			_ = c.Error(err)
			s.fail(c, http.StatusInternalServerError, "the program ran, but saving the submission failed; try again")
			return
		}
		id = sub.ID
	}
	resp.SubmissionID = &id
	c.PureJSON(http.StatusOK, resp)
}

// runOrFail validates the request, runs the program and returns its answer. When ok is
// false it has already written the error response (4xx, 503 or 504), and the caller must
// write nothing more.
func (s *Server) runOrFail(c *gin.Context) (execv1alpha1.CodeRunSpec, runResponse, bool) {
	key, apiErr := idempotencyKey(c.Request.Header)
	if apiErr != nil {
		s.failWith(c, apiErr)
		return execv1alpha1.CodeRunSpec{}, runResponse{}, false
	}
	body, apiErr := s.readBody(c)
	if apiErr != nil {
		s.failWith(c, apiErr)
		return execv1alpha1.CodeRunSpec{}, runResponse{}, false
	}
	req, apiErr := parseRunRequest(body, s.opts.Config)
	if apiErr != nil {
		s.failWith(c, apiErr)
		return execv1alpha1.CodeRunSpec{}, runResponse{}, false
	}
	resp, _, failure := s.runSpec(c, req.Spec, key)
	if failure != nil {
		if failure.boundExceeded != nil {
			// The answer a run has when it outlived its bound, with the error beside it.
			failure.boundExceeded.Error = failure.Message
			c.AbortWithStatusJSON(failure.Status, failure.boundExceeded)
		} else {
			s.failWith(c, &failure.apiError)
		}
		return req.Spec, runResponse{}, false
	}
	return req.Spec, resp, true
}

// runFailure is why a run has no answer: an HTTP status and a sentence, with the headers
// already set (Retry-After). boundExceeded is the answer of a run that outlived its bound
// (504), for the APIs that show it.
type runFailure struct {
	apiError
	boundExceeded *runResponse
}

// runSpec runs spec for the request c, through the back-pressure of MaxPending, and
// returns its answer and CodeRun, or why there is none. key is the request's
// Idempotency-Key ("" for none). Every API that runs programs (the native one, Piston's)
// goes through it, so they share the limits, the metrics and the meaning of each error.
func (s *Server) runSpec(c *gin.Context, spec execv1alpha1.CodeRunSpec, key string) (runResponse, *execv1alpha1.CodeRun, *runFailure) {
	fail := func(status int, message string) *runFailure {
		return &runFailure{apiError: apiError{Status: status, Message: message}}
	}
	select {
	case s.pending <- struct{}{}:
		defer func() { <-s.pending }()
	default:
		s.metrics.runsRefused.Inc()
		c.Header("Retry-After", retryAfterSeconds)
		return runResponse{}, nil, fail(http.StatusServiceUnavailable, fmt.Sprintf("too many runs in progress (%d); try again in a few seconds", cap(s.pending)))
	}
	s.metrics.runsInFlight.Inc()
	defer s.metrics.runsInFlight.Dec()

	bound := s.bound(spec.Limits)
	ctx := runs.WithRequestID(c.Request.Context(), c.GetString(requestIDKey))
	if key != "" {
		ctx = runs.WithIdempotencyKey(ctx, key)
	}
	run, err := s.opts.Runs.Run(ctx, spec, bound)
	if run != nil {
		c.Set(runNameKey, run.Name)
	}
	switch {
	case err == nil:
		resp := responseFor(run)
		s.countRun(c, resp.Reason)
		return resp, run, nil

	case errors.Is(err, runs.ErrBoundExceeded):
		s.countRun(c, outcomeBoundExceeded)
		msg := fmt.Sprintf("the run had no result after %s (queue wait %s + start timeout %s + run timeout + %s); it was cancelled",
			bound, s.opts.QueueWait, s.opts.Config.StartTimeout.Duration, s.opts.Slack)
		resp := failedResponse(run, execv1alpha1.ReasonTimeLimitExceeded, msg)
		f := fail(http.StatusGatewayTimeout, msg)
		f.boundExceeded = &resp
		return runResponse{}, run, f

	case errors.Is(err, runs.ErrDeleted):
		resp := failedResponse(run, execv1alpha1.ReasonSystemError, "the CodeRun "+run.Name+" was deleted before it finished")
		s.countRun(c, resp.Reason)
		return resp, run, nil

	case errors.Is(err, runs.ErrKeyReused):
		s.countRun(c, outcomeError)
		return runResponse{}, run, fail(http.StatusUnprocessableEntity, "the "+IdempotencyKeyHeader+" was already used for another program, stdin or limits; "+
			"send a new key for a new request")

	case c.Request.Context().Err() != nil && key != "" && run != nil:
		// The client went away (or the service is stopping); the CodeRun runs on. (Gone
		// before the CodeRun was created, run is nil: nothing runs, as without a key.)
		s.countRun(c, outcomeCancelled)
		c.Header("Retry-After", "1")
		return runResponse{}, run, fail(http.StatusServiceUnavailable, "the request was cancelled before the run finished; its CodeRun "+run.Name+
			" runs on: retry with the same "+IdempotencyKeyHeader+" for its result")

	case c.Request.Context().Err() != nil:
		// The client went away (or the service is stopping); the CodeRun is deleted.
		s.countRun(c, outcomeCancelled)
		return runResponse{}, run, fail(http.StatusServiceUnavailable, "the request was cancelled before the run finished; its CodeRun was deleted")

	case apierrors.IsInvalid(err):
		s.countRun(c, outcomeError)
		return runResponse{}, run, fail(http.StatusUnprocessableEntity, "the Kubernetes API refused the run: "+apiStatusMessage(err))

	default:
		s.countRun(c, outcomeError)
		_ = c.Error(err)
		c.Header("Retry-After", retryAfterSeconds)
		return runResponse{}, run, fail(http.StatusServiceUnavailable, "could not start the run: the Kubernetes API is unavailable or refused it; try again shortly")
	}
}

func (s *Server) countRun(c *gin.Context, reason string) {
	c.Set(runReasonKey, reason)
	s.metrics.runs.WithLabelValues(reason).Inc()
}

func apiStatusMessage(err error) string {
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		return status.Status().Message
	}
	return err.Error()
}
