package auth

import (
	"errors"
	"net/http"
	"strings"
)

// Headers that carry a key: Authorization: Bearer <key> (RFC 6750), or X-Auth-Token:
// <key> as Judge0's clients send it.
const (
	AuthorizationHeader = "Authorization"
	AuthTokenHeader     = "X-Auth-Token"
)

// ErrMalformed: a request carries something that cannot be a key.
var ErrMalformed = errors.New("malformed credentials")

// KeyFromHeader returns the key a request carries and whether it carries one. It is an
// error (ErrMalformed, wrapped with why) when a header is there but holds no usable key:
// another scheme than Bearer, an empty or over-long key, control characters, several
// values, or two headers that disagree. Such a request is refused, never treated as
// anonymous.
func KeyFromHeader(h http.Header) (string, bool, error) {
	var keys []string
	if vals := h.Values(AuthorizationHeader); len(vals) > 0 {
		if len(vals) > 1 {
			return "", true, malformed("more than one Authorization header")
		}
		scheme, key, _ := strings.Cut(strings.TrimSpace(vals[0]), " ")
		if !strings.EqualFold(scheme, "Bearer") { // schemes are case-insensitive (RFC 9110 11.1)
			return "", true, malformed("the Authorization scheme must be Bearer")
		}
		keys = append(keys, strings.TrimSpace(key))
	}
	if vals := h.Values(AuthTokenHeader); len(vals) > 0 {
		if len(vals) > 1 {
			return "", true, malformed("more than one X-Auth-Token header")
		}
		keys = append(keys, strings.TrimSpace(vals[0]))
	}
	if len(keys) == 0 {
		return "", false, nil
	}
	if len(keys) == 2 && keys[0] != keys[1] {
		return "", true, malformed("Authorization and X-Auth-Token carry different keys")
	}
	key := keys[0]
	if key == "" {
		return "", true, malformed("the key is empty")
	}
	if len(key) > MaxKeyLength {
		return "", true, malformed("the key is too long")
	}
	for i := 0; i < len(key); i++ {
		if c := key[i]; c <= ' ' || c >= 0x7f {
			return "", true, malformed("the key holds a character that is not printable ASCII")
		}
	}
	return key, true, nil
}

func malformed(why string) error { return &malformedError{why} }

type malformedError struct{ why string }

func (e *malformedError) Error() string { return e.why }
func (e *malformedError) Unwrap() error { return ErrMalformed }
