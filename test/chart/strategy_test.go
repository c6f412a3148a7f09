package chart_test

import (
	"context"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/coderun-dev/coderun/internal/testenv"
)

// TestFrontStrategySwitches moves a release's front between PostgreSQL (RollingUpdate, two
// replicas) and SQLite (Recreate) and back, applying the rendered Deployment as Helm 4
// does, with server-side apply, on a real API server. The API server fills in the
// rolling-update parameters of a RollingUpdate Deployment; unless the chart sets them
// itself (so that its field manager owns them and drops them with the type), the move to
// Recreate is refused: "spec.strategy.rollingUpdate: Forbidden: may not be specified when
// strategy type is 'Recreate'" (found by make test-faults).
func TestFrontStrategySwitches(t *testing.T) {
	helmBinary(t) // skip before starting an API server when there is no Helm
	_, c := testenv.Start(t)
	ctx := context.Background()
	ns := createNamespace(t, c, "strategy", nil)
	postgres := []string{"--set", "front.database.url=postgres://coderun:secret@db:5432/coderun", "--set", "front.replicaCount=2"}
	steps := []struct {
		name string
		args []string
		want appsv1.DeploymentStrategyType
	}{
		{"SQLite", nil, appsv1.RecreateDeploymentStrategyType},
		{"PostgreSQL", postgres, appsv1.RollingUpdateDeploymentStrategyType},
		{"back to SQLite", nil, appsv1.RecreateDeploymentStrategyType},
		{"PostgreSQL again", postgres, appsv1.RollingUpdateDeploymentStrategyType},
	}
	for _, step := range steps {
		front := renderAs(t, release, ns, step.args...).find(t, "Deployment", "coderun-front").DeepCopy()
		front.SetNamespace(ns)
		if err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(front), client.FieldOwner("helm"), client.ForceOwnership); err != nil {
			t.Fatalf("%s: server-side apply of the front Deployment: %v", step.name, err)
		}
		got := &appsv1.Deployment{}
		if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: "coderun-front"}, got); err != nil {
			t.Fatal(err)
		}
		if got.Spec.Strategy.Type != step.want {
			t.Errorf("%s: strategy %s, want %s", step.name, got.Spec.Strategy.Type, step.want)
		}
	}
}
