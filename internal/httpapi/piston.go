package httpapi

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/utils/ptr"

	execv1alpha1 "github.com/coderun-dev/coderun/api/v1alpha1"
	"github.com/coderun-dev/coderun/internal/runtimes"
)

// The Piston API v2 (engineer-man/piston, api/src/api/v2.js), for its clients: the same
// routes, request fields, validation messages (400 {"message": ...}), version matching
// (a semver range, highest match) and response, with coderun's Runtimes as its runtimes
// and coderun's limits as its configured limits. Each deviation is listed in the README
// (Piston API: deviations).

// pistonRoutes serves Piston's API v2 under /api/v2.
func (s *Server) pistonRoutes(r *gin.Engine) {
	r.GET("/api/v2/runtimes", s.gate(false, s.pistonRuntimes)...)
	r.POST("/api/v2/execute", s.gate(true, pistonJSONOnly(s.pistonExecute))...)
	r.GET("/api/v2/packages", s.gate(false, s.pistonPackages)...)
	r.POST("/api/v2/packages", s.gate(false, pistonJSONOnly(s.pistonManagePackages))...)
	r.DELETE("/api/v2/packages", s.gate(false, pistonJSONOnly(s.pistonManagePackages))...)
}

// pistonFail answers an error as Piston does: {"message": ...}.
func pistonFail(c *gin.Context, status int, message string) {
	c.AbortWithStatusJSON(status, gin.H{"message": message})
}

// pistonJSONOnly wraps h: a body declared as something else than JSON gets Piston's 415.
// Unlike Piston, a body without a Content-Type or declared text/plain is read as JSON: the
// npm client piston-client sends its JSON that way.
func pistonJSONOnly(h gin.HandlerFunc) gin.HandlerFunc {
	return func(c *gin.Context) {
		ct := strings.ToLower(strings.TrimSpace(c.GetHeader("Content-Type")))
		if ct != "" && !strings.HasPrefix(ct, "application/json") && !strings.HasPrefix(ct, "text/plain") {
			pistonFail(c, http.StatusUnsupportedMediaType, "requests must be of type application/json")
			return
		}
		h(c)
	}
}

// pistonReadyRuntimes are the runtimes Piston's API offers: the Ready ones (Piston lists
// what is installed; a Runtime whose smoke test has not passed is not, yet).
func (s *Server) pistonReadyRuntimes(c *gin.Context) ([]execv1alpha1.Runtime, bool) {
	list, apiErr := s.runtimeList()
	if apiErr != nil {
		c.Header("Retry-After", retryAfterSeconds)
		pistonFail(c, apiErr.Status, apiErr.Message)
		return nil, false
	}
	ready := list[:0:0]
	for i := range list {
		if runtimes.Ready(&list[i]) && list[i].DeletionTimestamp == nil {
			ready = append(ready, list[i])
		}
	}
	return ready, true
}

// pistonRuntime is one entry of GET /api/v2/runtimes. Piston's optional "runtime" (the
// package that provides several languages) has no counterpart and is left out, as Piston
// leaves it out for single-language packages.
type pistonRuntime struct {
	Language string   `json:"language"`
	Version  string   `json:"version"`
	Aliases  []string `json:"aliases"`
}

func (s *Server) pistonRuntimes(c *gin.Context) {
	list, ok := s.pistonReadyRuntimes(c)
	if !ok {
		return
	}
	out := make([]pistonRuntime, 0, len(list))
	for _, rt := range list {
		out = append(out, pistonRuntime{Language: rt.Spec.Language, Version: rt.Spec.Version, Aliases: nonNil(rt.Spec.Aliases)})
	}
	c.PureJSON(http.StatusOK, out)
}

// pistonPackage is one entry of GET /api/v2/packages.
type pistonPackage struct {
	Language        string `json:"language"`
	LanguageVersion string `json:"language_version"`
	Installed       bool   `json:"installed"`
}

// pistonPackages lists the Ready Runtimes as installed packages; there is no repository
// of packages that could be installed.
func (s *Server) pistonPackages(c *gin.Context) {
	list, ok := s.pistonReadyRuntimes(c)
	if !ok {
		return
	}
	out := make([]pistonPackage, 0, len(list))
	for _, rt := range list {
		out = append(out, pistonPackage{Language: rt.Spec.Language, LanguageVersion: rt.Spec.Version, Installed: true})
	}
	c.PureJSON(http.StatusOK, out)
}

// pistonManagePackages refuses to install or remove a package: languages are Runtime
// objects of the cluster, which its administrators apply and delete.
func (s *Server) pistonManagePackages(c *gin.Context) {
	c.Header("Allow", "GET")
	verb := "installed"
	if c.Request.Method == http.MethodDelete {
		verb = "removed"
	}
	pistonFail(c, http.StatusMethodNotAllowed, "packages cannot be "+verb+" through this API: coderun's languages are Runtime objects of the cluster; "+
		"an administrator adds one with kubectl apply -f <runtime.yaml> and removes one with kubectl delete runtime <name> (kubectl get runtimes lists them)")
}

// Piston's defaults where a request leaves a limit out are coderun's: the operator's
// default limits for the run, and the Runtime's compile limits for the compile step.
// Piston's configured limits (the most a request may ask for) are the operator's maxima
// and the Runtime's compile limits.

// pistonLimit is one of Piston's six limits, as the request gave it.
type pistonLimit struct {
	name  string  // compile_timeout, run_memory_limit, ...
	value float64 // ms or bytes; 0 when left out (or falsy, which Piston takes as left out)
}

// pistonRequest is a validated /api/v2/execute: the CodeRun spec, and the Runtime it runs on.
type pistonRequest struct {
	spec    execv1alpha1.CodeRunSpec
	runtime *execv1alpha1.Runtime
}

// jsFalsy reports whether a JSON value is falsy in JavaScript (absent, null, false, 0, ""),
// which is what Piston's checks test.
func jsFalsy(raw json.RawMessage) bool {
	v := bytes.TrimSpace(raw)
	if len(v) == 0 {
		return true
	}
	switch v[0] {
	case 'n':
		return true
	case 'f':
		return string(v) == "false"
	case '"':
		return string(v) == `""`
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		f, err := strconv.ParseFloat(string(v), 64)
		return err == nil && f == 0
	}
	return false
}

// jsString returns raw as a string when it is a JSON string.
func jsString(raw json.RawMessage) (string, bool) {
	v := bytes.TrimSpace(raw)
	if len(v) == 0 || v[0] != '"' {
		return "", false
	}
	var str string
	if json.Unmarshal(v, &str) != nil {
		return "", false
	}
	return str, true
}

// jsNumber returns raw as a number when it is a JSON number; a number beyond float64 is
// ±Inf, as JavaScript reads it.
func jsNumber(raw json.RawMessage) (float64, bool) {
	v := bytes.TrimSpace(raw)
	if len(v) == 0 || (v[0] != '-' && (v[0] < '0' || v[0] > '9')) {
		return 0, false
	}
	f, err := strconv.ParseFloat(string(v), 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return 0, false
	}
	return f, true
}

// decodePistonBody decodes the body into its fields; an empty body has none (Express
// gives Piston {} for it).
func decodePistonBody(body []byte) (map[string]json.RawMessage, *apiError) {
	body = bytes.TrimPrefix(body, []byte("\xef\xbb\xbf"))
	fields := map[string]json.RawMessage{}
	if len(bytes.TrimSpace(body)) == 0 {
		return fields, nil
	}
	if at := invalidUTF8(body); at >= 0 {
		return nil, badRequest("the request body is not valid UTF-8 (at byte %d); JSON must be UTF-8", at)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&fields); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			return nil, badRequest("the request body must be a JSON object, not %s", typeErr.Value)
		}
		return nil, badRequest("the request body is not valid JSON: %s", err.Error())
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, badRequest("the request body must hold one JSON object and nothing after it")
	}
	return fields, nil
}

// pistonFileInput is one of files[], as the request gave it.
type pistonFileInput struct {
	Name     json.RawMessage `json:"name"`
	Content  json.RawMessage `json:"content"`
	Encoding json.RawMessage `json:"encoding"`
}

// parsePistonRequest validates a body of /api/v2/execute in Piston's order and with its
// messages (400), against the Ready Runtimes and the operator's configuration.
func parsePistonRequest(body []byte, list []execv1alpha1.Runtime, s *Server) (pistonRequest, *apiError) {
	var req pistonRequest
	fields, apiErr := decodePistonBody(body)
	if apiErr != nil {
		return req, apiErr
	}

	language, ok := jsString(fields["language"])
	if !ok || language == "" {
		return req, badRequest("language is required as a string")
	}
	version, ok := jsString(fields["version"])
	if !ok || version == "" {
		return req, badRequest("version is required as a string")
	}
	var files []json.RawMessage
	if v := bytes.TrimSpace(fields["files"]); len(v) == 0 || v[0] != '[' || json.Unmarshal(v, &files) != nil {
		return req, badRequest("files is required as an array")
	}
	inputs := make([]pistonFileInput, len(files))
	for i, raw := range files {
		// A file that is not an object has no content.
		_ = json.Unmarshal(raw, &inputs[i])
		if _, ok := jsString(inputs[i].Content); !ok {
			return req, badRequest("files[%d].content is required as a string", i)
		}
	}

	rt, err := runtimes.Resolve(list, language, version)
	if err != nil {
		return req, badRequest("%s-%s runtime is unknown", language, version)
	}
	req.runtime = rt

	out, apiErr := decodePistonFiles(inputs)
	if apiErr != nil {
		return req, apiErr
	}

	limits, apiErr := pistonLimits(fields, rt, s)
	if apiErr != nil {
		return req, apiErr
	}

	spec := &req.spec
	spec.Language = execv1alpha1.Language(rt.Spec.Language)
	spec.Version = rt.Spec.Version
	main := -1
	for i, f := range out {
		if f.code {
			main = i
			break
		}
	}
	if out[main].content == "" {
		// Piston refused an empty program with this message before it allowed one; a
		// CodeRun needs a program.
		return req, badRequest("files[%d].content is required as a string", main)
	}
	spec.Source = out[main].content
	total := len(spec.Source)
	seen := map[string]bool{rt.Spec.SourceFile: true}
	for i, f := range out {
		if i == main {
			continue // it is written under the Runtime's sourceFile, whatever its name
		}
		if len(f.name) > maxFileNameLength || !filePattern.MatchString(f.name) {
			return req, badRequest("files[%d].name %q is not a file name coderun takes: letters, digits, '.', '_' and '-', not starting with '.' or '-', no folders, at most %d characters",
				i, echo(f.name, echoLimit), maxFileNameLength)
		}
		if seen[f.name] {
			if f.name == rt.Spec.SourceFile {
				return req, badRequest("files[%d].name %q is the name the program (the first utf8 file) gets in %s-%s; rename it", i, f.name, rt.Spec.Language, rt.Spec.Version)
			}
			return req, badRequest("files[%d].name %q is the name of another file", i, f.name)
		}
		seen[f.name] = true
		total += len(f.content)
		spec.Files = append(spec.Files, execv1alpha1.SourceFile{Name: f.name, Content: f.content})
	}
	if len(spec.Files) > execv1alpha1.MaxFiles {
		return req, badRequest("files has %d files beside the program; at most %d are allowed", len(spec.Files), execv1alpha1.MaxFiles)
	}
	if total > execv1alpha1.MaxSourceBytes {
		return req, badRequest("files are %d bytes together; at most %d bytes (64 KiB) are allowed", total, execv1alpha1.MaxSourceBytes)
	}
	if strings.IndexByte(spec.Source, 0) >= 0 || func() bool {
		for _, f := range spec.Files {
			if strings.IndexByte(f.Content, 0) >= 0 {
				return true
			}
		}
		return false
	}() {
		return req, badRequest("files must not contain NUL characters (\\u0000); coderun keeps a program's files as text")
	}

	if apiErr := pistonStdinArgs(fields, spec); apiErr != nil {
		return req, apiErr
	}
	applyPistonLimits(spec, limits, rt)
	return req, nil
}

// pistonFile is a file of the program, decoded.
type pistonFile struct {
	name, content string
	code          bool // utf8: the first is the program
}

// decodePistonFiles names and decodes the files as Piston does: file<i>.code when
// unnamed; the encodings utf8 (the default, and what an unknown one is taken for),
// base64 and hex, of which only utf8 files are code.
func decodePistonFiles(inputs []pistonFileInput) ([]pistonFile, *apiError) {
	var out []pistonFile
	anyUTF8 := false
	for i, in := range inputs {
		content, _ := jsString(in.Content)
		enc, hasEnc := jsString(in.Encoding)
		if !hasEnc && !jsFalsy(in.Encoding) {
			enc, hasEnc = "?", true // not a string: Piston's check below sees it as not utf8
		}
		if !hasEnc || enc == "" || enc == "utf8" {
			anyUTF8 = true
		}
		name, hasName := jsString(in.Name)
		if !hasName || name == "" {
			name = "file" + strconv.Itoa(i) + ".code"
		}
		f := pistonFile{name: name, content: content, code: true}
		switch enc {
		case "base64", "hex":
			var decoded []byte
			var derr error
			if enc == "base64" {
				decoded, derr = base64.StdEncoding.DecodeString(content)
			} else {
				decoded, derr = hex.DecodeString(content)
			}
			if derr != nil {
				return nil, badRequest("files[%d].content is not valid %s: %v", i, enc, derr)
			}
			if !utf8.Valid(decoded) {
				return nil, badRequest("files[%d] decodes to bytes that are not UTF-8 text; coderun keeps a program's files as text", i)
			}
			f.content, f.code = string(decoded), false
		}
		out = append(out, f)
	}
	if !anyUTF8 {
		return nil, badRequest("files must include at least one utf8 encoded file")
	}

	return out, nil
}

// pistonStdinArgs puts stdin and args into spec. Piston appends a newline to stdin when
// it does not end with one, so a program always reads at least one line.
func pistonStdinArgs(fields map[string]json.RawMessage, spec *execv1alpha1.CodeRunSpec) *apiError {
	stdin := ""
	if !jsFalsy(fields["stdin"]) {
		var ok bool
		if stdin, ok = jsString(fields["stdin"]); !ok {
			return badRequest("If specified, stdin must be a string")
		}
	}
	if !strings.HasSuffix(stdin, "\n") {
		stdin += "\n"
	}
	if len(stdin) > execv1alpha1.MaxStdinBytes {
		return badRequest("stdin is %d bytes; at most %d bytes (64 KiB) are allowed", len(stdin), execv1alpha1.MaxStdinBytes)
	}
	if strings.IndexByte(stdin, 0) >= 0 {
		return badRequest("stdin must not contain NUL characters (\\u0000); coderun gives stdin as text")
	}
	spec.Stdin = stdin

	if v := bytes.TrimSpace(fields["args"]); len(v) > 0 && string(v) != "null" {
		var args []string
		if v[0] != '[' || json.Unmarshal(v, &args) != nil {
			return badRequest("If specified, args must be an array of strings")
		}
		if len(args) > execv1alpha1.MaxArgs {
			return badRequest("args has %d arguments; at most %d are allowed", len(args), execv1alpha1.MaxArgs)
		}
		for i, a := range args {
			if len(a) > maxArgLength || strings.IndexByte(a, 0) >= 0 {
				return badRequest("args[%d] must be at most %d bytes, without NUL characters", i, maxArgLength)
			}
		}
		if len(args) > 0 {
			spec.Args = args
		}
	}

	return nil
}

// pistonLimitSet is the six limits of a request, by name.
type pistonLimitSet map[string]pistonLimit

// pistonLimits checks Piston's six limits in its order (memory_limit, timeout, cpu_time;
// compile before run) with its messages: a falsy value is left out; anything else must
// be a number, at most the configured limit (when there is one) and not negative.
//
// Unlike Piston, a memory limit of -1 (which piston-client sends, meaning no limit) is
// taken as left out: there is always a limit, and it is then the default.
func pistonLimits(fields map[string]json.RawMessage, rt *execv1alpha1.Runtime, s *Server) (pistonLimitSet, *apiError) {
	cfg := s.opts.Config
	maxTimeout := float64(*cfg.MaxLimits.TimeoutSeconds) * 1000
	configured := map[string]float64{
		"run_memory_limit": float64(cfg.MaxLimits.Memory.Value()),
		"run_timeout":      maxTimeout,
		"run_cpu_time":     maxTimeout,
	}
	// An interpreted runtime has no compile step: Piston's unlimited (no further checks).
	if runtimes.Compiled(rt) {
		compileTimeout, compileMemory := compileDefaults(rt)
		configured["compile_timeout"] = float64(compileTimeout) * 1000
		configured["compile_cpu_time"] = float64(compileTimeout) * 1000
		configured["compile_memory_limit"] = float64(compileMemory.Value())
	}
	out := pistonLimitSet{}
	for _, constraint := range []string{"memory_limit", "timeout", "cpu_time"} {
		for _, stage := range []string{"compile", "run"} {
			name := stage + "_" + constraint
			raw := fields[name]
			if jsFalsy(raw) {
				continue
			}
			v, ok := jsNumber(raw)
			if !ok {
				return nil, badRequest("If specified, %s must be a number", name)
			}
			if constraint == "memory_limit" && v == -1 {
				continue
			}
			limit := configured[name]
			if limit <= 0 {
				continue
			}
			if v > limit {
				return nil, badRequest("%s cannot exceed the configured limit of %s", name, strconv.FormatFloat(limit, 'f', -1, 64))
			}
			if v < 0 {
				return nil, badRequest("%s must be non-negative", name)
			}
			out[name] = pistonLimit{name: name, value: v}
		}
	}
	return out, nil
}

// compileDefaults are the Runtime's compile limits, with the CRD's defaults.
func compileDefaults(rt *execv1alpha1.Runtime) (int32, resource.Quantity) {
	timeout := rt.Spec.Compile.TimeoutSeconds
	if timeout <= 0 {
		timeout = 10
	}
	memory := resource.MustParse("512Mi")
	if rt.Spec.Compile.Memory != nil {
		memory = *rt.Spec.Compile.Memory
	}
	return timeout, memory
}

// applyPistonLimits puts the limits asked for into spec. coderun's time limit is a
// wall-clock one in whole seconds: the lesser of the timeout and the CPU time asked for,
// rounded up. A memory limit below the CodeRun's minimum (16Mi) is raised to it.
func applyPistonLimits(spec *execv1alpha1.CodeRunSpec, l pistonLimitSet, rt *execv1alpha1.Runtime) {
	seconds := func(names ...string) *int32 {
		ms := math.Inf(1)
		for _, n := range names {
			if v, ok := l[n]; ok {
				ms = math.Min(ms, v.value)
			}
		}
		if math.IsInf(ms, 1) {
			return nil
		}
		return ptr.To(int32(max(1, math.Ceil(ms/1000))))
	}
	memory := func(name string, lo resource.Quantity) *resource.Quantity {
		v, ok := l[name]
		if !ok {
			return nil
		}
		q := resource.NewQuantity(int64(v.value), resource.BinarySI)
		if q.Cmp(lo) < 0 {
			q = ptr.To(lo.DeepCopy())
		}
		return q
	}
	spec.Limits.TimeoutSeconds = seconds("run_timeout", "run_cpu_time")
	spec.Limits.Memory = memory("run_memory_limit", minMemory)
	if runtimes.Compiled(rt) {
		cl := &execv1alpha1.CompileLimits{
			TimeoutSeconds: seconds("compile_timeout", "compile_cpu_time"),
			Memory:         memory("compile_memory_limit", minCompileMemory),
		}
		if cl.TimeoutSeconds != nil || cl.Memory != nil {
			spec.CompileLimits = cl
		}
	}
}

// pistonStage is the run or compile stage of Piston's answer: times in ms, memory in bytes.
type pistonStage struct {
	Stdout   string  `json:"stdout"`
	Stderr   string  `json:"stderr"`
	Output   string  `json:"output"`
	Code     *int32  `json:"code"`
	Signal   *string `json:"signal"`
	Message  *string `json:"message"`
	Status   *string `json:"status"`
	CPUTime  *int64  `json:"cpu_time"`
	WallTime *int64  `json:"wall_time"`
	Memory   *int64  `json:"memory"`
}

// pistonResponse is the answer of /api/v2/execute; compile only for a compiled runtime.
type pistonResponse struct {
	Language string       `json:"language"`
	Version  string       `json:"version"`
	Run      pistonStage  `json:"run"`
	Compile  *pistonStage `json:"compile,omitempty"`
}

// stageOutcome is how a stage ended, in coderun's terms, for pistonStageOf.
type stageOutcome struct {
	reason                           execv1alpha1.ResultReason
	exitCode                         *int32
	signal, message                  string
	stdout, stderr, output           string
	stdoutTruncated, stderrTruncated bool
	wall, cpu                        *int64
	memory                           *int64
}

// pistonStageOf maps a stage's end onto Piston's status codes and isolate's messages:
// RE (non-zero exit), SG (a signal; also coderun's memory limit, which kills with
// SIGKILL), TO (time limit), OL/EL (stdout/stderr over the output limit), XX (the
// platform failed); null when the stage exited with 0.
func pistonStageOf(o stageOutcome) pistonStage {
	st := pistonStage{Stdout: o.stdout, Stderr: o.stderr, Output: o.output, CPUTime: o.cpu, WallTime: o.wall, Memory: o.memory}
	set := func(status, message string, code *int32, signal string) {
		st.Status, st.Message, st.Code = ptr.To(status), ptr.To(message), code
		if signal != "" {
			st.Signal = ptr.To(signal)
		}
	}
	signalNumber := func() int32 {
		if o.exitCode != nil && *o.exitCode > 128 {
			return *o.exitCode - 128
		}
		return 0
	}
	switch o.reason {
	case execv1alpha1.ReasonCompleted:
		st.Code = ptr.To[int32](0)
	case execv1alpha1.ReasonNonZeroExit:
		set("RE", fmt.Sprintf("Exited with error status %d", ptr.Deref(o.exitCode, 1)), o.exitCode, "")
	case execv1alpha1.ReasonSignaled:
		set("SG", fmt.Sprintf("Caught fatal signal %d", signalNumber()), nil, o.signal)
	case execv1alpha1.ReasonTimeLimitExceeded:
		set("TO", "Time limit exceeded", nil, "SIGKILL")
	case execv1alpha1.ReasonMemoryLimitExceeded:
		set("SG", "Memory limit exceeded", nil, "SIGKILL")
	case execv1alpha1.ReasonOutputLimitExceeded:
		if o.stderrTruncated && !o.stdoutTruncated {
			set("EL", "stderr length exceeded", nil, "SIGKILL")
		} else {
			set("OL", "stdout length exceeded", nil, "SIGKILL")
		}
	default: // SystemError, and anything newer
		message := o.message
		if message == "" {
			message = string(o.reason)
		}
		set("XX", message, nil, "")
	}
	return st
}

// msOf is a duration in whole ms (nil when there is none).
func msOf(seconds float64, ran bool) *int64 {
	if !ran {
		return nil
	}
	return ptr.To(int64(math.Round(seconds * 1000)))
}

// pistonResponseFor turns a finished CodeRun into Piston's answer. When the compile step
// failed, run is a copy of compile, as Piston answers.
func pistonResponseFor(run *execv1alpha1.CodeRun, resp runResponse, rt *execv1alpha1.Runtime) pistonResponse {
	out := pistonResponse{Language: rt.Spec.Language, Version: rt.Spec.Version}
	if ref := run.Status.Runtime; ref != nil && ref.Language != "" {
		out.Language, out.Version = ref.Language, ref.Version
	}
	res := run.Status.Result
	ranProgram := res.ExitCode != nil
	out.Run = pistonStageOf(stageOutcome{
		reason: res.Reason, exitCode: res.ExitCode, signal: res.Signal, message: res.Message,
		stdout: res.Stdout, stderr: res.Stderr, output: res.Output,
		stdoutTruncated: res.StdoutTruncated, stderrTruncated: res.StderrTruncated,
		wall: msOf(resp.Time, ranProgram), cpu: msOf(resp.CPUTime, ranProgram), memory: bytesOf(res.PeakMemory, ranProgram),
	})
	if c := res.Compile; c != nil {
		compile := pistonStageOf(stageOutcome{
			reason: c.Reason, exitCode: c.ExitCode, signal: c.Signal, message: c.Message,
			stdout: c.Stdout, stderr: c.Stderr, output: c.Output,
			stdoutTruncated: c.OutputTruncated, stderrTruncated: c.OutputTruncated,
			wall: msOf(resp.Compile.Time, true), cpu: msOf(resp.Compile.CPUTime, true), memory: bytesOf(c.PeakMemory, true),
		})
		out.Compile = &compile
		if res.Reason == execv1alpha1.ReasonCompileError {
			out.Run = compile
		}
	}
	return out
}

// bytesOf is a peak memory in bytes: nil when the stage did not run, 0 when unknown.
func bytesOf(q *resource.Quantity, ran bool) *int64 {
	switch {
	case !ran:
		return nil
	case q == nil:
		return ptr.To[int64](0)
	}
	return ptr.To(q.Value())
}

// pistonExecute serves POST /api/v2/execute.
func (s *Server) pistonExecute(c *gin.Context) {
	key, apiErr := idempotencyKey(c.Request.Header)
	if apiErr != nil {
		pistonFail(c, apiErr.Status, apiErr.Message)
		return
	}
	body, apiErr := s.readBody(c)
	if apiErr != nil {
		pistonFail(c, apiErr.Status, apiErr.Message)
		return
	}
	list, ok := s.pistonReadyRuntimes(c)
	if !ok {
		return
	}
	req, apiErr := parsePistonRequest(body, list, s)
	if apiErr != nil {
		pistonFail(c, apiErr.Status, apiErr.Message)
		return
	}
	resp, run, failure := s.runSpec(c, req.spec, key)
	if failure != nil {
		pistonFail(c, failure.Status, failure.Message)
		return
	}
	if run == nil || run.Status.Result == nil {
		// Deleted before it had a result: the platform failed, Piston's XX.
		out := pistonResponse{Language: req.runtime.Spec.Language, Version: req.runtime.Spec.Version,
			Run: pistonStageOf(stageOutcome{reason: execv1alpha1.ReasonSystemError, message: resp.Message})}
		c.PureJSON(http.StatusOK, out)
		return
	}
	if run.Status.Result.Reason == execv1alpha1.ReasonRejected {
		// The operator refused the run (the Runtime stopped being Ready, a limit): a
		// request that cannot run, as Piston's validation errors.
		pistonFail(c, http.StatusBadRequest, run.Status.Result.Message)
		return
	}
	c.PureJSON(http.StatusOK, pistonResponseFor(run, resp, req.runtime))
}
