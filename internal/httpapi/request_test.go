package httpapi

import (
	"strings"
	"testing"
	"unicode/utf8"

	execv1alpha1 "github.com/coderun-dev/coderun/api/v1alpha1"
	"github.com/coderun-dev/coderun/internal/config"
)

// badRequests are bodies of /execute and /submit that must be refused, with the status
// and a part of the message a person needs to fix them. The handler tests send them over
// HTTP too.
var badRequests = []struct {
	name, body string
	status     int
	mention    string
}{
	{"empty body", ``, 400, "empty"},
	{"not JSON", `print('hi')`, 400, "not valid JSON"},
	{"truncated JSON", `{"code": "print(1)"`, 400, "not valid JSON"},
	{"array", `[{"code": "print(1)"}]`, 400, "JSON object"},
	{"string", `"print(1)"`, 400, "JSON object"},
	{"two objects", `{"code": "print(1)"} {"code": "print(2)"}`, 400, "nothing after it"},
	{"no code", `{"stdin": "x"}`, 400, `"code" is required`},
	{"null code", `{"code": null}`, 400, `"code" is required`},
	{"number code", `{"code": 123}`, 400, `"code" must be a string, not number`},
	{"array code", `{"code": ["print(1)"]}`, 400, `"code" must be a string`},
	{"empty code", `{"code": ""}`, 422, `"code" is empty`},
	{"blank code", `{"code": " \n\t"}`, 422, `"code" is empty`},
	{"number stdin", `{"code": "x", "stdin": 5}`, 400, `"stdin" must be a string`},
	{"unknown language", `{"code": "x", "language": "ruby"}`, 422, `unknown language "ruby"`},
	// 13 日 are 39 bytes: the echo stops there rather than split the 14th.
	{"unknown language, long and multi-byte", `{"code": "x", "language": "` + strings.Repeat("日", 20) + `"}`, 422, `unknown language "` + strings.Repeat("日", 13) + `..."`},
	{"number language", `{"code": "x", "language": 3}`, 400, `"language" must be a string`},
	{"limits not an object", `{"code": "x", "limits": "fast"}`, 400, `"limits" must be an object`},
	{"timeout above max", `{"code": "x", "limits": {"timeout_seconds": 61}}`, 422, "maximum of 60"},
	{"timeout zero", `{"code": "x", "limits": {"timeout_seconds": 0}}`, 422, "timeout_seconds 0 is out of range"},
	{"timeout fraction", `{"code": "x", "limits": {"timeout_seconds": 1.5}}`, 422, "whole number of seconds"},
	{"timeout string", `{"code": "x", "limits": {"timeout_seconds": "soon"}}`, 400, "timeout_seconds"},
	{"memory above max", `{"code": "x", "limits": {"memory": "2Gi"}}`, 422, "limits.memory 2Gi is above the maximum of 1Gi"},
	{"memory below min", `{"code": "x", "limits": {"memory": "1Mi"}}`, 422, "below the minimum of 16Mi"},
	{"memory malformed", `{"code": "x", "limits": {"memory": "lots"}}`, 422, `limits.memory "lots" is not a quantity`},
	{"memory object", `{"code": "x", "limits": {"memory": {}}}`, 400, "memory"},
	{"cpu above max", `{"code": "x", "limits": {"cpu": 3}}`, 422, "limits.cpu 3 is above the maximum of 2"},
	{"cpu malformed", `{"code": "x", "limits": {"cpu": "500 m"}}`, 422, "limits.cpu"},
	{"NUL in code", `{"code": "print(1)\u0000"}`, 422, `field "code" has a NUL character (\u0000) at byte 8`},
	{"NUL in stdin", `{"code": "input()", "stdin": "a\u0000b"}`, 422, `field "stdin" has a NUL character (\u0000) at byte 1`},
	{"raw NUL byte", "{\"code\": \"print(1)\x00\"}", 400, `invalid character '\x00' in string literal`},
	{"invalid UTF-8", "{\"code\": \"print('\xff')\"}", 400, "not valid UTF-8 (at byte 17)"},
	{"deep nesting", `{"code": ` + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + `}`, 400, "exceeded max depth"},
	{"timeout huge", `{"code": "x", "limits": {"timeout_seconds": 99999999999999999999}}`, 422, "timeout_seconds 99999999999999999999 is out of range"},
	{"timeout beyond float", `{"code": "x", "limits": {"timeout_seconds": 1e400}}`, 422, "whole number of seconds, got 1e400"},
	{"memory beyond float", `{"code": "x", "limits": {"memory": 1e400}}`, 422, "limits.memory 1e400 is above the maximum of 1Gi"},
	{"cpu negative", `{"code": "x", "limits": {"cpu": "-1"}}`, 422, "limits.cpu -1 is below the minimum of 10m"},
	{"code over 64 KiB", `{"code": "` + strings.Repeat("#", execv1alpha1.MaxSourceBytes+1) + `"}`, 413, "at most 65536 bytes"},
	// 64 Ki characters but more bytes: the bound is in bytes, as the CRD's.
	{"code over 64 KiB in bytes", `{"code": "` + strings.Repeat("é", execv1alpha1.MaxSourceBytes/2+1) + `"}`, 413, "at most 65536 bytes"},
	{"stdin over 64 KiB", `{"code": "x", "stdin": "` + strings.Repeat("1", execv1alpha1.MaxStdinBytes+1) + `"}`, 413, `"stdin" is 65537 bytes`},
}

func TestParseRunRequestRefuses(t *testing.T) {
	cfg := config.Default()
	for _, tc := range badRequests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseRunRequest([]byte(tc.body), cfg)
			if err == nil {
				t.Fatalf("accepted %.80q", tc.body)
			}
			if err.Status != tc.status || !strings.Contains(err.Message, tc.mention) {
				t.Errorf("got %d %q, want %d mentioning %q", err.Status, err.Message, tc.status, tc.mention)
			}
		})
	}
}

func TestParseRunRequestAccepts(t *testing.T) {
	cfg := config.Default()
	for _, tc := range []struct {
		name, body string
		check      func(*testing.T, execv1alpha1.CodeRunSpec)
	}{
		{"code only", `{"code": "print('Hello, World!')"}`, func(t *testing.T, s execv1alpha1.CodeRunSpec) {
			if s.Source != "print('Hello, World!')" || s.Language != execv1alpha1.LanguagePython || s.Stdin != "" || s.Limits.TimeoutSeconds != nil {
				t.Errorf("spec %+v", s)
			}
		}},
		{"everything", `{"code": "print(input())", "stdin": "hi", "language": "Python", "limits": {"timeout_seconds": 5, "memory": "128Mi", "cpu": "500m"}}`, func(t *testing.T, s execv1alpha1.CodeRunSpec) {
			if s.Stdin != "hi" || *s.Limits.TimeoutSeconds != 5 || s.Limits.Memory.String() != "128Mi" || s.Limits.CPU.String() != "500m" {
				t.Errorf("spec %+v", s)
			}
		}},
		{"numbers for quantities, null limits", `{"code": "x", "language": "python3", "limits": {"cpu": 1.5, "memory": 134217728, "timeout_seconds": null}}`, func(t *testing.T, s execv1alpha1.CodeRunSpec) {
			if s.Limits.CPU.MilliValue() != 1500 || s.Limits.Memory.Value() != 128<<20 || s.Limits.TimeoutSeconds != nil {
				t.Errorf("limits %+v", s.Limits)
			}
		}},
		{"at the maxima", `{"code": "x", "limits": {"timeout_seconds": 60, "memory": "1Gi", "cpu": "2"}}`, nil},
		{"a byte order mark before the object", "\xef\xbb\xbf{\"code\": \"print(1)\"}", nil},
		{"NUL escaped in a string literal of the program", `{"code": "print('\\u0000')"}`, func(t *testing.T, s execv1alpha1.CodeRunSpec) {
			if s.Source != `print('\u0000')` {
				t.Errorf("source %q", s.Source)
			}
		}},
		{"exactly 64 KiB, unknown fields ignored", `{"code": "` + strings.Repeat("#", execv1alpha1.MaxSourceBytes) + `", "theme": "dark"}`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := parseRunRequest([]byte(tc.body), cfg)
			if err != nil {
				t.Fatalf("refused with %d %s", err.Status, err.Message)
			}
			if tc.check != nil {
				tc.check(t, req.Spec)
			}
		})
	}
}

// FuzzParseRunRequest: whatever the body, decoding answers either a spec the CRD and the
// operator accept, or a 4xx with a message; it never panics.
func FuzzParseRunRequest(f *testing.F) {
	for _, tc := range badRequests {
		if len(tc.body) < 1000 {
			f.Add([]byte(tc.body))
		}
	}
	f.Add([]byte(`{"code": "print(1)", "stdin": "", "language": "python", "limits": {"timeout_seconds": 5, "memory": "128Mi", "cpu": "500m"}}`))
	f.Add([]byte(`{"code": "x", "limits": {"cpu": 1e3, "memory": "1e9"}}`))
	cfg := config.Default()
	max := cfg.MaxLimits
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := parseRunRequest(body, cfg)
		if err != nil {
			if err.Status < 400 || err.Status > 499 || err.Message == "" || !utf8.ValidString(err.Message) {
				t.Fatalf("bad error answer %d %q", err.Status, err.Message)
			}
			return
		}
		s := req.Spec
		if strings.ContainsRune(s.Source, 0) || strings.ContainsRune(s.Stdin, 0) || !utf8.ValidString(s.Source) || !utf8.ValidString(s.Stdin) {
			t.Fatalf("accepted a NUL character or invalid UTF-8: %q %q", s.Source, s.Stdin)
		}
		if strings.TrimSpace(s.Source) == "" || len(s.Source) > execv1alpha1.MaxSourceBytes || len(s.Stdin) > execv1alpha1.MaxStdinBytes || s.Language != execv1alpha1.LanguagePython {
			t.Fatalf("accepted a spec the CRD refuses: %+v", s)
		}
		l := s.Limits
		if l.TimeoutSeconds != nil && (*l.TimeoutSeconds < 1 || *l.TimeoutSeconds > *max.TimeoutSeconds) ||
			l.Memory != nil && (l.Memory.Cmp(minMemory) < 0 || l.Memory.Cmp(*max.Memory) > 0) ||
			l.CPU != nil && (l.CPU.Cmp(minCPU) < 0 || l.CPU.Cmp(*max.CPU) > 0) {
			t.Fatalf("accepted limits out of bounds: %+v", l)
		}
	})
}
