package controllers

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/utils/ptr"

	execv1alpha1 "github.com/coderun-dev/coderun/api/v1alpha1"
	"github.com/coderun-dev/coderun/internal/config"
)

func TestJobName(t *testing.T) {
	long := strings.Repeat("a", 200)
	cases := []struct {
		run  string
		want string
	}{
		{"hello", "hello"},
		{strings.Repeat("b", 63), strings.Repeat("b", 63)},
		{long, ""}, // derived: checked below
	}
	for _, tc := range cases {
		got := jobName(&execv1alpha1.CodeRun{ObjectMeta: metav1.ObjectMeta{Name: tc.run}})
		if tc.want != "" && got != tc.want {
			t.Errorf("jobName(%q) = %q, want %q", tc.run, got, tc.want)
		}
		if errs := validation.IsDNS1123Label(got); len(errs) > 0 {
			t.Errorf("jobName(%q) = %q is not a valid label value: %v", tc.run, got, errs)
		}
	}
	// Long names that share a prefix still get distinct Jobs.
	a := jobName(&execv1alpha1.CodeRun{ObjectMeta: metav1.ObjectMeta{Name: long + "x"}})
	b := jobName(&execv1alpha1.CodeRun{ObjectMeta: metav1.ObjectMeta{Name: long + "y"}})
	if a == b {
		t.Errorf("two long names map to the same Job %q", a)
	}
}

func TestBuildJobLimits(t *testing.T) {
	cfg := config.Default()
	run := &execv1alpha1.CodeRun{ObjectMeta: metav1.ObjectMeta{Name: "r", Namespace: "ns", UID: types.UID("u-1")}, Spec: execv1alpha1.CodeRunSpec{Source: "print(1)"}}
	cases := []struct {
		name                    string
		limits                  execv1alpha1.Limits
		wantMemory, wantCPU     string
		wantTimeoutArg          string
		wantMemoryArg           string
		wantActiveDeadlineSecds int64
	}{
		{"defaults", cfg.Effective(execv1alpha1.Limits{}), "304Mi", "1", "--timeout=10s", "--memory-limit=268435456", 160},
		{"custom", cfg.Effective(execv1alpha1.Limits{TimeoutSeconds: ptr.To[int32](60), Memory: ptr.To(resource.MustParse("1Gi")), CPU: ptr.To(resource.MustParse("250m"))}),
			"1072Mi", "250m", "--timeout=60s", "--memory-limit=1073741824", 210},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			job := buildJob(run, tc.limits, cfg, 200123)
			c := job.Spec.Template.Spec.Containers[0]
			if got := c.Resources.Limits.Memory().String(); got != tc.wantMemory {
				t.Errorf("memory limit %s, want %s", got, tc.wantMemory)
			}
			if got := c.Resources.Limits.Cpu().String(); got != tc.wantCPU {
				t.Errorf("cpu limit %s, want %s", got, tc.wantCPU)
			}
			if !contains(c.Args, tc.wantTimeoutArg) || !contains(c.Args, tc.wantMemoryArg) {
				t.Errorf("args %v lack %s or %s", c.Args, tc.wantTimeoutArg, tc.wantMemoryArg)
			}
			if got := *job.Spec.ActiveDeadlineSeconds; got != tc.wantActiveDeadlineSecds {
				t.Errorf("activeDeadlineSeconds %d, want %d", got, tc.wantActiveDeadlineSecds)
			}
			if got := *job.Spec.Template.Spec.SecurityContext.RunAsUser; got != 200123 {
				t.Errorf("runAsUser %d, want 200123", got)
			}
		})
	}
}

func TestBuildJobPlacementFromConfig(t *testing.T) {
	run := &execv1alpha1.CodeRun{ObjectMeta: metav1.ObjectMeta{Name: "r", Namespace: "ns", UID: types.UID("u-1")}, Spec: execv1alpha1.CodeRunSpec{Source: "print(1)"}}
	cfg := config.Default()
	limits := cfg.Effective(execv1alpha1.Limits{})
	if pod := buildJob(run, limits, cfg, 200123).Spec.Template.Spec; pod.RuntimeClassName != nil || pod.NodeSelector != nil || pod.Tolerations != nil {
		t.Errorf("runtimeClassName %v nodeSelector %v tolerations %v, want none unless configured", pod.RuntimeClassName, pod.NodeSelector, pod.Tolerations)
	}
	cfg.RuntimeClassName = "gvisor"
	cfg.NodeSelector = map[string]string{"sandbox": "true"}
	cfg.Tolerations = []corev1.Toleration{{Key: "sandbox", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}}
	pod := buildJob(run, limits, cfg, 200123).Spec.Template.Spec
	if pod.RuntimeClassName == nil || *pod.RuntimeClassName != "gvisor" {
		t.Errorf("runtimeClassName = %v, want gvisor", pod.RuntimeClassName)
	}
	if pod.NodeSelector["sandbox"] != "true" || len(pod.Tolerations) != 1 || pod.Tolerations[0].Key != "sandbox" {
		t.Errorf("nodeSelector %v tolerations %v, want the configured ones", pod.NodeSelector, pod.Tolerations)
	}
}

func TestPreferredUIDIsStableAndInRange(t *testing.T) {
	cfg := config.Default()
	seen := map[int64]bool{}
	for i := range 1000 {
		run := &execv1alpha1.CodeRun{ObjectMeta: metav1.ObjectMeta{UID: types.UID(strings.Repeat("x", i%7) + string(rune('a'+i%26)) + strings.Repeat("y", i))}}
		uid := preferredUID(run, cfg)
		if uid < cfg.RunUIDMin || uid >= cfg.RunUIDMin+cfg.RunUIDCount {
			t.Fatalf("uid %d outside [%d, %d)", uid, cfg.RunUIDMin, cfg.RunUIDMin+cfg.RunUIDCount)
		}
		if preferredUID(run, cfg) != uid {
			t.Fatal("preferredUID is not stable")
		}
		seen[uid] = true
	}
	if len(seen) < 990 {
		t.Errorf("only %d distinct uids for 1000 runs: the hash spreads badly", len(seen))
	}
}

// TestRunUIDInAUserNamespace: a run pod in a user namespace of its own runs as a uid that
// namespace maps (below 65536; not a system user's, the image's or nobody's), with member
// pods alike; in the host's
// user namespace, and for a configured range that fits, it keeps the uid the queue chose.
func TestRunUIDInAUserNamespace(t *testing.T) {
	run := &execv1alpha1.CodeRun{ObjectMeta: metav1.ObjectMeta{Name: "r", Namespace: "ns", UID: types.UID("u-1")}, Spec: execv1alpha1.CodeRunSpec{Source: "print(1)"}}
	ids := func(cfg config.Config, uid int64) (cold, member [2]int64) {
		sc := buildJob(run, cfg.Effective(execv1alpha1.Limits{}), cfg, uid).Spec.Template.Spec.SecurityContext
		msc := buildMemberJob(newPool("python", 1), builtinPlan(cfg), cfg, uid).Spec.Template.Spec.SecurityContext
		return [2]int64{*sc.RunAsUser, *sc.RunAsGroup}, [2]int64{*msc.RunAsUser, *msc.RunAsGroup}
	}
	cases := []struct {
		name      string
		hostUsers *bool
		runUIDMin int64
		uid       int64
		want      int64 // 0: in [UserNamespaceRunUIDMin, UserNamespaceRunUIDEnd)
	}{
		{"host user namespace (unset)", nil, 200000, 200123, 200123},
		{"host user namespace (true)", ptr.To(true), 200000, 200123, 200123},
		{"own user namespace", ptr.To(false), 200000, 200123, 0},
		{"own user namespace, top of the range", ptr.To(false), 200000, 299999, 0},
		// 1000 + uid mod 64536 would give 65532, the runner image's own user.
		{"own user namespace, clear of the image's user", ptr.To(false), 200000, 258140, 0},
		{"own user namespace, a range that fits", ptr.To(false), 10000, 10042, 10042},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config.Default()
			cfg.HostUsers, cfg.RunUIDMin = tc.hostUsers, tc.runUIDMin
			cold, member := ids(cfg, tc.uid)
			if cold != member {
				t.Errorf("cold run runs as %v, member as %v: want the same for the same uid", cold, member)
			}
			switch got := cold[0]; {
			case cold[1] != got:
				t.Errorf("runAsGroup %d, runAsUser %d: want the same", cold[1], got)
			case tc.want != 0 && got != tc.want:
				t.Errorf("runAsUser %d, want %d", got, tc.want)
			case tc.want == 0 && (got < execv1alpha1.UserNamespaceRunUIDMin || got >= execv1alpha1.UserNamespaceRunUIDEnd || got >= userNamespaceIDs):
				t.Errorf("runAsUser %d, want within [%d, %d), which the pod's user namespace maps", got, execv1alpha1.UserNamespaceRunUIDMin, execv1alpha1.UserNamespaceRunUIDEnd)
			}
		})
	}
	// Consecutive uids the queue hands out stay apart inside, as they do outside.
	cfg := config.Default()
	cfg.HostUsers = ptr.To(false)
	seen := map[int64]bool{}
	for uid := cfg.RunUIDMin; uid < cfg.RunUIDMin+1000; uid++ {
		seen[podUID(cfg, uid)] = true
	}
	if len(seen) != 1000 {
		t.Errorf("1000 consecutive run uids give %d uids inside a user namespace", len(seen))
	}
}
