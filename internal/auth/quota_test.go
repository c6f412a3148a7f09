package auth

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func TestQuotaRate(t *testing.T) {
	// 1 request every 2 s, 2 at once.
	q := NewQuota(Limits{Rate: 0.5, Burst: 2, MaxInFlight: 10})
	now := time.Now()
	for i := range 2 {
		if _, r := q.Acquire(now, false); r != nil {
			t.Fatalf("request %d of the burst refused: %+v", i+1, r)
		}
	}
	_, r := q.Acquire(now, false)
	if r == nil || r.Reason != ReasonRate || r.RetryAfterSeconds() != 2 {
		t.Fatalf("third request: %+v, want refused for the rate with Retry-After 2", r)
	}
	// Refusals cost nothing: a second later the bucket is still half a token short.
	_, r = q.Acquire(now.Add(time.Second), false)
	if r == nil || r.RetryAfterSeconds() != 1 {
		t.Fatalf("a second later: %+v, want Retry-After 1", r)
	}
	if _, r := q.Acquire(now.Add(2*time.Second), false); r != nil {
		t.Fatalf("after Retry-After the request is still refused: %+v", r)
	}
}

func TestQuotaInFlight(t *testing.T) {
	q := NewQuota(Limits{Rate: 100, Burst: 100, MaxInFlight: 2})
	now := time.Now()
	release1, r1 := q.Acquire(now, true)
	release2, r2 := q.Acquire(now.Add(time.Second), true)
	if r1 != nil || r2 != nil {
		t.Fatal(r1, r2)
	}
	// Requests that start no run are not bounded by runs in flight.
	if _, r := q.Acquire(now, false); r != nil {
		t.Fatalf("a read was refused: %+v", r)
	}
	_, r := q.Acquire(now.Add(time.Second), true)
	if r == nil || r.Reason != ReasonInFlight {
		t.Fatalf("third run: %+v, want refused for runs in flight", r)
	}
	// No run has finished: the estimate is defaultRunEstimate from the oldest start.
	if want := defaultRunEstimate - time.Second; r.RetryAfter != want {
		t.Errorf("RetryAfter = %s, want %s", r.RetryAfter, want)
	}
	release1()
	release1() // twice is harmless
	if _, r := q.Acquire(time.Now(), true); r != nil {
		t.Fatalf("a run after one finished: %+v", r)
	}
	release2()
}

func TestAddressQuotasExpireIdle(t *testing.T) {
	a, err := NewAddressQuotas(Limits{Rate: 1, Burst: 1, MaxInFlight: 1}, 2)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	qa := a.Get(now, "10.0.0.1")
	if _, r := qa.Acquire(now, false); r != nil {
		t.Fatal(r)
	}
	if _, r := a.Get(now, "10.0.0.1").Acquire(now, false); r == nil {
		t.Fatal("an address got a second request through a bucket of 1")
	}
	if _, r := a.Get(now, "10.0.0.2").Acquire(now, false); r != nil {
		t.Fatalf("another address is limited by the first: %+v", r)
	}
	// Full: a third address shares the overflow quota rather than growing the map.
	over := a.Get(now, "10.0.0.3")
	if over != a.overflow || a.Len() != 2 {
		t.Fatalf("a third address past the bound of 2: tracked %d", a.Len())
	}
	// After the idle time (a minute, longer than a refill), a sweep forgets both.
	later := now.Add(time.Minute + time.Second)
	if q := a.Get(later, "10.0.0.3"); q == a.overflow {
		t.Fatal("idle addresses were not forgotten")
	}
	if a.Len() != 1 {
		t.Errorf("tracked %d addresses after the sweep, want 1", a.Len())
	}
}

func TestKeyringLookupAndReload(t *testing.T) {
	ring, err := NewKeyring(Limits{Rate: 10, Burst: 1, MaxInFlight: 3})
	if err != nil {
		t.Fatal(err)
	}
	keyA, entryA, _ := NewKey("alice", Limits{})
	keyB, entryB, _ := NewKey("bob", Limits{MaxInFlight: 1})
	file := func(es ...Entry) []byte {
		out := []byte("keys:\n")
		for _, e := range es {
			y, _ := EntryYAML(e)
			out = append(out, y...)
		}
		return out
	}
	if err := ring.Load(file(entryA, entryB)); err != nil {
		t.Fatal(err)
	}
	id, qa, ok := ring.Lookup(keyA)
	if !ok || id != "alice" || qa.Limits() != (Limits{Rate: 10, Burst: 1, MaxInFlight: 3}) {
		t.Fatalf("alice: %q %v %+v", id, ok, qa.Limits())
	}
	if _, qb, _ := ring.Lookup(keyB); qb.Limits().MaxInFlight != 1 {
		t.Errorf("bob's own maxInFlight is not kept: %+v", qb.Limits())
	}
	if _, _, ok := ring.Lookup(keyA + "x"); ok {
		t.Error("a wrong key was found")
	}
	// alice spends her token; a reload keeps her quota (no fresh bucket) with new limits.
	if _, r := qa.Acquire(time.Now(), false); r != nil {
		t.Fatal(r)
	}
	entryA.MaxInFlight = 7
	if err := ring.Load(file(entryA)); err != nil {
		t.Fatal(err)
	}
	_, qa2, _ := ring.Lookup(keyA)
	if qa2 != qa || qa2.Limits().MaxInFlight != 7 {
		t.Errorf("alice's quota after the reload: same %v, limits %+v", qa2 == qa, qa2.Limits())
	}
	if _, r := qa2.Acquire(time.Now(), false); r == nil {
		t.Error("the reload refilled alice's bucket")
	}
	if _, _, ok := ring.Lookup(keyB); ok {
		t.Error("bob's key works after it was removed")
	}
	// A bad file leaves the keys as they were.
	if err := ring.Load([]byte("keys: [{id: x}]")); err == nil {
		t.Fatal("a bad file loaded")
	}
	if _, _, ok := ring.Lookup(keyA); !ok {
		t.Error("a bad file removed alice's key")
	}
}

// TestWatchFollowsSecretVolume swaps the key file the way the kubelet updates a Secret
// volume (a new timestamped folder, then ..data renamed to point at it) and checks that
// Watch loads each version and keeps the last good one through a bad one.
func TestWatchFollowsSecretVolume(t *testing.T) {
	dir := t.TempDir()
	version := 0
	publish := func(content []byte) {
		version++
		ts := filepath.Join(dir, fmt.Sprintf("..2026_11_30_%d", version))
		if err := os.Mkdir(ts, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(ts, "keys.yaml"), content, 0o644); err != nil {
			t.Fatal(err)
		}
		tmp := filepath.Join(dir, "..data_tmp")
		if err := os.Symlink(filepath.Base(ts), tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
	}
	keyA, entryA, _ := NewKey("alice", Limits{})
	keyB, entryB, _ := NewKey("bob", Limits{})
	ya, _ := EntryYAML(entryA)
	yb, _ := EntryYAML(entryB)
	publish([]byte("keys:\n" + string(ya)))
	path := filepath.Join(dir, "keys.yaml")
	if err := os.Symlink("..data/keys.yaml", path); err != nil {
		t.Fatal(err)
	}

	ring, _ := NewKeyring(Limits{Rate: 1, Burst: 1, MaxInFlight: 1})
	if err := ring.LoadFile(path); err != nil {
		t.Fatal(err)
	}
	loads := make(chan error, 10)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		ring.Watch(ctx, path, 10*time.Millisecond, slog.New(slog.DiscardHandler), func(err error) { loads <- err })
	}()
	t.Cleanup(func() { cancel(); <-done })
	waitLoad := func() error {
		select {
		case err := <-loads:
			return err
		case <-time.After(5 * time.Second):
			t.Fatal("the key file changed but Watch did not load it")
			return nil
		}
	}

	// Rotation: bob replaces alice.
	publish([]byte("keys:\n" + string(yb)))
	if err := waitLoad(); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := ring.Lookup(keyA); ok {
		t.Error("alice's key still works after it was rotated out")
	}
	if _, _, ok := ring.Lookup(keyB); !ok {
		t.Error("bob's key does not work after it was added")
	}
	// A broken version keeps bob.
	publish([]byte("keys: {"))
	if err := waitLoad(); err == nil {
		t.Fatal("a broken key file loaded")
	}
	if _, _, ok := ring.Lookup(keyB); !ok {
		t.Error("a broken key file removed bob's key")
	}
}

// TestQuotaInFlightConcurrent: however many requests race, no more than MaxInFlight runs
// are let through at once.
func TestQuotaInFlightConcurrent(t *testing.T) {
	q := NewQuota(Limits{Rate: 1e6, Burst: 1e6, MaxInFlight: 3})
	var mu sync.Mutex
	running, peak, refused := 0, 0, 0
	var wg sync.WaitGroup
	for range 200 {
		wg.Go(func() {
			release, r := q.Acquire(time.Now(), true)
			if r != nil {
				mu.Lock()
				refused++
				mu.Unlock()
				return
			}
			mu.Lock()
			running++
			peak = max(peak, running)
			mu.Unlock()
			time.Sleep(time.Millisecond)
			mu.Lock()
			running--
			mu.Unlock()
			release()
		})
	}
	wg.Wait()
	if peak > 3 || peak == 0 || refused == 0 {
		t.Errorf("peak %d runs at once (limit 3), %d refused", peak, refused)
	}
}
