package httpapi

import (
	"net/url"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	execv1alpha1 "github.com/coderun-dev/coderun/api/v1alpha1"
	"github.com/coderun-dev/coderun/internal/config"
)

// FuzzJudge0Submission feeds the Judge0 submission parser (a JSON or form body, the query,
// base64 or not) anything. It never panics; it refuses with Judge0's 422 shape, naming
// only fields a submission has, or 400; and what it accepts is a CodeRun the operator
// takes: a language there is, UTF-8 source without NUL within the bounds, and limits
// within the operator's maxima. `make fuzz` runs it.
func FuzzJudge0Submission(f *testing.F) {
	for _, seed := range []struct {
		body, query string
		form, b64   bool
	}{
		{`{"source_code": "print(1)", "language_id": 71}`, "", false, false},
		{`{"source_code": "cHJpbnQoMSk=\n", "language_id": "54", "stdin": "aGk", "expected_output": "aGk="}`, "", false, true},
		{`{"source_code": "x", "language_id": 71, "wall_time_limit": 1.5, "cpu_time_limit": 0, "cpu_extra_time": 0.5, "memory_limit": 16384}`, "", false, false},
		{`{"source_code": "x", "language_id": 71, "command_line_arguments": "a 'b c' \"d\\\" e\" f\\ g $(x) | y"}`, "", false, false},
		{`{"source_code": "x", "language_id": 1e300, "memory_limit": "NaN", "number_of_runs": -0}`, "", false, false},
		{`source_code=x&language_id=71&redirect_stderr_to_stdout=off`, "stdin=q&memory_limit=99999999", true, false},
		{``, "source_code=x&language_id=71", false, false},
		{`{"submissions": [1]}`, "", false, false},
	} {
		f.Add([]byte(seed.body), seed.query, seed.form, seed.b64)
	}
	langs := judge0LanguagesOf(judge0TestRuntimes)
	lim := judge0LimitsOf(config.Default())
	f.Fuzz(func(t *testing.T, body []byte, query string, form, b64 bool) {
		q, err := url.ParseQuery(query)
		if err != nil {
			return
		}
		contentType := "application/json"
		if form {
			contentType = "application/x-www-form-urlencoded"
		}
		p, apiErr := judge0ParamsFromBody(body, contentType, q)
		if apiErr != nil {
			if apiErr.Status != 400 && apiErr.Status != 413 || apiErr.Message == "" {
				t.Fatalf("refused with %d %q", apiErr.Status, apiErr.Message)
			}
			return
		}
		sub, errs := parseJudge0Submission(p, b64, langs, lim)
		if errs != nil {
			if sub != nil || len(errs) == 0 {
				t.Fatalf("both a submission and errors %v", errs)
			}
			for field, msgs := range errs {
				if !slices.Contains(judge0InputFields, field) || len(msgs) == 0 {
					t.Fatalf("an error on %q, which is not a submission's field: %v", field, msgs)
				}
				for _, m := range msgs {
					if m == "" || !utf8.ValidString(m) {
						t.Fatalf("error on %s is %q", field, m)
					}
				}
			}
			return
		}
		spec := sub.spec
		if strings.TrimSpace(spec.Source) == "" || len(spec.Source) > execv1alpha1.MaxSourceBytes ||
			!utf8.ValidString(spec.Source) || strings.ContainsRune(spec.Source, 0) ||
			len(spec.Stdin) > execv1alpha1.MaxStdinBytes || !utf8.ValidString(spec.Stdin) || strings.ContainsRune(spec.Stdin, 0) {
			t.Fatalf("accepted source %q and stdin %q", spec.Source, spec.Stdin)
		}
		if findJudge0Language(langs, sub.row.LanguageID) == nil || spec.Language == "" {
			t.Fatalf("accepted language id %d as %q", sub.row.LanguageID, spec.Language)
		}
		if to := *spec.Limits.TimeoutSeconds; to < 1 || float64(to) > lim.maxWallTime {
			t.Fatalf("accepted a timeout of %d s", to)
		}
		if m := spec.Limits.Memory.Value() / 1024; m < lim.minMemoryKB || m > lim.maxMemoryKB {
			t.Fatalf("accepted memory of %d KB", m)
		}
		if len(spec.Args) > execv1alpha1.MaxArgs || sub.row.StatusID != j0InQueue {
			t.Fatalf("accepted %d args, status %d", len(spec.Args), sub.row.StatusID)
		}
	})
}
