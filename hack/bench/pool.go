package main

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	execv1alpha1 "github.com/coderun-dev/coderun/api/v1alpha1"
)

// readPool reads the shape of the pool the warm runs take, and chooses the CPU that keeps
// the cold runs off every pool.
func (b *bench) readPool(ctx context.Context) error {
	var pool execv1alpha1.CodeRunPool
	if err := b.c.Get(ctx, client.ObjectKey{Namespace: b.runNamespace, Name: b.pool}, &pool); err != nil {
		return fmt.Errorf("reading CodeRunPool %s/%s (is the chart's pool.enabled true?): %w", b.runNamespace, b.pool, err)
	}
	b.shape = *pool.Spec.Limits.DeepCopy()
	switch {
	case b.coldCPUFlag != "":
		q, err := resource.ParseQuantity(b.coldCPUFlag)
		if err != nil {
			return fmt.Errorf("-cold-cpu: %w", err)
		}
		b.coldCPU = q
	case b.shape.CPU == nil:
		return fmt.Errorf("CodeRunPool %s/%s leaves its CPU to the operator's default; give the cold runs another with -cold-cpu", b.runNamespace, b.pool)
	default:
		// 1m below the pool's: off the pool (whose CPU must equal the run's), yet the same
		// resources as a cold run of the pool's shape, within the operator's maxima.
		m := b.shape.CPU.MilliValue() - 1
		if m < 10 { // the smallest CPU a CodeRun may have
			m += 2
		}
		b.coldCPU = *resource.NewMilliQuantity(m, resource.DecimalSI)
	}

	var pools execv1alpha1.CodeRunPoolList
	if err := b.c.List(ctx, &pools, client.InNamespace(b.runNamespace)); err != nil {
		return fmt.Errorf("listing CodeRunPools: %w", err)
	}
	for _, p := range pools.Items {
		if p.Spec.Limits.CPU != nil && p.Spec.Limits.CPU.Cmp(b.coldCPU) == 0 {
			return fmt.Errorf("CodeRunPool %s/%s has CPU %s, so the cold runs would take it; choose another with -cold-cpu", b.runNamespace, p.Name, &b.coldCPU)
		}
	}
	fmt.Printf("pool %s: %d replicas, %d ready; shape cpu %s, memory %s, timeout %s; cold CodeRuns get cpu %s\n",
		pool.Name, ptrOr(pool.Spec.Replicas, 0), pool.Status.Ready,
		quantityOr(pool.Spec.Limits.CPU), quantityOr(pool.Spec.Limits.Memory), timeoutOr(pool.Spec.Limits.TimeoutSeconds), &b.coldCPU)
	return nil
}

func ptrOr[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}

func quantityOr(q *resource.Quantity) string {
	if q == nil {
		return "(the default)"
	}
	return q.String()
}

func timeoutOr(s *int32) string {
	if s == nil {
		return "(the default)"
	}
	return fmt.Sprintf("%ds", *s)
}

// poolCounts returns the pool's wanted and ready idle members.
func (b *bench) poolCounts(ctx context.Context) (want, ready int32, err error) {
	var pool execv1alpha1.CodeRunPool
	if err := b.c.Get(ctx, client.ObjectKey{Namespace: b.runNamespace, Name: b.pool}, &pool); err != nil {
		return 0, 0, fmt.Errorf("reading CodeRunPool %s/%s: %w", b.runNamespace, b.pool, err)
	}
	return ptrOr(pool.Spec.Replicas, 0), pool.Status.Ready, nil
}

// waitPool waits, untimed and at most bound, until the pool has at least enough ready
// members (all it wants when enough is 0). It says so when it gives up: the next warm run
// may then go cold, and is counted as an error.
func (b *bench) waitPool(ctx context.Context, label string, enough int32, bound time.Duration) {
	var want, ready int32
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, bound, true, func(ctx context.Context) (bool, error) {
		var err error
		if want, ready, err = b.poolCounts(ctx); err != nil {
			return false, nil // retried until the bound
		}
		need := enough
		if need == 0 {
			need = want
		}
		return ready >= need, nil
	})
	if err != nil && ctx.Err() == nil {
		fmt.Printf("%-9s the pool %s still has %d of %d members ready after %s; going on\n", label, b.pool, ready, want, bound)
	}
}

func (b *bench) waitPoolReady(ctx context.Context, label string) {
	b.waitPool(ctx, label, 1, time.Minute)
}

func (b *bench) waitPoolFull(ctx context.Context) {
	b.waitPool(ctx, "[pool]", 0, 2*time.Minute)
}

// settle deletes the CodeRuns of the iterations and waits until their pods are gone and the
// pool is full, so that the pod churn and the burst start on a quiet node.
func (b *bench) settle(ctx context.Context) error {
	fmt.Printf("deleting the iterations' CodeRuns and waiting for their pods to go\n")
	var runs execv1alpha1.CodeRunList
	if err := b.c.List(ctx, &runs, client.InNamespace(b.runNamespace), client.MatchingLabels{benchLabel: b.id}); err != nil {
		return err
	}
	jobs := map[string]bool{}
	for _, r := range runs.Items {
		if r.Status.JobName != "" {
			jobs[r.Status.JobName] = true
		}
	}
	for _, name := range b.frontRunsSnapshot() {
		var r execv1alpha1.CodeRun
		if err := b.c.Get(ctx, client.ObjectKey{Namespace: b.runNamespace, Name: name}, &r); err == nil && r.Status.JobName != "" {
			jobs[r.Status.JobName] = true
		}
	}
	if err := b.deleteRuns(ctx); err != nil {
		return err
	}
	err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		var pods corev1.PodList
		if err := b.c.List(ctx, &pods, client.InNamespace(b.runNamespace)); err != nil {
			return false, err
		}
		for _, p := range pods.Items {
			if jobs[p.Labels[jobNameLabel]] {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for the pods of the iterations' runs to go: %w", err)
	}
	b.waitPoolFull(ctx)
	return nil
}
