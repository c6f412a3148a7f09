package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/watch"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	execv1alpha1 "github.com/coderun-dev/coderun/api/v1alpha1"
	"github.com/coderun-dev/coderun/internal/runs"
)

const (
	partOfLabel = "app.kubernetes.io/part-of"
	partOfValue = "coderun-faults"
	// leaderLease is the operator's leader election Lease (cmd/main.go).
	leaderLease = "operator.exec.coderun.dev"
)

// cluster is the suite's view of the local cluster through its API server. Every call
// retries while the API server is down (a fault may be under way), up to its context.
type cluster struct {
	c                     client.WithWatch
	system, runsNamespace string
}

func newCluster(system, runsNamespace string) (*cluster, error) {
	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(execv1alpha1.AddToScheme(scheme))
	loader := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(clientcmd.NewDefaultClientConfigLoadingRules(), nil)
	cfg, err := loader.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("loading the kubeconfig (set KUBECONFIG): %w", err)
	}
	cfg.QPS, cfg.Burst = 50, 100
	cfg.Timeout = 15 * time.Second
	c, err := client.NewWithWatch(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, err
	}
	return &cluster{c: c, system: system, runsNamespace: runsNamespace}, nil
}

// retry calls f every second until it succeeds, returns a permanent error, or ctx ends.
func retry(ctx context.Context, f func(ctx context.Context) (done bool, err error)) error {
	var last error
	for {
		done, err := f(ctx)
		if done {
			return err
		}
		if err != nil {
			last = err
		}
		select {
		case <-ctx.Done():
			if last != nil {
				return fmt.Errorf("%w (last error: %v)", ctx.Err(), last)
			}
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// pods returns the running pods of component (operator, front) in the system namespace.
func (k *cluster) pods(ctx context.Context, namespace string, selector map[string]string) ([]corev1.Pod, error) {
	var list corev1.PodList
	err := retry(ctx, func(ctx context.Context) (bool, error) {
		err := k.c.List(ctx, &list, client.InNamespace(namespace), client.MatchingLabels(selector))
		return err == nil, err
	})
	if err != nil {
		return nil, err
	}
	var running []corev1.Pod
	for _, p := range list.Items {
		if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
			running = append(running, p)
		}
	}
	slices.SortFunc(running, func(a, b corev1.Pod) int { return strings.Compare(a.Name, b.Name) })
	return running, nil
}

func componentSelector(component string) map[string]string {
	return map[string]string{"app.kubernetes.io/name": "coderun", "app.kubernetes.io/component": component}
}

// leader returns the operator pod that holds the leader Lease.
func (k *cluster) leader(ctx context.Context) (*corev1.Pod, error) {
	var pod *corev1.Pod
	err := retry(ctx, func(ctx context.Context) (bool, error) {
		var lease coordinationv1.Lease
		if err := k.c.Get(ctx, client.ObjectKey{Namespace: k.system, Name: leaderLease}, &lease); err != nil {
			return false, err
		}
		if lease.Spec.HolderIdentity == nil {
			return false, fmt.Errorf("the Lease %s has no holder", leaderLease)
		}
		// controller-runtime's identity is <pod name>_<uuid>.
		name, _, _ := strings.Cut(*lease.Spec.HolderIdentity, "_")
		pods, err := k.pods(ctx, k.system, componentSelector("operator"))
		if err != nil {
			return false, err
		}
		for i := range pods {
			if pods[i].Name == name {
				pod = &pods[i]
				return true, nil
			}
		}
		return false, fmt.Errorf("the Lease holder %s is not a running operator pod", name)
	})
	return pod, err
}

// createRun creates a CodeRun of p named name, retrying with the same name while the API
// server is unavailable; AlreadyExists means an earlier attempt got through. It returns
// how many attempts it took.
func (k *cluster) createRun(ctx context.Context, name, row string, p *program) (int, error) {
	attempts := 0
	err := retry(ctx, func(ctx context.Context) (bool, error) {
		attempts++
		run := &execv1alpha1.CodeRun{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: k.runsNamespace,
				Labels: map[string]string{partOfLabel: partOfValue, rowLabel: row}},
			Spec: execv1alpha1.CodeRunSpec{Source: p.source(name), Limits: p.limits},
		}
		err := k.c.Create(ctx, run)
		if err == nil || apierrors.IsAlreadyExists(err) {
			return true, nil
		}
		if apierrors.IsInvalid(err) || apierrors.IsForbidden(err) {
			return true, err // no retry will change the answer
		}
		return false, err
	})
	return attempts, err
}

const rowLabel = "faults.coderun.dev/row"

// suiteRuns lists the CodeRuns the suite created for row.
func (k *cluster) suiteRuns(ctx context.Context, row string) ([]execv1alpha1.CodeRun, error) {
	var list execv1alpha1.CodeRunList
	err := retry(ctx, func(ctx context.Context) (bool, error) {
		err := k.c.List(ctx, &list, client.InNamespace(k.runsNamespace), client.MatchingLabels{partOfLabel: partOfValue, rowLabel: row})
		return err == nil, err
	})
	return list.Items, err
}

// unfinished lists the CodeRuns in the runs namespace created since `since` that have no
// result and are not being deleted: runs that never finish, if they stay so.
func (k *cluster) unfinished(ctx context.Context, since time.Time) ([]string, error) {
	var list execv1alpha1.CodeRunList
	err := retry(ctx, func(ctx context.Context) (bool, error) {
		err := k.c.List(ctx, &list, client.InNamespace(k.runsNamespace))
		return err == nil, err
	})
	var names []string
	for _, r := range list.Items {
		if r.Status.Result == nil && r.DeletionTimestamp == nil && !r.CreationTimestamp.Time.Before(since.Truncate(time.Second)) {
			names = append(names, r.Name)
		}
	}
	return names, err
}

// deleteSuiteRuns deletes the suite's own CodeRuns (their Jobs and pods go with them).
func (k *cluster) deleteSuiteRuns(ctx context.Context) error {
	return retry(ctx, func(ctx context.Context) (bool, error) {
		err := k.c.DeleteAllOf(ctx, &execv1alpha1.CodeRun{}, client.InNamespace(k.runsNamespace),
			client.MatchingLabels{partOfLabel: partOfValue}, client.PropagationPolicy(metav1.DeletePropagationBackground))
		return err == nil, err
	})
}

// pastTTL lists the run Jobs and pods in the runs namespace that are still there more than
// grace after their TTL: a Job finished longer ago than ttl+grace, a finished pod whose
// containers ended that long ago, or anything stuck in deletion for longer than grace.
func (k *cluster) pastTTL(ctx context.Context, ttl, grace time.Duration) ([]string, error) {
	var jobs batchv1.JobList
	var pods corev1.PodList
	err := retry(ctx, func(ctx context.Context) (bool, error) {
		sel := client.MatchingLabelsSelector{Selector: execv1alpha1.RunPodSelector()}
		if err := k.c.List(ctx, &jobs, client.InNamespace(k.runsNamespace), sel); err != nil {
			return false, err
		}
		err := k.c.List(ctx, &pods, client.InNamespace(k.runsNamespace))
		return err == nil, err
	})
	if err != nil {
		return nil, err
	}
	now := time.Now()
	late := func(t time.Time, limit time.Duration) bool { return !t.IsZero() && now.Sub(t) > limit }
	var left []string
	for _, j := range jobs.Items {
		var finished time.Time
		for _, c := range j.Status.Conditions {
			if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue {
				finished = c.LastTransitionTime.Time
			}
		}
		switch {
		case j.DeletionTimestamp != nil && late(j.DeletionTimestamp.Time, grace):
			left = append(left, fmt.Sprintf("Job %s (deleting since %s)", j.Name, j.DeletionTimestamp.Format(time.TimeOnly)))
		case late(finished, ttl+grace):
			left = append(left, fmt.Sprintf("Job %s (finished %s)", j.Name, finished.Format(time.TimeOnly)))
		}
	}
	for _, p := range pods.Items {
		var ended time.Time
		if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			for _, cs := range p.Status.ContainerStatuses {
				if t := cs.State.Terminated; t != nil && t.FinishedAt.After(ended) {
					ended = t.FinishedAt.Time
				}
			}
			if ended.IsZero() {
				ended = p.CreationTimestamp.Time
			}
		}
		switch {
		case p.DeletionTimestamp != nil && late(p.DeletionTimestamp.Time, grace):
			left = append(left, fmt.Sprintf("pod %s (deleting since %s)", p.Name, p.DeletionTimestamp.Format(time.TimeOnly)))
		case late(ended, ttl+grace):
			left = append(left, fmt.Sprintf("pod %s (%s, ended %s)", p.Name, p.Status.Phase, ended.Format(time.TimeOnly)))
		}
	}
	return left, nil
}

// requestRuns records, from a watch on the runs namespace, which CodeRuns the front created
// for each request id (its exec.coderun.dev/request-id annotation, which the load sets to
// the Idempotency-Key): a key with two CodeRuns is a run made twice.
type requestRuns struct {
	mu    sync.Mutex
	byKey map[string]map[string]bool
}

func (k *cluster) watchRequestRuns(ctx context.Context) (*requestRuns, error) {
	rr := &requestRuns{byKey: map[string]map[string]bool{}}
	lw := &toolscache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
			list := &execv1alpha1.CodeRunList{}
			err := k.c.List(ctx, list, &client.ListOptions{Namespace: k.runsNamespace, Raw: &opts})
			return list, err
		},
		WatchFuncWithContext: func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
			return k.c.Watch(ctx, &execv1alpha1.CodeRunList{}, &client.ListOptions{Namespace: k.runsNamespace, Raw: &opts})
		},
	}
	inf := toolscache.NewSharedIndexInformer(lw, &execv1alpha1.CodeRun{}, 0, toolscache.Indexers{})
	note := func(obj any) {
		run, ok := obj.(*execv1alpha1.CodeRun)
		if !ok || run.Labels[execv1alpha1.LabelManagedBy] != runs.ManagedBy {
			return
		}
		key := run.Annotations[runs.RequestIDAnnotation]
		if key == "" {
			return
		}
		rr.mu.Lock()
		defer rr.mu.Unlock()
		if rr.byKey[key] == nil {
			rr.byKey[key] = map[string]bool{}
		}
		rr.byKey[key][run.Name] = true
	}
	if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    note,
		UpdateFunc: func(_, obj any) { note(obj) },
	}); err != nil {
		return nil, err
	}
	go inf.RunWithContext(ctx)
	syncCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if !toolscache.WaitForCacheSync(syncCtx.Done(), inf.HasSynced) {
		return nil, fmt.Errorf("the watch on CodeRuns in %s did not sync in a minute", k.runsNamespace)
	}
	return rr, nil
}

// runsOf returns the names of the CodeRuns made for key.
func (rr *requestRuns) runsOf(key string) int {
	rr.mu.Lock()
	defer rr.mu.Unlock()
	return len(rr.byKey[key])
}
