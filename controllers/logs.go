package controllers

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/coderun-dev/coderun/internal/report"
)

// PodLogReader reads run pods' logs through the API server (pods/log), which the
// controller-runtime client cannot do.
type PodLogReader struct {
	Clientset kubernetes.Interface
}

// ReadLog returns the last lines of a container's log. The runner's report is its last
// line; the byte limit keeps a misbehaving pod from sending the operator more than a
// report can be.
func (p PodLogReader) ReadLog(ctx context.Context, namespace, pod, container string) ([]byte, error) {
	data, err := p.Clientset.CoreV1().Pods(namespace).GetLogs(pod, &corev1.PodLogOptions{
		Container:  container,
		TailLines:  ptr.To[int64](4),
		LimitBytes: ptr.To[int64](report.MaxEncodedSize),
	}).DoRaw(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading log of pod %s/%s: %w", namespace, pod, err)
	}
	return data, nil
}
