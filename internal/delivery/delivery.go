// Package delivery is the wire format of a warm pool member's one request: the program
// (a source, or files), its stdin, its args and its limits, which the operator writes to the member's stdin over
// pods/attach and the runner (cmd/runner --request=stdin) reads.
//
// A request is one frame: a header line
//
//	coderun-request/v1 <n>\n
//
// where <n> is a decimal byte count (no sign, no leading zeros, at most MaxFrame), then
// exactly n bytes of JSON: one object with the fields of Request and no others.
//
// The reader runs next to untrusted code and reads what arrives on a pod's stdin, so Read
// treats its input as untrusted: it never reads past the frame, never allocates more
// than MaxFrame, and refuses anything but one well-formed, valid request.
package delivery

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Magic starts a frame's header line; it carries the format version.
const Magic = "coderun-request/v1"

// Bounds of a request. MaxSourceBytes and MaxStdinBytes equal api/v1alpha1's (a test
// checks it); this package does not import the API, to keep the runner small.
const (
	// MaxSourceBytes bounds Request.Source, in bytes of UTF-8.
	MaxSourceBytes = 65536
	// MaxStdinBytes bounds Request.Stdin, in bytes of UTF-8.
	MaxStdinBytes = 65536
	// MaxRunBytes bounds Request.Run (namespace/name: 63 + 1 + 253 bytes).
	MaxRunBytes = 317
	// MaxFiles bounds Request.Files, as the API bounds spec.files (plus the main file).
	MaxFiles = 17
	// MaxFileNameBytes bounds a file's name, as the API does.
	MaxFileNameBytes = 64
	// MaxArgs and MaxArgBytes bound Request.Args, as the API bounds spec.args.
	MaxArgs     = 32
	MaxArgBytes = 4096
	// MaxFrame bounds a frame's JSON: source, files, stdin and args JSON-escaped (at most
	// 6 bytes per input byte) fit with room to spare.
	MaxFrame = 2 << 20
)

// Errors that Read returns (wrapped, with details); test them with errors.Is.
var (
	// ErrNoRequest: the input ended before the first byte of a frame.
	ErrNoRequest = errors.New("no request: the input ended before any byte of it")
	// ErrIncomplete: the input ended inside a frame (its header or its n bytes).
	ErrIncomplete = errors.New("the request was incomplete")
	// ErrBadHeader: the header line is not "coderun-request/v1 <n>".
	ErrBadHeader = errors.New("bad request header")
	// ErrTooLarge: the header announces more than MaxFrame bytes.
	ErrTooLarge = errors.New("the request is too large")
	// ErrInvalid: the frame's bytes are not a valid request.
	ErrInvalid = errors.New("invalid request")
)

// Request is the one program a warm member runs, and its limits, which must fit the
// member's shape.
//
// A member whose runner has a run command (a Runtime's) gets the program as Files, its
// main file among them under the Runtime's sourceFile, and Source empty; the built-in
// python's members get Source.
type Request struct {
	// Source is the program, at most MaxSourceBytes of UTF-8 (together with Files).
	Source string `json:"source"`
	// Files are written into the program's working directory, at most MaxFiles, each
	// with a distinct name that FileNamePattern allows.
	Files []File `json:"files,omitempty"`
	// Args follow the program's command, at most MaxArgs of at most MaxArgBytes each.
	Args []string `json:"args,omitempty"`
	// Stdin is the program's standard input, at most MaxStdinBytes of UTF-8.
	Stdin string `json:"stdin,omitempty"`
	// TimeoutSeconds is the program's wall-clock limit, at least 1.
	TimeoutSeconds int32 `json:"timeoutSeconds"`
	// MemoryBytes is the limit on the program's memory, at least 1.
	MemoryBytes int64 `json:"memoryBytes"`
	// Run names the CodeRun ("namespace/name"), for the runner's logs only.
	Run string `json:"run,omitempty"`
	// CompileTimeoutSeconds and CompileMemoryBytes are the compile step's limits, for a
	// member with a compile command; 0 (left out) means the member's own.
	CompileTimeoutSeconds int32 `json:"compileTimeoutSeconds,omitempty"`
	CompileMemoryBytes    int64 `json:"compileMemoryBytes,omitempty"`
}

// File is one file of a program.
type File struct {
	// Name is the file's name in the working directory (FileNamePattern).
	Name string `json:"name"`
	// Content is the file's text, UTF-8.
	Content string `json:"content"`
}

// FileNamePattern is the API's pattern of a file name: no '/', not starting with '.'
// or '-'.
var FileNamePattern = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]*$`)

// fields are the JSON names of Request's fields, and whether each is required.
var fields = map[string]bool{
	"source": true, "files": false, "args": false, "stdin": false, "timeoutSeconds": true, "memoryBytes": true,
	"run": false, "compileTimeoutSeconds": false, "compileMemoryBytes": false,
}

// Validate checks the bounds of every field.
func (r Request) Validate() error {
	if err := r.validateFilesAndArgs(); err != nil {
		return err
	}
	switch {
	case len(r.Source) > MaxSourceBytes:
		return fmt.Errorf("source is %d bytes, more than %d", len(r.Source), MaxSourceBytes)
	case len(r.Stdin) > MaxStdinBytes:
		return fmt.Errorf("stdin is %d bytes, more than %d", len(r.Stdin), MaxStdinBytes)
	case len(r.Run) > MaxRunBytes:
		return fmt.Errorf("run is %d bytes, more than %d", len(r.Run), MaxRunBytes)
	case !utf8.ValidString(r.Source) || !utf8.ValidString(r.Stdin) || !utf8.ValidString(r.Run):
		return errors.New("a field is not valid UTF-8")
	case r.TimeoutSeconds < 1:
		return fmt.Errorf("timeout of %d seconds is less than 1", r.TimeoutSeconds)
	case r.MemoryBytes < 1:
		return fmt.Errorf("memory limit of %d bytes is less than 1", r.MemoryBytes)
	case r.CompileTimeoutSeconds < 0:
		return fmt.Errorf("compile timeout of %d seconds is negative", r.CompileTimeoutSeconds)
	case r.CompileMemoryBytes < 0:
		return fmt.Errorf("compile memory limit of %d bytes is negative", r.CompileMemoryBytes)
	}
	return nil
}

// validateFilesAndArgs checks Files (names, count, and with Source at most
// MaxSourceBytes together) and Args.
func (r Request) validateFilesAndArgs() error {
	if len(r.Files) > MaxFiles {
		return fmt.Errorf("%d files, more than %d", len(r.Files), MaxFiles)
	}
	total := len(r.Source)
	seen := make(map[string]bool, len(r.Files))
	for _, f := range r.Files {
		switch {
		case len(f.Name) > MaxFileNameBytes || !FileNamePattern.MatchString(f.Name):
			return fmt.Errorf("file name %q is not allowed (at most %d of %s)", f.Name, MaxFileNameBytes, FileNamePattern)
		case seen[f.Name]:
			return fmt.Errorf("file name %q appears twice", f.Name)
		case !utf8.ValidString(f.Content):
			return fmt.Errorf("file %q is not valid UTF-8", f.Name)
		}
		seen[f.Name] = true
		total += len(f.Content)
	}
	if total > MaxSourceBytes {
		return fmt.Errorf("source and files are %d bytes together, more than %d", total, MaxSourceBytes)
	}
	if len(r.Args) > MaxArgs {
		return fmt.Errorf("%d args, more than %d", len(r.Args), MaxArgs)
	}
	for i, a := range r.Args {
		switch {
		case len(a) > MaxArgBytes:
			return fmt.Errorf("arg %d is %d bytes, more than %d", i, len(a), MaxArgBytes)
		case !utf8.ValidString(a) || strings.ContainsRune(a, 0):
			// exec cannot pass a NUL byte.
			return fmt.Errorf("arg %d is not valid UTF-8 without NUL bytes", i)
		}
	}
	return nil
}

// Encode returns r as one frame, header included. It refuses a request that Validate
// refuses (JSON would silently replace invalid UTF-8).
func Encode(r Request) ([]byte, error) {
	if err := r.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	var body bytes.Buffer
	enc := json.NewEncoder(&body)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(r); err != nil {
		return nil, fmt.Errorf("encoding the request: %w", err)
	}
	payload := bytes.TrimSuffix(body.Bytes(), []byte("\n"))
	if len(payload) > MaxFrame {
		// Unreachable with the bounds above; kept so that a change to them cannot
		// produce a frame that Read refuses.
		return nil, fmt.Errorf("%w: %d bytes, more than %d", ErrTooLarge, len(payload), MaxFrame)
	}
	frame := make([]byte, 0, len(Magic)+len(" 2097152\n")+len(payload))
	frame = append(frame, Magic...)
	frame = append(frame, ' ')
	frame = strconv.AppendInt(frame, int64(len(payload)), 10)
	frame = append(frame, '\n')
	return append(frame, payload...), nil
}

// Read reads exactly one frame from r and returns its request. It reads the header one
// byte at a time and then exactly the frame's n bytes, so nothing after the frame is
// consumed. It fails fast: a header byte that cannot start a valid header is refused at
// once, without waiting for more input.
func Read(r io.Reader) (Request, error) {
	n, err := readHeader(r)
	if err != nil {
		return Request{}, err
	}
	payload := make([]byte, n)
	if got, err := io.ReadFull(r, payload); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return Request{}, fmt.Errorf("%w: %d of %d bytes arrived", ErrIncomplete, got, n)
		}
		return Request{}, fmt.Errorf("reading the request: %w", err)
	}
	return decode(payload)
}

// readHeader reads "coderun-request/v1 <n>\n" byte by byte and returns n.
func readHeader(r io.Reader) (int, error) {
	var b [1]byte
	read := 0
	next := func() (byte, error) {
		if _, err := io.ReadFull(r, b[:]); err != nil {
			if errors.Is(err, io.EOF) {
				if read == 0 {
					return 0, ErrNoRequest
				}
				return 0, fmt.Errorf("%w: the input ended in the header after %d bytes", ErrIncomplete, read)
			}
			return 0, fmt.Errorf("reading the request header: %w", err)
		}
		read++
		return b[0], nil
	}
	for i := 0; i < len(Magic)+1; i++ {
		want := byte(' ')
		if i < len(Magic) {
			want = Magic[i]
		}
		c, err := next()
		if err != nil {
			return 0, err
		}
		if c != want {
			return 0, fmt.Errorf("%w: byte %d is %q, want %q (the header is %q)", ErrBadHeader, i, c, want, Magic+" <n>")
		}
	}
	n, digits := 0, 0
	for {
		c, err := next()
		if err != nil {
			return 0, err
		}
		switch {
		case c == '\n' && digits > 0:
			if n == 0 {
				return 0, fmt.Errorf("%w: the byte count is 0", ErrBadHeader)
			}
			return n, nil
		case c < '0' || c > '9':
			return 0, fmt.Errorf("%w: %q in the byte count", ErrBadHeader, c)
		case digits == 1 && n == 0:
			return 0, fmt.Errorf("%w: the byte count has a leading zero", ErrBadHeader)
		}
		n = n*10 + int(c-'0')
		digits++
		// Refused as soon as the count passes the bound: n only grows.
		if n > MaxFrame {
			return 0, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, MaxFrame)
		}
	}
}

// decode checks and decodes a frame's JSON: one object, each field of Request at most
// once and by its exact name, none null, the required ones present, nothing after it.
// encoding/json alone would accept duplicates, names in another case and invalid UTF-8.
func decode(payload []byte) (Request, error) {
	invalid := func(format string, args ...any) (Request, error) {
		return Request{}, fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
	}
	if !utf8.Valid(payload) {
		return invalid("not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return invalid("not a JSON object")
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return invalid("%v", err)
		}
		key, _ := tok.(string)
		if _, known := fields[key]; !known {
			return invalid("unknown field %q", key)
		}
		if seen[key] {
			return invalid("field %q appears twice", key)
		}
		seen[key] = true
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			return invalid("field %q: %v", key, err)
		}
		if string(value) == "null" {
			return invalid("field %q is null", key)
		}
	}
	if _, err := dec.Token(); err != nil {
		return invalid("%v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return invalid("data after the JSON object")
	}
	for name, required := range fields {
		if required && !seen[name] {
			return invalid("field %q is missing", name)
		}
	}
	strict := json.NewDecoder(bytes.NewReader(payload))
	strict.DisallowUnknownFields()
	var req Request
	if err := strict.Decode(&req); err != nil {
		return invalid("%v", err)
	}
	if err := req.Validate(); err != nil {
		return invalid("%v", err)
	}
	return req, nil
}
