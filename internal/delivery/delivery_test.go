package delivery

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/coderun-dev/coderun/api/v1alpha1"
)

var hello = Request{Source: "print(input())\n", Stdin: "Ada\n", TimeoutSeconds: 10, MemoryBytes: 256 << 20, Run: "runs/hello"}

func TestBoundsMatchTheAPI(t *testing.T) {
	if MaxSourceBytes != v1alpha1.MaxSourceBytes || MaxStdinBytes != v1alpha1.MaxStdinBytes {
		t.Errorf("bounds %d, %d; the API's %d, %d", MaxSourceBytes, MaxStdinBytes, v1alpha1.MaxSourceBytes, v1alpha1.MaxStdinBytes)
	}
}

func TestEncodeRead(t *testing.T) {
	frame, err := Encode(hello)
	if err != nil {
		t.Fatal(err)
	}
	want := frameOf(`{"source":"print(input())\n","stdin":"Ada\n","timeoutSeconds":10,"memoryBytes":268435456,"run":"runs/hello"}`)
	if string(frame) != want {
		t.Errorf("frame %q\nwant  %q", frame, want)
	}
	if html, err := Encode(Request{Source: "<&>", TimeoutSeconds: 1, MemoryBytes: 1}); err != nil || !bytes.Contains(html, []byte(`"<&>"`)) {
		t.Errorf("HTML-escaped: %q, %v", html, err)
	}
	for name, r := range map[string]io.Reader{
		"whole":         bytes.NewReader(frame),
		"one byte each": iotest.OneByteReader(bytes.NewReader(frame)),
		"half":          iotest.HalfReader(bytes.NewReader(frame)),
	} {
		got, err := Read(r)
		if err != nil || got != hello {
			t.Errorf("%s: Read = %+v, %v", name, got, err)
		}
	}
}

// TestReadStopsAtTheFrame: what follows a frame stays unread.
func TestReadStopsAtTheFrame(t *testing.T) {
	frame, err := Encode(hello)
	if err != nil {
		t.Fatal(err)
	}
	second, err := Encode(Request{Source: "print(2)", TimeoutSeconds: 1, MemoryBytes: 1})
	if err != nil {
		t.Fatal(err)
	}
	in := bytes.NewReader(append(append([]byte(nil), frame...), second...))
	if got, err := Read(iotest.OneByteReader(in)); err != nil || got != hello {
		t.Fatalf("first: %+v, %v", got, err)
	}
	if in.Len() != len(second) {
		t.Fatalf("%d bytes left, want %d", in.Len(), len(second))
	}
	if got, err := Read(in); err != nil || got.Source != "print(2)" {
		t.Fatalf("second: %+v, %v", got, err)
	}
}

// TestLargest: the largest request, of characters JSON escapes the most, fits a frame.
func TestLargest(t *testing.T) {
	r := Request{
		Source: strings.Repeat("\x01", MaxSourceBytes), Stdin: strings.Repeat("\x1f", MaxStdinBytes),
		TimeoutSeconds: 1<<31 - 1, MemoryBytes: 1<<63 - 1, Run: strings.Repeat("n", MaxRunBytes),
	}
	frame, err := Encode(r)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := Read(bytes.NewReader(frame)); err != nil || got != r {
		t.Fatalf("Read: %v", err)
	}
	if len(frame) > MaxFrame {
		t.Errorf("frame of %d bytes", len(frame))
	}
}

func TestEncodeRefuses(t *testing.T) {
	for name, r := range map[string]Request{
		"source too long": {Source: strings.Repeat("x", MaxSourceBytes+1), TimeoutSeconds: 1, MemoryBytes: 1},
		"stdin too long":  {Source: "x", Stdin: strings.Repeat("x", MaxStdinBytes+1), TimeoutSeconds: 1, MemoryBytes: 1},
		"run too long":    {Source: "x", Run: strings.Repeat("x", MaxRunBytes+1), TimeoutSeconds: 1, MemoryBytes: 1},
		"invalid UTF-8":   {Source: "x\xff", TimeoutSeconds: 1, MemoryBytes: 1},
		"zero timeout":    {Source: "x", MemoryBytes: 1},
		"negative memory": {Source: "x", TimeoutSeconds: 1, MemoryBytes: -1},
	} {
		if _, err := Encode(r); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
}

// frameOf returns a frame of the given JSON with a correct header.
func frameOf(body string) string { return fmt.Sprintf("%s %d\n%s", Magic, len(body), body) }

func TestReadRefuses(t *testing.T) {
	const ok = `{"source":"print(1)","timeoutSeconds":5,"memoryBytes":1000}`
	if _, err := Read(strings.NewReader(frameOf(ok))); err != nil {
		t.Fatalf("the valid frame: %v", err)
	}
	tests := []struct {
		name  string
		input string
		want  error
	}{
		{"nothing", "", ErrNoRequest},
		{"part of the magic", "coderun-req", ErrIncomplete},
		{"magic without count", Magic + " ", ErrIncomplete},
		{"count without newline", Magic + " 12", ErrIncomplete},
		{"short body", frameOf(ok)[:len(frameOf(ok))-1], ErrIncomplete},
		{"header only", Magic + " 10\n", ErrIncomplete},
		{"garbage", "hello there\n", ErrBadHeader},
		{"HTTP", "GET / HTTP/1.1\r\n", ErrBadHeader},
		{"other version", "coderun-request/v2 2\n{}", ErrBadHeader},
		{"two spaces", Magic + "  2\n{}", ErrBadHeader},
		{"tab", Magic + "\t2\n{}", ErrBadHeader},
		{"no count", Magic + " \n", ErrBadHeader},
		{"sign", Magic + " +2\n{}", ErrBadHeader},
		{"negative", Magic + " -2\n{}", ErrBadHeader},
		{"leading zero", Magic + " 02\n{}", ErrBadHeader},
		{"zero", Magic + " 0\n", ErrBadHeader},
		{"CRLF", Magic + " 2\r\n{}", ErrBadHeader},
		{"hex", Magic + " 0x10\n", ErrBadHeader},
		{"one over the bound", fmt.Sprintf("%s %d\n", Magic, MaxFrame+1), ErrTooLarge},
		{"many digits", Magic + " 99999999999999999999999\n", ErrTooLarge},
		{"not JSON", frameOf("print(1)"), ErrInvalid},
		{"array", frameOf(`[1]`), ErrInvalid},
		{"string", frameOf(`"x"`), ErrInvalid},
		{"unknown field", frameOf(`{"source":"x","timeoutSeconds":5,"memoryBytes":1,"cpu":2}`), ErrInvalid},
		{"field in another case", frameOf(`{"Source":"x","timeoutSeconds":5,"memoryBytes":1}`), ErrInvalid},
		{"duplicate field", frameOf(`{"source":"x","source":"y","timeoutSeconds":5,"memoryBytes":1}`), ErrInvalid},
		{"null field", frameOf(`{"source":null,"timeoutSeconds":5,"memoryBytes":1}`), ErrInvalid},
		{"missing source", frameOf(`{"timeoutSeconds":5,"memoryBytes":1}`), ErrInvalid},
		{"missing timeout", frameOf(`{"source":"x","memoryBytes":1}`), ErrInvalid},
		{"missing memory", frameOf(`{"source":"x","timeoutSeconds":5}`), ErrInvalid},
		{"zero timeout", frameOf(`{"source":"x","timeoutSeconds":0,"memoryBytes":1}`), ErrInvalid},
		{"negative memory", frameOf(`{"source":"x","timeoutSeconds":1,"memoryBytes":-1}`), ErrInvalid},
		{"timeout overflows int32", frameOf(`{"source":"x","timeoutSeconds":4294967296,"memoryBytes":1}`), ErrInvalid},
		{"fractional timeout", frameOf(`{"source":"x","timeoutSeconds":1.5,"memoryBytes":1}`), ErrInvalid},
		{"timeout as a string", frameOf(`{"source":"x","timeoutSeconds":"5","memoryBytes":1}`), ErrInvalid},
		{"invalid UTF-8", frameOf("{\"source\":\"\xff\",\"timeoutSeconds\":5,\"memoryBytes\":1}"), ErrInvalid},
		{"trailing data", frameOf(ok + `{}`), ErrInvalid},
		{"two objects' worth of count", fmt.Sprintf("%s %d\n%s%s", Magic, 2*len(ok), ok, ok), ErrInvalid},
		{"source too long", frameOf(`{"source":"` + strings.Repeat("x", MaxSourceBytes+1) + `","timeoutSeconds":5,"memoryBytes":1}`), ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for name, r := range map[string]io.Reader{
				"whole":         strings.NewReader(tt.input),
				"one byte each": iotest.OneByteReader(strings.NewReader(tt.input)),
			} {
				got, err := Read(r)
				if !errors.Is(err, tt.want) {
					t.Errorf("%s: Read = %+v, %v; want %v", name, got, err, tt.want)
				}
			}
		})
	}
}

// TestReadFailsFast: a bad header byte, or a count over the bound, is refused without
// waiting for the rest, which may never come.
func TestReadFailsFast(t *testing.T) {
	for _, prefix := range []string{"x", "coderun-request/v2", Magic + " 1048577", Magic + " 12345678"} {
		r := io.MultiReader(strings.NewReader(prefix), blockingReader{t})
		if _, err := Read(r); !errors.Is(err, ErrBadHeader) && !errors.Is(err, ErrTooLarge) {
			t.Errorf("%q: %v", prefix, err)
		}
	}
}

type blockingReader struct{ t *testing.T }

func (b blockingReader) Read([]byte) (int, error) {
	b.t.Error("read past a refused header")
	return 0, io.EOF
}

func TestReadError(t *testing.T) {
	boom := errors.New("boom")
	for _, input := range []string{"", "coderun", Magic + " 20\n{\"source\":"} {
		_, err := Read(io.MultiReader(strings.NewReader(input), iotest.ErrReader(boom)))
		if !errors.Is(err, boom) || errors.Is(err, ErrIncomplete) {
			t.Errorf("after %q: %v", input, err)
		}
	}
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

func FuzzRead(f *testing.F) {
	for _, seed := range []string{
		frameOf(`{"source":"print(1)","timeoutSeconds":5,"memoryBytes":1000}`),
		frameOf(`{"source":"x","stdin":"y","timeoutSeconds":1,"memoryBytes":1,"run":"a/b"}`) + "trailing",
		frameOf(`{"source":"x","source":"y"}`),
		frameOf(`{"source":"\ud800","timeoutSeconds":1,"memoryBytes":1}`),
		Magic + " 1048576\n{",
		Magic + " 1048577\n",
		Magic + " 0\n",
		"",
		"garbage\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		in := &countingReader{r: bytes.NewReader(data)}
		req, err := Read(in)
		if err != nil {
			if req != (Request{}) {
				t.Errorf("a request with an error: %+v", req)
			}
			return
		}
		header, _, _ := bytes.Cut(data, []byte("\n"))
		body := in.n - len(header) - 1
		if body > MaxFrame || body < 0 {
			t.Fatalf("accepted a frame of %d bytes", body)
		}
		if err := req.Validate(); err != nil {
			t.Fatalf("accepted an invalid request: %v", err)
		}
		// What Read accepts, Encode writes back and Read reads the same.
		frame, err := Encode(req)
		if err != nil {
			t.Fatalf("Encode of an accepted request: %v", err)
		}
		again, err := Read(bytes.NewReader(frame))
		if err != nil || again != req {
			t.Fatalf("round trip: %+v, %v; want %+v", again, err, req)
		}
	})
}
