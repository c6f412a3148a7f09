// Package config holds the operator's configuration: run limits and their maxima, the
// queue, and how run pods are placed. It is read from one YAML file (--config) so that
// structured settings such as tolerations stay readable; every field has a default.
package config

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	execv1alpha1 "github.com/coderun-dev/coderun/api/v1alpha1"
	"github.com/coderun-dev/coderun/internal/report"
)

// Config is the operator's configuration file.
type Config struct {
	// RunnerImage is the image that runs programs: the runner as entrypoint, python3 inside.
	RunnerImage string `json:"runnerImage"`
	// ImagePullPolicy of run pods. IfNotPresent suits fixed tags.
	ImagePullPolicy corev1.PullPolicy `json:"imagePullPolicy"`

	// MaxConcurrentRuns is how many runs may execute at once; the rest wait in phase Queued,
	// oldest first.
	MaxConcurrentRuns int `json:"maxConcurrentRuns"`

	// DefaultLimits fill in what a CodeRun's spec.limits leaves out.
	DefaultLimits execv1alpha1.Limits `json:"defaultLimits"`
	// MaxLimits are the largest limits a CodeRun may ask for; above them it is Rejected.
	MaxLimits execv1alpha1.Limits `json:"maxLimits"`

	// OutputLimitBytes bounds stdout and stderr together; a program writing more is killed.
	OutputLimitBytes int `json:"outputLimitBytes"`
	// MaxProcesses bounds the processes and threads of a run (RLIMIT_NPROC of its user).
	MaxProcesses int `json:"maxProcesses"`
	// MaxFileSizeBytes bounds any one file a program writes (RLIMIT_FSIZE).
	MaxFileSizeBytes int64 `json:"maxFileSizeBytes"`
	// ScratchSize is the size of the writable /tmp of a run, a memory-backed emptyDir that
	// counts toward the run's memory.
	ScratchSize resource.Quantity `json:"scratchSize"`
	// EphemeralStorage is the ephemeral-storage request and limit of a run pod (container
	// logs and writable layers; the root filesystem is read-only).
	EphemeralStorage resource.Quantity `json:"ephemeralStorage"`

	// StartTimeout bounds the time from Job creation until the program's container starts
	// (scheduling, image pull). A run that has not started by then fails with SystemError.
	StartTimeout metav1.Duration `json:"startTimeout"`
	// JobTTL is how long a finished run's Job and pod are kept (for `kubectl logs`) before
	// Kubernetes deletes them. The CodeRun keeps the result.
	JobTTL metav1.Duration `json:"jobTTL"`

	// RunUIDMin and RunUIDCount give the range of user ids that runs execute as. Each run
	// gets its own uid, so per-user limits (processes) of concurrent runs do not collide.
	RunUIDMin   int64 `json:"runUIDMin"`
	RunUIDCount int64 `json:"runUIDCount"`

	// RuntimeClassName, when set, runs programs under that RuntimeClass (gVisor, Kata).
	RuntimeClassName string `json:"runtimeClassName,omitempty"`
	// NodeSelector and Tolerations place run pods, e.g. on dedicated sandbox nodes.
	NodeSelector map[string]string   `json:"nodeSelector,omitempty"`
	Tolerations  []corev1.Toleration `json:"tolerations,omitempty"`
	// HostUsers of run pods. false runs each pod in its own user namespace (needs a
	// runtime that supports it), true in the node's. Unset is auto: the operator sets false
	// while every node run pods can land on reports user namespace support for their
	// runtime handler, and leaves it unset otherwise (controllers/usernamespaces.go).
	HostUsers *bool `json:"hostUsers,omitempty"`

	// SmokeTestNamespace is the namespace where the operator runs each Runtime's smoke test
	// as a CodeRun: one the operator watches (the chart's runs namespace).
	SmokeTestNamespace string `json:"smokeTestNamespace"`
	// ManageRuntimes runs the Runtime controller (smoke tests, the Ready condition).
	// Runtimes are cluster-scoped, so of several releases in one cluster only one operator
	// may manage them; every operator resolves runs against all Runtimes either way.
	ManageRuntimes bool `json:"manageRuntimes"`
}

// Default returns the configuration the operator ships with.
func Default() Config {
	return Config{
		RunnerImage:       "localhost/coderun-python:0.1.0",
		ImagePullPolicy:   corev1.PullIfNotPresent,
		MaxConcurrentRuns: 4,
		DefaultLimits: execv1alpha1.Limits{
			TimeoutSeconds: ptr.To[int32](10),
			Memory:         ptr.To(resource.MustParse("256Mi")),
			CPU:            ptr.To(resource.MustParse("1")),
		},
		MaxLimits: execv1alpha1.Limits{
			TimeoutSeconds: ptr.To[int32](60),
			Memory:         ptr.To(resource.MustParse("1Gi")),
			CPU:            ptr.To(resource.MustParse("2")),
		},
		OutputLimitBytes: 64 * 1024,
		MaxProcesses:     64,
		MaxFileSizeBytes: 16 << 20,
		ScratchSize:      resource.MustParse("16Mi"),
		EphemeralStorage: resource.MustParse("64Mi"),
		StartTimeout:     metav1.Duration{Duration: 2 * time.Minute},
		JobTTL:           metav1.Duration{Duration: 10 * time.Minute},
		RunUIDMin:        200000,
		RunUIDCount:      100000,

		SmokeTestNamespace: "coderun-runs",
		ManageRuntimes:     true,
	}
}

// Load reads a configuration file over the defaults. An empty path gives the defaults.
// Unknown fields are errors, so a typo does not silently keep a default.
func Load(path string) (Config, error) {
	cfg := Default()
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return Config{}, fmt.Errorf("reading config: %w", err)
		}
		if err := yaml.UnmarshalStrict(data, &cfg); err != nil {
			return Config{}, fmt.Errorf("parsing config %s: %w", path, err)
		}
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, nil
}

// Validate checks that the configuration is usable and consistent.
func (c Config) Validate() error {
	var errs []error
	if c.RunnerImage == "" {
		errs = append(errs, errors.New("runnerImage is required"))
	}
	if c.MaxConcurrentRuns < 1 {
		errs = append(errs, fmt.Errorf("maxConcurrentRuns must be at least 1, got %d", c.MaxConcurrentRuns))
	}
	if !complete(c.DefaultLimits) || !complete(c.MaxLimits) {
		errs = append(errs, errors.New("defaultLimits and maxLimits must each set timeoutSeconds, memory and cpu"))
	} else if msg := Exceeds(c.DefaultLimits, c.MaxLimits); msg != "" {
		errs = append(errs, fmt.Errorf("defaultLimits exceed maxLimits: %s", msg))
	}
	if c.OutputLimitBytes < 1024 || c.OutputLimitBytes > report.MaxOutputLimit {
		errs = append(errs, fmt.Errorf("outputLimitBytes must be between 1024 and %d, got %d", report.MaxOutputLimit, c.OutputLimitBytes))
	}
	if c.MaxProcesses < 8 {
		errs = append(errs, fmt.Errorf("maxProcesses must be at least 8 (the runner and python need a few), got %d", c.MaxProcesses))
	}
	if c.MaxFileSizeBytes < 0 {
		errs = append(errs, errors.New("maxFileSizeBytes must not be negative"))
	}
	if c.ScratchSize.Sign() <= 0 || c.EphemeralStorage.Sign() <= 0 {
		errs = append(errs, errors.New("scratchSize and ephemeralStorage must be positive"))
	}
	if c.StartTimeout.Duration < 10*time.Second {
		errs = append(errs, fmt.Errorf("startTimeout must be at least 10s, got %s", c.StartTimeout.Duration))
	}
	if c.JobTTL.Duration < 0 {
		errs = append(errs, errors.New("jobTTL must not be negative"))
	}
	// Run uids must be non-root, and stay below 2^31 for runtimes that store them signed.
	if c.RunUIDMin < 1000 || c.RunUIDCount < 1 || c.RunUIDMin+c.RunUIDCount > 1<<31 {
		errs = append(errs, fmt.Errorf("runUIDMin (%d) and runUIDCount (%d) must give a range within 1000..2^31", c.RunUIDMin, c.RunUIDCount))
	}
	if c.ManageRuntimes && c.SmokeTestNamespace == "" {
		errs = append(errs, errors.New("smokeTestNamespace is required when manageRuntimes is true"))
	}
	return errors.Join(errs...)
}

func complete(l execv1alpha1.Limits) bool {
	return l.TimeoutSeconds != nil && l.Memory != nil && l.CPU != nil
}

// Effective returns the limits a run gets: requested ones, with defaults for those left out.
func (c Config) Effective(requested execv1alpha1.Limits) execv1alpha1.Limits {
	out := *c.DefaultLimits.DeepCopy()
	if requested.TimeoutSeconds != nil {
		out.TimeoutSeconds = ptr.To(*requested.TimeoutSeconds)
	}
	if requested.Memory != nil {
		out.Memory = ptr.To(requested.Memory.DeepCopy())
	}
	if requested.CPU != nil {
		out.CPU = ptr.To(requested.CPU.DeepCopy())
	}
	return out
}

// Exceeds says, in a sentence, which of the complete limits l go above the complete limits
// max, or returns "" when none does.
func Exceeds(l, max execv1alpha1.Limits) string {
	var over []string
	if *l.TimeoutSeconds > *max.TimeoutSeconds {
		over = append(over, fmt.Sprintf("timeoutSeconds %d is above the maximum of %d", *l.TimeoutSeconds, *max.TimeoutSeconds))
	}
	if l.Memory.Cmp(*max.Memory) > 0 {
		over = append(over, fmt.Sprintf("memory %s is above the maximum of %s", l.Memory, max.Memory))
	}
	if l.CPU.Cmp(*max.CPU) > 0 {
		over = append(over, fmt.Sprintf("cpu %s is above the maximum of %s", l.CPU, max.CPU))
	}
	return strings.Join(over, "; ")
}
