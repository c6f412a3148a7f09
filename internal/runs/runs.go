// Package runs creates CodeRuns for the front service and waits for their results. All
// waits share one informer (a controller-runtime cache of this service's CodeRuns in the
// runs namespace): a request registers a waiter under its CodeRun's name and is woken by
// the informer's events, so there is neither a polling loop nor a watch per request.
package runs

import (
	"context"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	execv1alpha1 "github.com/coderun-dev/coderun/api/v1alpha1"
)

// Labels of the CodeRuns this service creates; its cache holds only those.
const (
	// ManagedBy is the value of execv1alpha1.LabelManagedBy on this service's CodeRuns.
	ManagedBy = "coderun-front"
	// NamePrefix is the generateName of CodeRuns; the API server appends 5 random characters.
	NamePrefix = "run-"
)

// RequestIDAnnotation on a CodeRun holds the id of the HTTP request that created it (the
// front's X-Request-Id), so that one id leads from a request log line to the CodeRun and
// from there to its Job and pod.
const RequestIDAnnotation = "exec.coderun.dev/request-id"

type requestIDKey struct{}

// WithRequestID returns ctx carrying a request id for the CodeRuns that Run creates with it.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// RequestID returns the request id that WithRequestID put in ctx, or "" when there is none.
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// KeyIDLabel on a CodeRun holds the id of the API key whose request created it (never the
// key itself), or "anonymous", so that runs can be counted and listed per client.
const KeyIDLabel = "exec.coderun.dev/key-id"

type keyIDKey struct{}

// WithKeyID returns ctx carrying the id of the API key (or "anonymous") that a request was
// authenticated as; Run labels its CodeRun with it, and the front scopes submissions and
// idempotency keys by it.
func WithKeyID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, keyIDKey{}, id)
}

// KeyID returns the key id that WithKeyID put in ctx, or "" when there is none (keys off).
func KeyID(ctx context.Context) string {
	id, _ := ctx.Value(keyIDKey{}).(string)
	return id
}

// IdempotencyKeyHashAnnotation on a CodeRun created for an Idempotency-Key holds the hash
// of its spec (SpecHash), so that a retry with the same key but another program is told
// apart from a true retry. The key itself is not stored: only the CodeRun's name derives
// from it, through a hash.
const IdempotencyKeyHashAnnotation = "exec.coderun.dev/spec-hash"

type idempotencyKeyKey struct{}

// WithIdempotencyKey returns ctx carrying a client's Idempotency-Key: Run then creates the
// CodeRun under a name derived from the key and the caller (KeyID), joins the one already
// there when a retry comes, and does not delete it when the client goes away.
func WithIdempotencyKey(ctx context.Context, key string) context.Context {
	return context.WithValue(ctx, idempotencyKeyKey{}, key)
}

// IdempotencyKey returns the key that WithIdempotencyKey put in ctx, or "" when there is none.
func IdempotencyKey(ctx context.Context) string {
	key, _ := ctx.Value(idempotencyKeyKey{}).(string)
	return key
}

// nameEncoding spells hashes in a CodeRun name: lowercase letters and digits only, as a
// name and a label value allow.
var nameEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// NameFor is the name of the CodeRun for an Idempotency-Key of a caller (a KeyID): the same
// for every retry, different for every other caller or key. 120 bits of a SHA-256 make a
// collision between two keys of one namespace's lifetime out of the question, and the name
// (28 characters) is longer than any generated one (NamePrefix and 5), so the two kinds
// never meet.
func NameFor(keyID, key string) string {
	// The key id's length first: no other pair of strings spells the same input.
	sum := sha256.Sum256([]byte(strconv.Itoa(len(keyID)) + ":" + keyID + key))
	return NamePrefix + nameEncoding.EncodeToString(sum[:15])
}

// SpecHash is the hash of a spec that IdempotencyKeyHashAnnotation holds: hex SHA-256 of
// its JSON, which encoding/json writes the same way for equal specs.
func SpecHash(spec execv1alpha1.CodeRunSpec) (string, error) {
	b, err := json.Marshal(spec)
	if err != nil {
		return "", fmt.Errorf("encoding the CodeRun spec: %w", err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

var (
	// ErrKeyReused: a CodeRun of the same caller and Idempotency-Key exists for another
	// spec (or was not made by this service).
	ErrKeyReused = errors.New("the Idempotency-Key was already used for another request")
	// ErrBoundExceeded: the run had no result when its bound expired. Its CodeRun is deleted.
	ErrBoundExceeded = errors.New("the run did not finish within its bound")
	// ErrDeleted: the CodeRun was deleted (by someone else) before it had a result.
	ErrDeleted = errors.New("the CodeRun was deleted before it finished")
)

// Options configure a Client.
type Options struct {
	// Namespace is where CodeRuns are created (the operator's runs namespace).
	Namespace string
	// Retention is how long a finished CodeRun of this service stays in the cluster (for
	// `kubectl get coderuns`) before the service deletes it; 0 deletes it as soon as its
	// result is read. Without it CodeRuns, and this service's cache, would grow for ever.
	Retention time.Duration
	// Logger gets the client's own messages; nil uses slog.Default().
	Logger *slog.Logger
}

// Client creates CodeRuns and waits for their results.
type Client struct {
	ns        string
	retention time.Duration
	log       *slog.Logger
	api       client.Client // uncached: creates, deletes, and the readiness ping
	cache     cache.Cache
	informer  cache.Informer

	mu sync.Mutex
	// waiters by CodeRun name: several when retries with one Idempotency-Key meet.
	waiters map[string]map[*waiter]struct{}
}

// waiter is one request waiting for its CodeRun.
type waiter struct {
	changed chan struct{} // a signal: the CodeRun changed; capacity 1, never blocks
	deleted chan struct{} // closed when the CodeRun is deleted
	once    sync.Once
}

// New returns a Client for the API server of cfg. Start must run for it to see results.
func New(ctx context.Context, cfg *rest.Config, scheme *runtime.Scheme, opts Options) (*Client, error) {
	if opts.Namespace == "" {
		return nil, errors.New("runs: no namespace given")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	api, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, fmt.Errorf("creating the Kubernetes client: %w", err)
	}
	ca, err := cache.New(cfg, cache.Options{
		Scheme:            scheme,
		DefaultNamespaces: map[string]cache.Config{opts.Namespace: {}},
		ByObject: map[client.Object]cache.ByObject{
			&execv1alpha1.CodeRun{}: {Label: labels.SelectorFromSet(labels.Set{execv1alpha1.LabelManagedBy: ManagedBy})},
		},
		DefaultTransform: cache.TransformStripManagedFields(),
	})
	if err != nil {
		return nil, fmt.Errorf("creating the CodeRun cache: %w", err)
	}
	// Before the cache starts, GetInformer only registers the informer; it does not wait.
	inf, err := ca.GetInformer(ctx, &execv1alpha1.CodeRun{})
	if err != nil {
		return nil, fmt.Errorf("creating the CodeRun informer: %w", err)
	}
	c := &Client{
		ns: opts.Namespace, retention: opts.Retention, log: opts.Logger,
		api: api, cache: ca, informer: inf, waiters: map[string]map[*waiter]struct{}{},
	}
	if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { c.notify(obj, false) },
		UpdateFunc: func(_, obj any) { c.notify(obj, false) },
		DeleteFunc: func(obj any) { c.notify(obj, true) },
	}); err != nil {
		return nil, fmt.Errorf("watching CodeRuns: %w", err)
	}
	return c, nil
}

// Start runs the informer and the collector of finished CodeRuns until ctx ends.
func (c *Client) Start(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
		if c.cache.WaitForCacheSync(ctx) {
			c.collect(ctx)
		}
	})
	if err := c.cache.Start(ctx); err != nil {
		return fmt.Errorf("running the CodeRun cache: %w", err)
	}
	return nil
}

// WaitForSync waits until the informer has listed the existing CodeRuns.
func (c *Client) WaitForSync(ctx context.Context) bool {
	return c.cache.WaitForCacheSync(ctx)
}

// Synced reports whether the informer has listed the existing CodeRuns.
func (c *Client) Synced() bool { return c.informer.HasSynced() }

// Ping checks that the API server answers and lets this service list CodeRuns.
func (c *Client) Ping(ctx context.Context) error {
	if err := c.api.List(ctx, &execv1alpha1.CodeRunList{}, client.InNamespace(c.ns), client.Limit(1)); err != nil {
		return fmt.Errorf("listing CodeRuns in %s: %w", c.ns, err)
	}
	return nil
}

func (c *Client) notify(obj any, deleted bool) {
	if tomb, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	run, ok := obj.(*execv1alpha1.CodeRun)
	if !ok {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for w := range c.waiters[run.Name] {
		if deleted {
			w.once.Do(func() { close(w.deleted) })
			continue
		}
		select {
		case w.changed <- struct{}{}:
		default: // a wake-up is already pending; the waiter reads the latest state anyway
		}
	}
}

// wait registers a waiter for the CodeRun name; done unregisters it.
func (c *Client) wait(name string) (w *waiter, done func()) {
	w = &waiter{changed: make(chan struct{}, 1), deleted: make(chan struct{})}
	c.mu.Lock()
	if c.waiters[name] == nil {
		c.waiters[name] = map[*waiter]struct{}{}
	}
	c.waiters[name][w] = struct{}{}
	c.mu.Unlock()
	return w, func() {
		c.mu.Lock()
		delete(c.waiters[name], w)
		if len(c.waiters[name]) == 0 {
			delete(c.waiters, name)
		}
		c.mu.Unlock()
	}
}

// Run creates a CodeRun with spec and waits for its result, at most bound. It returns the
// CodeRun (nil only if creating it failed) and:
//   - nil when the CodeRun has a result (run.Status.Result);
//   - ErrBoundExceeded when bound passed first; the CodeRun is deleted;
//   - ctx's error when ctx ended first (the client went away); the CodeRun is deleted,
//     unless ctx has an Idempotency-Key: then it runs on, for a retry to collect;
//   - ErrDeleted when someone else deleted the CodeRun;
//   - ErrKeyReused when ctx's Idempotency-Key already names a CodeRun of another spec;
//   - the API server's error when it refused the CodeRun.
//
// With an Idempotency-Key (WithIdempotencyKey) the CodeRun's name is NameFor the caller
// (KeyID) and the key; if that CodeRun exists, Run waits for it instead of creating another.
func (c *Client) Run(ctx context.Context, spec execv1alpha1.CodeRunSpec, bound time.Duration) (*execv1alpha1.CodeRun, error) {
	run := &execv1alpha1.CodeRun{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName: NamePrefix,
			Namespace:    c.ns,
			Labels:       map[string]string{execv1alpha1.LabelManagedBy: ManagedBy},
			Annotations:  map[string]string{},
		},
		Spec: spec,
	}
	if id := RequestID(ctx); id != "" {
		run.Annotations[RequestIDAnnotation] = id
	}
	// The front validated key ids as label values when it loaded them.
	if id := KeyID(ctx); id != "" {
		run.Labels[KeyIDLabel] = id
	}
	key := IdempotencyKey(ctx)
	if key != "" {
		hash, err := SpecHash(spec)
		if err != nil {
			return nil, err
		}
		run.GenerateName, run.Name = "", NameFor(KeyID(ctx), key)
		run.Annotations[IdempotencyKeyHashAnnotation] = hash
	}
	timer := time.NewTimer(bound) // from before the create: the bound covers everything
	defer timer.Stop()
	run, err := c.create(ctx, run, key != "")
	if err != nil {
		return nil, err
	}
	if run.Status.Result != nil {
		// A retry of a finished run: its result is here, read from the API server. (The
		// cache may not have it any more, if the retention has just removed it.)
		c.afterResult(run)
		return run, nil
	}

	// Register, then read the cache: an event between the create and the registration is
	// already in the cache, and every later one wakes the waiter.
	w, unregister := c.wait(run.Name)
	defer unregister()
	for {
		if got, done := c.lookup(ctx, run); done {
			c.afterResult(got)
			return got, nil
		}
		select {
		case <-w.changed:
		case <-w.deleted:
			return run, ErrDeleted
		case <-ctx.Done():
			if key == "" {
				c.delete(run, "the client went away")
			} else {
				// A retry with the key is likely (the client, or a proxy, lost the
				// connection): it finds the run going on, or its result kept for the
				// retention.
				c.log.Info("client went away; keeping its CodeRun for a retry with the same Idempotency-Key",
					"name", run.Name, "namespace", run.Namespace)
			}
			return run, ctx.Err()
		case <-timer.C:
			if got, done := c.lookup(ctx, run); done { // it may have finished just now
				c.afterResult(got)
				return got, nil
			}
			c.delete(run, "its bound expired")
			return run, fmt.Errorf("%w (%s)", ErrBoundExceeded, bound)
		}
	}
}

// create creates run. With joinable (run is named for an Idempotency-Key) a CodeRun that
// already has its name is a retry's: create returns that one when it was made by this
// service for the same spec, and ErrKeyReused otherwise.
func (c *Client) create(ctx context.Context, run *execv1alpha1.CodeRun, joinable bool) (*execv1alpha1.CodeRun, error) {
	// Two tries: the CodeRun found may be deleted (its retention ended) between the
	// create that fails and the read, and then the retry creates it again.
	for try := 1; ; try++ {
		err := c.api.Create(ctx, run)
		if err == nil {
			return run, nil
		}
		if !joinable || !apierrors.IsAlreadyExists(err) {
			return nil, fmt.Errorf("creating a CodeRun in %s: %w", c.ns, err)
		}
		// Read from the API server, not the cache: the cache may not have seen it yet.
		existing := &execv1alpha1.CodeRun{}
		err = c.api.Get(ctx, client.ObjectKeyFromObject(run), existing)
		if apierrors.IsNotFound(err) && try < 2 {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("reading the CodeRun %s of this Idempotency-Key: %w", run.Name, err)
		}
		if existing.Labels[execv1alpha1.LabelManagedBy] != ManagedBy ||
			existing.Annotations[IdempotencyKeyHashAnnotation] != run.Annotations[IdempotencyKeyHashAnnotation] {
			return nil, fmt.Errorf("%w: CodeRun %s runs another program, stdin or limits", ErrKeyReused, run.Name)
		}
		c.log.Info("joining the CodeRun of a retried Idempotency-Key", "name", existing.Name, "namespace", existing.Namespace,
			"requestID", existing.Annotations[RequestIDAnnotation], "finished", existing.Status.Result != nil)
		return existing, nil
	}
}

// lookup reads run from the cache: it returns the cached CodeRun and whether it has a
// result (nil and false while the cache has not seen it yet).
func (c *Client) lookup(ctx context.Context, run *execv1alpha1.CodeRun) (*execv1alpha1.CodeRun, bool) {
	got := &execv1alpha1.CodeRun{}
	if err := c.cache.Get(ctx, client.ObjectKeyFromObject(run), got); err != nil {
		return nil, false // not in the cache yet; its Add event will wake the waiter
	}
	return got, got.Status.Result != nil
}

func (c *Client) afterResult(run *execv1alpha1.CodeRun) {
	if c.retention == 0 {
		// Off the request's path: the answer need not wait for the delete.
		go c.delete(run, "its result was read")
	}
}

// delete deletes run and, in the background, its Job and pod. It runs after the request
// may have ended, so it has a context of its own.
func (c *Client) delete(run *execv1alpha1.CodeRun, why string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := c.api.Delete(ctx, run, client.PropagationPolicy(metav1.DeletePropagationBackground))
	if err != nil && !apierrors.IsNotFound(err) {
		c.log.Error("deleting CodeRun", "name", run.Name, "namespace", run.Namespace, "why", why, "error", err)
		return
	}
	c.log.Info("deleted CodeRun", "name", run.Name, "namespace", run.Namespace, "why", why)
}

// collect deletes this service's CodeRuns that finished more than the retention ago,
// including those finished while no replica was waiting for them.
func (c *Client) collect(ctx context.Context) {
	every := min(max(c.retention/2, 10*time.Second), time.Minute)
	ticker := time.NewTicker(every)
	defer ticker.Stop()
	for {
		c.collectOnce(ctx, time.Now())
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

func (c *Client) collectOnce(ctx context.Context, now time.Time) {
	list := &execv1alpha1.CodeRunList{}
	if err := c.cache.List(ctx, list, client.InNamespace(c.ns)); err != nil {
		c.log.Error("listing finished CodeRuns", "error", err)
		return
	}
	for i := range list.Items {
		run := &list.Items[i]
		done := run.Status.CompletionTime
		if run.Status.Result == nil || done == nil || now.Sub(done.Time) < c.retention || run.DeletionTimestamp != nil {
			continue
		}
		c.mu.Lock()
		waiting := len(c.waiters[run.Name]) > 0
		c.mu.Unlock()
		if !waiting {
			c.delete(run, fmt.Sprintf("it finished more than %s ago", c.retention))
		}
	}
}
