package report

import (
	"strings"
	"testing"
)

// compiled is a run whose compile step completed (with warnings) before the program ran.
func compiled() Report {
	r := sample()
	r.Compile = &Stage{Reason: Completed, Stderr: "main.c:1: warning: unused\n", Output: "main.c:1: warning: unused\n",
		WallTimeMicros: 250000, CPUTimeMicros: 200000, PeakMemoryBytes: 40 << 20}
	return r
}

// compileError is a run whose compiler failed: nothing of a program in it.
func compileError() Report {
	return Report{Reason: CompileError, Message: "the compile step ended with NonZeroExit: exit code 1",
		Compile: &Stage{Reason: NonZeroExit, ExitCode: 1, Stderr: "main.c:1:1: error: expected ';'\n",
			Output: "main.c:1:1: error: expected ';'\n", WallTimeMicros: 90000, CPUTimeMicros: 80000, PeakMemoryBytes: 30 << 20}}
}

func TestCompileStage(t *testing.T) {
	t.Parallel()
	line := string(Encode(compileError()))
	for _, want := range []string{`"reason":"CompileError"`, `"compile":{"reason":"NonZeroExit","exitCode":1,`, `"stderr":"main.c:1:1: error: expected ';'\n"`} {
		if !strings.Contains(line, want) {
			t.Errorf("encoded %s\nwant it to contain %s", line, want)
		}
	}
	// Runs without a compile step do not mention it.
	if line := string(Encode(sample())); strings.Contains(line, "compile") {
		t.Errorf("encoded %s", line)
	}

	// The summary drops the compiler's output too, and keeps the rest of the stage.
	big := compileError()
	big.Compile.Stderr = strings.Repeat("e", 10000)
	big.Compile.Output = big.Compile.Stderr
	msg := ForTerminationMessage(big)
	if len(msg) > TerminationMessageLimit {
		t.Fatalf("termination message of %d bytes", len(msg))
	}
	got, err := Parse(msg)
	if err != nil {
		t.Fatal(err)
	}
	if !got.OutputInLog || got.Compile == nil || got.Compile.Stderr != "" || got.Compile.Output != "" ||
		got.Compile.Reason != NonZeroExit || got.Compile.ExitCode != 1 || got.Compile.CPUTimeMicros != 80000 {
		t.Errorf("summary %+v, compile %+v", got, got.Compile)
	}
	if big.Compile.Stderr == "" {
		t.Error("Summary changed the report it summarized")
	}
}

func TestCompileStageRejects(t *testing.T) {
	t.Parallel()
	for name, mutate := range map[string]func(*Report){
		"CompileError without a stage":       func(r *Report) { r.Compile = nil },
		"CompileError after a compile":       func(r *Report) { r.Compile.Reason, r.Compile.ExitCode = Completed, 0 },
		"CompileError with program output":   func(r *Report) { r.Stdout, r.Output = "x", "x" },
		"CompileError with a program's exit": func(r *Report) { r.ExitCode = 1 },
		"CompileError with a program's time": func(r *Report) { r.WallTimeMicros = 1 },
		"stage reason CompileError":          func(r *Report) { r.Compile.Reason = CompileError },
		"stage reason unknown":               func(r *Report) { r.Compile.Reason = "Oops" },
		"stage exit code":                    func(r *Report) { r.Compile.ExitCode = 256 },
		"stage negative time":                func(r *Report) { r.Compile.CPUTimeMicros = -1 },
		"stage message too long":             func(r *Report) { r.Compile.Message = strings.Repeat("m", MaxMessage+1) },
		"stage output too long":              func(r *Report) { r.Compile.Output = strings.Repeat("o", MaxOutputLimit*4+1) },
		"program ran after a failed compile": func(r *Report) { r.Reason, r.Stdout, r.Output = Completed, "x", "x" },
		"notRun with a compile stage":        func(r *Report) { r.Reason, r.NotRun, r.Message = SystemError, true, "x" },
	} {
		r := compileError()
		mutate(&r)
		if got, err := Parse(Encode(r)); err == nil {
			t.Errorf("%s: Parse accepted %s as %+v", name, Encode(r), got)
		}
	}
	// A compiler that could not start is the platform's failure: SystemError, not CompileError.
	r := Report{Reason: SystemError, Message: "could not start the compiler", Compile: &Stage{Reason: SystemError, Message: "exec: not found"}}
	if _, err := Parse(Encode(r)); err != nil {
		t.Errorf("a SystemError with a SystemError stage: %v", err)
	}
}
