// Package runtimes picks the Runtime that runs a program: by language name or alias, and by
// a semantic version range, highest match first. The operator (to build a run's pod) and the
// front service (for the Piston and Judge0 APIs) resolve the same way through it.
package runtimes

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/Masterminds/semver/v3"
	"k8s.io/apimachinery/pkg/api/meta"

	execv1alpha1 "github.com/coderun-dev/coderun/api/v1alpha1"
)

// Error says why no Runtime matched, naming what is available; it is written for the
// person who asked (it ends up in a Rejected run's message and in API errors).
type Error struct {
	// Language and Version are what was asked for.
	Language, Version string
	// Known is true when the language exists and only the version matched nothing.
	Known   bool
	message string
}

func (e *Error) Error() string { return e.message }

// Matches reports whether rt's language or one of its aliases is language.
func Matches(rt *execv1alpha1.Runtime, language string) bool {
	return rt.Spec.Language == language || slices.Contains(rt.Spec.Aliases, language)
}

// Offers reports whether a Runtime of list (not being deleted) has language as its
// language or an alias: where none offers python, the operator's built-in python runs it.
func Offers(list []execv1alpha1.Runtime, language string) bool {
	for i := range list {
		if list[i].DeletionTimestamp == nil && Matches(&list[i], language) {
			return true
		}
	}
	return false
}

// Ready reports whether rt's smoke test passed on its current spec.
func Ready(rt *execv1alpha1.Runtime) bool {
	return meta.IsStatusConditionTrue(rt.Status.Conditions, execv1alpha1.RuntimeConditionReady)
}

// Resolve returns the Runtime of list whose language or alias is language and whose
// version is the highest that versionRange (a semver constraint such as 3.x, >=17 or
// 14.2.0; empty or * for any release, or a prerelease when there is nothing else) matches.
// Runtimes being deleted are skipped. A Runtime that is not Ready is still returned: the
// caller says so with its own message.
func Resolve(list []execv1alpha1.Runtime, language, versionRange string) (*execv1alpha1.Runtime, error) {
	if language == "" {
		language = string(execv1alpha1.LanguagePython)
	}
	constraint, err := parseRange(versionRange)
	if err != nil {
		return nil, &Error{Language: language, Version: versionRange,
			message: fmt.Sprintf("version %q is not a semantic version range (such as 3.x, >=17 or 14.2.0): %v", versionRange, err)}
	}
	best, versions := highest(list, language, constraint, false)
	if best == nil && constraint == nil {
		// No range and no release: a language offered only as a prerelease still runs.
		best, _ = highest(list, language, nil, true)
	}
	if best != nil {
		return best, nil
	}
	if len(versions) == 0 {
		return nil, &Error{Language: language, Version: versionRange,
			message: fmt.Sprintf("no runtime for language %q; available: %s", language, strings.Join(Languages(list), ", "))}
	}
	slices.SortFunc(versions, compareVersions)
	return nil, &Error{Language: language, Version: versionRange, Known: true,
		message: fmt.Sprintf("language %q has no version matching %q; available: %s", language, versionRange, strings.Join(versions, ", "))}
}

// highest returns the Runtime of language with the highest version that constraint (nil:
// any) matches, and every version of language there is. Without a constraint, prereleases
// count only when withPrereleases is set (a constraint matches them only when it names one,
// as semver ranges do).
func highest(list []execv1alpha1.Runtime, language string, constraint *semver.Constraints, withPrereleases bool) (*execv1alpha1.Runtime, []string) {
	var best *execv1alpha1.Runtime
	var bestVersion *semver.Version
	var versions []string
	for i := range list {
		rt := &list[i]
		if rt.DeletionTimestamp != nil || !Matches(rt, language) {
			continue
		}
		v, err := semver.StrictNewVersion(rt.Spec.Version)
		if err != nil {
			continue // the schema refuses such versions; nothing to match against
		}
		versions = append(versions, rt.Spec.Version)
		if constraint != nil && !constraint.Check(v) || constraint == nil && !withPrereleases && v.Prerelease() != "" {
			continue
		}
		// Highest version first; between equal versions, the Ready one, then the name.
		if best == nil || v.GreaterThan(bestVersion) ||
			(v.Equal(bestVersion) && better(rt, best)) {
			best, bestVersion = rt, v
		}
	}
	return best, versions
}

// better breaks a tie between two Runtimes of the same version: Ready first, then by name.
func better(a, b *execv1alpha1.Runtime) bool {
	if Ready(a) != Ready(b) {
		return Ready(a)
	}
	return a.Name < b.Name
}

func parseRange(r string) (*semver.Constraints, error) {
	r = strings.TrimSpace(r)
	if r == "" || r == "*" {
		return nil, nil
	}
	return semver.NewConstraint(r)
}

func compareVersions(a, b string) int {
	va, erra := semver.NewVersion(a)
	vb, errb := semver.NewVersion(b)
	if erra != nil || errb != nil {
		return cmp.Compare(a, b)
	}
	return va.Compare(vb)
}

// Languages returns the sorted, distinct language names of list (not aliases).
func Languages(list []execv1alpha1.Runtime) []string {
	var names []string
	for i := range list {
		if list[i].DeletionTimestamp == nil {
			names = append(names, list[i].Spec.Language)
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}
