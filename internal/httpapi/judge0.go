package httpapi

// The Judge0 CE API (version 1.13) under /judge0: clients set their base URL to
// http://host/judge0 and keep their code. Submissions are rows of the database
// (store.Judge0Submission) under a random UUID token, run as CodeRuns whose Idempotency-Key
// is the token; the README lists where this API differs from Judge0's.

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/Masterminds/semver/v3"
	"github.com/gin-gonic/gin"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/utils/ptr"

	execv1alpha1 "github.com/coderun-dev/coderun/api/v1alpha1"
	"github.com/coderun-dev/coderun/internal/runs"
	"github.com/coderun-dev/coderun/internal/runtimes"
	"github.com/coderun-dev/coderun/internal/store"
)

// Judge0Version is the Judge0 CE release whose API this one follows (GET /about).
const Judge0Version = "1.13.1"

// builtinPythonJudge0ID is Judge0's "Python (3.8.1)", the id clients use most, offered for
// the operator's built-in python when no Runtime offers python (so that the API works on a
// cluster without Runtimes, as /execute does).
const builtinPythonJudge0ID = 71

// judge0Worker keeps track of the submissions this replica is running, so that reading one
// does not start a second collector for it, and lets Close stop them.
type judge0Worker struct {
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	running map[string]chan struct{} // closed when the submission's run is collected
}

// judge0Routes serves Judge0 CE's API under /judge0.
func (s *Server) judge0Routes(r *gin.Engine) {
	ctx, cancel := context.WithCancel(context.Background())
	s.judge0 = &judge0Worker{ctx: ctx, cancel: cancel, running: map[string]chan struct{}{}}
	g := r.Group("/judge0")
	g.POST("/submissions", s.gate(true, s.judge0Create)...)
	g.POST("/submissions/batch", s.gate(true, s.judge0BatchCreate)...)
	g.GET("/submissions/batch", s.gate(false, s.judge0BatchShow)...)
	g.GET("/submissions/:token", s.gate(false, s.judge0Show)...)
	g.GET("/languages", s.gate(false, s.judge0ListLanguages)...)
	g.GET("/languages/all", s.gate(false, s.judge0ListLanguages)...)
	g.GET("/languages/:id", s.gate(false, s.judge0ShowLanguage)...)
	g.GET("/statuses", s.gate(false, func(c *gin.Context) { c.PureJSON(http.StatusOK, judge0Statuses) })...)
	g.GET("/about", s.gate(false, s.judge0About)...)
	g.GET("/config_info", s.gate(false, s.judge0ConfigInfo)...)
}

// Close stops the Judge0 submissions this replica is collecting in the background and
// waits for them. Their CodeRuns run on (they are keyed by the token): reading such a
// submission later, from any replica, collects its result.
func (s *Server) Close() {
	if s.judge0 == nil {
		return
	}
	s.judge0.cancel()
	s.judge0.wg.Wait()
}

// judge0Error answers Judge0's error shape, {"error": message}, which is ours too.
func (s *Server) judge0Error(c *gin.Context, status int, format string, args ...any) {
	s.fail(c, status, fmt.Sprintf(format, args...))
}

// judge0Query reads the query parameters every submission route takes.
func judge0Query(c *gin.Context) (b64 bool, fields []string, err *apiError) {
	fields, err = parseJudge0Fields(c.Query("fields"))
	return c.Query("base64_encoded") == "true", fields, err
}

func (s *Server) judge0Limits() judge0Limits { return judge0LimitsOf(s.opts.Config) }

func (s *Server) judge0Create(c *gin.Context) {
	b64, fields, apiErr := judge0Query(c)
	if apiErr != nil {
		s.failWith(c, apiErr)
		return
	}
	body, apiErr := s.readBody(c)
	if apiErr != nil {
		s.failWith(c, apiErr)
		return
	}
	p, apiErr := judge0ParamsFromBody(body, c.ContentType(), c.Request.URL.Query())
	if apiErr != nil {
		s.failWith(c, apiErr)
		return
	}
	sub, errs := parseJudge0Submission(p, b64, s.judge0Languages(), s.judge0Limits())
	if errs != nil {
		c.AbortWithStatusJSON(http.StatusUnprocessableEntity, errs)
		return
	}
	if !s.judge0Start(c, sub) {
		return
	}
	if c.Query("wait") != "true" {
		c.PureJSON(http.StatusCreated, judge0Token{sub.row.Token})
		return
	}
	// wait=true: answer the finished submission. A client that goes away leaves the run
	// to the background collector, which saves its result for a GET.
	select {
	case <-s.judge0Done(sub.row.Token):
	case <-c.Request.Context().Done():
		return
	}
	row, err := s.opts.Store.Judge0(context.WithoutCancel(c.Request.Context()), sub.row.Token)
	if err != nil {
		_ = c.Error(err)
		s.judge0Error(c, http.StatusInternalServerError, "the submission %s ran, but reading it back failed; GET it by its token", sub.row.Token)
		return
	}
	c.PureJSON(http.StatusCreated, judge0View(row, fields, b64, s.judge0Languages()))
}

// judge0Start saves a validated submission In Queue and starts its run in the background.
// When it returns false it has answered the error (503 when this replica is full, as
// Judge0's "queue is full", or 500 when the database failed).
func (s *Server) judge0Start(c *gin.Context, sub *judge0Submission) bool {
	if s.judge0.ctx.Err() != nil {
		// Closed: a submission saved now would wait for a read on another replica.
		c.Header("Retry-After", "1")
		s.judge0Error(c, http.StatusServiceUnavailable, "the service is stopping; try again")
		return false
	}
	select {
	case s.pending <- struct{}{}:
	default:
		s.metrics.runsRefused.Inc()
		c.Header("Retry-After", retryAfterSeconds)
		s.judge0Error(c, http.StatusServiceUnavailable, "queue is full")
		return false
	}
	specJSON, err := json.Marshal(sub.spec)
	if err != nil {
		<-s.pending
		_ = c.Error(err)
		s.judge0Error(c, http.StatusInternalServerError, "encoding the run failed")
		return false
	}
	sub.row.Spec = string(specJSON)
	sub.row.KeyID = runs.KeyID(c.Request.Context())
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.Request.Context()), 10*time.Second)
	defer cancel()
	if err := s.opts.Store.CreateJudge0(ctx, sub.row); err != nil {
		<-s.pending
		_ = c.Error(err)
		c.Header("Retry-After", retryAfterSeconds)
		s.judge0Error(c, http.StatusServiceUnavailable, "the submission could not be saved: the database is unavailable; try again shortly")
		return false
	}
	s.judge0Collect(sub.row, true, c.GetString(requestIDKey))
	return true
}

// judge0Done returns a channel closed when this replica has collected token's run (closed
// at once when it is not running it).
func (s *Server) judge0Done(token string) <-chan struct{} {
	w := s.judge0
	w.mu.Lock()
	defer w.mu.Unlock()
	if done, ok := w.running[token]; ok {
		return done
	}
	done := make(chan struct{})
	close(done)
	return done
}

// judge0Collect runs row's CodeRun in the background, with the token as its Idempotency-
// Key, and saves the result. Started again for a submission that is still unfinished
// (after a restart of the front, on any replica), it joins the same CodeRun, or collects
// its result, rather than running the program twice. holdsSlot says the caller took a
// slot of s.pending for it; otherwise one is taken here, and without a free one nothing
// starts (a later read tries again).
func (s *Server) judge0Collect(row *store.Judge0Submission, holdsSlot bool, requestID string) {
	w := s.judge0
	w.mu.Lock()
	if _, ok := w.running[row.Token]; ok || w.ctx.Err() != nil {
		w.mu.Unlock()
		if holdsSlot {
			<-s.pending
		}
		return
	}
	if !holdsSlot {
		select {
		case s.pending <- struct{}{}:
		default:
			w.mu.Unlock()
			return
		}
	}
	done := make(chan struct{})
	w.running[row.Token] = done
	w.wg.Add(1)
	w.mu.Unlock()

	go func() {
		defer w.wg.Done()
		defer func() {
			w.mu.Lock()
			delete(w.running, row.Token)
			w.mu.Unlock()
			close(done)
		}()
		defer func() { <-s.pending }()
		s.metrics.runsInFlight.Inc()
		defer s.metrics.runsInFlight.Dec()
		s.judge0Run(w.ctx, row, requestID)
	}()
}

// judge0Run runs the submission's CodeRun and saves its result in Judge0's terms.
func (s *Server) judge0Run(ctx context.Context, row *store.Judge0Submission, requestID string) {
	log := s.opts.Logger.With("token", row.Token, "keyID", row.KeyID)
	var spec execv1alpha1.CodeRunSpec
	if err := json.Unmarshal([]byte(row.Spec), &spec); err != nil {
		s.judge0Finish(row, judge0Verdict{StatusID: j0InternalError, Message: nonEmpty("the saved run of this submission does not decode: " + err.Error())}, "")
		return
	}
	ctx = runs.WithIdempotencyKey(runs.WithKeyID(ctx, row.KeyID), row.Token)
	if requestID != "" {
		ctx = runs.WithRequestID(ctx, requestID)
	}
	name := runs.NameFor(row.KeyID, row.Token)
	saveCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	if err := s.opts.Store.MarkJudge0Processing(saveCtx, row.Token, name); err != nil {
		log.Error("marking a Judge0 submission Processing", "error", err)
	}
	cancel()

	bound := s.bound(spec.Limits)
	run, err := s.opts.Runs.Run(ctx, spec, bound)
	if run != nil {
		name = run.Name
	}
	var v judge0Verdict
	switch {
	case err == nil:
		v = judge0VerdictOf(run.Status.Result, row.ExpectedOutput, row.RedirectStderrToStdout)
		s.metrics.runs.WithLabelValues(string(run.Status.Result.Reason)).Inc()
	case ctx.Err() != nil:
		// The service is stopping: the CodeRun runs on, and a later read collects it.
		log.Info("stopping; the Judge0 submission's CodeRun runs on for a later read to collect", "name", name)
		return
	case errors.Is(err, runs.ErrBoundExceeded):
		v = judge0Verdict{StatusID: j0InternalError, Message: nonEmpty(fmt.Sprintf(
			"the run had no result after %s (queue wait, start timeout, run timeout and slack); it was cancelled", bound))}
	case errors.Is(err, runs.ErrDeleted):
		v = judge0Verdict{StatusID: j0InternalError, Message: nonEmpty("the CodeRun " + name + " was deleted before it finished")}
	default:
		log.Error("running a Judge0 submission", "error", err)
		v = judge0Verdict{StatusID: j0InternalError, Message: nonEmpty("could not run the submission: " + apiStatusMessage(err))}
	}
	s.judge0Finish(row, v, name)
}

func (s *Server) judge0Finish(row *store.Judge0Submission, v judge0Verdict, runName string) {
	now := time.Now().UTC()
	res := &store.Judge0Submission{
		Token: row.Token, Judge0Result: v, RunName: runName, FinishedAt: &now,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := s.opts.Store.FinishJudge0(ctx, res); err != nil {
		// The row stays unfinished: a read of it runs the collector again, which finds
		// the CodeRun's result (kept for the run retention).
		s.opts.Logger.Error("saving the result of a Judge0 submission", "token", row.Token, "error", err)
	}
}

func (s *Server) judge0Show(c *gin.Context) {
	b64, fields, apiErr := judge0Query(c)
	if apiErr != nil {
		s.failWith(c, apiErr)
		return
	}
	token := c.Param("token")
	row, err := s.submissions(c).Judge0(c.Request.Context(), token)
	switch {
	case errors.Is(err, store.ErrNotFound):
		s.judge0Error(c, http.StatusNotFound, "submission %s not found", echo(token, echoLimit))
		return
	case err != nil:
		_ = c.Error(err)
		c.Header("Retry-After", retryAfterSeconds)
		s.judge0Error(c, http.StatusServiceUnavailable, "the database is unavailable; try again shortly")
		return
	}
	if !row.Finished() {
		s.judge0Collect(row, false, c.GetString(requestIDKey))
	}
	c.PureJSON(http.StatusOK, judge0View(row, fields, b64, s.judge0Languages()))
}

// judge0Tokens reads the batch's tokens (?tokens=a,b,c, or a tokens header, as Judge0).
func judge0Tokens(c *gin.Context) ([]string, *apiError) {
	raw := c.GetHeader("tokens")
	if raw == "" {
		raw = c.Query("tokens")
	}
	var tokens []string
	for t := range strings.SplitSeq(strings.TrimSpace(raw), ",") {
		if t = strings.TrimSpace(t); t != "" {
			tokens = append(tokens, t)
		}
	}
	switch {
	case len(tokens) > j0MaxBatchSize:
		return nil, badRequest("number of submissions in a batch should be less than or equal to %d", j0MaxBatchSize)
	case len(tokens) == 0:
		return nil, badRequest("there should be at least one submission in a batch")
	}
	return tokens, nil
}

func (s *Server) judge0BatchShow(c *gin.Context) {
	b64, fields, apiErr := judge0Query(c)
	if apiErr != nil {
		s.failWith(c, apiErr)
		return
	}
	tokens, apiErr := judge0Tokens(c)
	if apiErr != nil {
		s.failWith(c, apiErr)
		return
	}
	rows, err := s.submissions(c).Judge0Batch(c.Request.Context(), tokens)
	if err != nil {
		_ = c.Error(err)
		c.Header("Retry-After", retryAfterSeconds)
		s.judge0Error(c, http.StatusServiceUnavailable, "the database is unavailable; try again shortly")
		return
	}
	langs := s.judge0Languages()
	out := make([]any, len(tokens))
	for i, t := range tokens {
		row, ok := rows[t]
		if !ok {
			continue // null, as Judge0 answers for a token it does not have
		}
		if !row.Finished() {
			s.judge0Collect(row, false, c.GetString(requestIDKey))
		}
		out[i] = judge0View(row, fields, b64, langs)
	}
	c.PureJSON(http.StatusOK, gin.H{"submissions": out})
}

func (s *Server) judge0BatchCreate(c *gin.Context) {
	b64, _, apiErr := judge0Query(c) // fields are ignored here, as in Judge0
	if apiErr != nil {
		s.failWith(c, apiErr)
		return
	}
	body, apiErr := s.readBody(c)
	if apiErr != nil {
		s.failWith(c, apiErr)
		return
	}
	var batch struct {
		Submissions []map[string]json.RawMessage `json:"submissions"`
	}
	if apiErr := decodeBody(body, &batch); apiErr != nil {
		s.failWith(c, apiErr)
		return
	}
	switch n := len(batch.Submissions); {
	case n > j0MaxBatchSize:
		s.judge0Error(c, http.StatusBadRequest, "number of submissions in a batch should be less than or equal to %d", j0MaxBatchSize)
		return
	case n == 0:
		s.judge0Error(c, http.StatusBadRequest, "there should be at least one submission in a batch")
		return
	}
	langs, lim := s.judge0Languages(), s.judge0Limits()
	out := make([]any, 0, len(batch.Submissions))
	valid := false
	for _, p := range batch.Submissions {
		sub, errs := parseJudge0Submission(p, b64, langs, lim)
		if errs != nil {
			out = append(out, errs)
			continue
		}
		if !s.judge0Start(c, sub) {
			// Answered (503 queue is full, or the database): the submissions saved before
			// this one run on, and their tokens are lost to the client, as when Judge0's
			// queue fills.
			return
		}
		out = append(out, judge0Token{sub.row.Token})
		valid = true
	}
	status := http.StatusCreated
	if !valid {
		status = http.StatusUnprocessableEntity
	}
	c.PureJSON(status, out)
}

// judge0Token is the answer to a submission created without waiting.
type judge0Token struct {
	Token string `json:"token"`
}

// judge0Language is a language of the Judge0 API: a Runtime with a judge0LanguageID.
type judge0Language struct {
	ID         int32   `json:"id"`
	Name       string  `json:"name"`
	IsArchived bool    `json:"is_archived"`
	SourceFile string  `json:"source_file"`
	CompileCmd *string `json:"compile_cmd"`
	RunCmd     string  `json:"run_cmd"`

	language, version string
	// unavailable says why submissions are refused: the Runtime is not Ready.
	unavailable string
	// alias: another Judge0 id of the language (judge0IDAliases), not listed.
	alias bool
}

// judge0Languages lists the Runtimes that have a Judge0 id, by name as Judge0 sorts them;
// of two with one id, the Ready one, then the higher version. Without any Runtime offering
// python, the operator's built-in python is id 71.
func (s *Server) judge0Languages() []judge0Language {
	if s.opts.Runtimes == nil {
		return judge0LanguagesOf(nil)
	}
	return judge0LanguagesOf(s.opts.Runtimes.Runtimes())
}

// judge0LanguagesOf is judge0Languages of a list of Runtimes. Besides the ids the
// Runtimes claim, Judge0's other ids of the same languages (judge0IDAliases: the older and
// newer versions that clients hard-code, such as 71 and 54) run the highest version of
// that language; they are not listed, as Judge0 does not list its archived ids either.
func judge0LanguagesOf(list []execv1alpha1.Runtime) []judge0Language {
	byID := map[int32]*execv1alpha1.Runtime{}
	python := runtimes.Offers(list, string(execv1alpha1.LanguagePython))
	for i := range list {
		rt := &list[i]
		if rt.DeletionTimestamp != nil {
			continue
		}
		if rt.Spec.Judge0LanguageID == nil {
			continue
		}
		id := *rt.Spec.Judge0LanguageID
		if prev, ok := byID[id]; !ok || preferRuntime(rt, prev) {
			byID[id] = rt
		}
	}
	var langs []judge0Language
	for id, rt := range byID {
		langs = append(langs, judge0LanguageOf(id, rt))
	}
	builtin := func(id int32) judge0Language {
		return judge0Language{
			ID: id, Name: "Python (3.13)", SourceFile: "main.py",
			RunCmd: "python3 main.py", language: string(execv1alpha1.LanguagePython),
		}
	}
	if _, taken := byID[builtinPythonJudge0ID]; !python && !taken {
		langs = append(langs, builtin(builtinPythonJudge0ID))
	}
	for id, language := range judge0IDAliases {
		if _, taken := byID[id]; taken || (!python && id == builtinPythonJudge0ID) {
			continue
		}
		switch rt, err := runtimes.Resolve(list, language, ""); {
		case err == nil:
			l := judge0LanguageOf(id, rt)
			l.alias = true
			langs = append(langs, l)
		case language == string(execv1alpha1.LanguagePython) && !python:
			l := builtin(id)
			l.alias = true
			langs = append(langs, l)
		}
	}
	slices.SortFunc(langs, func(a, b judge0Language) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.ID, b.ID))
	})
	return langs
}

// judge0LanguageOf is the Judge0 language of a Runtime under id.
func judge0LanguageOf(id int32, rt *execv1alpha1.Runtime) judge0Language {
	l := judge0Language{
		ID: id, Name: rt.Spec.DisplayName, SourceFile: rt.Spec.SourceFile,
		RunCmd: strings.Join(rt.Spec.Run.Command, " "), language: rt.Spec.Language, version: rt.Spec.Version,
	}
	if l.Name == "" {
		l.Name = rt.Spec.Language + " (" + rt.Spec.Version + ")"
	}
	if rt.Spec.Compile != nil {
		l.CompileCmd = ptr.To(strings.Join(rt.Spec.Compile.Command, " "))
	}
	if !runtimes.Ready(rt) {
		l.unavailable = "its Runtime " + rt.Name + " is not Ready"
		if cond := meta.FindStatusCondition(rt.Status.Conditions, execv1alpha1.RuntimeConditionReady); cond != nil && cond.Message != "" {
			l.unavailable += " (" + cond.Reason + ": " + cond.Message + ")"
		}
	}
	return l
}

// judge0IDAliases are Judge0 CE's language ids (1.13's active ones and hosted 1.14's) by
// the language they run, for the versions no Runtime claims: a client that hard-codes
// Python's 71 runs on a cluster whose python Runtime is 109. The names are coderun's
// language names (or aliases) of the shipped Runtimes, and likely ones for the rest.
var judge0IDAliases = func() map[int32]string {
	byLanguage := map[string][]int32{
		"python":     {71, 92, 100, 109, 113},
		"c":          {48, 49, 50, 75, 103, 104, 110},
		"cpp":        {52, 53, 54, 76, 105},
		"java":       {62, 91},
		"javascript": {63, 93, 97, 102},
		"typescript": {74, 94, 101},
		"go":         {60, 95, 106, 107},
		"rust":       {73, 108},
		"kotlin":     {78, 111},
		"php":        {68, 98},
		"r":          {80, 99},
		"scala":      {81, 112},
		"ruby":       {72}, "bash": {46}, "sqlite": {82}, "perl": {85}, "lua": {64}, "lisp": {55},
		"d": {56}, "elixir": {57}, "erlang": {58}, "fortran": {59}, "haskell": {61}, "ocaml": {65},
		"octave": {66}, "pascal": {67}, "prolog": {69}, "csharp": {51}, "swift": {83}, "cobol": {77},
		"clojure": {86}, "groovy": {88}, "dart": {90},
	}
	aliases := map[int32]string{}
	for language, ids := range byLanguage {
		for _, id := range ids {
			aliases[id] = language
		}
	}
	return aliases
}()

// preferRuntime breaks a tie between two Runtimes of one Judge0 id: Ready first, then
// the higher version, then the name.
func preferRuntime(a, b *execv1alpha1.Runtime) bool {
	if runtimes.Ready(a) != runtimes.Ready(b) {
		return runtimes.Ready(a)
	}
	va, erra := semver.NewVersion(a.Spec.Version)
	vb, errb := semver.NewVersion(b.Spec.Version)
	if erra == nil && errb == nil && !va.Equal(vb) {
		return va.GreaterThan(vb)
	}
	return a.Name < b.Name
}

func findJudge0Language(langs []judge0Language, id int32) *judge0Language {
	for i := range langs {
		if langs[i].ID == id {
			return &langs[i]
		}
	}
	return nil
}

func (s *Server) judge0ListLanguages(c *gin.Context) {
	langs := s.judge0Languages()
	all := strings.HasSuffix(c.FullPath(), "/all")
	out := make([]gin.H, 0, len(langs))
	for _, l := range langs {
		if l.alias {
			continue
		}
		h := gin.H{"id": l.ID, "name": l.Name}
		if all {
			h["is_archived"] = false
		}
		out = append(out, h)
	}
	c.PureJSON(http.StatusOK, out)
}

func (s *Server) judge0ShowLanguage(c *gin.Context) {
	id, err := strconv.ParseInt(c.Param("id"), 10, 32)
	var lang *judge0Language
	if err == nil {
		lang = findJudge0Language(s.judge0Languages(), int32(id))
	}
	if lang == nil {
		s.judge0Error(c, http.StatusNotFound, "language with id %s doesn't exist", echo(c.Param("id"), echoLimit))
		return
	}
	c.PureJSON(http.StatusOK, lang)
}

func (s *Server) judge0About(c *gin.Context) {
	c.PureJSON(http.StatusOK, gin.H{
		"version":     Judge0Version,
		"homepage":    "https://github.com/coderun-dev/coderun",
		"source_code": "https://github.com/coderun-dev/coderun",
		"maintainer":  "coderun: the Judge0 CE " + Judge0Version + " API on Kubernetes",
	})
}

// judge0ConfigInfo is Judge0's configuration in its names, with coderun's values: the
// defaults and maxima of the operator's configuration, and what this API allows.
func (s *Server) judge0ConfigInfo(c *gin.Context) {
	lim := s.judge0Limits()
	c.PureJSON(http.StatusOK, gin.H{
		"maintenance_mode":                                 false,
		"enable_wait_result":                               true,
		"enable_compiler_options":                          false,
		"allowed_languages_for_compile_options":            []string{},
		"enable_command_line_arguments":                    true,
		"enable_submission_delete":                         false,
		"enable_callbacks":                                 false,
		"callbacks_max_tries":                              0,
		"callbacks_timeout":                                0.0,
		"enable_additional_files":                          true,
		"max_queue_size":                                   cap(s.pending),
		"cpu_time_limit":                                   lim.cpuTime,
		"max_cpu_time_limit":                               lim.maxCPUTime,
		"cpu_extra_time":                                   0.0,
		"max_cpu_extra_time":                               j0MaxCPUExtraTime,
		"wall_time_limit":                                  lim.wallTime,
		"max_wall_time_limit":                              lim.maxWallTime,
		j0FieldMemoryLimit:                                 lim.memoryKB,
		"max_memory_limit":                                 lim.maxMemoryKB,
		"stack_limit":                                      j0DefaultStackLimit,
		"max_stack_limit":                                  j0MaxStackLimit,
		"max_processes_and_or_threads":                     lim.maxProcesses,
		"max_max_processes_and_or_threads":                 lim.maxProcesses,
		"enable_per_process_and_thread_time_limit":         false,
		"allow_enable_per_process_and_thread_time_limit":   true,
		"enable_per_process_and_thread_memory_limit":       false,
		"allow_enable_per_process_and_thread_memory_limit": true,
		"max_file_size":                                    lim.maxFileSizeKB,
		"max_max_file_size":                                lim.maxFileSizeKB,
		"number_of_runs":                                   1,
		"max_number_of_runs":                               j0MaxNumberOfRuns,
		"redirect_stderr_to_stdout":                        false,
		"max_extract_size":                                 0,
		"enable_batched_submissions":                       true,
		"max_submission_batch_size":                        j0MaxBatchSize,
		"submission_cache_duration":                        0.0,
		"use_docs_as_homepage":                             false,
		"allow_enable_network":                             false,
		"enable_network":                                   false,
		"disable_implicit_base64_encoding":                 true,
	})
}

// judge0Column is a field of a submission as Judge0 shows it (SubmissionSerializer), with
// Judge0's types: times and limits in seconds as strings, memory in KB, nulls for what is
// not set. input says a client may send it (submission_params).
type judge0Column struct {
	name  string
	input bool
	get   func(v *judge0Viewer) any
}

// judge0Viewer renders one submission's columns.
type judge0Viewer struct {
	row   *store.Judge0Submission
	b64   bool
	langs []judge0Language
}

// text is a text column: null, the text, or its base64 (Ruby's encode64) when asked.
func (v *judge0Viewer) text(s *string) any {
	switch {
	case s == nil:
		return nil
	case v.b64:
		return encodeJudge0Base64(*s)
	default:
		return *s
	}
}

func orNull[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}

func timestamp(t *time.Time) any {
	if t == nil {
		return nil
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// judge0Columns are every field, in Judge0's column order: the columns but the ids, then
// status and language as objects. "*" shows them all.
var judge0Columns = []judge0Column{
	{"source_code", true, func(v *judge0Viewer) any { return v.text(&v.row.SourceCode) }},
	{"language_id", true, func(v *judge0Viewer) any { return v.row.LanguageID }},
	{"stdin", true, func(v *judge0Viewer) any { return v.text(v.row.Stdin) }},
	{"expected_output", true, func(v *judge0Viewer) any { return v.text(v.row.ExpectedOutput) }},
	{"stdout", false, func(v *judge0Viewer) any { return v.text(v.row.Stdout) }},
	{"status_id", false, func(v *judge0Viewer) any { return v.row.StatusID }},
	{"created_at", false, func(v *judge0Viewer) any { return timestamp(&v.row.CreatedAt) }},
	{"finished_at", false, func(v *judge0Viewer) any { return timestamp(v.row.FinishedAt) }},
	{"time", false, func(v *judge0Viewer) any { return decimalString(v.row.Time) }},
	{"memory", false, func(v *judge0Viewer) any { return orNull(v.row.Memory) }},
	{"stderr", false, func(v *judge0Viewer) any { return v.text(v.row.Stderr) }},
	{"token", false, func(v *judge0Viewer) any { return v.row.Token }},
	{"number_of_runs", true, func(v *judge0Viewer) any { return v.row.NumberOfRuns }},
	{"cpu_time_limit", true, func(v *judge0Viewer) any { return decimalString(&v.row.CPUTimeLimit) }},
	{"cpu_extra_time", true, func(v *judge0Viewer) any { return decimalString(&v.row.CPUExtraTime) }},
	{"wall_time_limit", true, func(v *judge0Viewer) any { return decimalString(&v.row.WallTimeLimit) }},
	{j0FieldMemoryLimit, true, func(v *judge0Viewer) any { return v.row.MemoryLimit }},
	{"stack_limit", true, func(v *judge0Viewer) any { return v.row.StackLimit }},
	{"max_processes_and_or_threads", true, func(v *judge0Viewer) any { return v.row.MaxProcessesAndOrThreads }},
	{"enable_per_process_and_thread_time_limit", true, func(v *judge0Viewer) any { return v.row.EnablePerProcessAndThreadTimeLimit }},
	{"enable_per_process_and_thread_memory_limit", true, func(v *judge0Viewer) any { return v.row.EnablePerProcessAndThreadMemoryLimit }},
	{"max_file_size", true, func(v *judge0Viewer) any { return v.row.MaxFileSize }},
	{"compile_output", false, func(v *judge0Viewer) any { return v.text(v.row.CompileOutput) }},
	{"exit_code", false, func(v *judge0Viewer) any { return orNull(v.row.ExitCode) }},
	{"exit_signal", false, func(v *judge0Viewer) any { return orNull(v.row.ExitSignal) }},
	{"message", false, func(v *judge0Viewer) any { return v.text(v.row.Message) }},
	{"wall_time", false, func(v *judge0Viewer) any { return decimalString(v.row.WallTime) }},
	{"compiler_options", true, func(v *judge0Viewer) any { return orNull(v.row.CompilerOptions) }},
	{"command_line_arguments", true, func(v *judge0Viewer) any { return orNull(v.row.CommandLineArguments) }},
	{"redirect_stderr_to_stdout", true, func(v *judge0Viewer) any { return v.row.RedirectStderrToStdout }},
	{"callback_url", true, func(v *judge0Viewer) any { return orNull(v.row.CallbackURL) }},
	{"additional_files", true, func(v *judge0Viewer) any { return orNull(v.row.AdditionalFiles) }},
	{"enable_network", true, func(v *judge0Viewer) any { return v.row.EnableNetwork }},
	{"status", false, func(v *judge0Viewer) any { return judge0StatusOf(v.row.StatusID) }},
	{"language", false, func(v *judge0Viewer) any {
		name := v.row.Language + " (" + v.row.Version + ")"
		if l := findJudge0Language(v.langs, v.row.LanguageID); l != nil {
			name = l.Name
		}
		return gin.H{"id": v.row.LanguageID, "name": name}
	}},
}

var (
	// judge0SubmissionFields are the names of judge0Columns, which ?fields= may ask for.
	judge0SubmissionFields []string
	// judge0InputFields are the fields a submission may send; others are ignored, as
	// Rails' strong parameters do.
	judge0InputFields  []string
	judge0ColumnByName = map[string]*judge0Column{}
)

func init() {
	for i := range judge0Columns {
		c := &judge0Columns[i]
		judge0SubmissionFields = append(judge0SubmissionFields, c.name)
		judge0ColumnByName[c.name] = c
		if c.input {
			judge0InputFields = append(judge0InputFields, c.name)
		}
	}
}

// judge0View is a submission as Judge0 shows it: the fields asked for, in that order.
func judge0View(row *store.Judge0Submission, fields []string, b64 bool, langs []judge0Language) orderedJSON {
	v := &judge0Viewer{row: row, b64: b64, langs: langs}
	out := make(orderedJSON, 0, len(fields))
	for _, f := range fields {
		if c := judge0ColumnByName[f]; c != nil {
			out = append(out, jsonField{f, c.get(v)})
		}
	}
	return out
}

// decimalString writes seconds as Judge0 does (a Postgres decimal, rendered as a string):
// "0.012", "5.0"; nil stays null.
func decimalString(f *float64) any {
	if f == nil {
		return nil
	}
	return rubyNumber(*f, true)
}

// orderedJSON is a JSON object whose keys keep their order.
type orderedJSON []jsonField

type jsonField struct {
	name  string
	value any
}

func (o orderedJSON) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, f := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		name, err := marshalNoEscape(f.name)
		if err != nil {
			return nil, err
		}
		value, err := marshalNoEscape(f.value)
		if err != nil {
			return nil, fmt.Errorf("encoding field %s: %w", f.name, err)
		}
		b.Write(name)
		b.WriteByte(':')
		b.Write(value)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// marshalNoEscape encodes v without HTML escaping, as gin's PureJSON writes the rest of an
// answer: a program's "<" stays "<".
func marshalNoEscape(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}
