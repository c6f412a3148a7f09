package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/coderun-dev/coderun/internal/auth"
)

// authFlags configure API keys, quotas and the proxies trusted for client addresses.
type authFlags struct {
	keysFile       string
	reloadInterval time.Duration
	key            auth.Limits // defaults of keys whose entries leave limits out
	anonymous      bool
	anon           auth.Limits
	trustedProxies string
}

func (a *authFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&a.keysFile, "api-keys-file", "", "Key file (YAML, from a mounted Secret) of API keys, kept as SHA-256 hashes; re-read when it changes. Empty: API keys off, the API is open. Make a key with `coderun-front keys new --id NAME`.")
	fs.DurationVar(&a.reloadInterval, "api-keys-reload-interval", auth.DefaultWatchInterval, "How often the key file is read for changes.")
	fs.Float64Var(&a.key.Rate, "api-key-rate", 1, "Requests per second a key may make on average, unless its entry says otherwise.")
	fs.IntVar(&a.key.Burst, "api-key-burst", 10, "Requests a key may make at once, unless its entry says otherwise.")
	fs.IntVar(&a.key.MaxInFlight, "api-key-max-in-flight", 4, "Runs a key may have in flight at once, unless its entry says otherwise.")
	fs.BoolVar(&a.anonymous, "anonymous", false, "With API keys on, let requests without a key through as \"anonymous\", limited per client address.")
	fs.Float64Var(&a.anon.Rate, "anonymous-rate", 0.2, "Requests per second each client address may make without a key.")
	fs.IntVar(&a.anon.Burst, "anonymous-burst", 5, "Requests each client address may make at once without a key.")
	fs.IntVar(&a.anon.MaxInFlight, "anonymous-max-in-flight", 1, "Runs each client address may have in flight without a key.")
	fs.StringVar(&a.trustedProxies, "trusted-proxies", "", "Comma-separated addresses or CIDR ranges of proxies (an Ingress controller) whose X-Forwarded-For names the client. Empty: trust none; the peer is the client.")
}

func (a *authFlags) validate() error {
	if a.keysFile == "" {
		if a.anonymous {
			return errors.New("--anonymous needs --api-keys-file: without API keys every request is anonymous and unlimited")
		}
		return nil
	}
	if a.reloadInterval <= 0 {
		return errors.New("--api-keys-reload-interval must be positive")
	}
	for name, l := range map[string]auth.Limits{"api-key": a.key, "anonymous": a.anon} {
		if l.Rate <= 0 || l.Burst < 1 || l.MaxInFlight < 1 {
			return fmt.Errorf("--%s-rate must be positive, --%[1]s-burst and --%[1]s-max-in-flight at least 1", name)
		}
	}
	return nil
}

func (a *authFlags) proxies() []string {
	var out []string
	for p := range strings.SplitSeq(a.trustedProxies, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// keys loads the key file and the anonymous quotas; nil, nil when API keys are off. The
// file must be there and valid at startup: a service that could not tell keys apart would
// refuse everyone, or let everyone in.
func (a *authFlags) keys() (*auth.Keyring, *auth.AddressQuotas, error) {
	if a.keysFile == "" {
		return nil, nil, nil
	}
	ring, err := auth.NewKeyring(a.key)
	if err != nil {
		return nil, nil, err
	}
	if err := ring.LoadFile(a.keysFile); err != nil {
		return nil, nil, fmt.Errorf("loading the API keys: %w", err)
	}
	if !a.anonymous {
		return ring, nil, nil
	}
	anon, err := auth.NewAddressQuotas(a.anon, 0)
	if err != nil {
		return nil, nil, err
	}
	return ring, anon, nil
}

// watchKeys re-reads the key file until ctx ends; the returned function waits for that.
func (a *authFlags) watchKeys(ctx context.Context, ring *auth.Keyring, log *slog.Logger, loaded func(error)) (wait func()) {
	var wg sync.WaitGroup
	if ring != nil {
		wg.Go(func() { ring.Watch(ctx, a.keysFile, a.reloadInterval, log, loaded) })
	}
	return wg.Wait
}

// keysCommand is `coderun-front keys new --id NAME [--rate R] [--burst B] [--max-in-flight N]`:
// it prints a new key, once, and its entry for the key file.
func keysCommand(args []string, stdout, stderr io.Writer) int {
	usage := "usage: coderun-front keys new --id NAME [--rate R] [--burst B] [--max-in-flight N]"
	if len(args) == 0 || args[0] != "new" {
		_, _ = fmt.Fprintln(stderr, usage)
		return 2
	}
	fs := flag.NewFlagSet("keys new", flag.ContinueOnError)
	fs.SetOutput(stderr)
	id := fs.String("id", "", "The key's id (a Kubernetes label value: up to 63 letters, digits, '-', '_', '.'), shown in metrics, logs and the CodeRun label.")
	var l auth.Limits
	fs.Float64Var(&l.Rate, "rate", 0, "Requests per second for this key (0: the service's default).")
	fs.IntVar(&l.Burst, "burst", 0, "Requests at once for this key (0: the default).")
	fs.IntVar(&l.MaxInFlight, "max-in-flight", 0, "Runs in flight for this key (0: the default).")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if fs.NArg() > 0 || *id == "" {
		_, _ = fmt.Fprintln(stderr, usage)
		return 2
	}
	if err := l.Validate(); err != nil {
		_, _ = fmt.Fprintln(stderr, err)
		return 2
	}
	key, entry, err := auth.NewKey(*id, l)
	if err != nil {
		_, _ = fmt.Fprintf(stderr, "making a key for %q: %v\n", *id, err)
		return 1
	}
	y, err := auth.EntryYAML(entry)
	if err != nil {
		_, _ = fmt.Fprintln(stderr, err)
		return 1
	}
	_, _ = fmt.Fprintf(stdout, "# The key for %s, shown only now (the service keeps its hash):\n%s\n\n", *id, key)
	_, _ = fmt.Fprintf(stdout, "# Its entry, for the keys list of keys.yaml in the Secret:\n%s", y)
	return 0
}
