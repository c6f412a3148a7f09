package main

import (
	"fmt"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/coderun-dev/coderun/internal/report"
)

// The output every fake run reports. The driver checks that each CodeRun's result says
// exactly this, so a report the operator misread would show up as a wrong result.
const fakeStdout = "hi\n"

// fakeReport is the runner's report that the completion stage writes as the run
// container's termination message: what the real runner writes after print("hi").
func fakeReport() []byte {
	return report.ForTerminationMessage(report.Report{
		ExitCode: 0, Reason: report.Completed,
		Stdout: fakeStdout, Output: fakeStdout,
		WallTimeMicros: 39000, CPUTimeMicros: 16000, PeakMemoryBytes: 8437760,
	})
}

// stage is a kwok Stage (kwok.x-k8s.io/v1alpha1), only the fields used here.
type stage struct {
	APIVersion string    `json:"apiVersion"`
	Kind       string    `json:"kind"`
	Metadata   meta      `json:"metadata"`
	Spec       stageSpec `json:"spec"`
}

type meta struct {
	Name string `json:"name"`
}

type resourceRef struct {
	APIGroup string `json:"apiGroup"`
	Kind     string `json:"kind"`
}

var (
	nodes = resourceRef{APIGroup: "v1", Kind: "Node"}
	pods  = resourceRef{APIGroup: "v1", Kind: "Pod"}
)

type stageSpec struct {
	ResourceRef resourceRef    `json:"resourceRef"`
	Selector    map[string]any `json:"selector,omitempty"`
	Delay       map[string]int `json:"delay,omitempty"`
	Next        map[string]any `json:"next"`
}

// Field names of the Stage API.
const (
	fieldMatchExpressions = "matchExpressions"
	fieldStatusTemplate   = "statusTemplate"
)

func expr(key, op string, values ...string) map[string]any {
	e := map[string]any{"key": key, "operator": op}
	if len(values) > 0 {
		e["values"] = values
	}
	return e
}

// stagesYAML returns the stages kwok runs: fake nodes become Ready (and keep a lease),
// pods start at once, every pod of a Job (run pods and plain Job pods alike) ends after
// delayMs plus up to jitterMs with exit code 0 and fakeReport as its termination message,
// and deleted pods go away (there is no kubelet to end them). The node and pod-ready
// stages are kwok's own (kustomize/stage/node/fast, pod/fast), trimmed to what the
// scale test's pods need.
func stagesYAML(delayMs, jitterMs int) (string, error) {
	nodeStatus := `{{ $now := Now }}
conditions:
{{ range NodeConditions }}
- lastHeartbeatTime: {{ $now | Quote }}
  lastTransitionTime: {{ $now | Quote }}
  message: {{ .message | Quote }}
  reason: {{ .reason | Quote }}
  status: {{ .status | Quote }}
  type: {{ .type | Quote }}
{{ end }}
addresses:
{{ with NodeIP }}
- address: {{ . | Quote }}
  type: InternalIP
{{ end }}
{{ with NodeName }}
- address: {{ . | Quote }}
  type: Hostname
{{ end }}
allocatable:
{{ YAML .status.allocatable 1 }}
capacity:
{{ YAML .status.capacity 1 }}
nodeInfo:
  architecture: amd64
  kubeletVersion: kwok
  containerRuntimeVersion: kwok
  operatingSystem: linux
phase: Running
`
	podReady := `{{ $now := Now }}
conditions:
- lastTransitionTime: {{ $now | Quote }}
  status: "True"
  type: Initialized
- lastTransitionTime: {{ $now | Quote }}
  status: "True"
  type: Ready
- lastTransitionTime: {{ $now | Quote }}
  status: "True"
  type: ContainersReady
containerStatuses:
{{ range .spec.containers }}
- image: {{ .image | Quote }}
  name: {{ .name | Quote }}
  ready: true
  restartCount: 0
  state:
    running:
      startedAt: {{ $now | Quote }}
{{ end }}
{{ with NodeIPsWith .spec.nodeName }}
hostIP: {{ index . 0 | Quote }}
{{ end }}
{{ with PodIPsWith .spec.nodeName ( or .spec.hostNetwork false ) ( or .metadata.uid "" ) ( or .metadata.name "" ) ( or .metadata.namespace "" ) }}
podIP: {{ index . 0 | Quote }}
{{ end }}
phase: Running
startTime: {{ $now | Quote }}
`
	msg := string(fakeReport())
	if strings.Contains(msg, "`") {
		return "", fmt.Errorf("the fake report holds a backquote, which the template cannot quote: %s", msg)
	}
	podComplete := `{{ $now := Now }}
containerStatuses:
{{ range .spec.containers }}
- image: {{ .image | Quote }}
  name: {{ .name | Quote }}
  ready: false
  restartCount: 0
  started: false
  state:
    terminated:
      exitCode: 0
      reason: Completed
      startedAt: {{ $now | Quote }}
      finishedAt: {{ $now | Quote }}
      message: {{ ` + "`" + msg + "`" + ` | Quote }}
{{ end }}
phase: Succeeded
`
	stages := []stage{
		{Metadata: meta{Name: "node-initialize"}, Spec: stageSpec{
			ResourceRef: nodes,
			Selector: map[string]any{fieldMatchExpressions: []any{
				expr(`.status.conditions.[] | select( .type == "Ready" ) | .status`, "NotIn", "True"),
			}},
			Next: map[string]any{fieldStatusTemplate: nodeStatus},
		}},
		{Metadata: meta{Name: "node-heartbeat-with-lease"}, Spec: stageSpec{
			ResourceRef: nodes,
			Selector: map[string]any{fieldMatchExpressions: []any{
				expr(".status.phase", "In", "Running"),
				expr(`.status.conditions.[] | select( .type == "Ready" ) | .status`, "In", "True"),
			}},
			Delay: map[string]int{"durationMilliseconds": 600000, "jitterDurationMilliseconds": 610000},
			Next:  map[string]any{fieldStatusTemplate: nodeStatus},
		}},
		{Metadata: meta{Name: "pod-ready"}, Spec: stageSpec{
			ResourceRef: pods,
			Selector: map[string]any{fieldMatchExpressions: []any{
				expr(".metadata.deletionTimestamp", "DoesNotExist"),
				expr(".status.phase", "In", "Pending"),
				expr(`.status.conditions.[] | select( .type == "Ready" ) | .status`, "NotIn", "True"),
			}},
			Next: map[string]any{fieldStatusTemplate: podReady},
		}},
		{Metadata: meta{Name: "job-pod-complete"}, Spec: stageSpec{
			ResourceRef: pods,
			Selector: map[string]any{fieldMatchExpressions: []any{
				expr(".metadata.deletionTimestamp", "DoesNotExist"),
				expr(".status.phase", "In", "Running"),
				expr(".metadata.ownerReferences.[].kind", "In", "Job"),
			}},
			Delay: map[string]int{"durationMilliseconds": delayMs, "jitterDurationMilliseconds": jitterMs},
			Next:  map[string]any{fieldStatusTemplate: podComplete},
		}},
		{Metadata: meta{Name: "pod-delete"}, Spec: stageSpec{
			ResourceRef: pods,
			Selector: map[string]any{fieldMatchExpressions: []any{
				expr(".metadata.deletionTimestamp", "Exists"),
			}},
			Next: map[string]any{"delete": true},
		}},
	}
	var out strings.Builder
	for i := range stages {
		stages[i].APIVersion, stages[i].Kind = "kwok.x-k8s.io/v1alpha1", "Stage"
		data, err := yaml.Marshal(stages[i])
		if err != nil {
			return "", fmt.Errorf("encoding stage %s: %w", stages[i].Metadata.Name, err)
		}
		out.WriteString("---\n")
		out.Write(data)
	}
	return out.String(), nil
}
