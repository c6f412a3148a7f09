// Package textcut shortens text to a byte limit without splitting a UTF-8 character. It is
// the one place where coderun cuts messages, condition texts, event notes and echoes of
// user input, so that no cut ever produces invalid UTF-8 (which the API server and JSON
// encoders would refuse or mangle).
package textcut

import "unicode/utf8"

// Limits of the Kubernetes API on text that coderun writes.
const (
	// MaxConditionMessage is the API's limit on a condition's message (metav1.Condition).
	MaxConditionMessage = 32768
	// MaxEventNote is the API's limit on an event's note (events.k8s.io/v1); the API
	// server refuses a longer one, and the event is lost.
	MaxEventNote = 1024
)

// ellipsis marks text that Shorten cut.
const ellipsis = "..."

// Prefix returns at most n bytes of the start of s, not splitting a character. Bytes of s
// that are not valid UTF-8 are kept as they are.
func Prefix(s string, n int) string {
	if n <= 0 {
		return ""
	}
	if n >= len(s) {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// Shorten returns s when it has at most n bytes, and otherwise its start followed by
// "...", n bytes at most in all, so that readers see that something was left out.
func Shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	if n <= len(ellipsis) {
		return Prefix(s, n)
	}
	return Prefix(s, n-len(ellipsis)) + ellipsis
}
