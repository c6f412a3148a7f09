package delivery

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
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
		if err != nil || !reflect.DeepEqual(got, hello) {
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
	if got, err := Read(iotest.OneByteReader(in)); err != nil || !reflect.DeepEqual(got, hello) {
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
		Source: strings.Repeat("\x01", MaxSourceBytes-MaxFiles), Stdin: strings.Repeat("\x1f", MaxStdinBytes),
		TimeoutSeconds: 1<<31 - 1, MemoryBytes: 1<<63 - 1, Run: strings.Repeat("n", MaxRunBytes),
		CompileTimeoutSeconds: 1<<31 - 1, CompileMemoryBytes: 1<<63 - 1,
	}
	for i := range MaxFiles {
		r.Files = append(r.Files, File{Name: fmt.Sprintf("%0*d", MaxFileNameBytes, i), Content: "\x02"})
	}
	for range MaxArgs {
		r.Args = append(r.Args, strings.Repeat("\x03", MaxArgBytes))
	}
	frame, err := Encode(r)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := Read(bytes.NewReader(frame)); err != nil || !reflect.DeepEqual(got, r) {
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
	for _, prefix := range []string{"x", "coderun-request/v2", Magic + " " + fmt.Sprint(MaxFrame+1), Magic + " 12345678"} {
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
		frameOf(`{"source":"","files":[{"name":"main.c","content":"int main(){}"},{"name":"a.h","content":""}],"args":["-v",""],"timeoutSeconds":1,"memoryBytes":1,"compileTimeoutSeconds":10,"compileMemoryBytes":1}`),
		frameOf(`{"source":"","files":[{"name":"../x","content":""}],"timeoutSeconds":1,"memoryBytes":1}`),
		frameOf(`{"source":"","files":[null,{"name":"a","content":"","extra":1}],"args":[null],"timeoutSeconds":1,"memoryBytes":1}`),
		Magic + " " + fmt.Sprint(MaxFrame) + "\n{",
		Magic + " " + fmt.Sprint(MaxFrame+1) + "\n",
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
			if !reflect.DeepEqual(req, Request{}) {
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
		if err != nil || !reflect.DeepEqual(again, req) {
			t.Fatalf("round trip: %+v, %v; want %+v", again, err, req)
		}
	})
}

func TestFilesAndArgs(t *testing.T) {
	req := Request{
		Files:          []File{{Name: "main.c", Content: "int main(void) { return 0; }\n"}, {Name: "util.h", Content: ""}},
		Args:           []string{"a b", "", "ü"},
		TimeoutSeconds: 5, MemoryBytes: 1 << 20, CompileTimeoutSeconds: 30, CompileMemoryBytes: 512 << 20,
	}
	frame, err := Encode(req)
	if err != nil {
		t.Fatal(err)
	}
	if want := `"files":[{"name":"main.c","content":"int main(void) { return 0; }\n"},{"name":"util.h","content":""}],"args":["a b","","ü"]`; !strings.Contains(string(frame), want) {
		t.Errorf("frame %s\nwant it to hold %s", frame, want)
	}
	if got, err := Read(bytes.NewReader(frame)); err != nil || !reflect.DeepEqual(got, req) {
		t.Errorf("Read = %+v, %v", got, err)
	}
	// A request of the built-in python's (no files, no args) reads as before.
	if got, err := Read(strings.NewReader(frameOf(`{"source":"print(1)","timeoutSeconds":5,"memoryBytes":1000}`))); err != nil || got.Files != nil || got.Args != nil {
		t.Errorf("Read = %+v, %v", got, err)
	}

	file := func(name string) []File { return []File{{Name: name, Content: "x"}} }
	many := func(n int) []File {
		var fs []File
		for i := range n {
			fs = append(fs, File{Name: fmt.Sprint("f", i)})
		}
		return fs
	}
	for name, change := range map[string]func(*Request){
		"dot dot":           func(r *Request) { r.Files = file("..") },
		"parent path":       func(r *Request) { r.Files = file("../etc/passwd") },
		"slash":             func(r *Request) { r.Files = file("a/b") },
		"hidden":            func(r *Request) { r.Files = file(".bashrc") },
		"dash":              func(r *Request) { r.Files = file("-rf") },
		"empty name":        func(r *Request) { r.Files = file("") },
		"long name":         func(r *Request) { r.Files = file(strings.Repeat("n", MaxFileNameBytes+1)) },
		"twice":             func(r *Request) { r.Files = append(file("a"), file("a")...) },
		"too many":          func(r *Request) { r.Files = many(MaxFiles + 1) },
		"content not UTF-8": func(r *Request) { r.Files = []File{{Name: "a", Content: "\xff"}} },
		"files too large":   func(r *Request) { r.Files = []File{{Name: "a", Content: strings.Repeat("x", MaxSourceBytes+1)}} },
		"source + files": func(r *Request) {
			r.Source, r.Files = strings.Repeat("x", 40000), []File{{Name: "a", Content: strings.Repeat("y", 30000)}}
		},
		"too many args":       func(r *Request) { r.Args = make([]string, MaxArgs+1) },
		"long arg":            func(r *Request) { r.Args = []string{strings.Repeat("a", MaxArgBytes+1)} },
		"NUL in an arg":       func(r *Request) { r.Args = []string{"a\x00b"} },
		"negative compile":    func(r *Request) { r.CompileTimeoutSeconds = -1 },
		"negative compile mb": func(r *Request) { r.CompileMemoryBytes = -1 },
	} {
		r := req
		change(&r)
		if _, err := Encode(r); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Encode: %v, want ErrInvalid", name, err)
		}
	}
	for name, body := range map[string]string{
		"a null file":         `{"source":"","files":[null],"timeoutSeconds":1,"memoryBytes":1}`,
		"a file's extra key":  `{"source":"","files":[{"name":"a","content":"","mode":"0777"}],"timeoutSeconds":1,"memoryBytes":1}`,
		"a path as file name": `{"source":"","files":[{"name":"../../x","content":""}],"timeoutSeconds":1,"memoryBytes":1}`,
		"args not strings":    `{"source":"","args":[1],"timeoutSeconds":1,"memoryBytes":1}`,
		"null args":           `{"source":"","args":null,"timeoutSeconds":1,"memoryBytes":1}`,
	} {
		if got, err := Read(strings.NewReader(frameOf(body))); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Read = %+v, %v; want ErrInvalid", name, got, err)
		}
	}
}
