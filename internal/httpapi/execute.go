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
		return nil, badRequest("reading the request body: %v", err)
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
		// Save even if the client has gone meanwhile: the run happened.
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

	select {
	case s.pending <- struct{}{}:
		defer func() { <-s.pending }()
	default:
		s.metrics.runsRefused.Inc()
		c.Header("Retry-After", retryAfterSeconds)
		s.fail(c, http.StatusServiceUnavailable, fmt.Sprintf("too many runs in progress (%d); try again in a few seconds", cap(s.pending)))
		return req.Spec, runResponse{}, false
	}
	s.metrics.runsInFlight.Inc()
	defer s.metrics.runsInFlight.Dec()

	bound := s.bound(req.Spec.Limits)
	run, err := s.opts.Runs.Run(runs.WithRequestID(c.Request.Context(), c.GetString(requestIDKey)), req.Spec, bound)
	if run != nil {
		c.Set(runNameKey, run.Name)
	}
	switch {
	case err == nil:
		resp := responseFor(run)
		s.countRun(c, resp.Reason)
		return req.Spec, resp, true

	case errors.Is(err, runs.ErrBoundExceeded):
		s.countRun(c, outcomeBoundExceeded)
		msg := fmt.Sprintf("the run had no result after %s (queue wait %s + start timeout %s + run timeout + %s); it was cancelled",
			bound, s.opts.QueueWait, s.opts.Config.StartTimeout.Duration, s.opts.Slack)
		resp := failedResponse(run.Name, execv1alpha1.ReasonTimeLimitExceeded, msg)
		resp.Error = msg
		c.AbortWithStatusJSON(http.StatusGatewayTimeout, resp)

	case errors.Is(err, runs.ErrDeleted):
		resp := failedResponse(run.Name, execv1alpha1.ReasonSystemError, "the CodeRun "+run.Name+" was deleted before it finished")
		s.countRun(c, resp.Reason)
		return req.Spec, resp, true

	case c.Request.Context().Err() != nil:
		// The client went away (or the service is stopping); the CodeRun is deleted.
		s.countRun(c, outcomeCancelled)
		s.fail(c, http.StatusServiceUnavailable, "the request was cancelled before the run finished; its CodeRun was deleted")

	case apierrors.IsInvalid(err):
		s.countRun(c, outcomeError)
		s.fail(c, http.StatusUnprocessableEntity, "the Kubernetes API refused the run: "+apiStatusMessage(err))

	default:
		s.countRun(c, outcomeError)
		_ = c.Error(err)
		c.Header("Retry-After", retryAfterSeconds)
		s.fail(c, http.StatusServiceUnavailable, "could not start the run: the Kubernetes API is unavailable or refused it; try again shortly")
	}
	return req.Spec, runResponse{}, false
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
