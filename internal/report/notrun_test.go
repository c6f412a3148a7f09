package report

import (
	"strings"
	"testing"
)

func TestNotRun(t *testing.T) {
	notRun := Report{Reason: SystemError, Message: "no request arrived within 5m0s; the member was not used", NotRun: true}
	line := Encode(notRun)
	if !strings.Contains(string(line), `"notRun":true`) || !strings.Contains(string(line), `"coderun":"report/v1"`) {
		t.Errorf("encoded %s", line)
	}
	got, err := Parse(line)
	if err != nil || !got.NotRun || got.Reason != SystemError || got.Message != notRun.Message {
		t.Errorf("Parse(%s) = %+v, %v", line, got, err)
	}
	if got, err := FindInLog(append([]byte("runner: waiting\n"), line...)); err != nil || !got.NotRun {
		t.Errorf("FindInLog: %+v, %v", got, err)
	}
	if got, err := Parse(ForTerminationMessage(notRun)); err != nil || !got.NotRun {
		t.Errorf("termination message: %+v, %v", got, err)
	}

	// A report without the field (every cold run's) is not NotRun, and does not mention it.
	if line := Encode(Report{Reason: SystemError, Message: "x"}); strings.Contains(string(line), "notRun") {
		t.Errorf("encoded %s", line)
	}
	if got, err := Parse([]byte(`{"coderun":"report/v1","exitCode":0,"reason":"SystemError","message":"x","stdout":"","stderr":"","output":"","wallTimeMicros":0,"cpuTimeMicros":0,"peakMemoryBytes":0}`)); err != nil || got.NotRun {
		t.Errorf("an old report: %+v, %v", got, err)
	}

	// NotRun claims that no program started: only with SystemError, and nothing of a program.
	for name, mutate := range map[string]func(*Report){
		"completed":     func(r *Report) { r.Reason = Completed },
		"time limit":    func(r *Report) { r.Reason = TimeLimitExceeded },
		"exit code":     func(r *Report) { r.ExitCode = 1 },
		"signal":        func(r *Report) { r.Signal = "SIGKILL" },
		"stdout":        func(r *Report) { r.Stdout, r.Output = "x", "x" },
		"stderr":        func(r *Report) { r.Stderr = "x" },
		"truncated":     func(r *Report) { r.StdoutTruncated = true },
		"wall time":     func(r *Report) { r.WallTimeMicros = 1 },
		"cpu time":      func(r *Report) { r.CPUTimeMicros = 1 },
		"memory":        func(r *Report) { r.PeakMemoryBytes = 1 },
		"not a boolean": nil,
	} {
		var line []byte
		if mutate == nil {
			line = []byte(strings.Replace(string(Encode(notRun)), `"notRun":true`, `"notRun":"yes"`, 1))
		} else {
			r := notRun
			mutate(&r)
			line = Encode(r)
		}
		if got, err := Parse(line); err == nil {
			t.Errorf("%s: Parse accepted %s as %+v", name, line, got)
		}
	}
}
