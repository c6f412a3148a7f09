package auth

import (
	"fmt"
	"sync"
	"time"
)

// DefaultMaxAddresses bounds how many client addresses AddressQuotas tracks at once.
const DefaultMaxAddresses = 100_000

// AddressQuotas gives each client address (anonymous clients) a Quota of its own, in
// bounded memory: an address unused long enough for its bucket to be full again, with no
// run in flight, is forgotten, which loses nothing, since a new quota starts the same. If
// more addresses than the bound are active at once, the newcomers share one overflow
// quota until entries expire.
type AddressQuotas struct {
	limits    Limits
	idleAfter time.Duration
	max       int

	mu        sync.Mutex
	byAddress map[string]*Quota
	overflow  *Quota
	nextSweep time.Time
}

// NewAddressQuotas returns per-address quotas with limits (all fields positive), tracking
// at most maxAddresses (0: DefaultMaxAddresses).
func NewAddressQuotas(limits Limits, maxAddresses int) (*AddressQuotas, error) {
	if limits.Rate <= 0 || limits.Burst < 1 || limits.MaxInFlight < 1 {
		return nil, fmt.Errorf("anonymous limits must be positive: rate %v, burst %d, maxInFlight %d",
			limits.Rate, limits.Burst, limits.MaxInFlight)
	}
	if err := limits.Validate(); err != nil {
		return nil, fmt.Errorf("anonymous limits: %w", err)
	}
	if maxAddresses <= 0 {
		maxAddresses = DefaultMaxAddresses
	}
	// The time an empty bucket takes to fill, and at least a minute so that a client that
	// pauses briefly keeps its entry.
	refill := time.Duration(float64(limits.Burst) / limits.Rate * float64(time.Second))
	return &AddressQuotas{
		limits:    limits,
		idleAfter: max(refill, time.Minute),
		max:       maxAddresses,
		byAddress: map[string]*Quota{},
		overflow:  NewQuota(limits),
	}, nil
}

// Get returns the quota of address.
func (a *AddressQuotas) Get(now time.Time, address string) *Quota {
	a.mu.Lock()
	defer a.mu.Unlock()
	if q := a.byAddress[address]; q != nil {
		return q
	}
	// Sweeping walks every entry, so it runs on a schedule, not on every newcomer while the
	// map is full (which a flood of addresses would turn into a CPU cost per request).
	if now.After(a.nextSweep) {
		a.sweep(now)
	}
	if len(a.byAddress) >= a.max {
		return a.overflow
	}
	q := NewQuota(a.limits)
	a.byAddress[address] = q
	return q
}

// sweep forgets idle addresses; it runs at most every idleAfter/2.
func (a *AddressQuotas) sweep(now time.Time) {
	for addr, q := range a.byAddress {
		if q.idle(now, a.idleAfter) {
			delete(a.byAddress, addr)
		}
	}
	a.nextSweep = now.Add(a.idleAfter / 2)
}

// Len is how many addresses are tracked.
func (a *AddressQuotas) Len() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.byAddress)
}
