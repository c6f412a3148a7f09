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

// ReadLog returns a container's log, up to a report's largest size and some room for the
// runner's diagnostics. Only the runner writes there (the program's streams are pipes), so
// the whole log is small. It is read from the start, not with TailLines: the container
// runtime splits lines longer than 16 KiB into partial entries and the kubelet counts
// those as lines, so a tail of a few lines cuts a large report short.
func (p PodLogReader) ReadLog(ctx context.Context, namespace, pod, container string) ([]byte, error) {
	data, err := p.Clientset.CoreV1().Pods(namespace).GetLogs(pod, &corev1.PodLogOptions{
		Container:  container,
		LimitBytes: ptr.To[int64](report.MaxEncodedSize + 64*1024),
	}).DoRaw(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading log of pod %s/%s: %w", namespace, pod, err)
	}
	return data, nil
}
