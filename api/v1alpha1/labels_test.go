package v1alpha1

import (
	"os"
	"strings"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"
)

// TestSchemaBounds pins the schema's bounds on limits, which the +kubebuilder markers must
// spell out as literals, to the constants that code outside the schema checks against.
func TestSchemaBounds(t *testing.T) {
	data, err := os.ReadFile("../../config/crd/bases/exec.coderun.dev_coderuns.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var crd apiextensionsv1.CustomResourceDefinition
	if err := yaml.Unmarshal(data, &crd); err != nil {
		t.Fatal(err)
	}
	if len(crd.Spec.Versions) != 1 {
		t.Fatalf("the CRD has %d versions, want 1", len(crd.Spec.Versions))
	}
	limits := crd.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"].Properties["limits"].Properties

	timeout := limits["timeoutSeconds"]
	if timeout.Minimum == nil || *timeout.Minimum != MinTimeoutSeconds || timeout.Maximum == nil || *timeout.Maximum != MaxTimeoutSeconds {
		t.Errorf("timeoutSeconds: schema bounds %v..%v, want %d..%d", timeout.Minimum, timeout.Maximum, MinTimeoutSeconds, MaxTimeoutSeconds)
	}
	for field, bounds := range map[string][2]string{"memory": {MinMemory, MaxMemory}, "cpu": {MinCPU, MaxCPU}} {
		// One rule says the value must be a quantity; one bounds it.
		var bounding []apiextensionsv1.ValidationRule
		for _, r := range limits[field].XValidations {
			if strings.Contains(r.Rule, "compareTo") {
				bounding = append(bounding, r)
			}
		}
		if len(bounding) != 1 {
			t.Errorf("%s: %d rules bound it, want 1", field, len(bounding))
			continue
		}
		rule := bounding[0]
		for _, q := range bounds {
			if !strings.Contains(rule.Rule, "quantity('"+q+"')") {
				t.Errorf("%s: rule %q does not bound by %s", field, rule.Rule, q)
			}
		}
		if !strings.Contains(rule.Message, bounds[0]+" and "+bounds[1]) {
			t.Errorf("%s: message %q does not name %s and %s", field, rule.Message, bounds[0], bounds[1])
		}
	}
}
