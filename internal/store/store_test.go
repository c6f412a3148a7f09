package store

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
	"k8s.io/utils/ptr"

	"github.com/coderun-dev/coderun/internal/testneed"
)

// opener opens an empty database for a test and returns it with its DSN (to reopen it).
type opener func(t *testing.T) (*Store, string)

// forEachDatabase runs test on a SQLite file and, when CODERUN_TEST_POSTGRES names a
// server (make test starts one with hack/postgres.sh), on a fresh Postgres database.
func forEachDatabase(t *testing.T, test func(t *testing.T, open opener)) {
	t.Run("sqlite", func(t *testing.T) { test(t, openTemp) })
	t.Run("postgres", func(t *testing.T) {
		base := os.Getenv("CODERUN_TEST_POSTGRES")
		if base == "" {
			testneed.Skip(t, "CODERUN_TEST_POSTGRES is not set (make test sets it)")
		}
		test(t, func(t *testing.T) (*Store, string) { return openPostgres(t, base) })
	})
}

// openPostgres creates a database of its own for the test on the server of base.
func openPostgres(t *testing.T, base string) (*Store, string) {
	t.Helper()
	dsn := newPostgresDatabase(t, base)
	s, err := Open(context.Background(), dsn)
	if err != nil {
		t.Fatalf("Open(%s): %v", dsn, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, dsn
}

// newPostgresDatabase creates an empty database on the server of base, dropped when the
// test ends, and returns its DSN.
func newPostgresDatabase(t *testing.T, base string) string {
	t.Helper()
	admin, err := gorm.Open(postgres.Open(base), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		t.Fatalf("connecting to %s: %v", base, err)
	}
	name := fmt.Sprintf("coderun_test_%d", rand.Uint64())
	if err := admin.Exec("CREATE DATABASE " + name).Error; err != nil {
		t.Fatalf("creating database %s: %v", name, err)
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	t.Cleanup(func() {
		// WITH (FORCE): stores the test left open must not keep the database.
		if err := admin.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)").Error; err != nil {
			t.Errorf("dropping database %s: %v", name, err)
		}
		if db, err := admin.DB(); err == nil {
			_ = db.Close()
		}
	})
	return u.String()
}

func openTemp(t *testing.T) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "data", "coderun.db") // the folder does not exist yet
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, path
}

func TestSubmissionsSaveGetList(t *testing.T) { forEachDatabase(t, testSubmissionsSaveGetList) }

func testSubmissionsSaveGetList(t *testing.T, open opener) {
	ctx := context.Background()
	s, _ := open(t)

	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	subs, total, err := s.ListSubmissions(ctx, 1, 20)
	if err != nil || total != 0 || len(subs) != 0 {
		t.Fatalf("empty database: got %d submissions, total %d, err %v", len(subs), total, err)
	}

	for i := range 5 {
		sub := &Submission{
			Code: fmt.Sprintf("print(%d)", i), Language: "python", Output: fmt.Sprintf("%d\n", i),
			Stdout: fmt.Sprintf("%d\n", i), ExitCode: ptr.To[int32](0), TimeSeconds: 0.039,
			MemoryKiB: 8240, Reason: "Completed", RunName: fmt.Sprintf("run-%d", i),
		}
		if err := s.SaveSubmission(ctx, sub); err != nil {
			t.Fatalf("SaveSubmission: %v", err)
		}
		if sub.ID != int64(i+1) || sub.CreatedAt.IsZero() {
			t.Fatalf("saved submission got id %d created %v, want id %d and a time", sub.ID, sub.CreatedAt, i+1)
		}
	}

	got, err := s.Submission(ctx, 3)
	if err != nil {
		t.Fatalf("Submission(3): %v", err)
	}
	if got.Code != "print(2)" || *got.ExitCode != 0 || got.MemoryKiB != 8240 || got.RunName != "run-2" || got.TimeSeconds != 0.039 {
		t.Errorf("Submission(3) = %+v", got)
	}
	if _, err := s.Submission(ctx, 99); !errors.Is(err, ErrNotFound) {
		t.Errorf("Submission(99) error = %v, want ErrNotFound", err)
	}

	for _, tc := range []struct {
		page, perPage int
		wantIDs       []int64
	}{
		{1, 2, []int64{5, 4}},
		{2, 2, []int64{3, 2}},
		{3, 2, []int64{1}},
		{4, 2, nil},
		{1, 20, []int64{5, 4, 3, 2, 1}},
	} {
		subs, total, err := s.ListSubmissions(ctx, tc.page, tc.perPage)
		if err != nil {
			t.Fatalf("ListSubmissions(%d, %d): %v", tc.page, tc.perPage, err)
		}
		var ids []int64
		for _, sub := range subs {
			ids = append(ids, sub.ID)
		}
		if total != 5 || fmt.Sprint(ids) != fmt.Sprint(tc.wantIDs) {
			t.Errorf("ListSubmissions(%d, %d) = ids %v total %d, want %v total 5", tc.page, tc.perPage, ids, total, tc.wantIDs)
		}
	}
	if _, _, err := s.ListSubmissions(ctx, 0, 20); err == nil {
		t.Error("ListSubmissions(page 0) did not fail")
	}
}

func TestNeverRanSubmissionKeepsNilExitCode(t *testing.T) {
	forEachDatabase(t, testNeverRanSubmissionKeepsNilExitCode)
}

func testNeverRanSubmissionKeepsNilExitCode(t *testing.T, open opener) {
	ctx := context.Background()
	s, _ := open(t)
	sub := &Submission{Code: "x", Language: "python", Reason: "Rejected", RunName: "run-x"}
	if err := s.SaveSubmission(ctx, sub); err != nil {
		t.Fatal(err)
	}
	got, err := s.Submission(ctx, sub.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.ExitCode != nil {
		t.Errorf("exit code = %d, want nil", *got.ExitCode)
	}
}

func TestSnippets(t *testing.T) { forEachDatabase(t, testSnippets) }

func testSnippets(t *testing.T, open opener) {
	ctx := context.Background()
	s, _ := open(t)
	a := &Snippet{Code: "print(input())", Stdin: "hi\n", Language: "python"}
	b := &Snippet{Code: "print(2)", Language: "python"}
	for _, sn := range []*Snippet{a, b} {
		if err := s.SaveSnippet(ctx, sn); err != nil {
			t.Fatalf("SaveSnippet: %v", err)
		}
	}
	if len(a.ID) != 36 || a.ID == b.ID {
		t.Fatalf("snippet ids %q and %q: want two different UUIDs", a.ID, b.ID)
	}
	got, err := s.Snippet(ctx, a.ID)
	if err != nil {
		t.Fatalf("Snippet: %v", err)
	}
	if got.Code != a.Code || got.Stdin != "hi\n" || got.Language != "python" || !got.CreatedAt.Equal(a.CreatedAt) {
		t.Errorf("Snippet = %+v, want %+v", got, a)
	}
	if _, err := s.Snippet(ctx, "00000000-0000-0000-0000-000000000000"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown snippet: error %v, want ErrNotFound", err)
	}
}

// TestSurvivesRestart closes the database and opens the same file again, as a restarted
// service (or a rescheduled pod with the same volume) does: nothing saved is lost, and
// running the migrations again changes nothing.
func TestSurvivesRestart(t *testing.T) { forEachDatabase(t, testSurvivesRestart) }

func testSurvivesRestart(t *testing.T, open opener) {
	ctx := context.Background()
	s, path := open(t)
	sub := &Submission{Code: "print(1)", Language: "python", Output: "1\n", ExitCode: ptr.To[int32](0), Reason: "Completed", RunName: "run-a"}
	if err := s.SaveSubmission(ctx, sub); err != nil {
		t.Fatal(err)
	}
	sn := &Snippet{Code: "print(2)", Language: "python"}
	if err := s.SaveSnippet(ctx, sn); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	for range 2 {
		s2, err := Open(ctx, path)
		if err != nil {
			t.Fatalf("reopening %s: %v", path, err)
		}
		got, err := s2.Submission(ctx, sub.ID)
		if err != nil || got.Output != "1\n" || !got.CreatedAt.Equal(sub.CreatedAt) {
			t.Errorf("after reopening: submission %+v, err %v", got, err)
		}
		if _, err := s2.Snippet(ctx, sn.ID); err != nil {
			t.Errorf("after reopening: snippet: %v", err)
		}
		next := &Submission{Code: "print(3)", Language: "python", Reason: "Completed", RunName: "run-b"}
		if err := s2.SaveSubmission(ctx, next); err != nil || next.ID <= sub.ID {
			t.Errorf("after reopening: new submission id %d (err %v), want above %d", next.ID, err, sub.ID)
		}
		if err := s2.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestConcurrentSaves saves from many goroutines at once, as concurrent /submit requests
// do: SQLite must queue the writes, not fail with "database is locked".
func TestConcurrentSaves(t *testing.T) { forEachDatabase(t, testConcurrentSaves) }

func testConcurrentSaves(t *testing.T, open opener) {
	ctx := context.Background()
	s, _ := open(t)
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := range 40 {
		wg.Go(func() {
			errs <- s.SaveSubmission(ctx, &Submission{Code: fmt.Sprint(i), Language: "python", Reason: "Completed", RunName: "r"})
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent save: %v", err)
		}
	}
	if _, total, err := s.ListSubmissions(ctx, 1, 1); err != nil || total != 40 {
		t.Fatalf("total %d, err %v; want 40", total, err)
	}
}

// Replicas of the front service that start together on a new database each migrate the
// schema at start; none may fail because another is doing the same at that moment.
func TestConcurrentOpenOfNewDatabase(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		testConcurrentOpen(t, filepath.Join(t.TempDir(), "coderun.db"))
	})
	t.Run("postgres", func(t *testing.T) {
		base := os.Getenv("CODERUN_TEST_POSTGRES")
		if base == "" {
			testneed.Skip(t, "CODERUN_TEST_POSTGRES is not set (make test sets it)")
		}
		testConcurrentOpen(t, newPostgresDatabase(t, base))
	})
}

func testConcurrentOpen(t *testing.T, dsn string) {
	ctx := context.Background()
	const replicas = 4
	stores := make([]*Store, replicas)
	errs := make([]error, replicas)
	var wg sync.WaitGroup
	for i := range replicas {
		wg.Go(func() { stores[i], errs[i] = Open(ctx, dsn) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("replica %d of %d opening a new database at once: %v", i, replicas, err)
		}
		t.Cleanup(func() { _ = stores[i].Close() })
	}
	sub := &Submission{Code: "print(1)", Language: "python", Reason: "Completed", RunName: "r"}
	if err := stores[0].SaveSubmission(ctx, sub); err != nil {
		t.Fatalf("saving through replica 0: %v", err)
	}
	if got, err := stores[replicas-1].Submission(ctx, sub.ID); err != nil || got.Code != sub.Code {
		t.Fatalf("reading through replica %d: %+v, %v", replicas-1, got, err)
	}
}

func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	if _, err := Open(ctx, ""); err == nil {
		t.Error(`Open("") did not fail`)
	}
	// A file where the database's folder should be: a clear error, not a panic.
	blocker := filepath.Join(t.TempDir(), "blocker")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ctx, filepath.Join(blocker, "coderun.db")); err == nil {
		t.Error("Open under a regular file did not fail")
	}
	if !IsPostgres("postgres://u@h/db") || !IsPostgres("postgresql://u@h/db") || IsPostgres("/var/lib/coderun/coderun.db") {
		t.Error("IsPostgres misclassifies a DSN")
	}
}

func TestNULInOutput(t *testing.T) { forEachDatabase(t, testNULInOutput) }

// A program may print NUL bytes (and its output reaches /submit as it is). PostgreSQL's text
// cannot hold NUL, so without care such a run could never be saved there.
func testNULInOutput(t *testing.T, open opener) {
	ctx := context.Background()
	s, _ := open(t)
	sub := &Submission{
		Code: "print('a\\0b')", Language: "python", Output: "a\x00b\n", Stdout: "a\x00b\n",
		Stderr: "\x00", ExitCode: ptr.To[int32](0), Reason: "Completed", RunName: "run-nul",
	}
	if err := s.SaveSubmission(ctx, sub); err != nil {
		t.Fatalf("SaveSubmission of output with NUL: %v", err)
	}
	got, err := s.Submission(ctx, sub.ID)
	if err != nil {
		t.Fatalf("Submission(%d): %v", sub.ID, err)
	}
	if got.Output != "a\uFFFDb\n" || got.Stdout != "a\uFFFDb\n" || got.Stderr != "\uFFFD" {
		t.Errorf("saved output %q, stdout %q, stderr %q; want each NUL as U+FFFD", got.Output, got.Stdout, got.Stderr)
	}
}
