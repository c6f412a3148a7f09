package main

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestJudge: an answer is correct only with the program's reason and its own tag in the
// output; a SystemError is an honest failure; anything else (another request's output, the
// wrong reason) is lost.
func TestJudge(t *testing.T) {
	hello, timeout := programs[0], programs[3]
	cases := []struct {
		p              *program
		reason, output string
		want           verdict
	}{
		{hello, "Completed", "hello k1\n", correct},
		{hello, "Completed", "hello k2\n", wrong},
		{hello, "SystemError", "", systemError},
		{hello, "NonZeroExit", "hello k1\n", wrong},
		{timeout, "TimeLimitExceeded", "k1\n", correct},
		{timeout, "TimeLimitExceeded", "", wrong},
		{timeout, "Completed", "k1\n", wrong},
	}
	for _, c := range cases {
		if got := c.p.judge("k1", c.reason, c.output); got != c.want {
			t.Errorf("%s answered %s %q: verdict %d, want %d", c.p.name, c.reason, c.output, got, c.want)
		}
	}
}

// TestReport: the table ends with the lost line, and the exit code is 1 when a row lost
// anything or failed a check, 0 otherwise.
func TestReport(t *testing.T) {
	for _, c := range []struct {
		name     string
		rows     []row
		wantLine string
		wantCode int
	}{
		{"clean", []row{{Fault: "none", Sent: 10, Correct: 10}, {Fault: "etcd", Sent: 8, Correct: 7, Failed: 1, Recovery: time.Second}},
			"lost runs: 0, lost submissions: 0", 0},
		{"lost", []row{{Fault: "etcd", Sent: 8, Correct: 6, Lost: 2, LostSubmissions: 1}}, "lost runs: 2, lost submissions: 1", 1},
		{"check failed", []row{{Fault: "kubelet", Sent: 8, Correct: 8, Problems: []string{"1 run Jobs/pods left past their TTL"}}},
			"lost runs: 0, lost submissions: 0", 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "results.jsonl")
			var lines []string
			for _, r := range c.rows {
				b, err := json.Marshal(r)
				if err != nil {
					t.Fatal(err)
				}
				lines = append(lines, string(b))
			}
			if err := os.WriteFile(file, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			out, code := captureStdout(t, func() int { return printReport(file) })
			if code != c.wantCode {
				t.Errorf("exit code %d, want %d; output:\n%s", code, c.wantCode, out)
			}
			trimmed := strings.TrimRight(out, "\n")
			if last := trimmed[strings.LastIndexByte(trimmed, '\n')+1:]; last != c.wantLine {
				t.Errorf("last line %q, want %q; output:\n%s", last, c.wantLine, out)
			}
		})
	}
}

func captureStdout(t *testing.T, f func() int) (string, int) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	saved := os.Stdout
	os.Stdout = w
	code := f()
	os.Stdout = saved
	w.Close()
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(out), code
}
