package httpapi

import (
	"archive/zip"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"mime"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/utils/ptr"

	execv1alpha1 "github.com/coderun-dev/coderun/api/v1alpha1"
	"github.com/coderun-dev/coderun/internal/config"
	"github.com/coderun-dev/coderun/internal/store"
)

// Judge0's fixed maxima for the options coderun accepts but does not enforce per
// submission (stack, extra CPU time, runs), and its defaults for them (app/helpers/config.rb).
const (
	j0MaxCPUExtraTime   = 5.0
	j0DefaultStackLimit = 64000
	j0MaxStackLimit     = 128000
	j0MaxNumberOfRuns   = 20
	j0MaxOptionLength   = 512
	j0MaxBatchSize      = 20
)

// j0FieldMemoryLimit is a field name the Piston API shares (goconst counts them together).
const j0FieldMemoryLimit = "memory_limit"

// judge0Params are a submission's fields as sent: JSON values, or strings from a form or
// the query (Judge0 takes all three, and "4" for 4).
type judge0Params map[string]json.RawMessage

// judge0Errors are validation errors in Judge0's 422 shape: {"field": ["message", ...]}.
type judge0Errors map[string][]string

func (e judge0Errors) add(field, format string, args ...any) {
	e[field] = append(e[field], fmt.Sprintf(format, args...))
}

// judge0ParamsFromBody reads one submission from a request body (JSON, or a form when the
// content type says so) and the query's submission fields, the body winning, as in Rails.
func judge0ParamsFromBody(body []byte, contentType string, query url.Values) (judge0Params, *apiError) {
	p := judge0Params{}
	for _, name := range judge0InputFields {
		if v, ok := query[name]; ok && len(v) > 0 {
			p[name] = mustJSONString(v[0])
		}
	}
	media, _, _ := mime.ParseMediaType(contentType)
	switch {
	case media == "application/x-www-form-urlencoded":
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, badRequest("the form body does not parse: %v", err)
		}
		for name, v := range form {
			if len(v) > 0 {
				p[name] = mustJSONString(v[0])
			}
		}
	case len(bytes.TrimSpace(body)) == 0:
		// Only query parameters (Judge0 takes those too); validation names what is missing.
	default:
		var fromBody map[string]json.RawMessage
		if err := decodeBody(body, &fromBody); err != nil {
			return nil, err
		}
		for name, v := range fromBody {
			p[name] = v
		}
	}
	return p, nil
}

func mustJSONString(s string) json.RawMessage {
	b, _ := json.Marshal(s) // a string always encodes
	return b
}

// text returns the field as a string: a JSON string, or a number or boolean as written
// (Rails casts them); nil when absent or null. Objects and arrays are "is invalid".
func (p judge0Params) text(name string, errs judge0Errors) *string {
	raw, ok := p[name]
	if !ok {
		return nil
	}
	raw = bytes.TrimSpace(raw)
	switch {
	case len(raw) == 0 || string(raw) == "null":
		return nil
	case raw[0] == '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			errs.add(name, "is invalid")
			return nil
		}
		return &s
	case raw[0] == '{' || raw[0] == '[':
		errs.add(name, "is invalid")
		return nil
	default:
		s := string(raw)
		return &s
	}
}

// number returns the field as a number (a JSON number or a numeric string); nil when
// absent, null or blank, and "is not a number" otherwise.
func (p judge0Params) number(name string, errs judge0Errors) *float64 {
	s := p.text(name, errs)
	if s == nil || strings.TrimSpace(*s) == "" {
		return nil
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(*s), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		errs.add(name, "is not a number")
		return nil
	}
	return &f
}

// boolean returns the field as Rails casts a boolean: false, 0, "0", "f", "false", "off"
// (any case) are false, anything else true; nil when absent, null or blank.
func (p judge0Params) boolean(name string, errs judge0Errors) *bool {
	s := p.text(name, errs)
	if s == nil || *s == "" {
		return nil
	}
	switch strings.ToLower(*s) {
	case "false", "0", "f", "off":
		return ptr.To(false)
	}
	return ptr.To(true)
}

// rubyNumber writes a limit as Judge0's messages do: floats with a decimal point (20.0),
// integers without.
func rubyNumber(v float64, isFloat bool) string {
	if isFloat && v == math.Trunc(v) {
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

// bounded checks a number against Judge0's rules (numericality: greater than or equal to
// lo, or greater than 0 when lo is 0 and strict, and at most hi) and returns it or def.
func bounded(p judge0Params, errs judge0Errors, name string, def, lo, hi float64, strict, isFloat bool) float64 {
	v := p.number(name, errs)
	if v == nil {
		return def
	}
	switch {
	case strict && *v <= lo:
		errs.add(name, "must be greater than %s", rubyNumber(lo, isFloat))
	case !strict && *v < lo:
		errs.add(name, "must be greater than or equal to %s", rubyNumber(lo, isFloat))
	case *v > hi:
		errs.add(name, "must be less than or equal to %s", rubyNumber(hi, isFloat))
	}
	if !isFloat {
		return math.Trunc(*v)
	}
	return *v
}

// judge0Limits are what the limits of a submission map onto, from the operator's
// configuration: Judge0's names for coderun's defaults and maxima (GET /config_info).
type judge0Limits struct {
	cpuTime, maxCPUTime, wallTime, maxWallTime float64
	memoryKB, minMemoryKB, maxMemoryKB         int64
	maxProcesses                               int64
	maxFileSizeKB                              int64
}

func judge0LimitsOf(cfg config.Config) judge0Limits {
	timeout := float64(*cfg.DefaultLimits.TimeoutSeconds)
	maxTimeout := float64(*cfg.MaxLimits.TimeoutSeconds)
	return judge0Limits{
		cpuTime: timeout, maxCPUTime: maxTimeout, wallTime: timeout, maxWallTime: maxTimeout,
		memoryKB:      cfg.DefaultLimits.Memory.Value() / 1024,
		minMemoryKB:   minMemory.Value() / 1024,
		maxMemoryKB:   cfg.MaxLimits.Memory.Value() / 1024,
		maxProcesses:  int64(cfg.MaxProcesses),
		maxFileSizeKB: cfg.MaxFileSizeBytes / 1024,
	}
}

// judge0Submission is a validated submission: the row to save (status In Queue) and the
// CodeRun spec that runs it.
type judge0Submission struct {
	row  *store.Judge0Submission
	spec execv1alpha1.CodeRunSpec
}

// parseJudge0Submission validates one submission as Judge0's model does, collecting every
// field's errors, and maps it onto a CodeRun spec. b64 decodes source_code, stdin and
// expected_output. langs are the languages there are (judge0Languages).
func parseJudge0Submission(p judge0Params, b64 bool, langs []judge0Language, lim judge0Limits) (*judge0Submission, judge0Errors) {
	errs := judge0Errors{}
	row := &store.Judge0Submission{Judge0Result: store.Judge0Result{StatusID: store.Judge0InQueue}}

	source := decodeJudge0Text(p, errs, "source_code", b64)
	if source == nil || strings.TrimSpace(*source) == "" {
		if _, has := errs["source_code"]; !has {
			errs.add("source_code", "can't be blank")
		}
	} else {
		row.SourceCode = *source
		checkText(errs, "source_code", *source, execv1alpha1.MaxSourceBytes)
	}
	row.Stdin = decodeJudge0Text(p, errs, "stdin", b64)
	if row.Stdin != nil {
		checkText(errs, "stdin", *row.Stdin, execv1alpha1.MaxStdinBytes)
	}
	row.ExpectedOutput = decodeJudge0Text(p, errs, "expected_output", b64)
	if row.ExpectedOutput != nil {
		checkText(errs, "expected_output", *row.ExpectedOutput, execv1alpha1.MaxStdinBytes)
	}

	lang := parseJudge0Language(p, errs, langs)
	if lang != nil {
		row.LanguageID = lang.ID
	}

	row.CPUTimeLimit = bounded(p, errs, "cpu_time_limit", lim.cpuTime, 0, lim.maxCPUTime, false, true)
	row.CPUExtraTime = bounded(p, errs, "cpu_extra_time", 0, 0, j0MaxCPUExtraTime, false, true)
	row.WallTimeLimit = bounded(p, errs, "wall_time_limit", lim.wallTime, 1, lim.maxWallTime, false, true)
	row.MemoryLimit = int64(bounded(p, errs, j0FieldMemoryLimit, float64(lim.memoryKB), float64(lim.minMemoryKB), float64(lim.maxMemoryKB), false, false))
	row.StackLimit = int64(bounded(p, errs, "stack_limit", j0DefaultStackLimit, 0, j0MaxStackLimit, false, false))
	row.MaxProcessesAndOrThreads = int64(bounded(p, errs, "max_processes_and_or_threads", float64(lim.maxProcesses), 0, float64(lim.maxProcesses), true, false))
	row.MaxFileSize = int64(bounded(p, errs, "max_file_size", float64(lim.maxFileSizeKB), 0, float64(lim.maxFileSizeKB), false, false))
	row.NumberOfRuns = int64(bounded(p, errs, "number_of_runs", 1, 0, j0MaxNumberOfRuns, true, false))
	row.EnablePerProcessAndThreadTimeLimit = ptr.Deref(p.boolean("enable_per_process_and_thread_time_limit", errs), false)
	row.EnablePerProcessAndThreadMemoryLimit = ptr.Deref(p.boolean("enable_per_process_and_thread_memory_limit", errs), false)
	row.RedirectStderrToStdout = ptr.Deref(p.boolean("redirect_stderr_to_stdout", errs), false)

	// Refused as a Judge0 configured without them refuses them (the same messages): runs
	// never have network; compile commands are a Runtime's argument vectors, with no %s to
	// put options in; and the front calls no URL a client names (see the README).
	if ptr.Deref(p.boolean("enable_network", errs), false) {
		errs.add("enable_network", "enabling network is not allowed")
	}
	if s := p.text("compiler_options", errs); s != nil && strings.TrimSpace(*s) != "" {
		errs.add("compiler_options", "setting compiler options is not allowed")
	}
	if s := p.text("callback_url", errs); s != nil && strings.TrimSpace(*s) != "" {
		errs.add("callback_url", "setting callback is not allowed")
	}
	if s := p.text("additional_files", errs); s != nil && strings.TrimSpace(*s) != "" {
		row.AdditionalFiles = s
	}

	row.CommandLineArguments = p.text("command_line_arguments", errs)
	args := parseJudge0Arguments(row.CommandLineArguments, errs)
	var files []execv1alpha1.SourceFile
	if row.AdditionalFiles != nil && lang != nil && source != nil {
		var err error
		if files, err = unzipJudge0Files(*row.AdditionalFiles, lang.SourceFile, len(*source)); err != nil {
			errs.add("additional_files", "%s", err.Error())
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}

	// The run's wall-clock limit: Judge0 kills a program at its CPU time limit plus the
	// extra time, or at the wall time limit, whichever comes first; coderun has one limit,
	// in whole seconds (a cpu_time_limit of 0 is none, as isolate takes it).
	limit := row.WallTimeLimit
	if row.CPUTimeLimit > 0 {
		limit = min(limit, row.CPUTimeLimit+row.CPUExtraTime)
	}
	timeout := int32(min(max(math.Ceil(limit), 1), lim.maxWallTime))
	spec := execv1alpha1.CodeRunSpec{
		Language: execv1alpha1.Language(lang.language),
		Version:  lang.version,
		Source:   row.SourceCode,
		Stdin:    ptr.Deref(row.Stdin, ""),
		Files:    files,
		Args:     args,
		Limits: execv1alpha1.Limits{
			TimeoutSeconds: &timeout,
			Memory:         resource.NewQuantity(row.MemoryLimit*1024, resource.BinarySI),
		},
	}
	row.Language, row.Version = lang.language, lang.version
	return &judge0Submission{row: row, spec: spec}, nil
}

// parseJudge0Language finds the language of language_id, or adds the error Judge0 gives.
func parseJudge0Language(p judge0Params, errs judge0Errors, langs []judge0Language) *judge0Language {
	id := p.text("language_id", errs)
	if id == nil || strings.TrimSpace(*id) == "" {
		if _, has := errs["language_id"]; !has {
			errs.add("language_id", "can't be blank")
		}
		return nil
	}
	var lang *judge0Language
	n, err := strconv.ParseFloat(strings.TrimSpace(*id), 64)
	if err == nil && n == math.Trunc(n) && n >= 1 && n <= math.MaxInt32 {
		lang = findJudge0Language(langs, int32(n))
	}
	switch {
	case lang == nil:
		errs.add("language_id", "language with id %s doesn't exist", echo(strings.TrimSpace(*id), echoLimit))
	case lang.unavailable != "":
		errs.add("language_id", "language with id %d is not available on this cluster: %s", lang.ID, lang.unavailable)
	default:
		return lang
	}
	return nil
}

// parseJudge0Arguments splits command_line_arguments into the CodeRun's args.
func parseJudge0Arguments(s *string, errs judge0Errors) []string {
	const field = "command_line_arguments"
	if s == nil || strings.TrimSpace(*s) == "" {
		return nil
	}
	if len(*s) > j0MaxOptionLength {
		errs.add(field, "is too long (maximum is %d characters)", j0MaxOptionLength)
		return nil
	}
	args, err := splitJudge0Arguments(*s)
	switch {
	case err != nil:
		errs.add(field, "%s", err.Error())
	case len(args) > execv1alpha1.MaxArgs:
		errs.add(field, "has %d arguments; at most %d are allowed", len(args), execv1alpha1.MaxArgs)
	}
	return args
}

// sourceFileName is what a CodeRun's spec.files names may be (api/v1alpha1 SourceFile).
var sourceFileName = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]{0,63}$`)

// unzipJudge0Files turns additional_files (base64 of a .zip, whatever base64_encoded
// says, as in Judge0) into the CodeRun's files beside the program: the zip's files at its
// top level, as Judge0 extracts it into the program's folder. A file named like the
// program is skipped (Judge0 unzips with -n, never overwriting it). What a CodeRun cannot
// hold is refused with a sentence: folders, names it does not allow, more than
// execv1alpha1.MaxFiles files, text that is not UTF-8, or more than the 64 KiB that source
// and files share.
func unzipJudge0Files(b64, sourceFile string, sourceBytes int) ([]execv1alpha1.SourceFile, error) {
	raw, err := decodeJudge0Base64(b64)
	if err != nil {
		return nil, fmt.Errorf("is not valid base64: %w", err)
	}
	zr, err := zip.NewReader(strings.NewReader(raw), int64(len(raw)))
	if err != nil {
		return nil, fmt.Errorf("is not a zip archive: %w", err)
	}
	budget := int64(execv1alpha1.MaxSourceBytes - sourceBytes)
	var files []execv1alpha1.SourceFile
	for _, f := range zr.File {
		name := f.Name
		switch {
		case f.FileInfo().IsDir() && !strings.Contains(strings.TrimSuffix(name, "/"), "/"):
			continue // a top-level folder entry holds nothing itself; its files are refused below
		case strings.ContainsAny(name, "/\\"):
			return nil, fmt.Errorf("holds %q in a folder; only files at the top level of the zip are supported", echo(name, echoLimit))
		case !f.Mode().IsRegular():
			return nil, fmt.Errorf("holds %q, which is not a regular file", echo(name, echoLimit))
		case !sourceFileName.MatchString(name):
			return nil, fmt.Errorf("holds a file named %q; names must be letters, digits, '.', '_' and '-' (at most 64), not starting with '.' or '-'", echo(name, echoLimit))
		case name == sourceFile:
			continue // the program's own file stays, as unzip -n leaves it
		case len(files) == execv1alpha1.MaxFiles:
			return nil, fmt.Errorf("holds more than %d files", execv1alpha1.MaxFiles)
		}
		rc, err := f.Open()
		if err != nil {
			return nil, fmt.Errorf("cannot be read at %q: %w", echo(name, echoLimit), err)
		}
		// Read at most what is left of the budget, whatever the header claims.
		content, err := io.ReadAll(io.LimitReader(rc, budget+1))
		_ = rc.Close()
		if err != nil {
			return nil, fmt.Errorf("cannot be read at %q: %w", echo(name, echoLimit), err)
		}
		if budget -= int64(len(content)); budget < 0 {
			return nil, fmt.Errorf("holds more than source_code and files may hold together: %d bytes", execv1alpha1.MaxSourceBytes)
		}
		if !utf8.Valid(content) || bytes.IndexByte(content, 0) >= 0 {
			return nil, fmt.Errorf("holds %q, which is not UTF-8 text (files beside the program are text)", echo(name, echoLimit))
		}
		files = append(files, execv1alpha1.SourceFile{Name: name, Content: string(content)})
	}
	return files, nil
}

// decodeJudge0Text reads a text field, decoding it from base64 when b64 is set.
func decodeJudge0Text(p judge0Params, errs judge0Errors, name string, b64 bool) *string {
	s := p.text(name, errs)
	if s == nil || !b64 {
		return s
	}
	decoded, err := decodeJudge0Base64(*s)
	if err != nil {
		errs.add(name, "is not valid base64: %v", err)
		return nil
	}
	if !utf8.ValidString(decoded) {
		errs.add(name, "is not UTF-8 text once decoded from base64")
		return nil
	}
	return &decoded
}

// decodeJudge0Base64 decodes base64 as clients of Judge0 send it: the standard alphabet,
// or the URL-safe one, with or without padding, with line breaks anywhere (Ruby's
// encode64 puts one every 60 characters).
func decodeJudge0Base64(s string) (string, error) {
	s = strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' || r == ' ' || r == '\t' {
			return -1
		}
		return r
	}, s)
	enc := base64.StdEncoding
	if strings.ContainsAny(s, "-_") {
		enc = base64.URLEncoding
	}
	if len(s)%4 != 0 {
		enc = enc.WithPadding(base64.NoPadding)
	}
	b, err := enc.DecodeString(s)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// encodeJudge0Base64 encodes as Ruby's Base64.encode64, which Judge0 answers with: a line
// break after every 60 characters and at the end.
func encodeJudge0Base64(s string) string {
	enc := base64.StdEncoding.EncodeToString([]byte(s))
	var b strings.Builder
	for len(enc) > 60 {
		b.WriteString(enc[:60])
		b.WriteByte('\n')
		enc = enc[60:]
	}
	b.WriteString(enc)
	b.WriteByte('\n')
	return b.String()
}

func checkText(errs judge0Errors, name, s string, limit int) {
	if len(s) > limit {
		errs.add(name, "is too long (maximum is %d bytes)", limit)
	}
	// PostgreSQL text cannot hold NUL, and no program's source or input here may.
	if strings.IndexByte(s, 0) >= 0 {
		errs.add(name, "contains a NUL character")
	}
}

// splitJudge0Arguments splits command_line_arguments into arguments as the shell line
// Judge0 appends them to would: after removing the characters Judge0 strips ($&;<>|`),
// words are separated by blanks, and quotes and backslashes group and escape as in sh.
func splitJudge0Arguments(s string) ([]string, error) {
	s = strings.Map(func(r rune) rune {
		if strings.ContainsRune("$&;<>|`", r) {
			return -1
		}
		return r
	}, s)
	var (
		args    []string
		cur     strings.Builder
		inWord  bool
		quote   rune
		escaped bool
	)
	for _, r := range s {
		switch {
		case escaped:
			cur.WriteRune(r)
			escaped = false
		case quote == '\'':
			if r == '\'' {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case quote == '"':
			switch r {
			case '"':
				quote = 0
			case '\\':
				escaped = true
			default:
				cur.WriteRune(r)
			}
		case r == '\\':
			escaped, inWord = true, true
		case r == '\'' || r == '"':
			quote, inWord = r, true
		case r == ' ' || r == '\t' || r == '\n' || r == '\r':
			if inWord {
				args = append(args, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("has an unclosed %c quote", quote)
	}
	if inWord {
		args = append(args, cur.String())
	}
	return args, nil
}

// judge0DefaultFields are shown without ?fields= (Fields::Submission#default_fields).
var judge0DefaultFields = strings.Split("token,time,memory,stdout,stderr,compile_output,message,status", ",")

// parseJudge0Fields reads ?fields=: a comma-separated list, "*" for all, empty for the
// default; unknown names are a 400 naming them, as in Judge0.
func parseJudge0Fields(q string) ([]string, *apiError) {
	if strings.TrimSpace(q) == "" {
		return judge0DefaultFields, nil
	}
	var fields, invalid []string
	for f := range strings.SplitSeq(q, ",") {
		f = strings.TrimSpace(f)
		switch {
		case f == "*":
			fields = append(fields, judge0SubmissionFields...)
		case slices.Contains(judge0SubmissionFields, f):
			fields = append(fields, f)
		case f != "":
			invalid = append(invalid, echo(f, echoLimit))
		}
	}
	if len(invalid) > 0 {
		return nil, badRequest("invalid fields: [%s]", strings.Join(invalid, ", "))
	}
	if len(fields) == 0 {
		return judge0DefaultFields, nil
	}
	return dedupeStrings(fields), nil
}

func dedupeStrings(list []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, v := range list {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}
