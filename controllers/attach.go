package controllers

import (
	"context"
	"fmt"
	"io"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/streaming/pkg/httpstream"
)

// Attacher opens a pods/attach stream to a container: stdin goes to the container's stdin
// (closed when stdin ends), and the container's stdout and stderr come back until it
// exits. It is an interface so that tests without a kubelet (envtest, kwok) can play the
// runner's part.
type Attacher interface {
	Attach(ctx context.Context, namespace, pod, container string, stdin io.Reader, stdout, stderr io.Writer) error
}

// PodAttacher attaches through the API server as kubectl attach does: WebSocket first
// (its v5 protocol can close stdin alone, which the runner needs to see its end), and
// SPDY when the server or a proxy refuses the WebSocket upgrade.
type PodAttacher struct {
	Config    *rest.Config
	Clientset kubernetes.Interface
}

// Attach implements Attacher.
func (a PodAttacher) Attach(ctx context.Context, namespace, pod, container string, stdin io.Reader, stdout, stderr io.Writer) error {
	req := a.Clientset.CoreV1().RESTClient().Post().
		Resource("pods").Namespace(namespace).Name(pod).SubResource("attach").
		VersionedParams(&corev1.PodAttachOptions{Container: container, Stdin: true, Stdout: true, Stderr: true}, scheme.ParameterCodec)
	ws, err := remotecommand.NewWebSocketExecutor(a.Config, "GET", req.URL().String())
	if err != nil {
		return fmt.Errorf("attach over WebSocket: %w", err)
	}
	spdy, err := remotecommand.NewSPDYExecutor(a.Config, "POST", req.URL())
	if err != nil {
		return fmt.Errorf("attach over SPDY: %w", err)
	}
	exec, err := remotecommand.NewFallbackExecutor(ws, spdy, func(err error) bool {
		return httpstream.IsUpgradeFailure(err) || httpstream.IsHTTPSProxyError(err)
	})
	if err != nil {
		return fmt.Errorf("attach: %w", err)
	}
	if err := exec.StreamWithContext(ctx, remotecommand.StreamOptions{Stdin: stdin, Stdout: stdout, Stderr: stderr}); err != nil {
		return fmt.Errorf("attaching to pod %s/%s: %w", namespace, pod, err)
	}
	return nil
}
