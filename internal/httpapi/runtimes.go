package httpapi

import (
	"net/http"

	"github.com/gin-gonic/gin"

	execv1alpha1 "github.com/coderun-dev/coderun/api/v1alpha1"
	"github.com/coderun-dev/coderun/internal/runtimes"
)

// catalogSync is what internal/runtimes.Catalog tells beyond RuntimeLister: whether its
// informer has listed the Runtimes, and why not.
type catalogSync interface {
	Synced() bool
	NotSyncedReason() string
}

// runtimeList returns the cluster's Runtimes, sorted, or a 503 while the catalog has not
// synced (an empty list then would say that no language exists).
func (s *Server) runtimeList() ([]execv1alpha1.Runtime, *apiError) {
	if s.opts.Runtimes == nil {
		return nil, nil
	}
	if cs, ok := s.opts.Runtimes.(catalogSync); ok && !cs.Synced() {
		return nil, &apiError{Status: http.StatusServiceUnavailable,
			Message: "the list of runtimes is not loaded yet (" + cs.NotSyncedReason() + "); try again shortly"}
	}
	list := s.opts.Runtimes.Runtimes()
	runtimes.Sort(list)
	return list, nil
}

// runtimeJSON is one language of GET /runtimes.
type runtimeJSON struct {
	Language    string   `json:"language"`
	Version     string   `json:"version"`
	Aliases     []string `json:"aliases"`
	DisplayName string   `json:"display_name"`
	Compiled    bool     `json:"compiled"`
	Ready       bool     `json:"ready"`
}

// listRuntimes answers GET /runtimes: every Runtime, Ready or not (a run of one that is
// not Ready is Rejected, saying why), sorted by language and highest version first. Where
// no Runtime offers python, the operator's built-in Python is listed, without a version.
func (s *Server) listRuntimes(c *gin.Context) {
	list, apiErr := s.runtimeList()
	if apiErr != nil {
		c.Header("Retry-After", retryAfterSeconds)
		s.failWith(c, apiErr)
		return
	}
	out := make([]runtimeJSON, 0, len(list)+1)
	python := false
	for i := range list {
		rt := &list[i]
		python = python || rt.Spec.Language == string(execv1alpha1.LanguagePython)
		name := rt.Spec.DisplayName
		if name == "" {
			name = rt.Spec.Language + " " + rt.Spec.Version
		}
		out = append(out, runtimeJSON{
			Language: rt.Spec.Language, Version: rt.Spec.Version, Aliases: nonNil(rt.Spec.Aliases),
			DisplayName: name, Compiled: runtimes.Compiled(rt), Ready: runtimes.Ready(rt),
		})
	}
	if !python {
		out = append(out, runtimeJSON{Language: string(execv1alpha1.LanguagePython), Aliases: []string{"python3"},
			DisplayName: "Python 3 (built-in)", Ready: true})
	}
	c.PureJSON(http.StatusOK, out)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
