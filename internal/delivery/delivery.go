// Package delivery is the wire format of a warm pool member's one request: the program,
// its stdin and its limits, which the operator writes to the member's stdin over
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
	"strconv"
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
	// MaxFrame bounds a frame's JSON: source and stdin JSON-escaped (at most 6 bytes per
	// input byte) fit with room to spare.
	MaxFrame = 1 << 20
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
type Request struct {
	// Source is the program, at most MaxSourceBytes of UTF-8.
	Source string `json:"source"`
	// Stdin is the program's standard input, at most MaxStdinBytes of UTF-8.
	Stdin string `json:"stdin,omitempty"`
	// TimeoutSeconds is the program's wall-clock limit, at least 1.
	TimeoutSeconds int32 `json:"timeoutSeconds"`
	// MemoryBytes is the limit on the program's memory, at least 1.
	MemoryBytes int64 `json:"memoryBytes"`
	// Run names the CodeRun ("namespace/name"), for the runner's logs only.
	Run string `json:"run,omitempty"`
}

// fields are the JSON names of Request's fields, and whether each is required.
var fields = map[string]bool{"source": true, "stdin": false, "timeoutSeconds": true, "memoryBytes": true, "run": false}

// Validate checks the bounds of every field.
func (r Request) Validate() error {
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
	frame := make([]byte, 0, len(Magic)+len(" 1048576\n")+len(payload))
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
