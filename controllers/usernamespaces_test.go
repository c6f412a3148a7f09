package controllers

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"

	execv1alpha1 "github.com/coderun-dev/coderun/api/v1alpha1"
	"github.com/coderun-dev/coderun/internal/config"
)

// nodeBuilder builds a node as its kubelet reports it: Ready, schedulable, with no runtime
// handlers until withHandler.
type nodeBuilder struct{ corev1.Node }

func testNode(name string, labels map[string]string) *nodeBuilder {
	return &nodeBuilder{corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{
			{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse},
			{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady"},
		}},
	}}
}

// withHandler adds a runtime handler; userns nil leaves its features out (an older runtime).
func (b *nodeBuilder) withHandler(name string, userns *bool) *nodeBuilder {
	h := corev1.NodeRuntimeHandler{Name: name}
	if userns != nil {
		h.Features = &corev1.NodeRuntimeHandlerFeatures{RecursiveReadOnlyMounts: ptr.To(true), UserNamespaces: userns}
	}
	b.Status.RuntimeHandlers = append(b.Status.RuntimeHandlers, h)
	return b
}

func (b *nodeBuilder) notReady() *nodeBuilder {
	b.Status.Conditions[1].Status = corev1.ConditionFalse
	return b
}

func (b *nodeBuilder) cordoned() *nodeBuilder {
	b.Spec.Unschedulable = true
	return b
}

func (b *nodeBuilder) tainted(key string, effect corev1.TaintEffect) *nodeBuilder {
	b.Spec.Taints = append(b.Spec.Taints, corev1.Taint{Key: key, Effect: effect})
	return b
}

func (b *nodeBuilder) node() *corev1.Node { return b.DeepCopy() }

var (
	supports = ptr.To(true)
	lacks    = ptr.To(false)
)

func TestDecideUserNamespaces(t *testing.T) {
	sandbox := map[string]string{"coderun.dev/sandbox": "true"}
	withSandbox := func(c config.Config) config.Config {
		c.NodeSelector = sandbox
		c.Tolerations = []corev1.Toleration{{Key: "coderun.dev/sandbox", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}}
		return c
	}
	cases := []struct {
		name    string
		nodes   []*nodeBuilder
		handler string
		cfg     func(config.Config) config.Config
		want    bool
		why     string // a part of the reason
	}{
		{name: "no nodes", want: false, why: "no Ready, schedulable node"},
		{name: "one node supports it", nodes: []*nodeBuilder{testNode("a", nil).withHandler("", supports).withHandler("runc", supports)},
			want: true, why: "all 1 nodes for run pods report user namespace support for the default runtime handler"},
		{name: "one node says no", nodes: []*nodeBuilder{testNode("a", nil).withHandler("", lacks)},
			why: "node a does not report user namespace support for the default runtime handler"},
		{name: "a node reports no features", nodes: []*nodeBuilder{testNode("a", nil).withHandler("", supports), testNode("b", nil).withHandler("", nil)},
			why: "node b does not report"},
		{name: "a node reports no runtime handlers (older kubelet)", nodes: []*nodeBuilder{testNode("a", nil).withHandler("", supports), testNode("b", nil)},
			why: "node b does not report"},
		{name: "only a named handler supports it", nodes: []*nodeBuilder{testNode("a", nil).withHandler("", lacks).withHandler("runc", supports)},
			why: "node a does not report"},
		{name: "several nodes lack it", nodes: []*nodeBuilder{testNode("d", nil), testNode("c", nil), testNode("b", nil), testNode("a", nil), testNode("e", nil).withHandler("", supports)},
			why: "4 of 5 nodes for run pods do not report user namespace support for the default runtime handler, a, b, c among them"},
		{name: "a NotReady node without it does not count", nodes: []*nodeBuilder{testNode("a", nil).withHandler("", supports), testNode("b", nil).notReady()},
			want: true, why: "all 1 nodes"},
		{name: "a cordoned node without it does not count", nodes: []*nodeBuilder{testNode("a", nil).withHandler("", supports), testNode("b", nil).cordoned()},
			want: true},
		{name: "only NotReady nodes", nodes: []*nodeBuilder{testNode("a", nil).withHandler("", supports).notReady()},
			why: "no Ready, schedulable node"},
		{name: "a tainted control plane without it does not count", nodes: []*nodeBuilder{
			testNode("a", nil).withHandler("", supports),
			testNode("cp", nil).tainted("node-role.kubernetes.io/control-plane", corev1.TaintEffectNoSchedule),
		}, want: true},
		{name: "a PreferNoSchedule taint still counts", nodes: []*nodeBuilder{
			testNode("a", nil).withHandler("", supports),
			testNode("b", nil).tainted("busy", corev1.TaintEffectPreferNoSchedule),
		}, why: "node b does not report"},
		{name: "the nodeSelector leaves out a node without it", nodes: []*nodeBuilder{
			testNode("sandbox-1", sandbox).withHandler("", supports).tainted("coderun.dev/sandbox", corev1.TaintEffectNoSchedule),
			testNode("general", nil),
		}, cfg: withSandbox, want: true, why: "all 1 nodes"},
		{name: "the nodeSelector matches no node", nodes: []*nodeBuilder{testNode("general", nil).withHandler("", supports)},
			cfg: withSandbox, why: "matches the runs' nodeSelector"},
		{name: "a tolerated taint counts", nodes: []*nodeBuilder{
			testNode("sandbox-1", sandbox).withHandler("", supports),
			testNode("sandbox-2", sandbox).tainted("coderun.dev/sandbox", corev1.TaintEffectNoSchedule),
		}, cfg: withSandbox, why: "node sandbox-2 does not report"},
		{name: "the RuntimeClass's handler supports it", handler: "kata",
			nodes: []*nodeBuilder{testNode("a", nil).withHandler("", lacks).withHandler("kata", supports)},
			want:  true, why: `runtime handler "kata"`},
		{name: "the RuntimeClass's handler does not", handler: "kata",
			nodes: []*nodeBuilder{testNode("a", nil).withHandler("", supports).withHandler("kata", lacks)},
			why:   `node a does not report user namespace support for runtime handler "kata"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tableConfig()
			if tc.cfg != nil {
				cfg = tc.cfg(cfg)
			}
			var nodes []corev1.Node
			for _, b := range tc.nodes {
				nodes = append(nodes, *b.node())
			}
			on, why := decideUserNamespaces(nodes, tc.handler, cfg)
			if on != tc.want || !strings.Contains(why, tc.why) {
				t.Errorf("decision %t (%s), want %t with %q", on, why, tc.want, tc.why)
			}
		})
	}
}

// TestTrimNode: the cache keeps of a node what the decision reads, and nothing big.
func TestTrimNode(t *testing.T) {
	n := testNode("a", map[string]string{"zone": "z1"}).withHandler("", supports).tainted("t", corev1.TaintEffectNoSchedule).node()
	n.Status.Conditions[1].LastHeartbeatTime = metav1.Now()
	n.Status.Images = []corev1.ContainerImage{{Names: []string{"registry.example/big:1"}, SizeBytes: 1 << 30}}
	n.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "kubelet"}}
	n.Annotations = map[string]string{"node.alpha.kubernetes.io/ttl": "0"}
	got, err := TrimNode(n)
	if err != nil {
		t.Fatal(err)
	}
	trimmed := got.(*corev1.Node)
	if len(trimmed.Status.Images) != 0 || len(trimmed.ManagedFields) != 0 || len(trimmed.Annotations) != 0 || len(trimmed.Status.Conditions) != 1 {
		t.Errorf("trimmed node keeps images %v, managed fields %v, annotations %v, conditions %v", trimmed.Status.Images, trimmed.ManagedFields, trimmed.Annotations, trimmed.Status.Conditions)
	}
	cfg := tableConfig()
	cfg.Tolerations = []corev1.Toleration{{Key: "t", Operator: corev1.TolerationOpExists}}
	cfg.NodeSelector = map[string]string{"zone": "z1"}
	if on, why := decideUserNamespaces([]corev1.Node{*trimmed}, "", cfg); !on {
		t.Errorf("the trimmed node decides off (%s), the node itself on", why)
	}
	if other, _ := TrimNode(&corev1.Pod{}); other == nil {
		t.Error("a non-node object was dropped")
	}
}

// TestNodeChanged: heartbeats do not wake the decision; what it reads does.
func TestNodeChanged(t *testing.T) {
	base := testNode("a", nil).withHandler("", supports).node()
	cases := []struct {
		name   string
		change func(n *corev1.Node)
		want   bool
	}{
		{"heartbeat", func(n *corev1.Node) { n.Status.Conditions[1].LastHeartbeatTime = metav1.Now(); n.ResourceVersion = "2" }, false},
		{"memory pressure", func(n *corev1.Node) { n.Status.Conditions[0].Status = corev1.ConditionTrue }, false},
		{"not ready", func(n *corev1.Node) { n.Status.Conditions[1].Status = corev1.ConditionUnknown }, true},
		{"label", func(n *corev1.Node) { n.Labels = map[string]string{"pool": "sandbox"} }, true},
		{"cordoned", func(n *corev1.Node) { n.Spec.Unschedulable = true }, true},
		{"taint", func(n *corev1.Node) { n.Spec.Taints = []corev1.Taint{{Key: "x", Effect: corev1.TaintEffectNoExecute}} }, true},
		{"runtime handlers", func(n *corev1.Node) { n.Status.RuntimeHandlers[0].Features.UserNamespaces = lacks }, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n := base.DeepCopy()
			tc.change(n)
			if got := nodeChanged(event.TypedUpdateEvent[client.Object]{ObjectOld: base, ObjectNew: n}); got != tc.want {
				t.Errorf("nodeChanged %t, want %t", got, tc.want)
			}
		})
	}
}

// usernsConfig is testConfig with room for every run the tests below start (their
// programs never end).
func usernsConfig() config.Config {
	cfg := testConfig()
	cfg.MaxConcurrentRuns = 10
	return cfg
}

// decision is what u has decided (for tests).
func (u *userNamespaces) decision() (decided, on bool, why string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.decided, u.on, u.why
}

// TestUserNamespacesFollowTheNodes runs the operator against a real API server whose Node
// objects report, in status.runtimeHandlers, what a kubelet on a runtime with or without
// user namespace support reports, and checks the hostUsers of the Jobs it then creates.
// Each operator selects nodes labelled for its test only, so other nodes do not count.
func TestUserNamespacesFollowTheNodes(t *testing.T) {
	needEnvtest(t)
	ns := newRunsNamespace(t)
	mine := map[string]string{"coderun.test/nodes": ns}
	cfg := usernsConfig()
	cfg.NodeSelector = mine
	op, stop := runOperator(t, cfg, ns)
	t.Cleanup(stop)
	u := op.reconciler.userns

	// No node: off, and runs still start.
	expectHostUsers(t, op, "no-nodes", nil)
	if _, on, why := u.decision(); on || !strings.Contains(why, "no Ready, schedulable node") {
		t.Errorf("decision %t (%s) without nodes, want off for lack of nodes", on, why)
	}

	a := createNode(t, testNode(ns+"-a", mine).withHandler("", supports).withHandler("runc", supports))
	waitForDecision(t, u, true)
	expectHostUsers(t, op, "one-node-supports", ptr.To(false))
	if got := testutil.ToFloat64(runPodsUserNamespaces); got != 1 {
		t.Errorf("coderun_run_pods_user_namespaces %v, want 1", got)
	}

	b := createNode(t, testNode(ns+"-b", mine).withHandler("", lacks))
	waitForDecision(t, u, false)
	if _, _, why := u.decision(); !strings.Contains(why, "node "+b.Name+" does not report") {
		t.Errorf("reason %q does not name node %s", why, b.Name)
	}
	expectHostUsers(t, op, "a-node-lacks-it", nil)
	if got := testutil.ToFloat64(runPodsUserNamespaces); got != 0 {
		t.Errorf("coderun_run_pods_user_namespaces %v, want 0", got)
	}

	// The kubelet of b restarts on a runtime that supports it.
	setRuntimeHandlers(t, b, testNode("", nil).withHandler("", supports).Status.RuntimeHandlers)
	waitForDecision(t, u, true)

	// b is cordoned and loses support: it takes no run pods, so it does not count.
	b.Spec.Unschedulable = true
	if err := k8sClient.Update(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	setRuntimeHandlers(t, b, nil)
	expectDecisionStays(t, u, true)

	// a goes NotReady for a moment, and b takes no run pods: no node can take them now, and
	// the last decision stands (flipping would replace every idle pool member, twice).
	setReady(t, a, corev1.ConditionFalse)
	expectDecisionStays(t, u, true)
	if _, _, why := u.decision(); !strings.Contains(why, "keeping the last decision") {
		t.Errorf("reason %q while no node takes run pods, want it to say the last decision is kept", why)
	}
	setReady(t, a, corev1.ConditionTrue)

	// A node without support that can take run pods turns it off; deleting the nodes then
	// keeps that.
	b.Spec.Unschedulable = false
	if err := k8sClient.Update(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	waitForDecision(t, u, false)
	for _, n := range []*corev1.Node{a, b} {
		if err := k8sClient.Delete(context.Background(), n); err != nil {
			t.Fatal(err)
		}
	}
	expectDecisionStays(t, u, false)
}

// setReady writes node's Ready condition as its kubelet would.
func setReady(t *testing.T, node *corev1.Node, status corev1.ConditionStatus) {
	t.Helper()
	err := retryOnConflict(func() error {
		if err := k8sClient.Get(context.Background(), client.ObjectKeyFromObject(node), node); err != nil {
			return err
		}
		for i := range node.Status.Conditions {
			if node.Status.Conditions[i].Type == corev1.NodeReady {
				node.Status.Conditions[i].Status = status
			}
		}
		return k8sClient.Status().Update(context.Background(), node)
	})
	if err != nil {
		t.Fatalf("writing the Ready condition of node %s: %v", node.Name, err)
	}
}

// TestUserNamespacesNodeSelector: an operator whose nodeSelector leaves out the node
// without support turns user namespaces on; one that selects both does not.
func TestUserNamespacesNodeSelector(t *testing.T) {
	needEnvtest(t)
	ns := newRunsNamespace(t)
	mine := map[string]string{"coderun.test/nodes": ns}
	sandbox := map[string]string{"coderun.test/nodes": ns, "coderun.test/sandbox": "true"}
	createNode(t, testNode(ns+"-sandbox", sandbox).withHandler("", supports))
	createNode(t, testNode(ns+"-general", mine).withHandler("", lacks))

	all := usernsConfig()
	all.NodeSelector = mine
	opAll, stopAll := runOperator(t, all, ns)
	t.Cleanup(stopAll)
	expectHostUsers(t, opAll, "both-nodes", nil)
	// One operator at a time: each checks that it leaves no goroutine behind.
	stopAll()

	only := usernsConfig()
	only.NodeSelector = sandbox
	opSandbox, stop := runOperator(t, only, newRunsNamespace(t))
	t.Cleanup(stop)
	expectHostUsers(t, opSandbox, "sandbox-only", ptr.To(false))
}

// TestUserNamespacesConfigured: hostUsers set in the configuration is what run pods get,
// whatever the nodes report.
func TestUserNamespacesConfigured(t *testing.T) {
	needEnvtest(t)
	ns := newRunsNamespace(t)
	mine := map[string]string{"coderun.test/nodes": ns}
	createNode(t, testNode(ns+"-a", mine).withHandler("", lacks))
	createNode(t, testNode(ns+"-b", mine).withHandler("", supports))

	for _, hostUsers := range []bool{false, true} {
		t.Run(fmt.Sprintf("hostUsers %t", hostUsers), func(t *testing.T) {
			cfg := usernsConfig()
			cfg.NodeSelector = mine
			cfg.HostUsers = ptr.To(hostUsers)
			op, stop := runOperator(t, cfg, newRunsNamespace(t))
			t.Cleanup(stop)
			expectHostUsers(t, op, "configured", ptr.To(hostUsers))
			if _, on, why := op.reconciler.userns.decision(); on != !hostUsers || !strings.Contains(why, "configuration") {
				t.Errorf("decision %t (%s), want %t from the configuration", on, why, !hostUsers)
			}
		})
	}
}

// TestUserNamespacesRuntimeClass: with a RuntimeClass, what counts is its handler's
// support, not the default handler's.
func TestUserNamespacesRuntimeClass(t *testing.T) {
	needEnvtest(t)
	ns := newRunsNamespace(t)
	mine := map[string]string{"coderun.test/nodes": ns}
	rc := &nodev1.RuntimeClass{ObjectMeta: metav1.ObjectMeta{Name: ns + "-sandboxed"}, Handler: "sandboxed"}
	node := createNode(t, testNode(ns+"-a", mine).withHandler("", supports).withHandler("sandboxed", lacks))

	cfg := usernsConfig()
	cfg.NodeSelector = mine
	cfg.RuntimeClassName = rc.Name
	op, stop := runOperator(t, cfg, ns)
	t.Cleanup(stop)
	u := op.reconciler.userns

	// The RuntimeClass does not exist yet: off.
	expectHostUsers(t, op, "no-runtimeclass", nil)
	if _, _, why := u.decision(); !strings.Contains(why, "does not exist") {
		t.Errorf("reason %q, want the RuntimeClass missing", why)
	}
	if err := k8sClient.Create(context.Background(), rc); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = k8sClient.Delete(context.Background(), rc) })

	// It exists, and its handler lacks support while the default handler has it: off.
	// (A node change makes the operator read the RuntimeClass now rather than in a minute.)
	node.Labels["touched"] = "1"
	if err := k8sClient.Update(context.Background(), node); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the decision to name the sandboxed handler", func() (bool, error) {
		_, on, why := u.decision()
		return !on && strings.Contains(why, `runtime handler "sandboxed"`), nil
	})

	setRuntimeHandlers(t, node, testNode("", nil).withHandler("", lacks).withHandler("sandboxed", supports).Status.RuntimeHandlers)
	waitForDecision(t, u, true)
	job := expectHostUsers(t, op, "sandboxed-supports", ptr.To(false))
	if rcn := job.Spec.Template.Spec.RuntimeClassName; rcn == nil || *rcn != rc.Name {
		t.Errorf("runtimeClassName %v, want %s", rcn, rc.Name)
	}
}

// TestUserNamespacesRecyclePoolMembers: idle members built before the decision changed are
// replaced by members with the new hostUsers, in both directions.
func TestUserNamespacesRecyclePoolMembers(t *testing.T) {
	needEnvtest(t)
	ns := newRunsNamespace(t)
	mine := map[string]string{"coderun.test/nodes": ns}
	cfg := usernsConfig()
	cfg.NodeSelector = mine
	_, stop := runOperator(t, cfg, ns)
	t.Cleanup(stop)
	pool := &execv1alpha1.CodeRunPool{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "python"},
		Spec: execv1alpha1.CodeRunPoolSpec{Replicas: ptr.To[int32](2)}}
	if err := k8sClient.Create(context.Background(), pool); err != nil {
		t.Fatal(err)
	}
	before := waitForMembers(t, ns, 2, nil)

	node := createNode(t, testNode(ns+"-a", mine).withHandler("", supports))
	after := waitForMembers(t, ns, 2, ptr.To(false))
	for name := range after {
		if before[name] {
			t.Errorf("member %s, built without user namespaces, is still there", name)
		}
	}

	setRuntimeHandlers(t, node, nil)
	for name := range waitForMembers(t, ns, 2, nil) {
		if after[name] {
			t.Errorf("member %s, built with user namespaces, is still there", name)
		}
	}
}

// createNode creates the node b describes, writes its status as its kubelet would, and
// deletes it when the test ends.
func createNode(t *testing.T, b *nodeBuilder) *corev1.Node {
	t.Helper()
	node := b.node()
	status := node.Status
	if err := k8sClient.Create(context.Background(), node); err != nil {
		t.Fatalf("creating node %s: %v", node.Name, err)
	}
	t.Cleanup(func() { _ = client.IgnoreNotFound(k8sClient.Delete(context.Background(), node)) })
	node.Status = status
	if err := k8sClient.Status().Update(context.Background(), node); err != nil {
		t.Fatalf("writing the status of node %s: %v", node.Name, err)
	}
	// The API server taints a new node not-ready (TaintNodesByCondition); the node
	// lifecycle controller, which envtest lacks, removes the taint once the node is Ready.
	if len(node.Spec.Taints) != len(b.Spec.Taints) {
		node.Spec.Taints = b.Spec.Taints
		if err := k8sClient.Update(context.Background(), node); err != nil {
			t.Fatalf("removing the not-ready taint of node %s: %v", node.Name, err)
		}
	}
	return node
}

// setRuntimeHandlers writes node's status.runtimeHandlers as its kubelet would after a
// runtime change.
func setRuntimeHandlers(t *testing.T, node *corev1.Node, handlers []corev1.NodeRuntimeHandler) {
	t.Helper()
	err := retryOnConflict(func() error {
		if err := k8sClient.Get(context.Background(), client.ObjectKeyFromObject(node), node); err != nil {
			return err
		}
		node.Status.RuntimeHandlers = handlers
		return k8sClient.Status().Update(context.Background(), node)
	})
	if err != nil {
		t.Fatalf("writing the runtime handlers of node %s: %v", node.Name, err)
	}
}

func waitForDecision(t *testing.T, u *userNamespaces, on bool) {
	t.Helper()
	eventually(t, 10*time.Second, fmt.Sprintf("user namespaces to turn %t", on), func() (bool, error) {
		decided, got, _ := u.decision()
		return decided && got == on, nil
	})
}

// expectDecisionStays checks that the decision is still on after the operator has had
// time to see the last change.
func expectDecisionStays(t *testing.T, u *userNamespaces, on bool) {
	t.Helper()
	time.Sleep(time.Second)
	if _, got, why := u.decision(); got != on {
		t.Errorf("decision %t (%s), want it to stay %t", got, why, on)
	}
}

// expectHostUsers creates a run and checks the hostUsers of its Job's pod template.
func expectHostUsers(t *testing.T, op *operator, name string, want *bool) *batchv1.Job {
	t.Helper()
	job := waitForJob(t, op.create(t, op.newRun(name, "print(1)")))
	pod := job.Spec.Template.Spec
	if got := pod.HostUsers; !ptr.Equal(got, want) {
		t.Errorf("run %s: hostUsers %s, want %s", name, ptrText(got), ptrText(want))
	}
	// In its own user namespace, a pod can run only as the ids that namespace maps.
	if uid := *pod.SecurityContext.RunAsUser; ptr.Equal(want, ptr.To(false)) && uid >= userNamespaceIDs {
		t.Errorf("run %s: runAsUser %d with hostUsers false, want below %d", name, uid, userNamespaceIDs)
	}
	return job
}

// waitForMembers waits until the pool in ns has exactly n member Jobs, all with hostUsers
// want, and returns their names.
func waitForMembers(t *testing.T, ns string, n int, want *bool) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	eventually(t, 20*time.Second, fmt.Sprintf("%d members with hostUsers %s", n, ptrText(want)), func() (bool, error) {
		jobs := &batchv1.JobList{}
		if err := k8sClient.List(context.Background(), jobs, client.InNamespace(ns), client.MatchingLabels{execv1alpha1.LabelPool: "python"}); err != nil {
			return false, err
		}
		clear(names)
		for _, job := range jobs.Items {
			if !ptr.Equal(job.Spec.Template.Spec.HostUsers, want) {
				return false, nil
			}
			names[job.Name] = true
		}
		return len(names) == n, nil
	})
	return names
}

func ptrText(b *bool) string {
	if b == nil {
		return "unset"
	}
	return fmt.Sprint(*b)
}
