package controllers

import (
	"context"
	"fmt"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	execv1alpha1 "github.com/coderun-dev/coderun/api/v1alpha1"
)

// What the operator keeps in its cache, and how it finds things there. With thousands of
// runs the cache holds thousands of CodeRuns, Jobs and pods: each keeps only what the
// operator reads (the Trim transforms, set in cmd/main.go), and a run's Jobs and pods are
// found through an index instead of a pass over every object of the namespace.

// indexRunUID indexes Jobs and pods by the CodeRun they run for (their run-uid label).
// The cache's List filters labels by visiting every object of the namespace; with 10,000
// runs that made finding one run's pod cost 10,000 visits, on every reconcile.
const indexRunUID = "exec.coderun.dev/run-uid"

func runUIDIndex(obj client.Object) []string {
	if uid := obj.GetLabels()[execv1alpha1.LabelRunUID]; uid != "" {
		return []string{uid}
	}
	return nil
}

// setupIndexes registers the cache indexes the reconcilers use.
func setupIndexes(ctx context.Context, mgr ctrl.Manager) error {
	for _, obj := range []client.Object{&corev1.Pod{}, &batchv1.Job{}} {
		if err := mgr.GetFieldIndexer().IndexField(ctx, obj, indexRunUID, runUIDIndex); err != nil {
			return fmt.Errorf("indexing %T by run: %w", obj, err)
		}
	}
	return nil
}

// dropInput removes the program and its input from annotations: a run pod and its Job's
// template carry them (up to 128 KiB) for the downward API volume, and the operator never
// reads them back.
func dropInput(annotations map[string]string) {
	delete(annotations, execv1alpha1.AnnotationSource)
	delete(annotations, execv1alpha1.AnnotationStdin)
	for k := range annotations {
		if strings.HasPrefix(k, annotationFilePrefix) {
			delete(annotations, k)
		}
	}
}

// CacheOptions are the operator's cache options: only run Jobs and pods, not every Job
// and pod of the cluster; of nodes (read when runs' hostUsers is left to the cluster) only
// what decides it; of everything only what the operator reads (the Trim transforms).
func CacheOptions() cache.Options {
	runSelector := execv1alpha1.RunPodSelector()
	return cache.Options{
		DefaultTransform: cache.TransformStripManagedFields(),
		ByObject: map[client.Object]cache.ByObject{
			&batchv1.Job{}:          {Label: runSelector, Transform: TrimJob},
			&corev1.Pod{}:           {Label: runSelector, Transform: TrimPod},
			&corev1.Node{}:          {Transform: TrimNode},
			&execv1alpha1.CodeRun{}: {Transform: TrimRun},
		},
	}
}

// TrimPod is the cache transform for run pods: their metadata (without managed fields
// and the program) and status. The operator never reads a pod's spec, which was the
// largest part of the cache at 10,000 runs (make test-scale, a heap profile).
func TrimPod(obj any) (any, error) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil
	}
	trimmed := &corev1.Pod{TypeMeta: pod.TypeMeta, ObjectMeta: pod.ObjectMeta, Status: pod.Status}
	trimmed.ManagedFields = nil
	dropInput(trimmed.Annotations)
	return trimmed, nil
}

// TrimJob is the cache transform for run Jobs: their metadata (without managed fields),
// status, and of their spec only the pod's security context, where a member's uid is.
func TrimJob(obj any) (any, error) {
	job, ok := obj.(*batchv1.Job)
	if !ok {
		return obj, nil
	}
	trimmed := &batchv1.Job{TypeMeta: job.TypeMeta, ObjectMeta: job.ObjectMeta, Status: job.Status}
	trimmed.ManagedFields = nil
	trimmed.Spec.Template.Spec.SecurityContext = job.Spec.Template.Spec.SecurityContext
	return trimmed, nil
}

// TrimRun is the cache transform for CodeRuns: no managed fields, and of a finished run
// only what a reconcile of a finished run reads (its phase, times, Job and result reason),
// not its program or output, which can be hundreds of KiB.
func TrimRun(obj any) (any, error) {
	run, ok := obj.(*execv1alpha1.CodeRun)
	if !ok {
		return obj, nil
	}
	run.ManagedFields = nil
	if res := run.Status.Result; res != nil {
		run.Spec.Source, run.Spec.Stdin, run.Spec.Files = "", "", nil
		res.Output, res.Stdout, res.Stderr = "", "", ""
		if res.Compile != nil {
			res.Compile.Output, res.Compile.Stdout, res.Compile.Stderr = "", "", ""
		}
	}
	return run, nil
}
