package auth

import (
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Reasons a request is refused, as metrics label them.
const (
	ReasonUnauthenticated = "unauthenticated"
	ReasonRate            = "rate"
	ReasonInFlight        = "in_flight"
)

// Refusal says why a Quota refused a request and when to try again.
type Refusal struct {
	Reason string // ReasonRate or ReasonInFlight
	// RetryAfter is the wait until the request would be let through: for the rate, what
	// the token bucket says; for runs in flight, an estimate of when the oldest one ends.
	RetryAfter time.Duration
	Limits     Limits
}

// RetryAfterSeconds is RetryAfter in whole seconds, rounded up and at least 1, as the
// Retry-After header takes it.
func (r *Refusal) RetryAfterSeconds() int {
	return max(1, int(math.Ceil(r.RetryAfter.Seconds())))
}

// defaultRunEstimate is how long a run is assumed to take until one of the client's has
// finished: about a short Python program on a warm pod.
const defaultRunEstimate = 2 * time.Second

// Quota is one client's limits: a token bucket for its requests and a bound on its runs
// in flight. It is safe for concurrent use.
type Quota struct {
	mu       sync.Mutex
	limits   Limits
	bucket   *rate.Limiter
	inFlight map[uint64]time.Time // start of each run in flight, by a serial number
	serial   uint64
	// runEstimate is a moving average of how long this client's runs take, for
	// Retry-After when runs in flight are at the limit.
	runEstimate time.Duration
	lastUsed    time.Time
}

// NewQuota returns a quota with limits (all fields positive); its bucket starts full.
func NewQuota(limits Limits) *Quota {
	return &Quota{
		limits:      limits,
		bucket:      rate.NewLimiter(rate.Limit(limits.Rate), limits.Burst),
		inFlight:    map[uint64]time.Time{},
		runEstimate: defaultRunEstimate,
	}
}

// Limits returns the quota's limits.
func (q *Quota) Limits() Limits {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.limits
}

// setLimits changes the limits and keeps the bucket's tokens and the runs in flight: a
// reloaded key file does not hand every client a full bucket.
func (q *Quota) setLimits(now time.Time, limits Limits) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if limits == q.limits {
		return
	}
	q.limits = limits
	q.bucket.SetLimitAt(now, rate.Limit(limits.Rate))
	q.bucket.SetBurstAt(now, limits.Burst)
}

// Acquire lets a request through or refuses it. run says the request starts a run, which
// also takes one of the runs in flight until release is called. A refused request takes
// nothing: neither a token nor a run slot.
func (q *Quota) Acquire(now time.Time, run bool) (release func(), refusal *Refusal) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.lastUsed = now
	if run && len(q.inFlight) >= q.limits.MaxInFlight {
		oldest := now
		for _, start := range q.inFlight {
			if start.Before(oldest) {
				oldest = start
			}
		}
		return nil, &Refusal{Reason: ReasonInFlight, RetryAfter: oldest.Add(q.runEstimate).Sub(now), Limits: q.limits}
	}
	r := q.bucket.ReserveN(now, 1)
	if !r.OK() { // cannot happen with a burst of at least 1; refuse rather than wait for ever
		return nil, &Refusal{Reason: ReasonRate, RetryAfter: time.Minute, Limits: q.limits}
	}
	if delay := r.DelayFrom(now); delay > 0 {
		r.CancelAt(now) // the token goes back: a refused request must not cost the client
		return nil, &Refusal{Reason: ReasonRate, RetryAfter: delay, Limits: q.limits}
	}
	if !run {
		return func() {}, nil
	}
	q.serial++
	id := q.serial
	q.inFlight[id] = now
	var once sync.Once
	return func() { once.Do(func() { q.finish(id) }) }, nil
}

func (q *Quota) finish(id uint64) {
	now := time.Now()
	q.mu.Lock()
	defer q.mu.Unlock()
	start, ok := q.inFlight[id]
	if !ok {
		return
	}
	delete(q.inFlight, id)
	q.lastUsed = now
	// A quarter of the newest run: follows a client whose programs change within a few runs.
	q.runEstimate += (now.Sub(start) - q.runEstimate) / 4
}

// idle reports whether the quota holds nothing a fresh one would not: no run in flight,
// and unused long enough for its bucket to be full again.
func (q *Quota) idle(now time.Time, after time.Duration) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.inFlight) == 0 && now.Sub(q.lastUsed) >= after
}
