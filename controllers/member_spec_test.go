package controllers

import (
	"slices"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	execv1alpha1 "github.com/coderun-dev/coderun/api/v1alpha1"
)

// TestPoolReplacesMembersOfAnOlderConfiguration: idle members built before the operator's
// configuration (a new runner image after a helm upgrade), the pool's shape or the
// cluster's support for user namespaces (usernamespaces.go) changed are
// replaced by members built for the new one; claimed members are left to their runs.
func TestPoolReplacesMembersOfAnOlderConfiguration(t *testing.T) {
	pool := newPool("python", 2)
	old := memberJobOf(pool, "python-old", 200100, now.Time)
	claimed := memberJobOf(pool, "python-busy", 200101, now.Time)
	claimed.Labels[execv1alpha1.LabelMember] = execv1alpha1.MemberClaimed
	objects := []client.Object{pool, old, memberPodOf(old, runningState()), claimed, memberPodOf(claimed, runningState())}
	e := newPoolEnv(t, objects...)

	// The same configuration: the idle member stays.
	e.reconcile()
	if names := e.names(); !slices.Contains(names, "python-old") || len(names) != 3 {
		t.Fatalf("members %v under an unchanged configuration, want python-old, python-busy and one new", names)
	}

	for _, change := range []struct {
		name  string
		apply func()
	}{
		{"runner image", func() { e.r.Config.RunnerImage = "example.test/runner:new" }},
		{"pool memory", func() {
			p := e.pool()
			p.Spec.Limits.Memory = ptr.To(resource.MustParse("128Mi"))
			if err := e.c.Update(t.Context(), p); err != nil {
				t.Fatal(err)
			}
		}},
		// hostUsers left to the cluster, whose one node supports user namespaces.
		{"user namespaces on", func() {
			if err := e.c.Create(t.Context(), testNode("a", nil).withHandler("", supports).node()); err != nil {
				t.Fatal(err)
			}
			e.r.userns = newUserNamespaces(e.r.Config)
			e.r.userns.nodes = e.c
		}},
	} {
		before := e.members()
		change.apply()
		for range 2 { // remove, then create (paced)
			e.clock.SetTime(e.clock.Now().Add(time.Second))
			e.reconcile()
		}
		after := e.members()
		cfg, err := e.r.userns.apply(t.Context(), e.r.Config)
		if err != nil {
			t.Fatal(err)
		}
		want := memberSpecDigest(e.pool(), builtinPlan(cfg), cfg)
		idle := 0
		for name, job := range after {
			if job.Labels[execv1alpha1.LabelMember] == execv1alpha1.MemberClaimed {
				continue
			}
			idle++
			if _, existed := before[name]; existed {
				t.Errorf("%s: idle member %s of the older configuration was kept", change.name, name)
			}
			if got := job.Annotations[annotationMemberSpec]; got != want {
				t.Errorf("%s: new member %s has digest %q, want %q", change.name, name, got, want)
			}
			if got, on := job.Spec.Template.Spec.HostUsers, e.r.userns != nil; on && !ptr.Equal(got, ptr.To(false)) {
				t.Errorf("%s: new member %s has hostUsers %s, want false", change.name, name, ptrText(got))
			}
		}
		if idle != 2 {
			t.Errorf("%s: %d idle members, want 2", change.name, idle)
		}
		if _, ok := after["python-busy"]; !ok {
			t.Errorf("%s: the claimed member was removed", change.name)
		}
	}
	if img := e.members()["python-busy"].Spec.Template.Spec.Containers[0].Image; img == "example.test/runner:new" {
		t.Errorf("the claimed member's image changed to %s", img)
	}
}

// TestMemberSpecDigestIgnoresTheUID: members differ in their uid only, which must not make
// one of them look out of date.
func TestMemberSpecDigestIgnoresTheUID(t *testing.T) {
	pool := newPool("python", 1)
	a, b := buildMemberJob(pool, builtinPlan(tableConfig()), tableConfig(), 200001), buildMemberJob(pool, builtinPlan(tableConfig()), tableConfig(), 200002)
	if a.Annotations[annotationMemberSpec] == "" || a.Annotations[annotationMemberSpec] != b.Annotations[annotationMemberSpec] {
		t.Errorf("digests %q and %q, want one, not empty", a.Annotations[annotationMemberSpec], b.Annotations[annotationMemberSpec])
	}
	cfg := tableConfig()
	cfg.RunnerImage = "example.test/runner:other"
	if memberSpecDigest(pool, builtinPlan(cfg), cfg) == a.Annotations[annotationMemberSpec] {
		t.Error("another runner image gives the same digest")
	}
}

// TestClaimSkipsMembersOfAnOlderConfiguration: an operator that has just started with a
// new configuration (after a helm upgrade or rollback) does not send a run to an idle
// member built for the old one, even before its pool controller has replaced it.
func TestClaimSkipsMembersOfAnOlderConfiguration(t *testing.T) {
	pool := newPool("python", 1)
	old := memberJobOf(pool, "python-old", 200001, t0.Add(-time.Minute))
	old.Annotations[annotationMemberSpec] = "built-by-another-operator"
	e := newWarmEnv(t, newFakeRunner(nil), nil, newRun("r", t0), pool, old, memberPodOf(old, runningState()))
	got := e.settle("r")
	e.assertCold(got)
	if m, _ := e.job("python-old"); m.Labels[execv1alpha1.LabelMember] != execv1alpha1.MemberIdle {
		t.Errorf("the old member was claimed: labels %v", m.Labels)
	}
	if e.runner.attaches != 0 {
		t.Errorf("%d attaches to a member of an older configuration", e.runner.attaches)
	}
}
