package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"

	execv1alpha1 "github.com/coderun-dev/coderun/api/v1alpha1"
	"github.com/coderun-dev/coderun/internal/runs"
)

// keyRecorder is the fake runner that also records the Idempotency-Key each run was asked
// with, and plays the runs client's refusal of a key reused for another program. What a key
// does to runs is the runs client's business (internal/runs tests it against a real API
// server, cmd/front through the whole service); here it is what reaches it and how its
// answer turns into HTTP.
type keyRecorder struct {
	*fakeRunner
	keys []string
}

func (k *keyRecorder) Run(ctx context.Context, spec execv1alpha1.CodeRunSpec, bound time.Duration) (*execv1alpha1.CodeRun, error) {
	k.keys = append(k.keys, runs.IdempotencyKey(ctx))
	switch runs.IdempotencyKey(ctx) {
	case "used-for-another":
		return nil, fmt.Errorf("%w: CodeRun run-x runs another program, stdin or limits", runs.ErrKeyReused)
	case "gone-before-create": // the client leaves while the create is on its way
		if k.waiting != nil {
			k.waiting <- struct{}{}
		}
		<-ctx.Done()
		return nil, fmt.Errorf("creating a CodeRun in coderun-runs: %w", ctx.Err())
	}
	return k.fakeRunner.Run(ctx, spec, bound)
}

func TestIdempotencyKeyHeader(t *testing.T) {
	rec := &keyRecorder{}
	f := newFixture(t, func(r *fakeRunner, o *Options) {
		rec.fakeRunner = r
		o.Runs = rec
	})
	for _, path := range []string{"/execute", "/submit"} {
		for _, tc := range []struct {
			name    string
			header  []string // as sent: one value per header line
			status  int
			wantKey string // what the runner gets, when the request runs
			wantErr string // in the JSON error, when it does not
		}{
			{"none", nil, http.StatusOK, "", ""},
			{"a UUID", []string{"8e03978e-40d5-43e8-bc93-6894a57f9324"}, http.StatusOK, "8e03978e-40d5-43e8-bc93-6894a57f9324", ""},
			{"the draft's quoted string", []string{`"8e03978e"`}, http.StatusOK, "8e03978e", ""},
			{"255 characters, spaces included", []string{strings.Repeat("k ", 127) + "k"}, http.StatusOK, strings.Repeat("k ", 127) + "k", ""},
			{"empty", []string{""}, http.StatusBadRequest, "", "1 to 255 characters"},
			{"empty quoted", []string{`""`}, http.StatusBadRequest, "", "1 to 255 characters"},
			{"256 characters", []string{strings.Repeat("k", 256)}, http.StatusBadRequest, "", "1 to 255 characters; it holds 256"},
			{"not ASCII", []string{"clé"}, http.StatusBadRequest, "", "printable ASCII"},
			{"a control character", []string{"a\x7fb"}, http.StatusBadRequest, "", "byte 2 is 0x7f"},
			{"two headers", []string{"a", "b"}, http.StatusBadRequest, "", "one Idempotency-Key header, not 2"},
			{"reused for another program", []string{"used-for-another"}, http.StatusUnprocessableEntity, "used-for-another", "already used for another program"},
		} {
			t.Run(path+" "+tc.name, func(t *testing.T) {
				before := len(rec.keys)
				a := postWithKeys(f, path, `{"code": "print('Hello, World!')"}`, tc.header)
				if a.status != tc.status {
					t.Fatalf("status %d, want %d: %s", a.status, tc.status, a.body)
				}
				if tc.wantErr != "" && !strings.Contains(a.errorMessage(t), tc.wantErr) {
					t.Errorf("error %q, want it to say %q", a.errorMessage(t), tc.wantErr)
				}
				ran := len(rec.keys) > before
				if wantRun := tc.status != http.StatusBadRequest; ran != wantRun {
					t.Fatalf("the runner was asked: %v, want %v", ran, wantRun)
				}
				if ran && rec.keys[before] != tc.wantKey {
					t.Errorf("the runner got key %q, want %q", rec.keys[before], tc.wantKey)
				}
			})
		}
	}
}

// TestClientGoneWithKey: a keyed request whose client goes away is told that its run goes
// on and how to get its result; gone before there was a CodeRun, that it was cancelled.
func TestClientGoneWithKey(t *testing.T) {
	rec := &keyRecorder{}
	f := newFixture(t, func(r *fakeRunner, o *Options) {
		r.waiting = make(chan struct{}, 1)
		rec.fakeRunner = r
		o.Runs = rec
	})
	for _, tc := range []struct{ key, want string }{
		{"k", "its CodeRun run-00001 runs on: retry with the same Idempotency-Key"},
		{"gone-before-create", "its CodeRun was deleted"},
	} {
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			<-f.runner.waiting
			cancel()
		}()
		a := f.doCtx(ctx, t, http.MethodPost, "/execute", `{"code": "`+hang+`"}`, IdempotencyKeyHeader, tc.key)
		if a.status != http.StatusServiceUnavailable || !strings.Contains(a.errorMessage(t), tc.want) {
			t.Errorf("key %s: answer %d %v %s, want 503 saying %q", tc.key, a.status, a.header, a.body, tc.want)
		}
	}
}

// postWithKeys posts body to path with one Idempotency-Key header line per value.
func postWithKeys(f *fixture, path, body string, values []string) answer {
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for _, v := range values {
		req.Header.Add(IdempotencyKeyHeader, v)
	}
	rec := httptest.NewRecorder()
	f.srv.ServeHTTP(rec, req)
	return answer{status: rec.Code, header: rec.Result().Header, body: rec.Body.Bytes()}
}

// FuzzIdempotencyKey: whatever a client puts in the header, it is refused with a 400 that
// says why, or it is a key of 1 to 255 printable ASCII characters (the header as sent, or
// inside its quotes) whose CodeRun name the API server accepts.
func FuzzIdempotencyKey(f *testing.F) {
	for _, seed := range []string{"", `""`, `"`, "abc", `"abc"`, "550e8400-e29b-41d4-a716-446655440000",
		strings.Repeat("k", 255), strings.Repeat("k", 256), "a\x00b", "ключ", "a\tb", `"a"b"`} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, value string) {
		h := http.Header{}
		h.Set(IdempotencyKeyHeader, value)
		key, apiErr := idempotencyKey(h)
		if apiErr != nil {
			if apiErr.Status != http.StatusBadRequest || !strings.Contains(apiErr.Message, IdempotencyKeyHeader) {
				t.Fatalf("%q refused with %d %q, want a 400 naming the header", value, apiErr.Status, apiErr.Message)
			}
			return
		}
		if key != value && `"`+key+`"` != value {
			t.Fatalf("%q accepted as %q: neither the value nor what its quotes hold", value, key)
		}
		if len(key) < 1 || len(key) > maxIdempotencyKeyLength {
			t.Fatalf("%q accepted with %d bytes", value, len(key))
		}
		for i := range len(key) {
			if key[i] < 0x20 || key[i] > 0x7e {
				t.Fatalf("%q accepted with byte 0x%02x", value, key[i])
			}
		}
		if errs := validation.IsDNS1123Subdomain(runs.NameFor("alice", key)); len(errs) > 0 {
			t.Fatalf("key %q names the CodeRun %q, which the API server refuses: %v", key, runs.NameFor("alice", key), errs)
		}
	})
}
