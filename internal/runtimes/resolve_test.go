package runtimes

import (
	"errors"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	execv1alpha1 "github.com/coderun-dev/coderun/api/v1alpha1"
)

// rt is a Runtime named name of language at version, with aliases.
func rt(name, language, version string, aliases ...string) execv1alpha1.Runtime {
	return execv1alpha1.Runtime{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       execv1alpha1.RuntimeSpec{Language: language, Version: version, Aliases: aliases},
	}
}

func ready(r execv1alpha1.Runtime) execv1alpha1.Runtime {
	meta.SetStatusCondition(&r.Status.Conditions, metav1.Condition{
		Type: execv1alpha1.RuntimeConditionReady, Status: metav1.ConditionTrue, Reason: execv1alpha1.RuntimeReasonSmokeTestPassed,
	})
	return r
}

func deleted(r execv1alpha1.Runtime) execv1alpha1.Runtime {
	r.DeletionTimestamp = &metav1.Time{}
	return r
}

// cluster is a set of Runtimes as a cluster might hold them.
var cluster = []execv1alpha1.Runtime{
	rt("python-3-11", "python", "3.11.9", "py", "python3"),
	rt("python-3-13", "python", "3.13.5", "py", "python3"),
	rt("python-3-10", "python", "3.10.14", "py"),
	rt("java-17", "java", "17.0.15"),
	rt("java-21", "java", "21.0.7"),
	rt("cpp", "cpp", "14.2.0", "c++", "g++"),
	rt("node-pre", "javascript", "24.0.0-rc.1", "node"),
	rt("node", "javascript", "22.14.0", "node", "js"),
	rt("zig-pre", "zig", "0.15.0-dev.1"),
}

func TestResolve(t *testing.T) {
	cases := []struct {
		name          string
		list          []execv1alpha1.Runtime
		language, rng string
		want          string // the Runtime's name; "" when an error is wanted
		wantErr       []string
		wantKnown     bool
	}{
		{"empty range: highest release", cluster, "python", "", "python-3-13", nil, false},
		{"star: highest release", cluster, "python", "*", "python-3-13", nil, false},
		{"empty language is python", cluster, "", "", "python-3-13", nil, false},
		{"major.x", cluster, "python", "3.x", "python-3-13", nil, false},
		{"major only", cluster, "python", "3", "python-3-13", nil, false},
		{"major.minor is that minor's patches", cluster, "python", "3.10", "python-3-10", nil, false},
		{"caret", cluster, "python", "^3.10", "python-3-13", nil, false},
		{"tilde stays in the minor", cluster, "python", "~3.11", "python-3-11", nil, false},
		{"at least", cluster, "java", ">=17", "java-21", nil, false},
		{"below", cluster, "java", "<21", "java-17", nil, false},
		{"exact", cluster, "java", "17.0.15", "java-17", nil, false},
		{"range with spaces", cluster, "python", " 3.11 ", "python-3-11", nil, false},
		{"alias", cluster, "c++", "", "cpp", nil, false},
		{"another alias", cluster, "py", "3.11", "python-3-11", nil, false},
		{"alias shared by versions", cluster, "python3", "", "python-3-13", nil, false},
		{"prerelease not taken without asking", cluster, "javascript", "", "node", nil, false},
		{"prerelease not taken by a range", cluster, "node", ">=22", "node", nil, false},
		{"prerelease named", cluster, "node", "24.0.0-rc.1", "node-pre", nil, false},
		{"prerelease range", cluster, "node", ">=24.0.0-0", "node-pre", nil, false},
		{"only a prerelease", cluster, "zig", "", "zig-pre", nil, false},
		{"only a prerelease, range of releases", cluster, "zig", "0.x", "", []string{`language "zig" has no version matching "0.x"; available: 0.15.0-dev.1`}, true},
		{"unknown language", cluster, "cobol", "", "",
			[]string{`no runtime for language "cobol"; available: cpp, java, javascript, python, zig`}, false},
		{"language is case-sensitive", cluster, "Python", "", "", []string{`no runtime for language "Python"`}, false},
		{"no version matches", cluster, "python", "2.x", "",
			[]string{`language "python" has no version matching "2.x"; available: 3.10.14, 3.11.9, 3.13.5`}, true},
		{"exact version missing", cluster, "java", "11.0.0", "", []string{`available: 17.0.15, 21.0.7`}, true},
		{"invalid range", cluster, "python", "three", "", []string{`version "three" is not a semantic version range (such as 3.x, >=17 or 14.2.0)`}, false},
		{"nothing installed", nil, "python", "", "", []string{`no runtime for language "python"; available: `}, false},
		{"deleted runtime is skipped", []execv1alpha1.Runtime{deleted(rt("python-3-13", "python", "3.13.5")), rt("python-3-11", "python", "3.11.9")},
			"python", "", "python-3-11", nil, false},
		{"only deleted runtimes", []execv1alpha1.Runtime{deleted(rt("python-3-13", "python", "3.13.5"))},
			"python", "", "", []string{`no runtime for language "python"; available: `}, false},
		{"deleted runtime's language is not listed", []execv1alpha1.Runtime{deleted(rt("go", "go", "1.24.4")), rt("c", "c", "14.2.0")},
			"go", "", "", []string{`available: c`}, false},
		{"tie: the Ready one", []execv1alpha1.Runtime{rt("a", "python", "3.13.5"), ready(rt("b", "python", "3.13.5"))},
			"python", "", "b", nil, false},
		{"tie: both Ready, the first name", []execv1alpha1.Runtime{ready(rt("b", "python", "3.13.5")), ready(rt("a", "python", "3.13.5"))},
			"python", "", "a", nil, false},
		{"a higher version that is not Ready still wins", []execv1alpha1.Runtime{ready(rt("a", "python", "3.11.9")), rt("b", "python", "3.13.5")},
			"python", "", "b", nil, false},
		{"build metadata", []execv1alpha1.Runtime{rt("a", "rust", "1.85.0+dfsg1"), rt("b", "rust", "1.84.0")},
			"rust", "1.85", "a", nil, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Resolve(tc.list, tc.language, tc.rng)
			if tc.want != "" {
				if err != nil {
					t.Fatalf("Resolve(%q, %q): %v, want %s", tc.language, tc.rng, err, tc.want)
				}
				if got.Name != tc.want {
					t.Errorf("Resolve(%q, %q) = %s, want %s", tc.language, tc.rng, got.Name, tc.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("Resolve(%q, %q) = %s, want an error", tc.language, tc.rng, got.Name)
			}
			var rerr *Error
			if !errors.As(err, &rerr) {
				t.Fatalf("error %T is not a *runtimes.Error", err)
			}
			if rerr.Known != tc.wantKnown {
				t.Errorf("Known = %v, want %v", rerr.Known, tc.wantKnown)
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestLanguagesAndMatches(t *testing.T) {
	if got := strings.Join(Languages(cluster), ","); got != "cpp,java,javascript,python,zig" {
		t.Errorf("Languages = %s", got)
	}
	cpp := rt("cpp", "cpp", "14.2.0", "c++")
	for lang, want := range map[string]bool{"cpp": true, "c++": true, "c": false, "": false} {
		if Matches(&cpp, lang) != want {
			t.Errorf("Matches(cpp, %q) = %v, want %v", lang, !want, want)
		}
	}
	if Ready(&cpp) || !Ready(ptr(ready(cpp))) {
		t.Error("Ready does not follow the Ready condition")
	}
}

func ptr[T any](v T) *T { return &v }
