package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/diff"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	execv1alpha1 "github.com/coderun-dev/coderun/api/v1alpha1"
)

func TestLoad(t *testing.T) {
	cases := []struct {
		name    string
		yaml    string
		wantErr string
		check   func(t *testing.T, c Config)
	}{
		{name: "empty file keeps defaults", yaml: "", check: func(t *testing.T, c Config) {
			if c.MaxConcurrentRuns != 4 || *c.DefaultLimits.TimeoutSeconds != 10 {
				t.Errorf("defaults not kept: %+v", c)
			}
		}},
		{name: "overrides", yaml: `
runnerImage: registry.example/coderun-python:1.2.3
maxConcurrentRuns: 16
maxLimits: {timeoutSeconds: 120, memory: 2Gi, cpu: "4"}
runtimeClassName: gvisor
nodeSelector: {sandbox: "true"}
tolerations: [{key: sandbox, operator: Exists, effect: NoSchedule}]
`, check: func(t *testing.T, c Config) {
			if c.RunnerImage != "registry.example/coderun-python:1.2.3" || c.MaxConcurrentRuns != 16 || c.RuntimeClassName != "gvisor" {
				t.Errorf("overrides not applied: %+v", c)
			}
			if c.MaxLimits.Memory.String() != "2Gi" || len(c.Tolerations) != 1 || c.NodeSelector["sandbox"] != "true" {
				t.Errorf("structured overrides not applied: %+v", c)
			}
		}},
		{name: "typo is an error", yaml: "maxConcurentRuns: 3\n", wantErr: "unknown field"},
		{name: "no slots", yaml: "maxConcurrentRuns: 0\n", wantErr: "maxConcurrentRuns must be at least 1"},
		{name: "defaults above maxima", yaml: "defaultLimits: {timeoutSeconds: 90, memory: 256Mi, cpu: '1'}\n", wantErr: "defaultLimits exceed maxLimits: timeoutSeconds 90"},
		{name: "partial maxima keep the other defaults", yaml: "maxLimits: {timeoutSeconds: 90}\n", check: func(t *testing.T, c Config) {
			if *c.MaxLimits.TimeoutSeconds != 90 || c.MaxLimits.Memory.String() != "1Gi" || c.MaxLimits.CPU.String() != "2" {
				t.Errorf("maxLimits %+v, want 90s with the default 1Gi and 2", c.MaxLimits)
			}
		}},
		{name: "maxima below defaults", yaml: "maxLimits: {memory: 128Mi}\n", wantErr: "memory 256Mi is above the maximum of 128Mi"},
		{name: "output limit too large", yaml: "outputLimitBytes: 10000000\n", wantErr: "outputLimitBytes must be between"},
		{name: "root uids", yaml: "runUIDMin: 0\n", wantErr: "runUIDMin"},
		{name: "start timeout too short", yaml: "startTimeout: 1s\n", wantErr: "startTimeout must be at least 10s"},
		{name: "managed Runtimes need a smoke-test namespace", yaml: "smokeTestNamespace: ''\n", wantErr: "smokeTestNamespace is required when manageRuntimes is true"},
		{name: "a second release manages no Runtimes", yaml: "manageRuntimes: false\nsmokeTestNamespace: ''\n", check: func(t *testing.T, c Config) {
			if c.ManageRuntimes {
				t.Error("manageRuntimes: false did not apply")
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "config.yaml")
			if err := os.WriteFile(path, []byte(tc.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			c, err := Load(path)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, c)
		})
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.yaml")); err == nil {
		t.Error("a missing file loaded without error")
	}
}

// shippedConfig is the operator's configuration as deployed (config/manager), which says it
// spells out the defaults.
const shippedConfig = "../../config/manager/operator-config.yaml"

// TestShippedConfigIsDefault pins the copy of the defaults in the shipped file to Default,
// so that changing one without the other fails here rather than in a cluster.
func TestShippedConfigIsDefault(t *testing.T) {
	loaded, err := Load(shippedConfig)
	if err != nil {
		t.Fatal(err)
	}
	// Semantic: quantities compare by value, as "1Gi" parsed twice may differ in cache.
	if !apiequality.Semantic.DeepEqual(loaded, Default()) {
		t.Errorf("Load(%s) differs from Default() (-file +Default):\n%s", shippedConfig, diff.Diff(loaded, Default()))
	}
	// Load reads the file over the defaults, so a default missing from the file would pass
	// above; read alone, the file must still give every default.
	data, err := os.ReadFile(shippedConfig)
	if err != nil {
		t.Fatal(err)
	}
	var alone Config
	if err := yaml.UnmarshalStrict(data, &alone); err != nil {
		t.Fatal(err)
	}
	if !apiequality.Semantic.DeepEqual(alone, Default()) {
		t.Errorf("%s does not spell out every default (-file +Default):\n%s", shippedConfig, diff.Diff(alone, Default()))
	}
}

func TestEffectiveAndExceeds(t *testing.T) {
	c := Default()
	eff := c.Effective(execv1alpha1.Limits{Memory: ptr.To(resource.MustParse("512Mi"))})
	if *eff.TimeoutSeconds != 10 || eff.Memory.String() != "512Mi" || eff.CPU.String() != "1" {
		t.Errorf("effective limits %+v, want 10s/512Mi/1", eff)
	}
	if msg := Exceeds(eff, c.MaxLimits); msg != "" {
		t.Errorf("512Mi reported over the maximum: %s", msg)
	}
	over := c.Effective(execv1alpha1.Limits{CPU: ptr.To(resource.MustParse("2500m"))})
	if msg := Exceeds(over, c.MaxLimits); msg != "cpu 2500m is above the maximum of 2" {
		t.Errorf("Exceeds = %q", msg)
	}
	// Effective must not alias the defaults: changing a result leaves the config alone.
	eff.Memory.Set(1)
	if c.DefaultLimits.Memory.String() != "256Mi" {
		t.Error("Effective returned memory shared with the defaults")
	}
}
