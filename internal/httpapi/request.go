package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/Masterminds/semver/v3"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/utils/ptr"

	execv1alpha1 "github.com/coderun-dev/coderun/api/v1alpha1"
	"github.com/coderun-dev/coderun/internal/config"
)

// Lower bounds of limits that the CodeRun schema enforces (api/v1alpha1), checked here so
// that the client gets a sentence naming the limit; the upper bounds are the operator's
// maxima, usually lower than the schema's.
var (
	minMemory = resource.MustParse(execv1alpha1.MinMemory)
	minCPU    = resource.MustParse(execv1alpha1.MinCPU)
)

// runRequestBody is the JSON body of /execute, /submit and /snippets. Pointers tell a
// field left out from one given empty.
type runRequestBody struct {
	Code     *string      `json:"code"`
	Stdin    *string      `json:"stdin"`
	Language *string      `json:"language"`
	Version  *string      `json:"version"`
	Files    []fileInput  `json:"files"`
	Args     []string     `json:"args"`
	Limits   *limitsInput `json:"limits"`
	// CompileTimeout (whole seconds) and CompileMemory (a quantity) bound the compile
	// step of a compiled language.
	CompileTimeout *numberInput    `json:"compile_timeout"`
	CompileMemory  *quantityString `json:"compile_memory"`
}

// fileInput is one more file of a program.
type fileInput struct {
	Name    *string `json:"name"`
	Content *string `json:"content"`
}

type limitsInput struct {
	TimeoutSeconds *numberInput    `json:"timeout_seconds"`
	Memory         *quantityString `json:"memory"`
	CPU            *quantityString `json:"cpu"`
}

// quantityString holds a quantity as the client wrote it: "128Mi", "500m", or a bare
// number such as 1 or 0.5. It is parsed during validation, so that a malformed quantity
// gets a 422 naming the limit rather than a generic decoding error.
type quantityString string

func (q *quantityString) UnmarshalJSON(data []byte) error {
	var s string
	if err := json.Unmarshal(data, &s); err == nil {
		*q = quantityString(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(data, &n); err != nil {
		return &json.UnmarshalTypeError{Value: jsonKind(data), Type: reflect.TypeFor[string]()}
	}
	*q = quantityString(n.String())
	return nil
}

// numberInput is a JSON number as the client wrote it; only numbers are accepted.
type numberInput json.Number

func (n *numberInput) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	if len(data) == 0 || (data[0] != '-' && (data[0] < '0' || data[0] > '9')) {
		return &json.UnmarshalTypeError{Value: jsonKind(data), Type: reflect.TypeFor[json.Number]()}
	}
	var num json.Number
	if err := json.Unmarshal(data, &num); err != nil {
		return &json.UnmarshalTypeError{Value: jsonKind(data), Type: reflect.TypeFor[json.Number]()}
	}
	*n = numberInput(num)
	return nil
}

// runRequest is a validated request: the CodeRun spec to create.
type runRequest struct {
	Spec execv1alpha1.CodeRunSpec
}

// apiError is an error answer: an HTTP status and a sentence for a person.
type apiError struct {
	Status  int
	Message string
}

func (e *apiError) Error() string { return e.Message }

func badRequest(format string, args ...any) *apiError {
	return &apiError{Status: http.StatusBadRequest, Message: fmt.Sprintf(format, args...)}
}

func unprocessable(format string, args ...any) *apiError {
	return &apiError{Status: http.StatusUnprocessableEntity, Message: fmt.Sprintf(format, args...)}
}

func tooLarge(format string, args ...any) *apiError {
	return &apiError{Status: http.StatusRequestEntityTooLarge, Message: fmt.Sprintf(format, args...)}
}

// bodyReadFailed turns an error reading a request body into an answer: 408 when the body
// did not arrive within the HTTP server's ReadTimeout, else 400 (chunks that are not HTTP,
// a body cut short). net/http's text of a timeout names the connection's addresses; the
// answer does not.
func bodyReadFailed(err error) *apiError {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return &apiError{Status: http.StatusRequestTimeout, Message: "the request body did not arrive within the time allowed; send the whole request at once"}
	}
	return badRequest("reading the request body: %v", err)
}

// decodeBody decodes one JSON object from body into v, with errors that say what is wrong
// in terms of the request: not JSON, not an object, a field of the wrong type, or
// something after the object.
func decodeBody(body []byte, v any) *apiError {
	// A byte order mark is no part of JSON, but some editors and Windows tools write one.
	body = bytes.TrimPrefix(body, []byte("\xef\xbb\xbf"))
	if len(bytes.TrimSpace(body)) == 0 {
		return badRequest(`the request body is empty; send a JSON object such as {"code": "print(1)"}`)
	}
	// JSON text is UTF-8, and encoding/json would quietly turn bad bytes in strings into
	// U+FFFD: the program run would not be the one sent.
	if at := invalidUTF8(body); at >= 0 {
		return badRequest("the request body is not valid UTF-8 (at byte %d); JSON must be UTF-8", at)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		var typeErr *json.UnmarshalTypeError
		var syntaxErr *json.SyntaxError
		switch {
		case errors.As(err, &typeErr) && typeErr.Field != "":
			return badRequest("field %q must be %s, not %s", jsonPath(typeErr.Field), expected(typeErr), typeErr.Value)
		case errors.As(err, &typeErr):
			return badRequest("the request body must be a JSON object, not %s", typeErr.Value)
		case errors.As(err, &syntaxErr):
			return badRequest("the request body is not valid JSON: %s (at byte %d)", syntaxErr.Error(), syntaxErr.Offset)
		case errors.Is(err, io.ErrUnexpectedEOF):
			return badRequest("the request body is not valid JSON: it ends in the middle of a value")
		default:
			return badRequest("the request body is not valid JSON: %s", err.Error())
		}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return badRequest("the request body must hold one JSON object and nothing after it")
	}
	return nil
}

// invalidUTF8 returns the offset of the first byte of b that is not valid UTF-8, or -1.
func invalidUTF8(b []byte) int {
	for i := 0; i < len(b); {
		if b[i] < utf8.RuneSelf {
			i++
			continue
		}
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n == 1 {
			return i
		}
		i += n
	}
	return -1
}

// jsonPath turns the decoder's Go-ish field path ("Limits.timeout_seconds" in older Go,
// "limits.timeout_seconds" in newer) into the request's JSON names.
func jsonPath(field string) string {
	return strings.ToLower(field[:1]) + field[1:]
}

func expected(e *json.UnmarshalTypeError) string {
	t := e.Type
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == nil:
		return "another type"
	case t == reflect.TypeFor[json.Number]():
		return "a number"
	case t.Kind() == reflect.String:
		return "a string"
	case t.Kind() == reflect.Struct, t.Kind() == reflect.Map:
		return "an object"
	default:
		return "a " + t.String()
	}
}

// jsonKind names the kind of a JSON value for error messages, as encoding/json does.
func jsonKind(data []byte) string {
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return "nothing"
	}
	switch data[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "bool"
	case 'n':
		return "null"
	default:
		return "number"
	}
}

// parseSource validates code, stdin and language, shared by runs and snippets.
func parseSource(b *runRequestBody) (execv1alpha1.CodeRunSpec, *apiError) {
	var spec execv1alpha1.CodeRunSpec
	if b.Code == nil {
		return spec, badRequest(`field "code" is required: the program to run, as a string`)
	}
	if strings.TrimSpace(*b.Code) == "" {
		return spec, unprocessable(`field "code" is empty: there is no program to run`)
	}
	if n := len(*b.Code); n > execv1alpha1.MaxSourceBytes {
		return spec, tooLarge(`field "code" is %d bytes; at most %d bytes (64 KiB) are allowed`, n, execv1alpha1.MaxSourceBytes)
	}
	// Python refuses source with NUL characters, and PostgreSQL text cannot hold them (a
	// snippet or submission could not be saved): refuse them here, naming where they are.
	if at := strings.IndexByte(*b.Code, 0); at >= 0 {
		return spec, unprocessable(`field "code" has a NUL character (\u0000) at byte %d; source code cannot contain one`, at)
	}
	spec.Source = *b.Code
	if b.Stdin != nil {
		if n := len(*b.Stdin); n > execv1alpha1.MaxStdinBytes {
			return spec, tooLarge(`field "stdin" is %d bytes; at most %d bytes (64 KiB) are allowed`, n, execv1alpha1.MaxStdinBytes)
		}
		if at := strings.IndexByte(*b.Stdin, 0); at >= 0 {
			return spec, unprocessable(`field "stdin" has a NUL character (\u0000) at byte %d; stdin is text and cannot contain one`, at)
		}
		spec.Stdin = *b.Stdin
	}
	lang, err := parseLanguage(b.Language)
	if err != nil {
		return spec, err
	}
	spec.Language = lang
	if b.Version != nil {
		v := strings.TrimSpace(*b.Version)
		if len(v) > maxVersionLength {
			return spec, unprocessable(`field "version" is %d bytes; a version range has at most %d`, len(v), maxVersionLength)
		}
		if v != "" && v != "*" {
			if _, err := semver.NewConstraint(v); err != nil {
				return spec, unprocessable(`field "version" %q is not a semantic version range such as 3.x, >=17 or 14.2.0`, echo(v, echoLimit))
			}
		}
		spec.Version = v
	}
	return spec, nil
}

// maxVersionLength bounds spec.version, as the CRD does.
const maxVersionLength = 64

// languagePattern is the CRD's pattern of a language name (or alias).
var languagePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9+#._-]*$`)

// parseLanguage validates a language name: left out or empty, python. Any name a Runtime
// may have is accepted; whether one has it is the operator's to say (a Rejected run naming
// the languages there are). Case and surrounding spaces are ignored, as before languages
// were many, and python3 stays python: the operator's built-in Python answers to python only.
func parseLanguage(in *string) (execv1alpha1.Language, *apiError) {
	if in == nil {
		return execv1alpha1.LanguagePython, nil
	}
	lang := strings.ToLower(strings.TrimSpace(*in))
	switch {
	case lang == "" || lang == "python3":
		return execv1alpha1.LanguagePython, nil
	case len(lang) > maxLanguageLength || !languagePattern.MatchString(lang):
		return "", unprocessable(`unknown language %q: a language name is lowercase letters, digits and + # . _ -, at most %d characters (GET /runtimes lists them)`,
			echo(lang, echoLimit), maxLanguageLength)
	}
	return execv1alpha1.Language(lang), nil
}

// maxLanguageLength bounds a language name, as the CRD does.
const maxLanguageLength = 32

// filePattern is the CRD's pattern of a file name: no folders, no hidden files.
var filePattern = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]*$`)

// maxFileNameLength bounds a file's name, as the CRD does.
const maxFileNameLength = 64

// parseFiles validates the program's other files and args into spec: the CRD's bounds,
// with a sentence naming the file or argument at fault.
func parseFiles(b *runRequestBody, spec *execv1alpha1.CodeRunSpec) *apiError {
	if len(b.Files) > execv1alpha1.MaxFiles {
		return unprocessable(`field "files" has %d files; at most %d are allowed`, len(b.Files), execv1alpha1.MaxFiles)
	}
	total := len(spec.Source)
	seen := map[string]bool{}
	for i, f := range b.Files {
		if f.Name == nil || f.Content == nil {
			return badRequest(`files[%d] needs a "name" and a "content", both strings`, i)
		}
		name := *f.Name
		if len(name) > maxFileNameLength || !filePattern.MatchString(name) {
			return unprocessable(`files[%d].name %q is not a file name: letters, digits, '.', '_' and '-', not starting with '.' or '-', no folders, at most %d characters`,
				i, echo(name, echoLimit), maxFileNameLength)
		}
		if seen[name] {
			return unprocessable(`files[%d].name %q is the name of another file`, i, name)
		}
		seen[name] = true
		if at := strings.IndexByte(*f.Content, 0); at >= 0 {
			return unprocessable(`files[%d].content has a NUL character (\u0000) at byte %d; files are text and cannot contain one`, i, at)
		}
		total += len(*f.Content)
		spec.Files = append(spec.Files, execv1alpha1.SourceFile{Name: name, Content: *f.Content})
	}
	if total > execv1alpha1.MaxSourceBytes {
		return tooLarge(`"code" and "files" are %d bytes together; at most %d bytes (64 KiB) are allowed`, total, execv1alpha1.MaxSourceBytes)
	}
	if len(b.Args) > execv1alpha1.MaxArgs {
		return unprocessable(`field "args" has %d arguments; at most %d are allowed`, len(b.Args), execv1alpha1.MaxArgs)
	}
	for i, a := range b.Args {
		if len(a) > maxArgLength {
			return unprocessable(`args[%d] is %d bytes; at most %d are allowed`, i, len(a), maxArgLength)
		}
		if strings.IndexByte(a, 0) >= 0 {
			return unprocessable(`args[%d] has a NUL character (\u0000); an argument cannot contain one`, i)
		}
	}
	if len(b.Args) > 0 {
		spec.Args = b.Args
	}
	return nil
}

// maxArgLength bounds one of spec.args, as the CRD does.
const maxArgLength = 4096

// Bounds of a compile step's limits, as the CRD has them; the Runtime's own limits are
// lower, and the operator refuses more than those.
var (
	minCompileMemory = resource.MustParse("16Mi")
	maxCompileMemory = resource.MustParse("16Gi")
)

const maxCompileTimeoutSeconds = 600

// parseCompileLimits validates compile_timeout and compile_memory.
func parseCompileLimits(b *runRequestBody) (*execv1alpha1.CompileLimits, *apiError) {
	if b.CompileTimeout == nil && b.CompileMemory == nil {
		return nil, nil
	}
	out := &execv1alpha1.CompileLimits{}
	if b.CompileTimeout != nil {
		n, err := json.Number(*b.CompileTimeout).Int64()
		if err != nil || n < 1 || n > maxCompileTimeoutSeconds {
			return nil, unprocessable("compile_timeout %s is not a whole number of seconds from 1 to %d",
				echo(string(*b.CompileTimeout), echoLimit), maxCompileTimeoutSeconds)
		}
		out.TimeoutSeconds = ptr.To(int32(n))
	}
	if b.CompileMemory != nil {
		q, err := parseQuantity("compile_memory", "512Mi", b.CompileMemory, minCompileMemory, maxCompileMemory)
		if err != nil {
			// parseQuantity names limits.<name>; compile_memory is a top-level field.
			err.Message = strings.Replace(err.Message, "limits.compile_memory", "compile_memory", 1)
			return nil, err
		}
		out.Memory = q
	}
	return out, nil
}

// parseRunRequest decodes and validates the body of /execute and /submit against the
// operator's configuration (its maxima).
func parseRunRequest(body []byte, cfg config.Config) (runRequest, *apiError) {
	var b runRequestBody
	if err := decodeBody(body, &b); err != nil {
		return runRequest{}, err
	}
	spec, err := parseSource(&b)
	if err != nil {
		return runRequest{}, err
	}
	if err := parseFiles(&b, &spec); err != nil {
		return runRequest{}, err
	}
	if spec.CompileLimits, err = parseCompileLimits(&b); err != nil {
		return runRequest{}, err
	}
	if b.Limits != nil {
		limits, err := parseLimits(b.Limits, cfg.MaxLimits)
		if err != nil {
			return runRequest{}, err
		}
		spec.Limits = limits
	}
	return runRequest{Spec: spec}, nil
}

// parseLimits checks each limit against the schema's lower bound and the operator's
// maximum, so that a request the operator would reject never becomes a CodeRun.
func parseLimits(in *limitsInput, maxLimits execv1alpha1.Limits) (execv1alpha1.Limits, *apiError) {
	var out execv1alpha1.Limits
	if in.TimeoutSeconds != nil {
		n, err := json.Number(*in.TimeoutSeconds).Int64()
		if errors.Is(err, strconv.ErrRange) {
			return out, unprocessable("limits.timeout_seconds %s is out of range: it must be from %d to the maximum of %d",
				echo(string(*in.TimeoutSeconds), echoLimit), execv1alpha1.MinTimeoutSeconds, *maxLimits.TimeoutSeconds)
		}
		if err != nil {
			return out, unprocessable("limits.timeout_seconds must be a whole number of seconds, got %s", echo(string(*in.TimeoutSeconds), echoLimit))
		}
		if n < execv1alpha1.MinTimeoutSeconds || n > int64(*maxLimits.TimeoutSeconds) {
			return out, unprocessable("limits.timeout_seconds %d is out of range: it must be from %d to the maximum of %d", n, execv1alpha1.MinTimeoutSeconds, *maxLimits.TimeoutSeconds)
		}
		out.TimeoutSeconds = ptr.To(int32(n))
	}
	var err *apiError
	if out.Memory, err = parseQuantity("memory", "128Mi", in.Memory, minMemory, *maxLimits.Memory); err != nil {
		return out, err
	}
	if out.CPU, err = parseQuantity("cpu", "500m", in.CPU, minCPU, *maxLimits.CPU); err != nil {
		return out, err
	}
	return out, nil
}

func parseQuantity(name, example string, in *quantityString, lo, hi resource.Quantity) (*resource.Quantity, *apiError) {
	if in == nil {
		return nil, nil
	}
	s := string(*in)
	if len(s) > 40 {
		return nil, unprocessable("limits.%s is not a quantity such as %q", name, example)
	}
	q, err := resource.ParseQuantity(strings.TrimSpace(s))
	if err != nil {
		return nil, unprocessable("limits.%s %q is not a quantity such as %q", name, s, example)
	}
	if q.Cmp(lo) < 0 {
		return nil, unprocessable("limits.%s %s is below the minimum of %s", name, s, lo.String())
	}
	if q.Cmp(hi) > 0 {
		return nil, unprocessable("limits.%s %s is above the maximum of %s", name, s, hi.String())
	}
	return &q, nil
}
