package store

import (
	"context"
	"testing"
	"time"
)

// A snippet keeps the language and the version range it was shared with, so its link opens
// on the same runtime.
func TestSnippetKeepsLanguageAndVersion(t *testing.T) {
	forEachDatabase(t, testSnippetKeepsLanguageAndVersion)
}

func testSnippetKeepsLanguageAndVersion(t *testing.T, open opener) {
	ctx := context.Background()
	s, _ := open(t)
	for _, want := range []Snippet{
		{Code: "package main\n\nfunc main() { println(1) }\n", Language: "go", Version: "1.24.x"},
		{Code: "int main() { return 0; }\n", Language: "cpp", Version: ">=14 <15"},
		{Code: "print(1)\n", Language: "python"}, // no version: the newest
	} {
		sn := want
		if err := s.SaveSnippet(ctx, &sn); err != nil {
			t.Fatalf("SaveSnippet(%s): %v", want.Language, err)
		}
		got, err := s.Snippet(ctx, sn.ID)
		if err != nil {
			t.Fatalf("Snippet(%s): %v", sn.ID, err)
		}
		if got.Code != want.Code || got.Language != want.Language || got.Version != want.Version {
			t.Errorf("read back %q/%q with code %q, want %q/%q with %q", got.Language, got.Version, got.Code, want.Language, want.Version, want.Code)
		}
	}
}

// snippetV1 is the snippets table as it was before Version.
type snippetV1 struct {
	ID        string    `gorm:"primaryKey;size:36"`
	Code      string    `gorm:"not null"`
	Stdin     string    `gorm:"not null;default:''"`
	Language  string    `gorm:"not null;size:32"`
	CreatedAt time.Time `gorm:"not null"`
}

func (snippetV1) TableName() string { return "snippets" }

// A database of a version before snippets had a version: Open adds the column, the old
// snippets read back with version "" (the newest), and new ones keep theirs.
func TestMigrateAddsSnippetVersion(t *testing.T) { forEachDatabase(t, testMigrateAddsSnippetVersion) }

func testMigrateAddsSnippetVersion(t *testing.T, open opener) {
	ctx := context.Background()
	s, dsn := open(t)
	if err := s.db.Migrator().DropTable(&Snippet{}); err != nil {
		t.Fatal(err)
	}
	if err := s.db.AutoMigrate(&snippetV1{}); err != nil {
		t.Fatal(err)
	}
	const oldID = "6f1c2a8e-0d1b-4c7e-9a53-2b8f0e4d7c11"
	if err := s.db.Create(&snippetV1{ID: oldID, Code: "print(1)", Language: "python", CreatedAt: time.Now().UTC()}).Error; err != nil {
		t.Fatal(err)
	}
	_ = s.Close()

	s, err := Open(ctx, dsn)
	if err != nil {
		t.Fatalf("opening a database of the version before Snippet.Version: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	old, err := s.Snippet(ctx, oldID)
	if err != nil || old.Code != "print(1)" || old.Language != "python" || old.Version != "" {
		t.Fatalf("an old snippet after the migration: %+v, %v; want python, version \"\"", old, err)
	}
	sn := &Snippet{Code: "puts 1", Language: "ruby", Version: "3.x"}
	if err := s.SaveSnippet(ctx, sn); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Snippet(ctx, sn.ID); err != nil || got.Version != "3.x" {
		t.Fatalf("a new snippet after the migration: %+v, %v; want version 3.x", got, err)
	}
}
