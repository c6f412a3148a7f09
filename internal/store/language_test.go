package store

import (
	"context"
	"testing"
)

// TestSubmissionLanguage: a submission keeps the language and version that ran it and
// what its compiler wrote (NUL shown as U+FFFD, as in the program's output).
func TestSubmissionLanguage(t *testing.T) { forEachDatabase(t, testSubmissionLanguage) }

func testSubmissionLanguage(t *testing.T, open opener) {
	ctx := context.Background()
	s, _ := open(t)
	sub := &Submission{Code: "int main() {}", Language: "cpp", Version: "14.2.0", Reason: "Completed", RunName: "run-cpp",
		CompileOutput: "main.cpp:1: warning: \x00 unused\n"}
	if err := s.SaveSubmission(ctx, sub); err != nil {
		t.Fatal(err)
	}
	got, err := s.Submission(ctx, sub.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Language != "cpp" || got.Version != "14.2.0" || got.CompileOutput != "main.cpp:1: warning: \uFFFD unused\n" {
		t.Errorf("saved %q %q %q, want cpp 14.2.0 and the compiler's output", got.Language, got.Version, got.CompileOutput)
	}
	// Without them (the built-in Python), both are empty.
	py := &Submission{Code: "print(1)", Language: "python", Reason: "Completed", RunName: "run-py"}
	if err := s.SaveSubmission(ctx, py); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Submission(ctx, py.ID); err != nil || got.Version != "" || got.CompileOutput != "" {
		t.Errorf("built-in python: %+v %v", got, err)
	}
}
