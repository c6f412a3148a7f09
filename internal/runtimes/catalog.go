package runtimes

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/cache"

	execv1alpha1 "github.com/coderun-dev/coderun/api/v1alpha1"
)

// CatalogOptions configure a Catalog.
type CatalogOptions struct {
	// Logger gets the catalog's messages; nil uses slog.Default().
	Logger *slog.Logger
	// RetryEvery is how often the catalog looks again for the Runtime kind when the API
	// server does not know it (its CRD is not installed yet); 30 s when 0.
	RetryEvery time.Duration
}

// Catalog is the front service's view of the cluster's Runtimes: a cluster-wide informer,
// so that listing the languages costs no request to the API server. Runtimes returns a
// snapshot.
//
// When the API server does not know the Runtime kind (a cluster whose CRDs were not
// upgraded: Helm never upgrades the CRDs of crds/), the catalog stays empty and unsynced
// and looks for the kind again every RetryEvery; it does not fail, so the rest of the
// service (Python through /execute) keeps working.
type Catalog struct {
	cfg    *rest.Config
	scheme *runtime.Scheme
	log    *slog.Logger
	retry  time.Duration

	mu     sync.Mutex
	cache  cache.Cache // set once the informer exists
	synced atomic.Bool
	// lastErr says why the catalog is not synced, for /readyz.
	lastErr atomic.Pointer[string]
}

// NewCatalog returns a Catalog for the API server of cfg; Start runs it.
func NewCatalog(cfg *rest.Config, scheme *runtime.Scheme, opts CatalogOptions) *Catalog {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.RetryEvery <= 0 {
		opts.RetryEvery = 30 * time.Second
	}
	c := &Catalog{cfg: cfg, scheme: scheme, log: opts.Logger, retry: opts.RetryEvery}
	c.setErr("the Runtime informer has not started")
	return c
}

func (c *Catalog) setErr(msg string) { c.lastErr.Store(&msg) }

// Start runs the informer until ctx ends. It returns nil when ctx ends, and an error only
// when the informer cannot be built at all.
func (c *Catalog) Start(ctx context.Context) error {
	for {
		ca, err := c.newCache(ctx)
		if err == nil {
			c.mu.Lock()
			c.cache = ca
			c.mu.Unlock()
			go func() {
				if ca.WaitForCacheSync(ctx) {
					c.synced.Store(true)
					c.log.Info("runtime catalog synced", "runtimes", len(c.Runtimes()))
				}
			}()
			if err := ca.Start(ctx); err != nil {
				return fmt.Errorf("running the Runtime informer: %w", err)
			}
			return nil
		}
		if !meta.IsNoMatchError(err) {
			return err
		}
		c.setErr("the API server has no Runtime kind (exec.coderun.dev/v1alpha1): apply the CRDs of charts/coderun/crds")
		c.log.Warn("the API server does not know Runtimes; the catalog stays empty until their CRD is applied",
			"retryIn", c.retry.String(), "error", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(c.retry):
		}
	}
}

func (c *Catalog) newCache(ctx context.Context) (cache.Cache, error) {
	ca, err := cache.New(c.cfg, cache.Options{
		Scheme:           c.scheme,
		DefaultTransform: cache.TransformStripManagedFields(),
	})
	if err != nil {
		return nil, fmt.Errorf("creating the Runtime cache: %w", err)
	}
	// Before the cache starts, GetInformer only registers the informer; a kind the API
	// server does not serve fails here with a no-match error.
	if _, err := ca.GetInformer(ctx, &execv1alpha1.Runtime{}); err != nil {
		return nil, fmt.Errorf("creating the Runtime informer: %w", err)
	}
	return ca, nil
}

// Synced reports whether the informer has listed the Runtimes.
func (c *Catalog) Synced() bool { return c.synced.Load() }

// NotSyncedReason says why the catalog is not synced ("" when it is).
func (c *Catalog) NotSyncedReason() string {
	if c.Synced() {
		return ""
	}
	return *c.lastErr.Load()
}

// WaitForSync waits until the informer has listed the Runtimes, or ctx ends.
func (c *Catalog) WaitForSync(ctx context.Context) bool {
	for !c.Synced() {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(20 * time.Millisecond):
		}
	}
	return true
}

// Runtimes returns the Runtimes there are, sorted by language and then highest version
// first; none before the informer has synced.
func (c *Catalog) Runtimes() []execv1alpha1.Runtime {
	if !c.Synced() {
		return nil
	}
	c.mu.Lock()
	ca := c.cache
	c.mu.Unlock()
	list := &execv1alpha1.RuntimeList{}
	// The cache is synced: List reads memory and does not block.
	if err := ca.List(context.Background(), list); err != nil {
		c.log.Error("listing Runtimes from the cache", "error", err)
		return nil
	}
	Sort(list.Items)
	return list.Items
}

// Sort orders Runtimes by language, then highest version first, then name.
func Sort(list []execv1alpha1.Runtime) {
	slices.SortStableFunc(list, func(a, b execv1alpha1.Runtime) int {
		if c := strings.Compare(a.Spec.Language, b.Spec.Language); c != 0 {
			return c
		}
		if c := compareVersions(b.Spec.Version, a.Spec.Version); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
}

// Compiled reports whether rt has a compile step.
func Compiled(rt *execv1alpha1.Runtime) bool {
	return rt.Spec.Compile != nil && len(rt.Spec.Compile.Command) > 0
}
