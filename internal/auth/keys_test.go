package auth

import (
	"net/http"
	"strings"
	"testing"
)

const hashA = "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"
const hashB = "fcde2b2edba56bf408601fb721fe9b5c338d10ee429ea04fae5511b68fbf8fb9"

func TestParseFile(t *testing.T) {
	good := "keys:\n- id: alice\n  sha256: " + hashA + "\n  rate: 2\n  burst: 5\n  maxInFlight: 1\n- id: bob.team_1\n  sha256: " + strings.ToUpper(hashB) + "\n"
	entries, err := ParseFile([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 || entries[0].ID != "alice" || entries[0].Rate != 2 || entries[0].Burst != 5 || entries[0].MaxInFlight != 1 {
		t.Errorf("entries = %+v", entries)
	}
	if entries[1].SHA256 != hashB {
		t.Errorf("the hash is not lower-cased: %s", entries[1].SHA256)
	}
	for _, empty := range []string{"", "  \n", "keys: []"} {
		if entries, err := ParseFile([]byte(empty)); err != nil || len(entries) != 0 {
			t.Errorf("ParseFile(%q) = %v, %v; want no keys", empty, entries, err)
		}
	}

	bad := []struct{ name, file, mention string }{
		{"not YAML", "keys: [", "parsing"},
		{"unknown field", "keys:\n- id: a\n  sha256: " + hashA + "\n  rte: 2\n", "unknown field"},
		{"no id", "keys:\n- sha256: " + hashA + "\n", "no id"},
		{"id not a label value", "keys:\n- id: alice smith\n  sha256: " + hashA + "\n", "label value"},
		{"id too long", "keys:\n- id: " + strings.Repeat("a", 64) + "\n  sha256: " + hashA + "\n", "label value"},
		{"reserved id", "keys:\n- id: anonymous\n  sha256: " + hashA + "\n", "reserved"},
		{"short hash", "keys:\n- id: a\n  sha256: abc\n", "64 hex digits"},
		{"hash not hex", "keys:\n- id: a\n  sha256: " + strings.Repeat("z", 64) + "\n", "64 hex digits"},
		{"duplicate id", "keys:\n- id: a\n  sha256: " + hashA + "\n- id: a\n  sha256: " + hashB + "\n", `id "a" is also key 1's`},
		{"duplicate hash", "keys:\n- id: a\n  sha256: " + hashA + "\n- id: b\n  sha256: " + hashA + "\n", `the same key as id "a"`},
		{"negative rate", "keys:\n- id: a\n  sha256: " + hashA + "\n  rate: -1\n", "rate"},
		{"negative in flight", "keys:\n- id: a\n  sha256: " + hashA + "\n  maxInFlight: -1\n", "maxInFlight"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseFile([]byte(tc.file))
			if err == nil || !strings.Contains(err.Error(), tc.mention) {
				t.Errorf("error = %v, want one mentioning %q", err, tc.mention)
			}
		})
	}
}

func TestNewKey(t *testing.T) {
	key, e, err := NewKey("alice", Limits{Rate: 3})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(key, KeyPrefix) || len(key) != len(KeyPrefix)+43 {
		t.Errorf("key %q: want %s and 43 base64url characters", key, KeyPrefix)
	}
	if e.ID != "alice" || e.SHA256 != Hash(key) || e.Rate != 3 {
		t.Errorf("entry = %+v", e)
	}
	// The printed entry is what the file takes.
	y, err := EntryYAML(e)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := ParseFile([]byte("keys:\n" + string(y)))
	if err != nil || len(entries) != 1 || entries[0] != e {
		t.Errorf("the printed entry does not parse back: %v %+v\n%s", err, entries, y)
	}
	if other, _, _ := NewKey("alice", Limits{}); other == key {
		t.Error("two keys are the same")
	}
	if _, _, err := NewKey("not a label!", Limits{}); err == nil {
		t.Error("NewKey took an id that is not a label value")
	}
}

func TestKeyFromHeader(t *testing.T) {
	cases := []struct {
		name    string
		header  http.Header
		key     string
		present bool
		bad     bool
	}{
		{"none", http.Header{}, "", false, false},
		{"bearer", http.Header{"Authorization": {"Bearer crk_abc"}}, "crk_abc", true, false},
		{"bearer any case", http.Header{"Authorization": {"bearer   crk_abc "}}, "crk_abc", true, false},
		{"judge0 token", http.Header{"X-Auth-Token": {"crk_abc"}}, "crk_abc", true, false},
		{"both, same", http.Header{"Authorization": {"Bearer k"}, "X-Auth-Token": {"k"}}, "k", true, false},
		{"both, different", http.Header{"Authorization": {"Bearer k"}, "X-Auth-Token": {"j"}}, "", true, true},
		{"basic", http.Header{"Authorization": {"Basic YWxhZGRpbjpvcGVuc2VzYW1l"}}, "", true, true},
		{"bearer without key", http.Header{"Authorization": {"Bearer"}}, "", true, true},
		{"empty token", http.Header{"X-Auth-Token": {""}}, "", true, true},
		{"two tokens", http.Header{"X-Auth-Token": {"a", "b"}}, "", true, true},
		{"too long", http.Header{"X-Auth-Token": {strings.Repeat("k", MaxKeyLength+1)}}, "", true, true},
		{"control character", http.Header{"X-Auth-Token": {"a\x00b"}}, "", true, true},
		{"not ASCII", http.Header{"X-Auth-Token": {"clé"}}, "", true, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			key, present, err := KeyFromHeader(tc.header)
			if key != tc.key || present != tc.present || (err != nil) != tc.bad {
				t.Errorf("KeyFromHeader = %q, %v, %v; want %q, %v, error %v", key, present, err, tc.key, tc.present, tc.bad)
			}
		})
	}
}

// FuzzParseFile: any key file either parses into entries that are all valid (label-value
// ids, 64 lower-case hex digits, limits not negative, unique) or is an error; never a panic.
func FuzzParseFile(f *testing.F) {
	f.Add([]byte("keys:\n- id: alice\n  sha256: " + hashA + "\n  rate: 2\n"))
	f.Add([]byte("keys: [{id: a, sha256: " + hashB + ", burst: 1e9}]"))
	f.Add([]byte("{\"keys\": [{\"id\": \"\", \"sha256\": null}]}"))
	f.Add([]byte("keys:\n- &a {id: x}\n- *a\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, err := ParseFile(data)
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for _, e := range entries {
			if err := e.validate(); err != nil {
				t.Fatalf("ParseFile accepted an invalid entry %+v: %v", e, err)
			}
			if e.SHA256 != strings.ToLower(e.SHA256) || seen[e.ID] || seen["#"+e.SHA256] {
				t.Fatalf("ParseFile accepted %+v: not lower-case or not unique", e)
			}
			seen[e.ID], seen["#"+e.SHA256] = true, true
		}
	})
}

// FuzzKeyFromHeader: whatever the headers hold, a key returned is printable ASCII, not
// empty and not over MaxKeyLength, and one of the headers' values holds it.
func FuzzKeyFromHeader(f *testing.F) {
	f.Add("Bearer crk_abc", "")
	f.Add("", "crk_abc")
	f.Add("Basic x", "y")
	f.Add("bearer \x00", "\xff")
	f.Fuzz(func(t *testing.T, authorization, token string) {
		h := http.Header{}
		if authorization != "" {
			h.Set(AuthorizationHeader, authorization)
		}
		if token != "" {
			h.Set(AuthTokenHeader, token)
		}
		key, present, err := KeyFromHeader(h)
		if err != nil || !present {
			if key != "" {
				t.Fatalf("a key %q with an error or no header", key)
			}
			return
		}
		if key == "" || len(key) > MaxKeyLength || strings.ContainsFunc(key, func(r rune) bool { return r <= ' ' || r >= 0x7f }) {
			t.Fatalf("KeyFromHeader returned %q", key)
		}
		if !strings.Contains(authorization, key) && !strings.Contains(token, key) {
			t.Fatalf("key %q is in neither header", key)
		}
	})
}
