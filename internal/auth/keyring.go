package auth

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// Keyring holds the keys of the key file and a Quota for each. Watch re-reads the file
// while the service runs, so keys are added, removed and rotated without a restart.
type Keyring struct {
	defaults Limits

	mu     sync.RWMutex
	keys   []ringKey
	quotas map[string]*Quota // by id; kept across reloads for ids that stay
	data   []byte            // the file content loaded last
	loaded time.Time
}

type ringKey struct {
	id   string
	hash [sha256.Size]byte
}

// NewKeyring returns an empty keyring whose keys take defaults (all fields positive) for
// the limits their entries leave out.
func NewKeyring(defaults Limits) (*Keyring, error) {
	if defaults.Rate <= 0 || defaults.Burst < 1 || defaults.MaxInFlight < 1 {
		return nil, fmt.Errorf("default limits must be positive: rate %v, burst %d, maxInFlight %d",
			defaults.Rate, defaults.Burst, defaults.MaxInFlight)
	}
	if err := defaults.Validate(); err != nil {
		return nil, fmt.Errorf("default limits: %w", err)
	}
	return &Keyring{defaults: defaults, quotas: map[string]*Quota{}}, nil
}

// Load replaces the keys with those of a key file's content. On an error the keys stay
// as they were. A key whose id stays keeps its quota (tokens and runs in flight), with
// the new limits; a removed key's runs in flight finish, but it is refused from now on.
func (k *Keyring) Load(data []byte) error {
	entries, err := ParseFile(data)
	if err != nil {
		return err
	}
	now := time.Now()
	keys := make([]ringKey, 0, len(entries))
	k.mu.Lock()
	defer k.mu.Unlock()
	quotas := make(map[string]*Quota, len(entries))
	for _, e := range entries {
		rk := ringKey{id: e.ID}
		_, _ = hex.Decode(rk.hash[:], []byte(e.SHA256)) // ParseFile checked it
		keys = append(keys, rk)
		limits := e.Or(k.defaults)
		if q := k.quotas[e.ID]; q != nil {
			q.setLimits(now, limits)
			quotas[e.ID] = q
		} else {
			quotas[e.ID] = NewQuota(limits)
		}
	}
	k.keys, k.quotas, k.data, k.loaded = keys, quotas, bytes.Clone(data), now
	return nil
}

// LoadFile loads the key file at path.
func (k *Keyring) LoadFile(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("reading the key file: %w", err)
	}
	if err := k.Load(data); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// Len is how many keys are loaded.
func (k *Keyring) Len() int {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return len(k.keys)
}

// Lookup returns the id and quota of key, or ok false when no entry has its hash. It
// compares the hash with every entry in constant time and does not stop at a match, so
// the time taken says nothing about which key (or how much of a hash) matched.
func (k *Keyring) Lookup(key string) (id string, q *Quota, ok bool) {
	sum := sha256.Sum256([]byte(key))
	k.mu.RLock()
	defer k.mu.RUnlock()
	found := -1
	for i := range k.keys {
		if subtle.ConstantTimeCompare(sum[:], k.keys[i].hash[:]) == 1 {
			found = i
		}
	}
	if found < 0 {
		return "", nil, false
	}
	id = k.keys[found].id
	return id, k.quotas[id], true
}

// DefaultWatchInterval is how often Watch reads the key file. The kubelet updates a
// mounted Secret within about a minute of a change; a few seconds here adds little.
const DefaultWatchInterval = 5 * time.Second

// Watch reads the key file at path every interval until ctx ends, and loads it when its
// content changed. The kubelet replaces a Secret volume's files at once (a symlink swap),
// so a read sees the old file or the new one, never half of each. A file that cannot be
// read or parsed is logged and the keys stay as they were. loaded, if not nil, is called
// after each load with its error (nil for success).
func (k *Keyring) Watch(ctx context.Context, path string, interval time.Duration, log *slog.Logger, loaded func(error)) {
	if interval <= 0 {
		interval = DefaultWatchInterval
	}
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	// The content tried last, loaded or not: a bad file is logged once, not at every tick.
	k.mu.RLock()
	last := k.data
	k.mu.RUnlock()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		data, err := os.ReadFile(path)
		if err != nil {
			log.Error("reading the API key file; the keys stay as they were", "path", path, "error", err)
			if loaded != nil {
				loaded(err)
			}
			continue
		}
		if bytes.Equal(data, last) {
			continue
		}
		last = data
		err = k.Load(data)
		if err != nil {
			log.Error("the API key file changed but is not valid; the keys stay as they were", "path", path, "error", err)
		} else {
			log.Info("reloaded the API keys", "path", path, "keys", k.Len())
		}
		if loaded != nil {
			loaded(err)
		}
	}
}
