package controllers

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	execv1alpha1 "github.com/coderun-dev/coderun/api/v1alpha1"
	"github.com/coderun-dev/coderun/internal/config"
)

// Whether run pods get their own user namespace (hostUsers: false). The operator's
// configuration decides when it sets hostUsers. Left unset it means auto: on when every
// node a run pod can land on (Ready, schedulable, matching runs' nodeSelector and
// tolerations) reports user namespace support for the runtime handler run pods use, off
// otherwise, so that runs still start on clusters without it. Auto follows the nodes: new
// Jobs take the current decision, and pool members built before it changed are replaced
// (their spec digest includes hostUsers).

var runPodsUserNamespaces = prometheus.NewGauge(prometheus.GaugeOpts{
	Name: "coderun_run_pods_user_namespaces",
	Help: "1 when run pods get their own user namespace (hostUsers: false), 0 when they do not.",
})

func init() { metrics.Registry.MustRegister(runPodsUserNamespaces) }

// The rules the auto decision needs: the nodes, and the handler of runs' RuntimeClass.
// +kubebuilder:rbac:groups="",resources=nodes,verbs=get;list;watch
// +kubebuilder:rbac:groups=node.k8s.io,resources=runtimeclasses,verbs=get

// runtimeClassRecheck is how often auto looks again for runs' RuntimeClass while it does
// not exist (it is read, not watched).
const runtimeClassRecheck = time.Minute

// userNamespaces holds the decision. A nil *userNamespaces leaves hostUsers as
// configured (tests that build reconcilers without a manager).
type userNamespaces struct {
	cfg config.Config
	// nodes reads nodes from the manager's cache; api reads RuntimeClasses.
	nodes, api client.Reader
	// changed wakes the pool controller when the decision changed, so it replaces idle
	// members built for the other one (one pending event is enough: it lists every pool).
	changed chan event.GenericEvent
	log     logr.Logger

	// evaluating is held through an evaluation, so that one made on an older view of the
	// nodes never records after a newer one.
	evaluating sync.Mutex
	mu         sync.Mutex
	decided    bool
	on         bool
	why        string
	// noRuntimeClass: runs' RuntimeClass does not exist; checked again after a while.
	noRuntimeClass bool
}

// newUserNamespaces returns the decision for cfg. With hostUsers configured it is fixed;
// unset, it is auto and follows the nodes once setupWithManager has run.
func newUserNamespaces(cfg config.Config) *userNamespaces {
	u := &userNamespaces{cfg: cfg, changed: make(chan event.GenericEvent, 1), log: ctrl.Log.WithName("usernamespaces")}
	if cfg.HostUsers != nil {
		u.decided, u.on = true, !*cfg.HostUsers
		u.why = fmt.Sprintf("hostUsers: %t in the operator's configuration", *cfg.HostUsers)
	}
	return u
}

// apply returns cfg with the hostUsers run pods get now. The first call under auto
// decides, from the nodes in the cache, if the node controller has not yet.
func (u *userNamespaces) apply(ctx context.Context, cfg config.Config) (config.Config, error) {
	if u == nil || cfg.HostUsers != nil {
		return cfg, nil
	}
	u.mu.Lock()
	decided, on := u.decided, u.on
	u.mu.Unlock()
	if !decided {
		var err error
		if on, _, err = u.evaluate(ctx); err != nil {
			return cfg, err
		}
	}
	if on {
		cfg.HostUsers = ptr.To(false)
	}
	return cfg, nil
}

// evaluate decides from the nodes now, records the decision and logs it when it changed.
// changed is false for the first decision (nothing was built for another one yet).
func (u *userNamespaces) evaluate(ctx context.Context) (on, changed bool, err error) {
	u.evaluating.Lock()
	defer u.evaluating.Unlock()
	criHandler, why, err := u.runtimeHandler(ctx)
	if err != nil {
		return false, false, err
	}
	noRuntimeClass := why != ""
	if !noRuntimeClass {
		nodes := &corev1.NodeList{}
		if err := u.nodes.List(ctx, nodes); err != nil {
			return false, false, fmt.Errorf("listing nodes: %w", err)
		}
		on, why = decideUserNamespaces(nodes.Items, criHandler, u.cfg)
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if why == noNodeForRuns && u.decided && !u.noRuntimeClass {
		// No node can take run pods right now (a single node's kubelet is NotReady for a
		// moment): nothing says the nodes changed, and flipping would only replace every
		// idle pool member twice. The last decision stands until a node is back.
		on, why = u.on, noNodeForRuns+"; keeping the last decision until one does"
	}
	changed = u.decided && u.on != on
	if !u.decided || u.on != on {
		u.record(on, why)
	}
	u.decided, u.on, u.why, u.noRuntimeClass = true, on, why, noRuntimeClass
	return on, changed, nil
}

// record makes a new decision visible: one log line and the gauge.
func (u *userNamespaces) record(on bool, why string) {
	state, value := "off", 0.0
	if on {
		state, value = "on", 1
	}
	mode := "auto"
	if u.cfg.HostUsers != nil {
		mode = "configured"
	}
	u.log.Info("user namespaces for run pods: "+state, "hostUsers", mode, "why", why)
	runPodsUserNamespaces.Set(value)
}

// runtimeHandler is the CRI handler of run pods: the default one ("") without a
// RuntimeClass, else the RuntimeClass's handler. why says why auto is off when the
// RuntimeClass does not exist.
func (u *userNamespaces) runtimeHandler(ctx context.Context) (criHandler, why string, err error) {
	if u.cfg.RuntimeClassName == "" {
		return "", "", nil
	}
	rc := &nodev1.RuntimeClass{}
	switch err := u.api.Get(ctx, types.NamespacedName{Name: u.cfg.RuntimeClassName}, rc); {
	case apierrors.IsNotFound(err):
		return "", fmt.Sprintf("RuntimeClass %q does not exist", u.cfg.RuntimeClassName), nil
	case err != nil:
		return "", "", fmt.Errorf("getting RuntimeClass %s: %w", u.cfg.RuntimeClassName, err)
	}
	return rc.Handler, "", nil
}

// noNodeForRuns is decideUserNamespaces' why when no node can take run pods.
const noNodeForRuns = "no Ready, schedulable node matches the runs' nodeSelector and tolerations"

// decideUserNamespaces is the auto decision: on when at least one node can take run pods
// and each of them reports user namespace support for criHandler; why says which node
// lacks it, or what the decision rests on.
func decideUserNamespaces(nodes []corev1.Node, criHandler string, cfg config.Config) (on bool, why string) {
	var eligible, lacking []string
	for i := range nodes {
		n := &nodes[i]
		if !takesRunPods(n, cfg) {
			continue
		}
		eligible = append(eligible, n.Name)
		if !supportsUserNamespaces(n, criHandler) {
			lacking = append(lacking, n.Name)
		}
	}
	slices.Sort(lacking)
	switch {
	case len(eligible) == 0:
		return false, noNodeForRuns
	case len(lacking) == 1:
		return false, fmt.Sprintf("node %s does not report user namespace support for %s", lacking[0], handlerName(criHandler))
	case len(lacking) > 1:
		return false, fmt.Sprintf("%d of %d nodes for run pods do not report user namespace support for %s, %s among them",
			len(lacking), len(eligible), handlerName(criHandler), strings.Join(lacking[:min(3, len(lacking))], ", "))
	}
	return true, fmt.Sprintf("all %d nodes for run pods report user namespace support for %s", len(eligible), handlerName(criHandler))
}

func handlerName(h string) string {
	if h == "" {
		return "the default runtime handler"
	}
	return fmt.Sprintf("runtime handler %q", h)
}

// takesRunPods reports whether the scheduler could place a run pod on node: it is Ready
// and schedulable, matches runs' nodeSelector and has no NoSchedule or NoExecute taint
// runs do not tolerate.
func takesRunPods(node *corev1.Node, cfg config.Config) bool {
	if node.Spec.Unschedulable || !nodeReady(node) ||
		!labels.SelectorFromSet(cfg.NodeSelector).Matches(labels.Set(node.Labels)) {
		return false
	}
	for i := range node.Spec.Taints {
		taint := &node.Spec.Taints[i]
		if taint.Effect == corev1.TaintEffectPreferNoSchedule {
			continue
		}
		if !slices.ContainsFunc(cfg.Tolerations, func(t corev1.Toleration) bool {
			return t.ToleratesTaint(logr.Discard(), taint, false)
		}) {
			return false
		}
	}
	return true
}

func nodeReady(node *corev1.Node) bool {
	for _, c := range node.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// supportsUserNamespaces reports whether node's kubelet says criHandler supports user
// namespaces (status.runtimeHandlers, Kubernetes ≥ 1.30 with a runtime that tells).
func supportsUserNamespaces(node *corev1.Node, criHandler string) bool {
	for _, h := range node.Status.RuntimeHandlers {
		if h.Name == criHandler {
			return h.Features != nil && ptr.Deref(h.Features.UserNamespaces, false)
		}
	}
	return false
}

// TrimNode is the cache transform for nodes: it keeps only what the decision reads, so
// the operator does not hold every node's image list and heartbeats in memory.
func TrimNode(obj any) (any, error) {
	node, ok := obj.(*corev1.Node)
	if !ok {
		return obj, nil
	}
	trimmed := &corev1.Node{TypeMeta: node.TypeMeta, ObjectMeta: node.ObjectMeta}
	trimmed.ManagedFields, trimmed.Annotations = nil, nil
	trimmed.Spec.Unschedulable, trimmed.Spec.Taints = node.Spec.Unschedulable, node.Spec.Taints
	trimmed.Status.RuntimeHandlers = node.Status.RuntimeHandlers
	for _, c := range node.Status.Conditions {
		if c.Type == corev1.NodeReady {
			trimmed.Status.Conditions = []corev1.NodeCondition{{Type: c.Type, Status: c.Status, Reason: c.Reason}}
		}
	}
	return trimmed, nil
}

// nodeChanged passes the node updates that can change the decision, not heartbeats.
func nodeChanged(e event.TypedUpdateEvent[client.Object]) bool {
	a, aok := e.ObjectOld.(*corev1.Node)
	b, bok := e.ObjectNew.(*corev1.Node)
	if !aok || !bok {
		return true
	}
	return !maps.Equal(a.Labels, b.Labels) || a.Spec.Unschedulable != b.Spec.Unschedulable ||
		!equality.Semantic.DeepEqual(a.Spec.Taints, b.Spec.Taints) || nodeReady(a) != nodeReady(b) ||
		!equality.Semantic.DeepEqual(a.Status.RuntimeHandlers, b.Status.RuntimeHandlers)
}

// userNamespacesKey is the one request of the node controller: every node event asks for
// the same decision.
var userNamespacesKey = reconcile.Request{NamespacedName: types.NamespacedName{Name: "run-pods"}}

// Reconcile decides again, and wakes the pool controller when the decision changed.
func (u *userNamespaces) Reconcile(ctx context.Context, _ reconcile.Request) (ctrl.Result, error) {
	_, changed, err := u.evaluate(ctx)
	if err != nil {
		return ctrl.Result{}, err
	}
	if changed {
		select {
		case u.changed <- event.GenericEvent{Object: &execv1alpha1.CodeRunPool{}}:
		default: // one is pending already
		}
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.noRuntimeClass {
		return ctrl.Result{RequeueAfter: runtimeClassRecheck}, nil
	}
	return ctrl.Result{}, nil
}

// setupWithManager logs a configured decision, or starts following the nodes for auto.
func (u *userNamespaces) setupWithManager(mgr ctrl.Manager) error {
	if u.cfg.HostUsers != nil {
		u.record(u.on, u.why)
		return nil
	}
	u.nodes, u.api = mgr.GetClient(), mgr.GetAPIReader()
	toDecision := handler.EnqueueRequestsFromMapFunc(func(context.Context, client.Object) []reconcile.Request {
		return []reconcile.Request{userNamespacesKey}
	})
	return ctrl.NewControllerManagedBy(mgr).
		Named("usernamespaces").
		Watches(&corev1.Node{}, toDecision, builder.WithPredicates(predicate.Funcs{UpdateFunc: nodeChanged})).
		Complete(u)
}
