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
	"strconv"
	"strings"
	"unicode/utf8"

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
	Limits   *limitsInput `json:"limits"`
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
		return spec, badRequest(`field "code" is required: the Python program to run, as a string`)
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
		return spec, unprocessable(`field "code" has a NUL character (\u0000) at byte %d; Python source cannot contain one`, at)
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
	spec.Language = execv1alpha1.LanguagePython
	if b.Language != nil {
		switch lang := strings.ToLower(strings.TrimSpace(*b.Language)); lang {
		case "", "python", "python3":
		default:
			return spec, unprocessable(`unknown language %q: the only language is "python"`, echo(lang, echoLimit))
		}
	}
	return spec, nil
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
