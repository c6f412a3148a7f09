package runner

import (
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

type chunk struct {
	s    stream
	data string
}

func out(data string) chunk  { return chunk{streamStdout, data} }
func errw(data string) chunk { return chunk{streamStderr, data} }

func TestCollector(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		limit  int
		writes []chunk
		want   collected
	}{
		{
			name:   "nothing",
			limit:  10,
			writes: nil,
			want:   collected{},
		},
		{
			name:   "empty writes change nothing",
			limit:  1,
			writes: []chunk{out(""), out("a"), errw(""), out("")},
			want:   collected{stdout: "a", combined: "a"},
		},
		{
			name:   "under the limit",
			limit:  10,
			writes: []chunk{out("abc"), errw("de"), out("f")},
			want:   collected{stdout: "abcf", stderr: "de", combined: "abcdef"},
		},
		{
			name:   "exactly the limit is not over it",
			limit:  6,
			writes: []chunk{out("abc"), errw("def")},
			want:   collected{stdout: "abc", stderr: "def", combined: "abcdef"},
		},
		{
			name:   "one byte over in one write",
			limit:  6,
			writes: []chunk{out("abc"), errw("defg")},
			want:   collected{stdout: "abc", stderr: "def", combined: "abcdef", stderrTruncated: true, exceeded: true},
		},
		{
			name:   "one byte over in the next write, on the other stream",
			limit:  6,
			writes: []chunk{out("abc"), errw("def"), out("g")},
			want:   collected{stdout: "abc", stderr: "def", combined: "abcdef", stdoutTruncated: true, exceeded: true},
		},
		{
			name:   "both streams lose bytes",
			limit:  4,
			writes: []chunk{out("abcdef"), errw("x"), out("more")},
			want: collected{stdout: "abcd", combined: "abcd",
				stdoutTruncated: true, stderrTruncated: true, exceeded: true},
		},
		{
			name:   "a stream that writes nothing more is not truncated",
			limit:  3,
			writes: []chunk{errw("e"), out("abcdef")},
			want:   collected{stdout: "ab", stderr: "e", combined: "eab", stdoutTruncated: true, exceeded: true},
		},
		{
			name:   "limit of one",
			limit:  1,
			writes: []chunk{out("ab")},
			want:   collected{stdout: "a", combined: "a", stdoutTruncated: true, exceeded: true},
		},
		{
			name:   "two-byte character cut by the limit is dropped whole",
			limit:  2,
			writes: []chunk{out("aé")}, // é is 2 bytes
			want:   collected{stdout: "a", combined: "a", stdoutTruncated: true, exceeded: true},
		},
		{
			name:   "character ending exactly at the limit is kept",
			limit:  3,
			writes: []chunk{out("aé"), out("b")},
			want:   collected{stdout: "aé", combined: "aé", stdoutTruncated: true, exceeded: true},
		},
		{
			name:   "four-byte character cut after one byte",
			limit:  2,
			writes: []chunk{out("a🌍")},
			want:   collected{stdout: "a", combined: "a", stdoutTruncated: true, exceeded: true},
		},
		{
			name:   "four-byte character cut after three bytes",
			limit:  4,
			writes: []chunk{out("a🌍")},
			want:   collected{stdout: "a", combined: "a", stdoutTruncated: true, exceeded: true},
		},
		{
			name:   "character split at the limit across writes",
			limit:  3,
			writes: []chunk{out("ab\xe4"), out("\xb8\x96")}, // 世 = e4 b8 96
			want:   collected{stdout: "ab", combined: "ab", stdoutTruncated: true, exceeded: true},
		},
		{
			name:   "character split across writes under the limit",
			limit:  100,
			writes: []chunk{out("\xe4"), out("\xb8"), out("\x96!")},
			want:   collected{stdout: "世!", combined: "世!"},
		},
		{
			name:   "other stream's bytes do not land inside a split character",
			limit:  100,
			writes: []chunk{out("a\xc3"), errw("E"), out("\xa9b")},
			want:   collected{stdout: "aéb", stderr: "E", combined: "aEéb"},
		},
		{
			name:   "both streams split a character at once",
			limit:  100,
			writes: []chunk{out("\xe4\xb8"), errw("\xc3"), errw("\xa9"), out("\x96")},
			want:   collected{stdout: "世", stderr: "é", combined: "é世"},
		},
		{
			name:   "invalid bytes become U+FFFD",
			limit:  100,
			writes: []chunk{out("a\xffb\xc3(c")},
			want:   collected{stdout: "a\uFFFDb\uFFFD(c", combined: "a\uFFFDb\uFFFD(c"},
		},
		{
			name:   "incomplete character at the end of an untruncated stream",
			limit:  100,
			writes: []chunk{out("ok\xe4\xb8"), errw("e")},
			want:   collected{stdout: "ok\uFFFD", stderr: "e", combined: "oke\uFFFD"},
		},
		{
			name:   "invalid byte at the limit is not mistaken for a cut character",
			limit:  2,
			writes: []chunk{out("a\xff\xfe")},
			want:   collected{stdout: "a\uFFFD", combined: "a\uFFFD", stdoutTruncated: true, exceeded: true},
		},
		{
			name:   "overlong encoding start at the limit is invalid, kept as U+FFFD",
			limit:  2,
			writes: []chunk{out("a\xc0\x80")},
			want:   collected{stdout: "a\uFFFD", combined: "a\uFFFD", stdoutTruncated: true, exceeded: true},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCollector(tt.limit)
			for _, w := range tt.writes {
				c.write(w.s, []byte(w.data))
			}
			got := c.result()
			if got != tt.want {
				t.Errorf("got  %#v\nwant %#v", got, tt.want)
			}
			if isClosed(c.exceededCh) != tt.want.exceeded {
				t.Errorf("exceededCh closed = %v, want %v", isClosed(c.exceededCh), tt.want.exceeded)
			}
			if len(got.stdout)+len(got.stderr) > tt.limit*3 || len(got.combined) != len(got.stdout)+len(got.stderr) {
				t.Errorf("inconsistent lengths: stdout %d + stderr %d, combined %d", len(got.stdout), len(got.stderr), len(got.combined))
			}
			// result does not change what it reads.
			if again := c.result(); again != got {
				t.Errorf("second result differs: %#v", again)
			}
		})
	}
}

func TestCollectorKeepsExactlyTheLimit(t *testing.T) {
	t.Parallel()
	for _, limit := range []int{1, 2, 999, 1000, 1001, 65536} {
		c := newCollector(limit)
		line := strings.Repeat("x", 999) + "\n"
		for range 200 {
			c.write(streamStdout, []byte(line))
		}
		got := c.result()
		want := strings.Repeat(line, 200)
		if limit < len(want) {
			want = want[:limit]
		}
		if got.stdout != want || got.combined != want || got.stdoutTruncated != (limit < 200000) || got.stderrTruncated {
			t.Errorf("limit %d: kept %d bytes (want %d), truncated %v", limit, len(got.stdout), len(want), got.stdoutTruncated)
		}
	}
}

func TestIncompleteTail(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want int
	}{
		{"", 0},
		{"abc", 0},
		{"é", 0},
		{"a\xc3", 1},
		{"\xe4", 1},
		{"\xe4\xb8", 2},
		{"世", 0},
		{"\xf0\x9f\x8c", 3},
		{"🌍", 0},
		{"a\x80", 0},    // stray continuation byte: invalid, not incomplete
		{"\xff", 0},     // never valid
		{"\xc0", 0},     // overlong lead byte
		{"\xe0\x80", 0}, // E0 needs A0..BF next
		{"\xed\xa0", 0}, // surrogate
		{"\xf4\x90", 0}, // above U+10FFFF
		{"\xf0\x9f\x8c\x8d", 0},
		{"\x8c\x8c\x8c", 0},
	}
	for _, tt := range tests {
		if got := incompleteTail([]byte(tt.in)); got != tt.want {
			t.Errorf("incompleteTail(%q) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

// startPipeReader makes the two output pipes and starts a pipeReader on their read ends
// into a collector of 1000 bytes. It returns the write ends, for the test to write to
// and to close.
func startPipeReader(t *testing.T) (*collector, *pipeReader, [2]int) {
	t.Helper()
	var r, w [2]int
	for i := range r {
		var err error
		if r[i], w[i], err = outputPipe(); err != nil {
			t.Fatal(err)
		}
	}
	c := newCollector(1000)
	p, err := newPipeReader(c, r)
	if err != nil {
		t.Fatal(err)
	}
	return c, p, w
}

// TestPipeReaderOrder checks that bytes written to the two pipes are read in the order
// the pipes became readable, even when both are readable by the time the reader runs.
func TestPipeReaderOrder(t *testing.T) {
	t.Parallel()
	c, p, w := startPipeReader(t)
	write := func(s stream, data string) {
		if _, err := unix.Write(w[s], []byte(data)); err != nil {
			t.Fatal(err)
		}
	}
	write(streamStderr, "1")
	write(streamStdout, "2")
	time.Sleep(30 * time.Millisecond)
	write(streamStdout, "3")
	write(streamStderr, "4")
	time.Sleep(30 * time.Millisecond)
	unix.Close(w[0])
	unix.Close(w[1])
	start := time.Now()
	if err := p.stop(time.Now().Add(30 * time.Second)); err != nil {
		t.Fatal(err)
	}
	// Not a timing: a reader that missed EOF would wait for the 30 s deadline.
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("the reader took %v to see EOF", d)
	}
	got := c.result()
	if got.combined != "1234" || got.stdout != "23" || got.stderr != "14" {
		t.Errorf("got %#v", got)
	}
}

// TestPipeReaderDeadline checks that a writer that never closes cannot hold the reader
// past its deadline.
func TestPipeReaderDeadline(t *testing.T) {
	t.Parallel()
	c, p, w := startPipeReader(t)
	defer unix.Close(w[0])
	defer unix.Close(w[1])
	if _, err := unix.Write(w[0], []byte("kept")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	start := time.Now()
	if err := p.stop(time.Now().Add(100 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	// Not a timing: a reader that ignored its deadline would wait for the writer forever.
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("stop took %v, past its 100ms deadline", d)
	}
	if got := c.result().stdout; got != "kept" {
		t.Errorf("stdout = %q", got)
	}
}
