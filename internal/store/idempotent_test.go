package store

import (
	"context"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm"
	"k8s.io/utils/ptr"
)

// A retried /submit saves the run it joined again: the database keeps one submission per
// CodeRun UID and every save of it answers that one's id.
func TestSaveSubmissionOncePerRun(t *testing.T) { forEachDatabase(t, testSaveSubmissionOncePerRun) }

func testSaveSubmissionOncePerRun(t *testing.T, open opener) {
	ctx := context.Background()
	s, _ := open(t)
	first := &Submission{Code: "print(1)", Language: "python", Output: "1\n", Reason: "Completed", RunName: "run-a", RunUID: ptr.To("uid-a")}
	if err := s.SaveSubmission(ctx, first); err != nil {
		t.Fatal(err)
	}
	again := &Submission{Code: "print(1)", Language: "python", Output: "1\n", Reason: "Completed", RunName: "run-a", RunUID: ptr.To("uid-a")}
	if err := s.SaveSubmission(ctx, again); err != nil {
		t.Fatalf("saving the same run again: %v", err)
	}
	if again.ID != first.ID || !again.CreatedAt.Equal(first.CreatedAt) || again.Output != "1\n" {
		t.Errorf("the second save answered %+v, want the first's id %d and creation time %s", again, first.ID, first.CreatedAt)
	}

	// Same name, another CodeRun (a generated name that came again after the first was
	// deleted): another submission.
	other := &Submission{Code: "print(2)", Language: "python", Reason: "Completed", RunName: "run-a", RunUID: ptr.To("uid-b")}
	if err := s.SaveSubmission(ctx, other); err != nil {
		t.Fatal(err)
	}
	// Without a UID (as before UIDs were recorded) every save is new.
	for range 2 {
		if err := s.SaveSubmission(ctx, &Submission{Code: "print(3)", Language: "python", Reason: "Completed", RunName: "run-c"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, total, err := s.ListSubmissions(ctx, 1, 10); err != nil || total != 4 {
		t.Fatalf("total %d, err %v; want 4 (uid-a once, uid-b, two without a uid)", total, err)
	}
}

// Two replicas may save the same run at the same moment (a retry that reached another
// replica while the first was still answering): one row, one id for all.
func TestConcurrentSavesOfOneRun(t *testing.T) { forEachDatabase(t, testConcurrentSavesOfOneRun) }

func testConcurrentSavesOfOneRun(t *testing.T, open opener) {
	ctx := context.Background()
	s, dsn := open(t)
	// A second store on the same database plays the other replica.
	s2, err := Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s2.Close() })
	const n = 16
	ids := make([]int64, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			st := s
			if i%2 == 1 {
				st = s2
			}
			sub := &Submission{Code: "x", Language: "python", Reason: "Completed", RunName: "run-x", RunUID: ptr.To("uid-x")}
			errs[i] = st.SaveSubmission(ctx, sub)
			ids[i] = sub.ID
		})
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("save %d: %v", i, errs[i])
		}
		if ids[i] != ids[0] || ids[i] < 1 {
			t.Fatalf("saves answered ids %v, want one id", ids)
		}
	}
	if _, total, err := s.ListSubmissions(ctx, 1, 1); err != nil || total != 1 {
		t.Fatalf("total %d, err %v; want 1", total, err)
	}
}

// A database of a version before RunUID: Open adds the column and its unique index, and
// the old submissions (without a UID, some of one run name) stay readable.
func TestMigrateAddsRunUID(t *testing.T) { forEachDatabase(t, testMigrateAddsRunUID) }

// submissionV1 is the submissions table as it was before RunUID.
type submissionV1 struct {
	ID          int64  `gorm:"primaryKey;autoIncrement"`
	Code        string `gorm:"not null"`
	Stdin       string `gorm:"not null;default:''"`
	Language    string `gorm:"not null;size:32"`
	Output      string `gorm:"not null;default:''"`
	Stdout      string `gorm:"not null;default:''"`
	Stderr      string `gorm:"not null;default:''"`
	ExitCode    *int32
	TimeSeconds float64   `gorm:"not null;default:0"`
	MemoryKiB   int64     `gorm:"not null;default:0"`
	Reason      string    `gorm:"not null;size:32"`
	RunName     string    `gorm:"not null;size:253"`
	CreatedAt   time.Time `gorm:"not null;index"`
}

func (submissionV1) TableName() string { return "submissions" }

func testMigrateAddsRunUID(t *testing.T, open opener) {
	ctx := context.Background()
	s, dsn := open(t)
	// Back to the old table, as an older version left it.
	if err := s.db.Migrator().DropTable(&Submission{}); err != nil {
		t.Fatal(err)
	}
	if err := s.db.AutoMigrate(&submissionV1{}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := s.db.Create(&submissionV1{Code: "old", Language: "python", Reason: "Completed", RunName: "run-old"}).Error; err != nil {
			t.Fatal(err)
		}
	}
	_ = s.Close()

	s, err := Open(ctx, dsn)
	if err != nil {
		t.Fatalf("opening a database of the version before RunUID: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if !s.db.Migrator().HasColumn(&Submission{}, "RunUID") || !hasUniqueIndexOnRunUID(t, s.db) {
		t.Fatal("the migration did not add run_uid with its unique index")
	}
	old, err := s.Submission(ctx, 2)
	if err != nil || old.RunName != "run-old" || old.RunUID != nil {
		t.Fatalf("an old submission after the migration: %+v, %v", old, err)
	}
	sub := &Submission{Code: "new", Language: "python", Reason: "Completed", RunName: "run-new", RunUID: ptr.To("uid-new")}
	for range 2 {
		if err := s.SaveSubmission(ctx, sub); err != nil {
			t.Fatal(err)
		}
	}
	if _, total, err := s.ListSubmissions(ctx, 1, 1); err != nil || total != 3 || sub.ID != 3 {
		t.Fatalf("total %d, id %d, err %v; want 3 submissions, the new one id 3", total, sub.ID, err)
	}
}

func hasUniqueIndexOnRunUID(t *testing.T, db *gorm.DB) bool {
	t.Helper()
	indexes, err := db.Migrator().GetIndexes(&Submission{})
	if err != nil {
		t.Fatalf("listing the indexes of submissions: %v", err)
	}
	for _, ix := range indexes {
		unique, _ := ix.Unique()
		if cols := ix.Columns(); unique && len(cols) == 1 && cols[0] == "run_uid" {
			return true
		}
	}
	return false
}
