package httpapi

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/coderun-dev/coderun/internal/runs"
	"github.com/coderun-dev/coderun/internal/store"
	"github.com/coderun-dev/coderun/internal/textcut"
)

const (
	defaultPerPage = 20
	maxPerPage     = 100
	maxPage        = 1_000_000
)

func (s *Server) listSubmissions(c *gin.Context) {
	page, err := queryInt(c, "page", 1, 1, maxPage)
	if err != nil {
		s.failWith(c, err)
		return
	}
	perPage, err := queryInt(c, "per_page", defaultPerPage, 1, maxPerPage)
	if err != nil {
		s.failWith(c, err)
		return
	}
	subs, total, dbErr := s.submissions(c).ListSubmissions(c.Request.Context(), page, perPage)
	if dbErr != nil {
		s.dbFailed(c, dbErr)
		return
	}
	out := make([]submissionJSON, 0, len(subs))
	for i := range subs {
		out = append(out, submissionFor(&subs[i]))
	}
	c.PureJSON(http.StatusOK, gin.H{"submissions": out, "page": page, "per_page": perPage, "total": total})
}

// queryInt reads an integer query parameter from lo to hi, or def when it is absent.
func queryInt(c *gin.Context, name string, def, lo, hi int) (int, *apiError) {
	raw, ok := c.GetQuery(name)
	if !ok || raw == "" {
		return def, nil
	}
	n, err := strconv.Atoi(raw)
	if err != nil || n < lo || n > hi {
		return 0, badRequest("query parameter %s must be a whole number from %d to %d, got %q", name, lo, hi, echo(raw, echoLimit))
	}
	return n, nil
}

func (s *Server) getSubmission(c *gin.Context) {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id < 1 {
		s.fail(c, http.StatusNotFound, "no submission has id "+strconv.Quote(echo(c.Param("id"), echoLimit))+"; ids are positive whole numbers")
		return
	}
	// Another key's submission is not found either: whether it exists is not told.
	sub, dbErr := s.submissions(c).Submission(c.Request.Context(), id)
	if errors.Is(dbErr, store.ErrNotFound) {
		s.fail(c, http.StatusNotFound, "no submission has id "+strconv.FormatInt(id, 10))
		return
	}
	if dbErr != nil {
		s.dbFailed(c, dbErr)
		return
	}
	c.PureJSON(http.StatusOK, submissionFor(sub))
}

// submissions is the store as the caller sees it: with API keys on, only its own
// submissions; with keys off (no key id in the context), all of them.
func (s *Server) submissions(c *gin.Context) *store.Store {
	return s.opts.Store.Owned(runs.KeyID(c.Request.Context()))
}

// snippetJSON is a shared snippet as GET /snippets/:id answers it. Version is the range it
// was shared with ("" for the newest), so the page opens it on the same runtime.
type snippetJSON struct {
	ID        string `json:"id"`
	Code      string `json:"code"`
	Stdin     string `json:"stdin"`
	Language  string `json:"language"`
	Version   string `json:"version"`
	CreatedAt string `json:"created_at"`
}

func (s *Server) createSnippet(c *gin.Context) {
	body, apiErr := s.readBody(c)
	if apiErr != nil {
		s.failWith(c, apiErr)
		return
	}
	var b runRequestBody
	if apiErr := decodeBody(body, &b); apiErr != nil {
		s.failWith(c, apiErr)
		return
	}
	// The language and version are checked as a run's are (a name a Runtime may have, a
	// semver range), not against the Runtimes there are now: a link outlives them, and the
	// page says so when the language it names is gone.
	spec, apiErr := parseSource(&b)
	if apiErr != nil {
		s.failWith(c, apiErr)
		return
	}
	sn := &store.Snippet{Code: spec.Source, Stdin: spec.Stdin, Language: string(spec.Language), Version: spec.Version}
	if err := s.opts.Store.SaveSnippet(c.Request.Context(), sn); err != nil {
		s.dbFailed(c, err)
		return
	}
	url := "/s/" + sn.ID
	c.Header("Location", "/snippets/"+sn.ID)
	c.JSON(http.StatusCreated, gin.H{"id": sn.ID, "url": url})
}

func (s *Server) getSnippet(c *gin.Context) {
	id := c.Param("id")
	// Not a UUID cannot be a snippet; no need to ask the database.
	if _, err := uuid.Parse(id); err != nil || len(id) != 36 {
		s.fail(c, http.StatusNotFound, "no snippet has id "+strconv.Quote(echo(id, echoLimit)))
		return
	}
	sn, err := s.opts.Store.Snippet(c.Request.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		s.fail(c, http.StatusNotFound, "no snippet has id "+strconv.Quote(id))
		return
	}
	if err != nil {
		s.dbFailed(c, err)
		return
	}
	c.PureJSON(http.StatusOK, snippetJSON{
		ID: sn.ID, Code: sn.Code, Stdin: sn.Stdin, Language: sn.Language, Version: sn.Version,
		CreatedAt: sn.CreatedAt.UTC().Format("2006-01-02T15:04:05.999999Z07:00"),
	})
}

func (s *Server) dbFailed(c *gin.Context, err error) {
	_ = c.Error(err)
	c.Header("Retry-After", retryAfterSeconds)
	s.fail(c, http.StatusServiceUnavailable, "the database is unavailable; try again shortly")
}

// echoLimit is how many bytes of a client's input an error message quotes back; more is
// cut and marked "...".
const echoLimit = 40

// echo returns what a client sent, for an error message that quotes it: s itself, or its
// first n bytes followed by "...". The cut never splits a UTF-8 character (textcut), which
// would make the JSON answer carry U+FFFD instead of what the client wrote.
func echo(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return textcut.Prefix(s, n) + "..."
}
