package report

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func sample() Report {
	return Report{
		ExitCode:        1,
		Reason:          NonZeroExit,
		Stdout:          "a <b> & \"c\"\n",
		Stderr:          "Traceback (most recent call last):\n  ...\nKeyError: 'x'\n",
		Output:          "a <b> & \"c\"\nTraceback (most recent call last):\n  ...\nKeyError: 'x'\n",
		WallTimeMicros:  12345,
		CPUTimeMicros:   6789,
		PeakMemoryBytes: 9 << 20,
	}
}

func TestEncodeParseRoundTrip(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("x", MaxOutputLimit)
	tests := []struct {
		name string
		r    Report
	}{
		{"zero", Report{Reason: Completed}},
		{"non-zero exit", sample()},
		{"signaled", Report{ExitCode: 139, Signal: "SIGSEGV", Reason: Signaled, Message: "killed by SIGSEGV"}},
		{"limits", Report{ExitCode: 137, Signal: "SIGKILL", Reason: OutputLimitExceeded, Message: "output limit of 10 bytes exceeded",
			Stdout: "0123456789", Output: "0123456789", StdoutTruncated: true, StderrTruncated: true}},
		{"unicode and controls", Report{Reason: Completed, Stdout: "héllo 世界 🌍 \uFFFD \x00\x01\x1b[31m\t\u2028", Output: "x"}},
		{"summary", sample().Summary()},
		{"largest output", Report{Reason: Completed, Stdout: big, Stderr: big, Output: big}},
		{"compiled", compiled()},
		{"compile error", compileError()},
		{"largest output and compile output", Report{Reason: Completed, Stdout: big, Stderr: big, Output: big,
			Compile: &Stage{Reason: Completed, Stdout: big, Stderr: big, Output: big}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			enc := Encode(tt.r)
			if bytes.ContainsAny(enc, "\n\r") {
				t.Errorf("Encode is not one line: %q", enc)
			}
			if !bytes.HasPrefix(enc, []byte(`{"coderun":"report/v1",`)) {
				t.Errorf("Encode does not start with the marker: %.60s", enc)
			}
			got, err := Parse(enc)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			want := tt.r
			want.Marker = Marker
			if !reflect.DeepEqual(got, want) {
				t.Errorf("round trip changed the report:\n got %+v\nwant %+v", got, want)
			}
			// Surrounding whitespace, as in a log line, is fine.
			if got2, err := Parse(append(append([]byte("  \n"), enc...), "\r\n"...)); err != nil || !reflect.DeepEqual(got2, got) {
				t.Errorf("Parse with whitespace: %v", err)
			}
		})
	}
}

func TestEncodeKeepsHTMLCharacters(t *testing.T) {
	t.Parallel()
	enc := Encode(Report{Reason: Completed, Output: "<a> & <b>"})
	if !bytes.Contains(enc, []byte(`"output":"<a> & <b>"`)) {
		t.Errorf("Encode escaped HTML: %s", enc)
	}
}

func TestParseRejects(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("m", 4097)
	tests := []struct {
		name  string
		input string
		noRep bool // the error is ErrNoReport
	}{
		{"empty", "", true},
		{"whitespace", " \n\t ", true},
		{"not JSON", "Hello, World!", false},
		{"JSON but no marker", `{"exitCode":0,"reason":"Completed"}`, true},
		{"wrong marker", `{"coderun":"report/v0","reason":"Completed"}`, true},
		{"unknown reason", `{"coderun":"report/v1","reason":"Exploded"}`, false},
		{"no reason", `{"coderun":"report/v1"}`, false},
		{"exit code too large", `{"coderun":"report/v1","reason":"NonZeroExit","exitCode":256}`, false},
		{"negative exit code", `{"coderun":"report/v1","reason":"NonZeroExit","exitCode":-1}`, false},
		{"negative wall time", `{"coderun":"report/v1","reason":"Completed","wallTimeMicros":-1}`, false},
		{"negative memory", `{"coderun":"report/v1","reason":"Completed","peakMemoryBytes":-5}`, false},
		{"long signal", `{"coderun":"report/v1","reason":"Signaled","signal":"SIGVERYLONGNAME123"}`, false},
		{"long message", `{"coderun":"report/v1","reason":"SystemError","message":"` + long + `"}`, false},
		{"wrong type", `{"coderun":"report/v1","reason":"Completed","exitCode":"0"}`, false},
		{"fractional exit code", `{"coderun":"report/v1","reason":"Completed","exitCode":0.5}`, false},
		{"array", `[{"coderun":"report/v1","reason":"Completed"}]`, false},
		{"trailing data", `{"coderun":"report/v1","reason":"Completed"} {}`, false},
		{"output too long", `{"coderun":"report/v1","reason":"Completed","output":"` + strings.Repeat("o", MaxOutputLimit*4+1) + `"}`, false},
		{"too large", `{"coderun":"report/v1","reason":"Completed","output":"` + strings.Repeat(" ", MaxEncodedSize) + `"}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Parse([]byte(tt.input))
			if err == nil {
				t.Fatalf("Parse accepted %.80q as %+v", tt.input, r)
			}
			if errors.Is(err, ErrNoReport) != tt.noRep {
				t.Errorf("error %v: ErrNoReport %v, want %v", err, errors.Is(err, ErrNoReport), tt.noRep)
			}
			if r != (Report{}) {
				t.Errorf("Parse returned a report with its error: %+v", r)
			}
		})
	}
}

func TestFindInLog(t *testing.T) {
	t.Parallel()
	first := sample()
	last := Report{Reason: Completed, Stdout: "done\n", Output: "done\n"}
	firstLine, lastLine := string(Encode(first)), string(Encode(last))
	first.Marker, last.Marker = Marker, Marker
	tests := []struct {
		name string
		log  string
		want *Report
	}{
		{"only the report", lastLine + "\n", &last},
		{"no trailing newline", lastLine, &last},
		{"trailing blank lines", lastLine + "\n\n\n", &last},
		{"after other lines", "runner: starting\nsomething\n" + lastLine + "\n", &last},
		{"the last of two", firstLine + "\n" + lastLine + "\n", &last},
		{"lines after the report", firstLine + "\nrunner: a late diagnostic\n", &first},
		{"a broken report line is skipped", firstLine + "\n" + `{"coderun":"report/v1","reason":"Nope"}` + "\n", &first},
		{"a truncated report line is skipped", firstLine + "\n" + lastLine[:len(lastLine)/2] + "\n", &first},
		{"report on the first line", lastLine + "\nnoise\n", &last},
		{"empty", "", nil},
		{"newlines only", "\n\n", nil},
		{"no report", "hello\nworld\n", nil},
		{"marker text without a report", `"coderun" is a word` + "\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := FindInLog([]byte(tt.log))
			if tt.want == nil {
				if !errors.Is(err, ErrNoReport) {
					t.Errorf("got %+v, %v; want ErrNoReport", got, err)
				}
				return
			}
			if err != nil || got != *tt.want {
				t.Errorf("got %+v, %v; want %+v", got, err, *tt.want)
			}
		})
	}
}

func TestForTerminationMessage(t *testing.T) {
	t.Parallel()
	small := sample()
	if got := ForTerminationMessage(small); !bytes.Equal(got, Encode(small)) {
		t.Errorf("a small report is not written whole: %s", got)
	}
	large := sample()
	large.Output = strings.Repeat("y", 5000)
	large.Stdout = large.Output
	msg := ForTerminationMessage(large)
	if len(msg) > TerminationMessageLimit {
		t.Errorf("the termination message has %d bytes", len(msg))
	}
	got, err := Parse(msg)
	if err != nil {
		t.Fatal(err)
	}
	want := large.Summary()
	want.Marker = Marker
	if got != want || !got.OutputInLog || got.Output != "" || got.Stdout != "" || got.Stderr != "" {
		t.Errorf("got %+v, want the summary %+v", got, want)
	}
	// At the boundary: a report that encodes to exactly the limit is kept whole.
	edge := Report{Reason: Completed}
	edge.Output = strings.Repeat("z", TerminationMessageLimit-len(Encode(edge)))
	if n := len(Encode(edge)); n != TerminationMessageLimit {
		t.Fatalf("edge report encodes to %d bytes", n)
	}
	if got := ForTerminationMessage(edge); !bytes.Equal(got, Encode(edge)) {
		t.Error("a report of exactly the limit was summarized")
	}
	edge.Output += "z"
	if got, _ := Parse(ForTerminationMessage(edge)); !got.OutputInLog {
		t.Error("a report one byte over the limit was not summarized")
	}
}

func TestReasons(t *testing.T) {
	t.Parallel()
	// The wire names, written out: renaming a constant, or leaving one out of Reasons,
	// fails here.
	want := map[Reason]string{
		Completed:           "Completed",
		NonZeroExit:         "NonZeroExit",
		Signaled:            "Signaled",
		TimeLimitExceeded:   "TimeLimitExceeded",
		MemoryLimitExceeded: "MemoryLimitExceeded",
		OutputLimitExceeded: "OutputLimitExceeded",
		SystemError:         "SystemError",
		CompileError:        "CompileError",
	}
	if len(Reasons) != len(want) {
		t.Errorf("Reasons has %d entries, want %d: %v", len(Reasons), len(want), Reasons)
	}
	for r, name := range want {
		if string(r) != name {
			t.Errorf("reason %q, want %q", r, name)
		}
		if !r.Valid() {
			t.Errorf("%s is not valid", r)
		}
		rep := Report{Reason: r}
		if r == CompileError {
			rep = compileError()
		}
		if _, err := Parse(Encode(rep)); err != nil {
			t.Errorf("a report with reason %s does not parse: %v", r, err)
		}
	}
	// Rejected is the operator's alone: no runner reports it.
	for _, r := range []Reason{"", "completed", "Completed ", "OOMKilled", "Rejected"} {
		if r.Valid() {
			t.Errorf("%q is valid", r)
		}
	}
}

// FuzzParse checks that Parse never panics, and that whatever it accepts encodes back to
// a report that parses to the same value (and is then stable under Encode). FindInLog and
// ForTerminationMessage must hold up on the same input.
func FuzzParse(f *testing.F) {
	for _, r := range []Report{
		{Reason: Completed},
		sample(),
		sample().Summary(),
		{ExitCode: 139, Signal: "SIGSEGV", Reason: Signaled, Message: "killed", Output: "héllo 世界 🌍\x00"},
		{ExitCode: 137, Reason: MemoryLimitExceeded, Message: "memory limit", StdoutTruncated: true},
		compiled(),
		compileError(),
	} {
		f.Add(Encode(r))
	}
	for _, s := range []string{
		"",
		"{}",
		"null",
		"[]",
		`{"coderun":"report/v1"}`,
		`{"coderun":"report/v1","reason":"Completed","output":"\ud800"}`,
		`{"coderun":"report/v1","reason":"Completed","output":"` + "\xff\xfe" + `"}`,
		`{"CODERUN":"report/v1","REASON":"Completed","Output":"case"}`,
		`{"coderun":"report/v1","reason":"Completed","reason":"Signaled","exitCode":1e2}`,
		`{"coderun":"report/v1","reason":"Completed","exitCode":255,"wallTimeMicros":9223372036854775807}`,
		`{"coderun":"report/v1","reason":"Completed","unknown":{"a":[1,2,{"b":null}]}}`,
		`{"coderun":"report/v1","reason":"Completed","stdout":"\u2028\u2029\b\f\n\r\t\"\\/"}`,
		"runner: noise\n{\"coderun\":\"report/v1\",\"reason\":\"Completed\"}\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = FindInLog(data)
		r, err := Parse(data)
		if err != nil {
			return
		}
		enc := Encode(r)
		r2, err := Parse(enc)
		if err != nil {
			t.Fatalf("Parse accepted %q as %+v, but not its encoding %q: %v", data, r, enc, err)
		}
		if !reflect.DeepEqual(r2, r) {
			t.Fatalf("round trip changed the report:\n got %+v\nwant %+v", r2, r)
		}
		if enc2 := Encode(r2); !bytes.Equal(enc2, enc) {
			t.Fatalf("Encode is not stable: %q then %q", enc, enc2)
		}
		if got, err := FindInLog(append([]byte("noise\n"), enc...)); err != nil || !reflect.DeepEqual(got, r) {
			t.Fatalf("FindInLog of the encoding: %+v, %v", got, err)
		}
		term, err := Parse(ForTerminationMessage(r))
		if err != nil {
			t.Fatalf("the termination message does not parse: %v", err)
		}
		if !reflect.DeepEqual(term, r) && !reflect.DeepEqual(term, r.Summary()) {
			t.Fatalf("the termination message is neither the report nor its summary: %+v", term)
		}
	})
}
