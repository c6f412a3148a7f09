package main

import (
	"bytes"
	"context"
	"flag"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/coderun-dev/coderun/internal/auth"
)

func TestKeysNew(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := keysCommand([]string{"new", "--id", "alice", "--max-in-flight", "2"}, &out, &errOut); code != 0 {
		t.Fatalf("keys new: exit %d: %s", code, errOut.String())
	}
	// The output: comments, the key on a line of its own, and the entry.
	var key string
	var entry []string
	for line := range strings.Lines(out.String()) {
		line = strings.TrimRight(line, "\n")
		switch {
		case strings.HasPrefix(line, auth.KeyPrefix):
			key = line
		case strings.HasPrefix(line, "- ") || strings.HasPrefix(line, "  "):
			entry = append(entry, line)
		}
	}
	entries, err := auth.ParseFile([]byte("keys:\n" + strings.Join(entry, "\n")))
	if err != nil || len(entries) != 1 {
		t.Fatalf("the printed entry is not a key file entry: %v\n%s", err, out.String())
	}
	if e := entries[0]; e.ID != "alice" || e.SHA256 != auth.Hash(key) || e.MaxInFlight != 2 || e.Rate != 0 {
		t.Errorf("entry %+v does not match the key %q", e, key)
	}
	for _, args := range [][]string{nil, {"old"}, {"new"}, {"new", "--id", "no spaces please"}, {"new", "--id", "a", "--rate", "-1"}, {"new", "--id", "a", "extra"}} {
		errOut.Reset()
		if code := keysCommand(args, &out, &errOut); code == 0 || errOut.Len() == 0 {
			t.Errorf("keys %v: exit %d, stderr %q; want a failure with a message", args, code, errOut.String())
		}
	}
}

func TestAuthFlags(t *testing.T) {
	t.Setenv("CODERUN_API_KEYS_FILE", "/etc/coderun/keys/keys.yaml")
	f, err := parseFlags(flag.NewFlagSet("front", flag.ContinueOnError), []string{"--anonymous", "--trusted-proxies=10.0.0.0/8, 192.168.1.1", "--api-key-rate=0.5"})
	if err != nil {
		t.Fatal(err)
	}
	if f.auth.keysFile != "/etc/coderun/keys/keys.yaml" || !f.auth.anonymous || f.auth.key.Rate != 0.5 || f.auth.key.Burst != 10 ||
		!reflect.DeepEqual(f.auth.proxies(), []string{"10.0.0.0/8", "192.168.1.1"}) {
		t.Errorf("auth flags %+v proxies %q", f.auth, f.auth.proxies())
	}
	for _, args := range [][]string{{"--api-key-rate=0"}, {"--anonymous-burst=0"}, {"--api-keys-reload-interval=0s"}} {
		if _, err := parseFlags(flag.NewFlagSet("front", flag.ContinueOnError), args); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
	t.Setenv("CODERUN_API_KEYS_FILE", "")
	if _, err := parseFlags(flag.NewFlagSet("front", flag.ContinueOnError), []string{"--anonymous"}); err == nil || !strings.Contains(err.Error(), "--api-keys-file") {
		t.Errorf("--anonymous without keys: %v", err)
	}
}

// TestStartRefusesBadKeyFile: the service does not start on a key file it cannot read or
// parse (it could neither let the right clients in nor keep the others out).
func TestStartRefusesBadKeyFile(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "keys.yaml")
	if err := os.WriteFile(bad, []byte("keys:\n- id: alice\n  sha256: nothex\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for file, mention := range map[string]string{bad: "64 hex digits", filepath.Join(dir, "missing.yaml"): "no such file"} {
		f, err := parseFlags(flag.NewFlagSet("front", flag.ContinueOnError), []string{"--api-keys-file=" + file, "--database=" + filepath.Join(dir, "db")})
		if err != nil {
			t.Fatal(err)
		}
		err = run(context.Background(), f, slog.New(slog.DiscardHandler), nil)
		if err == nil || !strings.Contains(err.Error(), mention) {
			t.Errorf("starting with %s: %v, want an error mentioning %q", file, err, mention)
		}
	}
}
