package store

import (
	"context"
	"errors"
	"testing"
)

// TestOwned: with API keys on, a key lists and reads only its own submissions; another
// key's id answers ErrNotFound, like an id that does not exist. The whole store (keys
// off) sees them all.
func TestOwned(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, open opener) {
		s, _ := open(t)
		ctx := context.Background()
		ids := map[string][]int64{}
		for _, owner := range []string{"alice", "bob", "alice", "anonymous", ""} {
			sub := &Submission{Code: "print(1)", Language: "python", Reason: "Completed", RunName: "run-x", KeyID: owner}
			if err := s.SaveSubmission(ctx, sub); err != nil {
				t.Fatal(err)
			}
			ids[owner] = append(ids[owner], sub.ID)
		}
		subs, total, err := s.Owned("alice").ListSubmissions(ctx, 1, 20)
		if err != nil {
			t.Fatal(err)
		}
		if total != 2 || len(subs) != 2 || subs[0].ID != ids["alice"][1] || subs[1].ID != ids["alice"][0] {
			t.Errorf("alice lists %d of %d: %+v; want her 2", len(subs), total, subs)
		}
		if got, err := s.Owned("alice").Submission(ctx, ids["alice"][0]); err != nil || got.KeyID != "alice" {
			t.Errorf("alice reading her own: %v %+v", err, got)
		}
		if _, err := s.Owned("alice").Submission(ctx, ids["bob"][0]); !errors.Is(err, ErrNotFound) {
			t.Errorf("alice reading bob's: %v, want ErrNotFound", err)
		}
		if _, err := s.Owned("anonymous").Submission(ctx, ids[""][0]); !errors.Is(err, ErrNotFound) {
			t.Errorf("anonymous reading one saved with keys off: %v, want ErrNotFound", err)
		}
		if _, total, err := s.ListSubmissions(ctx, 1, 20); err != nil || total != 5 {
			t.Errorf("the whole store lists %d, %v; want 5", total, err)
		}
	})
}
