package httpapi

import (
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/coderun-dev/coderun/internal/auth"
	"github.com/coderun-dev/coderun/internal/runs"
)

// keyIDKey on the gin context holds the id the request was authenticated as.
const keyIDKey = "key_id"

// authHint is how a refused client learns what to send.
const authHint = "send Authorization: Bearer <key> or X-Auth-Token: <key>"

// gate returns the handlers of an API route: h, behind authentication and the caller's
// quota when API keys are on. run says the route starts a run, which counts against the
// caller's runs in flight.
func (s *Server) gate(run bool, h gin.HandlerFunc) []gin.HandlerFunc {
	if s.opts.Keys == nil {
		return []gin.HandlerFunc{h}
	}
	return []gin.HandlerFunc{s.authenticate(run), h}
}

// authenticate lets a request through as the key it carries, or as "anonymous" (limited
// per client address) when it carries none and anonymous access is on. A request with a
// key that is malformed or not in the key file is refused, never downgraded to anonymous,
// so that a client with a revoked key learns it at once. The id goes into the request's
// context (runs.WithKeyID): it labels the CodeRun and owns the submission.
func (s *Server) authenticate(run bool) gin.HandlerFunc {
	return func(c *gin.Context) {
		now := time.Now()
		key, present, err := auth.KeyFromHeader(c.Request.Header)
		var (
			id    string
			quota *auth.Quota
		)
		switch {
		case err != nil:
			s.unauthenticated(c, auth.Unknown, `Bearer error="invalid_request"`, "the request's credentials are malformed ("+err.Error()+"); "+authHint)
			return
		case !present && s.anonymous == nil:
			s.unauthenticated(c, auth.None, "Bearer", "this API needs a key: "+authHint)
			return
		case !present:
			id, quota = auth.Anonymous, s.anonymous.Get(now, c.ClientIP())
		default:
			var ok bool
			if id, quota, ok = s.opts.Keys.Lookup(key); !ok {
				s.unauthenticated(c, auth.Unknown, `Bearer error="invalid_token"`, "the API key is not valid (unknown or revoked); "+authHint)
				return
			}
		}
		release, refusal := quota.Acquire(now, run)
		if refusal != nil {
			s.overQuota(c, id, refusal)
			return
		}
		defer release()
		c.Set(keyIDKey, id)
		c.Request = c.Request.WithContext(runs.WithKeyID(c.Request.Context(), id))
		c.Next()
	}
}

// unauthenticated answers 401 with a Bearer challenge. label is a fixed value for the
// metric: never what the client sent.
func (s *Server) unauthenticated(c *gin.Context, label, challenge, message string) {
	s.metrics.authRefusals.WithLabelValues(label, auth.ReasonUnauthenticated).Inc()
	c.Header("WWW-Authenticate", challenge)
	s.fail(c, http.StatusUnauthorized, message)
}

// overQuota answers 429 with Retry-After from the quota and which limit was hit.
func (s *Server) overQuota(c *gin.Context, id string, r *auth.Refusal) {
	s.metrics.authRefusals.WithLabelValues(id, r.Reason).Inc()
	who := "key " + strconv.Quote(id)
	if id == auth.Anonymous {
		who = "anonymous access from this address"
	}
	secs := r.RetryAfterSeconds()
	var msg string
	switch r.Reason {
	case auth.ReasonInFlight:
		msg = fmt.Sprintf("%s has %d runs in flight, its limit; retry after %d s", who, r.Limits.MaxInFlight, secs)
	default:
		msg = fmt.Sprintf("%s is over its rate of %g requests per second (burst %d); retry after %d s", who, r.Limits.Rate, r.Limits.Burst, secs)
	}
	c.Header("Retry-After", strconv.Itoa(secs))
	c.AbortWithStatusJSON(http.StatusTooManyRequests, quotaError{Error: msg, Limit: r.Reason})
}

// quotaError is a 429 answer: the JSON error and which limit was hit (rate or in_flight).
type quotaError struct {
	Error string `json:"error"`
	Limit string `json:"limit"`
}

// checkProxies validates trusted proxies (addresses or CIDR ranges) before gin takes them,
// so that a typo stops the service at startup instead of trusting nothing, or everything.
func checkProxies(proxies []string) error {
	for _, p := range proxies {
		p = strings.TrimSpace(p)
		if _, err := netip.ParsePrefix(p); err == nil {
			continue
		}
		if _, err := netip.ParseAddr(p); err != nil {
			return fmt.Errorf("trusted proxy %q is neither an IP address nor a CIDR range", p)
		}
	}
	return nil
}

// KeysReloaded counts a reload of the key file (auth.Keyring.Watch's callback).
func (s *Server) KeysReloaded(err error) {
	result := "loaded"
	if err != nil {
		result = "error"
	}
	s.metrics.keyReloads.WithLabelValues(result).Inc()
}
