package textcut

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestPrefix(t *testing.T) {
	for _, tc := range []struct {
		s    string
		n    int
		want string
	}{
		{"hello", 10, "hello"},
		{"hello", 5, "hello"},
		{"hello", 3, "hel"},
		{"hello", 0, ""},
		{"hello", -1, ""},
		{"héllo", 2, "h"}, // é is 2 bytes: never half of it
		{"héllo", 3, "hé"},
		{"日本", 2, ""},
		{"日本", 4, "日"},
		{"a\xffb", 2, "a\xff"}, // invalid bytes are not characters to protect
	} {
		if got := Prefix(tc.s, tc.n); got != tc.want {
			t.Errorf("Prefix(%q, %d) = %q, want %q", tc.s, tc.n, got, tc.want)
		}
	}
}

func TestShorten(t *testing.T) {
	for _, tc := range []struct {
		s    string
		n    int
		want string
	}{
		{"hello", 5, "hello"},
		{"hello world", 8, "hello..."},
		{"héllo world", 5, "h..."},
		{"hello", 2, "he"},
	} {
		if got := Shorten(tc.s, tc.n); got != tc.want {
			t.Errorf("Shorten(%q, %d) = %q, want %q", tc.s, tc.n, got, tc.want)
		}
	}
}

func FuzzShorten(f *testing.F) {
	f.Add("héllo wörld 日本", 7)
	f.Add(strings.Repeat("€", 400), MaxEventNote)
	f.Fuzz(func(t *testing.T, s string, n int) {
		got := Shorten(s, n)
		if n >= 0 && len(got) > n {
			t.Fatalf("Shorten(%q, %d) has %d bytes", s, n, len(got))
		}
		if utf8.ValidString(s) && !utf8.ValidString(got) {
			t.Fatalf("Shorten(%q, %d) = %q split a character", s, n, got)
		}
		if len(s) <= n && got != s {
			t.Fatalf("Shorten(%q, %d) changed text that fits: %q", s, n, got)
		}
	})
}
