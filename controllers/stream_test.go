package controllers

import (
	"strings"
	"testing"

	"github.com/coderun-dev/coderun/internal/report"
)

// TestBoundedBufferSeesTheReportLine checks that a warm run's stream is done as soon as
// the report line is complete, whatever the pieces the stream delivers it in, and not for
// a partial line or another line.
func TestBoundedBufferSeesTheReportLine(t *testing.T) {
	line := string(report.Encode(report.Report{Marker: report.Marker, Reason: report.Completed, Stdout: "1\n", Output: "1\n"})) + "\n"
	for _, tc := range []struct {
		name   string
		pieces []string
		want   bool
	}{
		{"whole", []string{line}, true},
		{"byte by byte", strings.Split(line, ""), true},
		{"after another line", []string{"runner: hello\n", line}, true},
		{"no newline yet", []string{strings.TrimSuffix(line, "\n")}, false},
		{"not a report", []string{`{"coderun":"report/v1"}` + "\n", "text\n"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			b := &boundedBuffer{limit: maxStreamOutput, onReport: func() { calls++ }}
			for _, p := range tc.pieces {
				if n, err := b.Write([]byte(p)); n != len(p) || err != nil {
					t.Fatalf("Write = %d, %v", n, err)
				}
			}
			if got := calls == 1; got != tc.want || calls > 1 {
				t.Errorf("onReport called %d times, want %v", calls, tc.want)
			}
			if got := string(b.Bytes()); got != strings.Join(tc.pieces, "") {
				t.Errorf("kept %q", got)
			}
		})
	}
}
