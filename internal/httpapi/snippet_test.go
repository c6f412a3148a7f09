package httpapi

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/coderun-dev/coderun/internal/store"
)

// A share link remembers the language and the version it was made with, so the page opens
// it on the same runtime; it is checked as a run's are, not against today's Runtimes.
func TestSnippetLanguageAndVersion(t *testing.T) {
	f := newFixture(t, nil)
	for _, tc := range []struct {
		name, body            string
		language, wantVersion string
	}{
		{"go at a version", `{"code": "package main", "language": "go", "version": "1.24.4"}`, "go", "1.24.4"},
		{"a range", `{"code": "int main() {}", "language": "cpp", "version": ">=14 <15"}`, "cpp", ">=14 <15"},
		{"name in another case, spaces", `{"code": "x", "language": " Go ", "version": " 1.x "}`, "go", "1.x"},
		{"python3 is python", `{"code": "print(1)", "language": "python3"}`, "python", ""},
		{"no language: python, newest", `{"code": "print(1)"}`, "python", ""},
		{"any version: newest", `{"code": "print(1)", "language": "python", "version": "*"}`, "python", "*"},
		// A link outlives the Runtimes of the day: a language none offers now is kept, and
		// the page says it is not available when the link is opened.
		{"a language no Runtime has", `{"code": "DISPLAY 'HI'.", "language": "cobol"}`, "cobol", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := f.do(t, "POST", "/snippets", tc.body)
			if a.status != http.StatusCreated {
				t.Fatalf("POST /snippets: %d %s", a.status, a.body)
			}
			id, _ := a.json(t)["id"].(string)
			got := f.do(t, "GET", "/snippets/"+id, "")
			if got.status != http.StatusOK {
				t.Fatalf("GET /snippets/%s: %d %s", id, got.status, got.body)
			}
			sn := got.json(t)
			if sn["language"] != tc.language || sn["version"] != tc.wantVersion {
				t.Errorf("GET /snippets/%s: language %v, version %v; want %q, %q (%s)", id, sn["language"], sn["version"], tc.language, tc.wantVersion, got.body)
			}
		})
	}
	if calls := f.runner.Calls(); len(calls) != 0 {
		t.Errorf("saving snippets started %d runs", len(calls))
	}
}

func TestSnippetRefusesBadLanguageOrVersion(t *testing.T) {
	f := newFixture(t, nil)
	for _, tc := range []struct{ name, body, want string }{
		{"version not a range", `{"code": "x", "language": "go", "version": "newest please"}`, `field "version" "newest please" is not a semantic version range`},
		{"version not a string", `{"code": "x", "version": 3}`, `field "version" must be a string`},
		{"version too long", `{"code": "x", "version": "` + strings.Repeat("1", 65) + `"}`, `a version range has at most 64`},
		{"language with a space", `{"code": "x", "language": "go lang"}`, `unknown language "go lang"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := f.do(t, "POST", "/snippets", tc.body)
			if a.status != http.StatusBadRequest && a.status != http.StatusUnprocessableEntity {
				t.Fatalf("POST /snippets %s: %d %s, want 400 or 422", tc.body, a.status, a.body)
			}
			if msg, _ := a.json(t)["error"].(string); !strings.Contains(msg, tc.want) {
				t.Errorf("error %q, want it to say %q", msg, tc.want)
			}
		})
	}
}

// A snippet saved before versions were kept (or by an older replica) reads back with
// version "", which the page takes as the newest.
func TestSnippetWithoutVersion(t *testing.T) {
	f := newFixture(t, nil)
	sn := &store.Snippet{Code: "print(1)", Language: "python"}
	if err := f.store.SaveSnippet(context.Background(), sn); err != nil {
		t.Fatal(err)
	}
	got := f.do(t, "GET", "/snippets/"+sn.ID, "")
	if v, ok := got.json(t)["version"]; got.status != http.StatusOK || !ok || v != "" {
		t.Errorf("GET /snippets/%s: %d %s; want version \"\"", sn.ID, got.status, got.body)
	}
}
