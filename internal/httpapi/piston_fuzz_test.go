package httpapi

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	execv1alpha1 "github.com/coderun-dev/coderun/api/v1alpha1"
)

// FuzzPistonExecute: whatever the body of POST /api/v2/execute, the answer is a run
// (200) of a CodeRun spec the CRD and the operator accept, or a 4xx {"message": ...} in
// valid UTF-8; never a 5xx. `make fuzz` runs it.
func FuzzPistonExecute(f *testing.F) {
	for _, seed := range []string{
		``, `{}`, `[]`, `"x"`, `{"language": "py", "version": "3.x", "files": [{"content": "print(1)"}]}`,
		`{"language": "cpp", "version": "*", "files": [{"name": "a.cpp", "content": "int main(){}"}, {"name": "b.h", "content": "aGk=", "encoding": "base64"}], "stdin": "x", "args": ["1"], "compile_timeout": 15000, "run_timeout": 2500.5, "run_cpu_time": 0, "run_memory_limit": -1, "compile_memory_limit": 1e3}`,
		`{"language": "python", "version": ">=3.11 <3.12", "files": [{"content": "x", "encoding": "hex"}, {"content": ""}]}`,
		`{"language": "python", "version": "3", "files": [{"content": 1}], "run_timeout": "1"}`,
		`{"language": "c++", "version": "14", "files": [{"content": "x", "name": "../x"}], "run_timeout": 1e400, "stdin": null, "args": null}`,
	} {
		f.Add([]byte(seed))
	}
	fx, runner := languageFixture(f, nil)
	cfg := fx.srv.opts.Config
	f.Fuzz(func(t *testing.T, body []byte) {
		before := len(runner.Specs())
		a := fx.do(t, "POST", "/api/v2/execute", string(body))
		if a.status >= 500 {
			t.Fatalf("%d %s", a.status, a.body)
		}
		if a.status != 200 {
			var m map[string]any
			if err := json.Unmarshal(a.body, &m); err != nil || len(m) != 1 {
				t.Fatalf("%d is not {\"message\"}: %q", a.status, a.body)
			}
			if msg, _ := m["message"].(string); msg == "" || !utf8.ValidString(msg) {
				t.Fatalf("%d without a message: %q", a.status, a.body)
			}
			if len(runner.Specs()) != before {
				t.Fatalf("%d, yet a program ran", a.status)
			}
			return
		}
		specs := runner.Specs()
		if len(specs) != before+1 {
			t.Fatalf("200 without a run: %s", a.body)
		}
		s := specs[len(specs)-1]
		total := len(s.Source)
		names := map[string]bool{}
		for _, file := range s.Files {
			total += len(file.Content)
			if !filePattern.MatchString(file.Name) || len(file.Name) > maxFileNameLength || names[file.Name] || strings.ContainsRune(file.Content, 0) || !utf8.ValidString(file.Content) {
				t.Fatalf("accepted a file the CRD refuses: %q", file.Name)
			}
			names[file.Name] = true
		}
		if s.Source == "" || strings.ContainsRune(s.Source, 0) || total > execv1alpha1.MaxSourceBytes || len(s.Files) > execv1alpha1.MaxFiles ||
			!strings.HasSuffix(s.Stdin, "\n") || len(s.Stdin) > execv1alpha1.MaxStdinBytes || strings.ContainsRune(s.Stdin, 0) || len(s.Args) > execv1alpha1.MaxArgs {
			t.Fatalf("accepted a spec the CRD refuses: %+v", s)
		}
		l := s.Limits
		if l.TimeoutSeconds != nil && (*l.TimeoutSeconds < 1 || *l.TimeoutSeconds > *cfg.MaxLimits.TimeoutSeconds) ||
			l.Memory != nil && (l.Memory.Cmp(minMemory) < 0 || l.Memory.Cmp(*cfg.MaxLimits.Memory) > 0) || l.CPU != nil {
			t.Fatalf("limits out of bounds: %+v", l)
		}
		if c := s.CompileLimits; c != nil && (c.TimeoutSeconds != nil && (*c.TimeoutSeconds < 1 || *c.TimeoutSeconds > 20) ||
			c.Memory != nil && (c.Memory.Cmp(minCompileMemory) < 0 || c.Memory.Value() > 512<<20)) {
			t.Fatalf("compile limits out of the Runtime's: %+v", c)
		}
	})
}
