// Package auth is the front service's API keys and quotas: the key file (kept in a
// Kubernetes Secret, re-read when it changes), the keys in requests, and the per-key and
// per-address limits (a token bucket and a bound on runs in flight).
//
// Keys are kept as SHA-256 hashes. A key is 32 random bytes, so a hash cannot be reversed
// by guessing: slow password hashes (bcrypt, argon2) exist to protect low-entropy secrets
// chosen by people from dictionary attacks, and would only cost CPU on every request here.
package auth

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"
)

// Ids that are not keys: requests without a key are "anonymous"; refusals of keys that
// are not in the file are counted as "unknown" and of requests without any as "none".
const (
	Anonymous = "anonymous"
	Unknown   = "unknown"
	None      = "none"
)

// KeyPrefix starts every key that NewKey makes, so that secret scanners and people can
// tell a coderun key from other tokens.
const KeyPrefix = "crk_"

// keyBytes of randomness in a key: 256 bits, beyond any guessing.
const keyBytes = 32

// MaxKeyLength is the longest key accepted in a request; longer ones are not keys.
const MaxKeyLength = 256

// Limits of one client. Zero fields take the defaults (Defaults).
type Limits struct {
	// rate is how many requests per second the client may make on average (token bucket refill).
	Rate float64 `json:"rate,omitempty"`
	// burst is how many requests may come at once (the bucket's size).
	Burst int `json:"burst,omitempty"`
	// maxInFlight is how many runs (/execute, /submit) may be running at once.
	MaxInFlight int `json:"maxInFlight,omitempty"`
}

// Or returns l with its zero fields taken from def.
func (l Limits) Or(def Limits) Limits {
	if l.Rate == 0 {
		l.Rate = def.Rate
	}
	if l.Burst == 0 {
		l.Burst = def.Burst
	}
	if l.MaxInFlight == 0 {
		l.MaxInFlight = def.MaxInFlight
	}
	return l
}

// Validate checks that the limits given are positive; zero means "the default".
func (l Limits) Validate() error {
	switch {
	case l.Rate < 0 || l.Rate != l.Rate || l.Rate > 1e6: // l.Rate != l.Rate: NaN
		return fmt.Errorf("rate %v must be from 0 to 1000000 requests per second", l.Rate)
	case l.Burst < 0 || l.Burst > 1e6:
		return fmt.Errorf("burst %d must be from 0 to 1000000", l.Burst)
	case l.MaxInFlight < 0 || l.MaxInFlight > 1e6:
		return fmt.Errorf("maxInFlight %d must be from 0 to 1000000", l.MaxInFlight)
	}
	return nil
}

// Entry is one key in the key file: its id, the hex SHA-256 of the key, and optionally
// limits of its own.
type Entry struct {
	// ID names the key in metrics, logs, the CodeRun label and its submissions. It must be
	// a valid label value.
	ID string `json:"id"`
	// SHA256 is the hex SHA-256 of the key.
	SHA256 string `json:"sha256"`
	Limits
}

// File is the key file's content (YAML):
//
//	keys:
//	- id: alice
//	  sha256: 2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae
//	  rate: 2          # optional: requests per second
//	  burst: 10        # optional
//	  maxInFlight: 4   # optional: runs at once
type File struct {
	Keys []Entry `json:"keys"`
}

// maxFileBytes bounds the key file: about 10,000 keys.
const maxFileBytes = 2 << 20

// ParseFile parses and validates a key file: ids are valid label values, unique and not
// reserved; hashes are 64 hex digits and unique; limits are not negative. Unknown fields
// are errors, so that a misspelt limit is not silently the default.
func ParseFile(data []byte) ([]Entry, error) {
	if len(data) > maxFileBytes {
		return nil, fmt.Errorf("the key file is %d bytes; at most %d are allowed", len(data), maxFileBytes)
	}
	var f File
	if len(bytes.TrimSpace(data)) > 0 {
		if err := yaml.UnmarshalStrict(data, &f); err != nil {
			return nil, fmt.Errorf("parsing the key file: %w", err)
		}
	}
	ids := make(map[string]int, len(f.Keys))
	hashes := make(map[string]string, len(f.Keys))
	for i := range f.Keys {
		e := &f.Keys[i]
		e.SHA256 = strings.ToLower(e.SHA256)
		if err := e.validate(); err != nil {
			return nil, fmt.Errorf("key %d (id %q): %w", i+1, e.ID, err)
		}
		if j, dup := ids[e.ID]; dup {
			return nil, fmt.Errorf("key %d: id %q is also key %d's", i+1, e.ID, j)
		}
		ids[e.ID] = i + 1
		if other, dup := hashes[e.SHA256]; dup {
			return nil, fmt.Errorf("key %d (id %q): the same key as id %q", i+1, e.ID, other)
		}
		hashes[e.SHA256] = e.ID
	}
	return f.Keys, nil
}

func (e *Entry) validate() error {
	if e.ID == "" {
		return errors.New("no id")
	}
	if msgs := validation.IsValidLabelValue(e.ID); len(msgs) > 0 {
		return fmt.Errorf("the id must be a valid Kubernetes label value: %s", strings.Join(msgs, "; "))
	}
	switch e.ID {
	case Anonymous, Unknown, None:
		return fmt.Errorf("the id %q is reserved", e.ID)
	}
	if len(e.SHA256) != 2*sha256.Size {
		return fmt.Errorf("sha256 must be 64 hex digits, got %d characters", len(e.SHA256))
	}
	if _, err := hex.DecodeString(e.SHA256); err != nil {
		return errors.New("sha256 must be 64 hex digits")
	}
	return e.Validate()
}

// Hash returns the hex SHA-256 of key, as the key file holds it.
func Hash(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// NewKey makes a random key and its entry for id, with limits (zero: the defaults).
func NewKey(id string, limits Limits) (string, Entry, error) {
	b := make([]byte, keyBytes)
	if _, err := rand.Read(b); err != nil {
		return "", Entry{}, fmt.Errorf("reading random bytes: %w", err)
	}
	key := KeyPrefix + base64.RawURLEncoding.EncodeToString(b)
	e := Entry{ID: id, SHA256: Hash(key), Limits: limits}
	if err := e.validate(); err != nil {
		return "", Entry{}, err
	}
	return key, e, nil
}

// EntryYAML is e as an item of the key file's keys list.
func EntryYAML(e Entry) ([]byte, error) {
	b, err := yaml.Marshal([]Entry{e})
	if err != nil {
		return nil, fmt.Errorf("writing the entry: %w", err)
	}
	return b, nil
}
