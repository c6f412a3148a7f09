package report_test

import (
	"os"
	"slices"
	"testing"

	"sigs.k8s.io/yaml"

	execv1alpha1 "github.com/coderun-dev/coderun/api/v1alpha1"
	"github.com/coderun-dev/coderun/internal/report"
)

// crdFile is the CodeRun CRD that controller-gen writes from api/v1alpha1.
const crdFile = "../../config/crd/bases/exec.coderun.dev_coderuns.yaml"

// TestReasonsInAPI pins the runner's reasons, which the operator copies into
// status.result.reason, as a subset of the API's: the ResultReason constants, and the
// enum that the API server enforces on that field.
func TestReasonsInAPI(t *testing.T) {
	t.Parallel()
	api := []execv1alpha1.ResultReason{
		execv1alpha1.ReasonCompleted,
		execv1alpha1.ReasonNonZeroExit,
		execv1alpha1.ReasonSignaled,
		execv1alpha1.ReasonTimeLimitExceeded,
		execv1alpha1.ReasonMemoryLimitExceeded,
		execv1alpha1.ReasonOutputLimitExceeded,
		execv1alpha1.ReasonRejected,
		execv1alpha1.ReasonSystemError,
		execv1alpha1.ReasonCompileError,
	}
	enum := resultReasonEnum(t)
	for _, r := range report.Reasons {
		if !slices.Contains(api, execv1alpha1.ResultReason(r)) {
			t.Errorf("the runner's reason %s is no ResultReason of the API", r)
		}
		if !slices.Contains(enum, string(r)) {
			t.Errorf("the runner's reason %s is not in the CRD's enum %v", r, enum)
		}
	}
}

// resultReasonEnum reads the enum of status.result.reason from the CRD.
func resultReasonEnum(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile(crdFile)
	if err != nil {
		t.Fatal(err)
	}
	var crd struct {
		Spec struct {
			Versions []struct {
				Schema struct {
					OpenAPIV3Schema schema `json:"openAPIV3Schema"`
				} `json:"schema"`
			} `json:"versions"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(data, &crd); err != nil {
		t.Fatalf("%s: %v", crdFile, err)
	}
	if len(crd.Spec.Versions) != 1 {
		t.Fatalf("%s has %d versions, want 1", crdFile, len(crd.Spec.Versions))
	}
	s := crd.Spec.Versions[0].Schema.OpenAPIV3Schema
	for _, name := range []string{"status", "result", "reason"} {
		s = s.Properties[name]
	}
	if len(s.Enum) == 0 {
		t.Fatalf("%s has no enum for status.result.reason", crdFile)
	}
	return s.Enum
}

// schema is the part of an OpenAPI schema that resultReasonEnum walks.
type schema struct {
	Properties map[string]schema `json:"properties"`
	Enum       []string          `json:"enum"`
}
