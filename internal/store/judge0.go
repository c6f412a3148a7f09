package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"
)

// Judge0 CE status ids that the store needs to know: a submission is unfinished while it
// has one of these (internal/httpapi/judge0_status.go has all 14).
const (
	Judge0InQueue    = 1
	Judge0Processing = 2
)

// Judge0Submission is one submission of the Judge0-compatible API (/judge0/submissions):
// the request as Judge0 names it, the CodeRun spec it became, and the result in Judge0's
// terms. It is kept after its CodeRun is gone, so that its token stays readable, as in
// Judge0. Nullable columns are pointers: Judge0 answers null for what is not set.
type Judge0Submission struct {
	// Token is the submission's id, a random UUID.
	Token string `gorm:"primaryKey;size:36"`
	// KeyID is the API key id that created it ("anonymous", or "" with keys off): a key
	// reads only its own (Owned).
	KeyID string `gorm:"not null;default:'';size:63;index"`

	LanguageID     int32  `gorm:"not null"`
	SourceCode     string `gorm:"not null"`
	Stdin          *string
	ExpectedOutput *string
	// Language and Version are the Runtime the language id resolved to.
	Language string `gorm:"not null;size:32"`
	Version  string `gorm:"not null;size:64"`
	// Spec is the CodeRun spec (JSON) that runs it, under the token as Idempotency-Key:
	// after a restart of the front, reading an unfinished submission runs the same spec with
	// the same key, which joins its CodeRun (or collects its result) instead of starting
	// another.
	Spec string `gorm:"not null"`

	// The limits and options of the request, with Judge0's defaults filled in.
	CPUTimeLimit                         float64 `gorm:"not null"`
	CPUExtraTime                         float64 `gorm:"not null"`
	WallTimeLimit                        float64 `gorm:"not null"`
	MemoryLimit                          int64   `gorm:"not null"`
	StackLimit                           int64   `gorm:"not null"`
	MaxProcessesAndOrThreads             int64   `gorm:"not null"`
	EnablePerProcessAndThreadTimeLimit   bool    `gorm:"not null"`
	EnablePerProcessAndThreadMemoryLimit bool    `gorm:"not null"`
	MaxFileSize                          int64   `gorm:"not null"`
	NumberOfRuns                         int64   `gorm:"not null"`
	RedirectStderrToStdout               bool    `gorm:"not null"`
	EnableNetwork                        bool    `gorm:"not null"`
	CompilerOptions                      *string `gorm:"size:512"`
	CommandLineArguments                 *string `gorm:"size:512"`
	CallbackURL                          *string `gorm:"size:2048"`
	AdditionalFiles                      *string

	// Judge0Result is the status, and the result once finished (its columns are the
	// submission's own: gorm embeds them).
	Judge0Result
	// RunName is the CodeRun that ran it, in the runs namespace.
	RunName string `gorm:"not null;default:'';size:253"`

	CreatedAt  time.Time `gorm:"not null;index"`
	FinishedAt *time.Time
}

// Judge0Result is a submission's status and what its run left, in Judge0's terms: the
// front's Judge0 API computes it from a CodeRun's result (httpapi's judge0VerdictOf).
type Judge0Result struct {
	// StatusID is Judge0's status: 1 In Queue, 2 Processing, 3 and on when finished.
	StatusID      int32 `gorm:"not null;index"`
	Stdout        *string
	Stderr        *string
	CompileOutput *string
	Message       *string
	// Time is the program's CPU time and WallTime its wall-clock time, in seconds.
	Time     *float64
	WallTime *float64
	// Memory is the program's peak memory in KB (KiB, as isolate counts).
	Memory     *int64
	ExitCode   *int32
	ExitSignal *int32
}

// BeforeSave replaces NUL characters in text with U+FFFD, as Submission's does: PostgreSQL
// text cannot hold them, and a program may print one.
func (j *Judge0Submission) BeforeSave(*gorm.DB) error {
	j.SourceCode = strings.ReplaceAll(j.SourceCode, "\x00", "\uFFFD")
	for _, text := range []*string{j.Stdin, j.ExpectedOutput, j.Stdout, j.Stderr, j.CompileOutput, j.Message} {
		if text != nil {
			*text = strings.ReplaceAll(*text, "\x00", "\uFFFD")
		}
	}
	return nil
}

// Finished reports whether the submission has its result.
func (j *Judge0Submission) Finished() bool {
	return j.StatusID != Judge0InQueue && j.StatusID != Judge0Processing
}

// CreateJudge0 saves a new submission, giving it a random token when it has none, and
// its CreatedAt.
func (s *Store) CreateJudge0(ctx context.Context, sub *Judge0Submission) error {
	if sub.Token == "" {
		sub.Token = uuid.NewString()
	}
	if err := s.db.WithContext(ctx).Create(sub).Error; err != nil {
		return fmt.Errorf("saving Judge0 submission %s: %w", sub.Token, err)
	}
	return nil
}

// Judge0 returns the submission of token, or ErrNotFound (also when it is another owner's).
func (s *Store) Judge0(ctx context.Context, token string) (*Judge0Submission, error) {
	sub := &Judge0Submission{}
	err := s.owned(s.db.WithContext(ctx)).Where("token = ?", token).Take(sub).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("reading Judge0 submission %s: %w", token, err)
	}
	return sub, nil
}

// Judge0Batch returns the submissions of tokens that exist (and are the owner's), by token.
func (s *Store) Judge0Batch(ctx context.Context, tokens []string) (map[string]*Judge0Submission, error) {
	var subs []Judge0Submission
	if err := s.owned(s.db.WithContext(ctx)).Where("token IN ?", tokens).Find(&subs).Error; err != nil {
		return nil, fmt.Errorf("reading %d Judge0 submissions: %w", len(tokens), err)
	}
	byToken := make(map[string]*Judge0Submission, len(subs))
	for i := range subs {
		byToken[subs[i].Token] = &subs[i]
	}
	return byToken, nil
}

// MarkJudge0Processing moves a submission from In Queue to Processing, and records the
// CodeRun that runs it. A submission that has moved on already is left as it is.
func (s *Store) MarkJudge0Processing(ctx context.Context, token, runName string) error {
	err := s.db.WithContext(ctx).Model(&Judge0Submission{}).
		Where("token = ? AND status_id = ?", token, Judge0InQueue).
		Updates(map[string]any{"status_id": Judge0Processing, "run_name": runName}).Error
	if err != nil {
		return fmt.Errorf("marking Judge0 submission %s processing: %w", token, err)
	}
	return nil
}

// FinishJudge0 saves the result fields of sub (status, outputs, times, exit, run name,
// finished time) if the submission is still unfinished, and reports whether it did: of
// two replicas that collected the same run, the first one's result stays.
func (s *Store) FinishJudge0(ctx context.Context, sub *Judge0Submission) (bool, error) {
	if !sub.Finished() {
		return false, fmt.Errorf("finishing Judge0 submission %s with status %d, which is not a result", sub.Token, sub.StatusID)
	}
	if err := sub.BeforeSave(nil); err != nil {
		return false, err
	}
	res := s.db.WithContext(ctx).Model(&Judge0Submission{}).
		Where("token = ? AND status_id IN ?", sub.Token, []int32{Judge0InQueue, Judge0Processing}).
		// Select names every column, so that nil pointers are written as NULL too.
		Select("status_id", "stdout", "stderr", "compile_output", "message", "time", "wall_time",
			"memory", "exit_code", "exit_signal", "run_name", "finished_at").
		Updates(sub)
	if res.Error != nil {
		return false, fmt.Errorf("saving the result of Judge0 submission %s: %w", sub.Token, res.Error)
	}
	return res.RowsAffected == 1, nil
}
