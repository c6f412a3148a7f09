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
	// Any name a Runtime may have goes to the operator, which says whether one has it.
	{"not a language name", `{"code": "x", "language": "Ruby on Rails"}`, 422, `unknown language "ruby on rails": a language name is lowercase letters`},
	{"language name too long", `{"code": "x", "language": "` + strings.Repeat("a", 33) + `"}`, 422, "at most 32 characters"},
	{"number version", `{"code": "x", "version": 3}`, 400, `"version" must be a string`},
	{"version not a range", `{"code": "x", "version": "three"}`, 422, `field "version" "three" is not a semantic version range`},
	{"version too long", `{"code": "x", "version": "` + strings.Repeat("1", 65) + `"}`, 422, "at most 64"},
	{"files not an array", `{"code": "x", "files": {"a.py": "x"}}`, 400, `"files" must be`},
	{"file without content", `{"code": "x", "files": [{"name": "a.py"}]}`, 400, `files[0] needs a "name" and a "content"`},
	{"file name in a folder", `{"code": "x", "files": [{"name": "lib/a.py", "content": ""}]}`, 422, `files[0].name "lib/a.py" is not a file name`},
	{"hidden file", `{"code": "x", "files": [{"name": ".env", "content": ""}]}`, 422, `files[0].name ".env" is not a file name`},
	{"two files of one name", `{"code": "x", "files": [{"name": "a.py", "content": ""}, {"name": "a.py", "content": "y"}]}`, 422, `files[1].name "a.py" is the name of another file`},
	{"NUL in a file", `{"code": "x", "files": [{"name": "a.py", "content": "a\u0000"}]}`, 422, `files[0].content has a NUL character (\u0000) at byte 1`},
	{"too many files", `{"code": "x", "files": [` + strings.TrimSuffix(strings.Repeat(`{"name": "f", "content": ""},`, 17), ",") + `]}`, 422, `"files" has 17 files; at most 16`},
	{"code and files over 64 KiB", `{"code": "` + strings.Repeat("#", 40000) + `", "files": [{"name": "a", "content": "` + strings.Repeat("#", 30000) + `"}]}`, 413, `"code" and "files" are 70000 bytes together`},
	{"args not strings", `{"code": "x", "args": [1]}`, 400, `must be a string`},
	{"too many args", `{"code": "x", "args": [` + strings.TrimSuffix(strings.Repeat(`"a",`, 33), ",") + `]}`, 422, `"args" has 33 arguments; at most 32`},
	{"NUL in an arg", `{"code": "x", "args": ["a\u0000"]}`, 422, `args[0] has a NUL character`},
	{"compile timeout zero", `{"code": "x", "compile_timeout": 0}`, 422, "compile_timeout 0 is not a whole number of seconds from 1 to 600"},
	{"compile timeout fraction", `{"code": "x", "compile_timeout": 2.5}`, 422, "compile_timeout 2.5 is not a whole number"},
	{"compile timeout string", `{"code": "x", "compile_timeout": "10"}`, 400, "compile_timeout"},
	{"compile memory too large", `{"code": "x", "compile_memory": "32Gi"}`, 422, "compile_memory 32Gi is above the maximum of 16Gi"},
	{"compile memory malformed", `{"code": "x", "compile_memory": "much"}`, 422, `compile_memory "much" is not a quantity`},
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
		{"a compiled language with files, args and compile limits", `{"code": "int main() {}", "language": " C++ ", "version": "14.x", "files": [{"name": "util.h", "content": "#pragma once\n"}, {"name": "data.txt", "content": ""}], "args": ["a b", ""], "compile_timeout": 30, "compile_memory": "1Gi"}`, func(t *testing.T, s execv1alpha1.CodeRunSpec) {
			if s.Language != "c++" || s.Version != "14.x" || len(s.Files) != 2 || s.Files[0].Name != "util.h" || s.Files[0].Content != "#pragma once\n" || s.Files[1].Name != "data.txt" ||
				len(s.Args) != 2 || s.Args[0] != "a b" || s.Args[1] != "" || *s.CompileLimits.TimeoutSeconds != 30 || s.CompileLimits.Memory.String() != "1Gi" {
				t.Errorf("spec %+v, compile limits %+v", s, s.CompileLimits)
			}
		}},
		{"any language name a Runtime may have, and * for any version", `{"code": "x", "language": "ruby", "version": "*"}`, func(t *testing.T, s execv1alpha1.CodeRunSpec) {
			if s.Language != "ruby" || s.Version != "*" || s.Files != nil || s.Args != nil || s.CompileLimits != nil {
				t.Errorf("spec %+v", s)
			}
		}},
		{"python3 is python", `{"code": "x", "language": "python3"}`, func(t *testing.T, s execv1alpha1.CodeRunSpec) {
			if s.Language != execv1alpha1.LanguagePython {
				t.Errorf("language %q", s.Language)
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
	f.Add([]byte(`{"code": "int main() {}", "language": "c++", "version": "^14", "files": [{"name": "a.h", "content": "#pragma once"}], "args": ["-v"], "compile_timeout": 20, "compile_memory": "1Gi"}`))
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
		files := 0
		for _, f := range s.Files {
			files += len(f.Content)
			if !filePattern.MatchString(f.Name) || len(f.Name) > maxFileNameLength || strings.ContainsRune(f.Content, 0) {
				t.Fatalf("accepted a file the CRD refuses: %q", f.Name)
			}
		}
		if strings.TrimSpace(s.Source) == "" || len(s.Source)+files > execv1alpha1.MaxSourceBytes || len(s.Stdin) > execv1alpha1.MaxStdinBytes ||
			!languagePattern.MatchString(string(s.Language)) || len(s.Language) > maxLanguageLength || len(s.Version) > maxVersionLength ||
			len(s.Files) > execv1alpha1.MaxFiles || len(s.Args) > execv1alpha1.MaxArgs {
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
