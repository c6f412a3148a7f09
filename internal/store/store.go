// Package store keeps submissions and shared snippets with gorm: in a SQLite file by
// default, or in Postgres when several front replicas share one database. The schema is
// migrated on Open, so a new version of the service never needs a manual step.
package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/glebarez/sqlite"
	"github.com/google/uuid"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
	"gorm.io/gorm/logger"
)

// ErrNotFound is returned when no submission or snippet has the id asked for.
var ErrNotFound = errors.New("not found")

// Submission is one saved run: what ran and what it gave.
type Submission struct {
	ID       int64  `gorm:"primaryKey;autoIncrement"`
	Code     string `gorm:"not null"`
	Stdin    string `gorm:"not null;default:''"`
	Language string `gorm:"not null;size:32"`
	// Version is the version of the Runtime that ran it ("" for submissions saved before
	// it was recorded, or run by the operator's built-in Python).
	Version string `gorm:"not null;default:'';size:64"`
	Output  string `gorm:"not null;default:''"`
	Stdout  string `gorm:"not null;default:''"`
	Stderr  string `gorm:"not null;default:''"`
	// ExitCode is nil when the program never ran.
	ExitCode *int32
	// TimeSeconds is the program's wall time.
	TimeSeconds float64 `gorm:"not null;default:0"`
	// MemoryKiB is the program's peak memory.
	MemoryKiB int64 `gorm:"not null;default:0"`
	// CompileOutput is what the compiler wrote, for a compiled language ("" otherwise).
	CompileOutput string `gorm:"not null;default:''"`
	Reason        string `gorm:"not null;size:32"`
	// RunName is the CodeRun that ran it, in the runs namespace.
	RunName string `gorm:"not null;size:253"`
	// RunUID is the UID of that CodeRun, unique: a run is saved once however often its
	// /submit is retried (names are not unique: a generated one may come again after the
	// CodeRun is deleted). Nil on submissions saved before it was recorded.
	RunUID *string `gorm:"size:36;uniqueIndex"`
	// KeyID is the id of the API key that submitted it ("anonymous" without a key), or ""
	// when keys were off. With keys on, a client reads only its own (Owned).
	KeyID     string    `gorm:"not null;default:'';size:63;index"`
	CreatedAt time.Time `gorm:"not null;index"`
}

// Snippet is code shared by link: its id is a random UUID, so links cannot be guessed.
type Snippet struct {
	ID       string `gorm:"primaryKey;size:36"`
	Code     string `gorm:"not null"`
	Stdin    string `gorm:"not null;default:''"`
	Language string `gorm:"not null;size:32"`
	// Version is the version range asked for with the language ("" for the newest), so a
	// link opens on the same runtime; snippets saved before it was recorded have "".
	Version   string    `gorm:"not null;default:'';size:64"`
	CreatedAt time.Time `gorm:"not null"`
}

// BeforeSave replaces each NUL character in the program's text with U+FFFD, as the runner
// shows bytes that are not UTF-8. PostgreSQL's text cannot hold NUL, and a program may well
// print one: without this, such a run could be saved on SQLite but never on PostgreSQL
// (the API refuses NUL in code and stdin; output is what the program wrote).
func (s *Submission) BeforeSave(*gorm.DB) error {
	for _, text := range []*string{&s.Code, &s.Stdin, &s.Output, &s.Stdout, &s.Stderr, &s.CompileOutput} {
		*text = strings.ReplaceAll(*text, "\x00", "\uFFFD")
	}
	return nil
}

// Store is the service's database.
type Store struct {
	db       *gorm.DB
	postgres bool
	// owner, when not "", limits reading submissions to those of this key id (Owned).
	owner string
}

// Owned returns a view of the store whose Submission and ListSubmissions see only the
// submissions of keyID; "" (API keys off) returns the whole store. Snippets are shared by
// their unguessable links and are not owned.
func (s *Store) Owned(keyID string) *Store {
	view := *s
	view.owner = keyID
	return &view
}

// owned limits a query of submissions to the view's owner.
func (s *Store) owned(db *gorm.DB) *gorm.DB {
	if s.owner == "" {
		return db
	}
	return db.Where("key_id = ?", s.owner)
}

// migrationLock is the key of the Postgres advisory lock that the front service's replicas
// take in turn to migrate the schema (any constant unique to this application).
const migrationLock = 0x636f646572756e // "coderun"

// IsPostgres reports whether dsn selects Postgres rather than a SQLite file.
func IsPostgres(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// Open connects to the database named by dsn (a SQLite file path, or a postgres:// URL),
// creating the SQLite file and its folder if needed, and migrates the schema.
func Open(ctx context.Context, dsn string) (*Store, error) {
	if dsn == "" {
		return nil, errors.New("no database given")
	}
	gcfg := &gorm.Config{
		Logger: logger.Discard, // errors are returned and logged by the caller, with context
		NowFunc: func() time.Time {
			return time.Now().UTC().Truncate(time.Microsecond) // Postgres keeps microseconds
		},
		TranslateError: true,
	}
	var (
		db  *gorm.DB
		err error
	)
	if IsPostgres(dsn) {
		db, err = gorm.Open(postgres.Open(dsn), gcfg)
		if err != nil {
			return nil, fmt.Errorf("connecting to Postgres: %w", err)
		}
	} else {
		if dir := filepath.Dir(strings.TrimPrefix(dsn, "file:")); dir != "." {
			if err := os.MkdirAll(dir, 0o750); err != nil {
				return nil, fmt.Errorf("creating the database folder: %w", err)
			}
		}
		// WAL lets reads go on during a write; busy_timeout waits for a lock instead of
		// failing at once; both matter when the service restarts next to a backup job.
		// Transactions take the write lock when they begin (immediate), so one that writes
		// after reading waits for another writer instead of failing with "busy".
		sep := "?"
		if strings.Contains(dsn, "?") {
			sep = "&"
		}
		db, err = gorm.Open(sqlite.Open(dsn+sep+"_pragma=journal_mode(WAL)&_pragma=busy_timeout(5000)&_txlock=immediate"), gcfg)
		if err != nil {
			return nil, fmt.Errorf("opening SQLite database %s: %w", dsn, err)
		}
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, fmt.Errorf("getting the connection pool: %w", err)
	}
	if IsPostgres(dsn) {
		sqlDB.SetMaxOpenConns(10)
		sqlDB.SetConnMaxIdleTime(5 * time.Minute)
	} else {
		// One writer at a time is all SQLite allows; one connection makes that a queue in
		// the pool rather than "database is locked" errors. Runs take seconds; saves take
		// well under a millisecond, so this is never the bottleneck.
		sqlDB.SetMaxOpenConns(1)
	}
	s := &Store{db: db, postgres: IsPostgres(dsn)}
	if err := s.migrate(ctx); err != nil {
		_ = sqlDB.Close()
		return nil, err
	}
	return s, nil
}

// migrate brings the schema up to date. AutoMigrate only adds tables, columns and
// indexes, never drops them, so nothing already saved is lost by an upgrade.
//
// Replicas that start together on a new database would each see no table and race to
// create it, and all but one would fail. So one migrates at a time: on Postgres under an
// advisory lock held on one connection, on SQLite in one immediate transaction (the
// second process waits for the first's write lock, then finds the tables made).
func (s *Store) migrate(ctx context.Context) error {
	models := []any{&Submission{}, &Snippet{}, &Judge0Submission{}}
	db := s.db.WithContext(ctx)
	var err error
	if s.postgres {
		err = db.Connection(func(conn *gorm.DB) error {
			if err := conn.Exec("SELECT pg_advisory_lock(?)", migrationLock).Error; err != nil {
				return fmt.Errorf("taking the migration lock: %w", err)
			}
			// Released also when the connection closes, e.g. if this process dies here.
			defer conn.Exec("SELECT pg_advisory_unlock(?)", migrationLock)
			return conn.AutoMigrate(models...)
		})
	} else {
		err = db.Transaction(func(tx *gorm.DB) error { return tx.AutoMigrate(models...) })
	}
	if err != nil {
		return fmt.Errorf("migrating the database schema: %w", err)
	}
	return nil
}

// Close closes the database.
func (s *Store) Close() error {
	sqlDB, err := s.db.DB()
	if err != nil {
		return err
	}
	return sqlDB.Close()
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	sqlDB, err := s.db.DB()
	if err != nil {
		return err
	}
	if err := sqlDB.PingContext(ctx); err != nil {
		return fmt.Errorf("pinging the database: %w", err)
	}
	return nil
}

// SaveSubmission stores sub, setting its ID and CreatedAt. When a submission of the same
// RunUID is already saved (a retried /submit), it saves nothing and fills sub with that one
// instead, so every retry answers the same id.
func (s *Store) SaveSubmission(ctx context.Context, sub *Submission) error {
	sub.ID = 0
	db := s.db.WithContext(ctx)
	if sub.RunUID == nil {
		if err := db.Create(sub).Error; err != nil {
			return fmt.Errorf("saving submission: %w", err)
		}
		return nil
	}
	// ON CONFLICT DO NOTHING, which SQLite and Postgres both take: of two saves at once,
	// one inserts and the other finds its row, with no error in between to tell apart.
	res := db.Clauses(clause.OnConflict{Columns: []clause.Column{{Name: "run_uid"}}, DoNothing: true}).Create(sub)
	if res.Error != nil {
		return fmt.Errorf("saving submission of CodeRun %s: %w", sub.RunName, res.Error)
	}
	if res.RowsAffected == 1 {
		return nil
	}
	saved := &Submission{}
	if err := db.Where("run_uid = ?", *sub.RunUID).Take(saved).Error; err != nil {
		return fmt.Errorf("reading the saved submission of CodeRun %s (uid %s): %w", sub.RunName, *sub.RunUID, err)
	}
	*sub = *saved
	return nil
}

// Submission returns the submission with id, or ErrNotFound (also when it is another
// owner's: whether it exists is not told).
func (s *Store) Submission(ctx context.Context, id int64) (*Submission, error) {
	sub := &Submission{}
	err := s.owned(s.db.WithContext(ctx)).First(sub, id).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("reading submission %d: %w", id, err)
	}
	return sub, nil
}

// ListSubmissions returns page (from 1) of the submissions (the owner's, in an Owned
// view), perPage at most, newest first, and how many there are in all.
func (s *Store) ListSubmissions(ctx context.Context, page, perPage int) ([]Submission, int64, error) {
	if page < 1 || perPage < 1 {
		return nil, 0, fmt.Errorf("page (%d) and perPage (%d) must be positive", page, perPage)
	}
	var total int64
	db := s.db.WithContext(ctx)
	if err := s.owned(db.Model(&Submission{})).Count(&total).Error; err != nil {
		return nil, 0, fmt.Errorf("counting submissions: %w", err)
	}
	subs := []Submission{}
	// Ids grow with time; ordering by id keeps the newest first even when two submissions
	// share a timestamp.
	err := s.owned(db).Order("id DESC").Offset((page - 1) * perPage).Limit(perPage).Find(&subs).Error
	if err != nil {
		return nil, 0, fmt.Errorf("listing submissions: %w", err)
	}
	return subs, total, nil
}

// SaveSnippet stores sn under a new random id, setting its ID and CreatedAt.
func (s *Store) SaveSnippet(ctx context.Context, sn *Snippet) error {
	sn.ID = uuid.NewString()
	if err := s.db.WithContext(ctx).Create(sn).Error; err != nil {
		return fmt.Errorf("saving snippet: %w", err)
	}
	return nil
}

// Snippet returns the snippet with id, or ErrNotFound.
func (s *Store) Snippet(ctx context.Context, id string) (*Snippet, error) {
	sn := &Snippet{}
	err := s.db.WithContext(ctx).Where("id = ?", id).First(sn).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("reading snippet %s: %w", id, err)
	}
	return sn, nil
}
