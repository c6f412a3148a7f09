package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	"k8s.io/utils/ptr"
)

// TestJudge0Submissions: a Judge0 submission is saved In Queue under a random UUID token,
// moves to Processing, gets its result once (a second collector's result is not saved over
// it), keeps Judge0's nulls, survives a reopen of the database, and is read only by its
// owner, alone or in a batch.
func TestJudge0Submissions(t *testing.T) { forEachDatabase(t, testJudge0Submissions) }

func testJudge0Submissions(t *testing.T, open opener) {
	ctx := context.Background()
	s, dsn := open(t)

	newSub := func(owner string) *Judge0Submission {
		return &Judge0Submission{
			KeyID: owner, LanguageID: 71, SourceCode: "print(input())", Stdin: ptr.To("hi\n"),
			Language: "python", Version: "3.13.5", Spec: `{"language":"python","source":"print(input())"}`,
			CPUTimeLimit: 5, CPUExtraTime: 1, WallTimeLimit: 10, MemoryLimit: 128000, StackLimit: 64000,
			MaxProcessesAndOrThreads: 60, MaxFileSize: 1024, NumberOfRuns: 1, Judge0Result: Judge0Result{StatusID: Judge0InQueue},
		}
	}
	alice := newSub("alice")
	if err := s.CreateJudge0(ctx, alice); err != nil {
		t.Fatalf("CreateJudge0: %v", err)
	}
	if _, err := uuid.Parse(alice.Token); err != nil || alice.CreatedAt.IsZero() {
		t.Fatalf("token %q (%v) and created %v: want a UUID and a time", alice.Token, err, alice.CreatedAt)
	}
	bob := newSub("bob")
	if err := s.CreateJudge0(ctx, bob); err != nil {
		t.Fatal(err)
	}
	if bob.Token == alice.Token {
		t.Fatalf("two submissions got the same token %s", bob.Token)
	}

	if err := s.MarkJudge0Processing(ctx, alice.Token, "run-abc"); err != nil {
		t.Fatal(err)
	}
	got, err := s.Owned("alice").Judge0(ctx, alice.Token)
	if err != nil || got.StatusID != Judge0Processing || got.RunName != "run-abc" || got.Finished() {
		t.Fatalf("after MarkJudge0Processing: %+v, %v", got, err)
	}
	if got.Stdout != nil || got.Time != nil || got.ExitSignal != nil || *got.Stdin != "hi\n" || got.ExpectedOutput != nil {
		t.Errorf("unset columns must read back as null, set ones as set: %+v", got)
	}

	finished := time.Now().UTC().Truncate(time.Millisecond)
	result := &Judge0Submission{
		Token: alice.Token, Judge0Result: Judge0Result{StatusID: 3, Stdout: ptr.To("hi\x00\n"), Time: ptr.To(0.012), WallTime: ptr.To(0.034),
			Memory: ptr.To[int64](8240), ExitCode: ptr.To[int32](0)}, RunName: "run-abc", FinishedAt: &finished,
	}
	if saved, err := s.FinishJudge0(ctx, result); err != nil || !saved {
		t.Fatalf("FinishJudge0: saved %v, %v", saved, err)
	}
	other := &Judge0Submission{Token: alice.Token, Judge0Result: Judge0Result{StatusID: 13, Message: ptr.To("late")}, FinishedAt: &finished}
	if saved, err := s.FinishJudge0(ctx, other); err != nil || saved {
		t.Fatalf("a second FinishJudge0: saved %v, %v; want nothing saved over the first result", saved, err)
	}
	if _, err := s.FinishJudge0(ctx, &Judge0Submission{Token: bob.Token, Judge0Result: Judge0Result{StatusID: Judge0Processing}}); err == nil {
		t.Error("FinishJudge0 with status Processing: no error")
	}
	if err := s.MarkJudge0Processing(ctx, alice.Token, "run-other"); err != nil {
		t.Fatal(err)
	}

	// Reopen: the token stays readable, with its result.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(ctx, dsn)
	if err != nil {
		t.Fatalf("reopening %s: %v", dsn, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	got, err = s.Owned("alice").Judge0(ctx, alice.Token)
	if err != nil {
		t.Fatal(err)
	}
	if got.StatusID != 3 || *got.Stdout != "hi\uFFFD\n" || *got.Time != 0.012 || *got.WallTime != 0.034 ||
		*got.Memory != 8240 || *got.ExitCode != 0 || got.ExitSignal != nil || got.Message != nil ||
		got.RunName != "run-abc" || got.FinishedAt == nil || !got.FinishedAt.Equal(finished) || !got.Finished() {
		t.Errorf("after reopening: %+v", got)
	}
	if got.SourceCode != "print(input())" || got.LanguageID != 71 || got.MemoryLimit != 128000 || got.WallTimeLimit != 10 {
		t.Errorf("the request columns changed: %+v", got)
	}

	if _, err := s.Owned("bob").Judge0(ctx, alice.Token); !errors.Is(err, ErrNotFound) {
		t.Errorf("bob reading alice's token: %v, want ErrNotFound", err)
	}
	if _, err := s.Judge0(ctx, uuid.NewString()); !errors.Is(err, ErrNotFound) {
		t.Errorf("an unknown token: %v, want ErrNotFound", err)
	}
	batch, err := s.Owned("alice").Judge0Batch(ctx, []string{bob.Token, alice.Token, "nope"})
	if err != nil || len(batch) != 1 || batch[alice.Token] == nil {
		t.Errorf("alice's batch of bob's, hers and an unknown token = %v, %v; want hers only", batch, err)
	}
	batch, err = s.Judge0Batch(ctx, []string{bob.Token, alice.Token})
	if err != nil || len(batch) != 2 {
		t.Errorf("the whole store's batch = %v, %v; want both", batch, err)
	}
}
