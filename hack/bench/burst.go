package main

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	watchtools "k8s.io/client-go/tools/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	execv1alpha1 "github.com/coderun-dev/coderun/api/v1alpha1"
)

// progressEvery is how often the pod churn and the burst print their progress.
const progressEvery = 25

// churnResult is the node's raw pod churn: plain pods created at once, run to Succeeded.
type churnResult struct {
	n, succeeded, failed int
	// created is how long creating them took; elapsed runs from the first create until
	// the last pod Succeeded.
	created, elapsed time.Duration
}

func (r *churnResult) perSecond() float64 { return float64(r.succeeded) / r.elapsed.Seconds() }

// podChurn creates b.burst plain pods running print(1) in the runner image at once, in the
// benchmark's namespace, times them until all have Succeeded, and deletes them.
func (b *bench) podChurn(ctx context.Context) (churnResult, error) {
	res := churnResult{n: b.burst}
	bound := b.timeout + time.Duration(res.n)*time.Second
	wctx, cancel := context.WithTimeout(ctx, bound)
	defer cancel()
	opts := client.ListOptions{Namespace: b.benchNamespace, LabelSelector: labels.SelectorFromSet(labels.Set{benchLabel: b.id})}
	w, rv, err := b.watcher(wctx, func() client.ObjectList { return &corev1.PodList{} }, opts)
	if err != nil {
		return res, err
	}
	fmt.Printf("pod churn: creating %d plain pods at once in %s\n", res.n, b.benchNamespace)
	start := time.Now()
	created := make(chan error, 1)
	go func() {
		var failed atomic.Pointer[error]
		forEach(res.n, 64, func(i int) {
			if err := b.c.Create(wctx, b.plainPod(i)); err != nil {
				failed.CompareAndSwap(nil, &err)
				cancel()
			}
		})
		res.created = time.Since(start)
		if err := failed.Load(); err != nil {
			created <- fmt.Errorf("creating the plain pods: %w", *err)
		}
		close(created)
	}()

	phases := map[string]corev1.PodPhase{}
	_, err = watchtools.Until(wctx, rv, w, func(e watch.Event) (bool, error) {
		pod, ok := e.Object.(*corev1.Pod)
		if !ok || phases[pod.Name] == pod.Status.Phase {
			return false, nil
		}
		phases[pod.Name] = pod.Status.Phase
		switch pod.Status.Phase {
		case corev1.PodSucceeded:
			res.succeeded++
			res.elapsed = time.Since(start)
			if res.succeeded%progressEvery == 0 || res.succeeded == res.n {
				fmt.Printf("pod churn: %d/%d Succeeded after %.1fs\n", res.succeeded, res.n, res.elapsed.Seconds())
			}
		case corev1.PodFailed:
			res.failed++
			fmt.Printf("pod churn: pod %s failed: %s %s\n", pod.Name, pod.Status.Reason, pod.Status.Message)
		}
		return res.succeeded+res.failed == res.n, nil
	})
	if cerr := <-created; cerr != nil {
		return res, cerr
	}
	if err != nil {
		return res, fmt.Errorf("waiting for the plain pods (%d of %d Succeeded): %w", res.succeeded, res.n, err)
	}
	return res, b.deletePlainPods(ctx, opts)
}

// plainPod is pod i of the churn: what `kubectl run` would create for python3 -c 'print(1)'
// in the runner image, replacing its entrypoint, as the plain Jobs do.
func (b *bench) plainPod(i int) *corev1.Pod {
	name := fmt.Sprintf("churn-%d", i)
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: b.benchNamespace, Labels: map[string]string{benchLabel: b.id}},
		Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			Containers: []corev1.Container{{
				Name:            "churn",
				Image:           b.image,
				Command:         []string{"python3", "-c", "print(1)"},
				ImagePullPolicy: corev1.PullIfNotPresent,
			}},
		},
	}
}

// deletePlainPods deletes the churn's pods and waits until they are gone, so that the burst
// starts on a quiet node.
func (b *bench) deletePlainPods(ctx context.Context, opts client.ListOptions) error {
	fmt.Printf("pod churn: deleting the plain pods\n")
	if err := b.c.DeleteAllOf(ctx, &corev1.Pod{}, &client.DeleteAllOfOptions{ListOptions: opts}); err != nil {
		return fmt.Errorf("deleting the plain pods: %w", err)
	}
	err := wait.PollUntilContextTimeout(ctx, time.Second, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		var pods corev1.PodList
		listOpts := opts
		if err := b.c.List(ctx, &pods, &listOpts); err != nil {
			return false, err
		}
		return len(pods.Items) == 0, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for the plain pods to go: %w", err)
	}
	return nil
}

// burstResult is the burst of /execute requests.
type burstResult struct {
	n, correct, errors, lost int
	// warm, cold and unknown count the answers' CodeRuns by path (unknown: gone already).
	warm, cold, unknown int
	elapsed             time.Duration
	latencies           []time.Duration
	problems            []string
}

func (r *burstResult) perSecond() float64 { return float64(r.n) / r.elapsed.Seconds() }

// burstExecute sends b.burst hello worlds to /execute from b.clients concurrent clients,
// each sending its next request when it has its answer, and times them until the last
// answer. Every request must be answered "1\n"; a request without an answer is lost.
func (b *bench) burstExecute(ctx context.Context) (burstResult, error) {
	res := burstResult{n: b.burst}
	fmt.Printf("burst: %d /execute from %d clients\n", res.n, b.clients)
	answers := make([]answer, res.n)
	var done atomic.Int32
	start := time.Now()
	forEach(res.n, b.clients, func(i int) {
		answers[i] = b.execute(ctx)
		if d := int(done.Add(1)); d%progressEvery == 0 || d == res.n {
			fmt.Printf("burst: %d/%d answered after %.1fs\n", d, res.n, time.Since(start).Seconds())
		}
	})
	res.elapsed = time.Since(start)
	if err := ctx.Err(); err != nil {
		return res, err
	}

	paths := make([]execv1alpha1.RunPath, res.n)
	var readErr atomic.Pointer[error]
	forEach(res.n, b.clients, func(i int) {
		if answers[i].body.Name == "" {
			return
		}
		run, err := b.frontRun(ctx, answers[i].body.Name)
		switch {
		case err != nil:
			readErr.CompareAndSwap(nil, &err)
		case run != nil:
			paths[i] = run.Status.Path
		}
	})
	if err := readErr.Load(); err != nil {
		return res, *err
	}
	seen := map[string]bool{}
	for i, a := range answers {
		switch problem := a.problem(); {
		case a.err != nil:
			res.lost++
			res.note(seen, problem)
		case problem != "":
			res.errors++
			res.note(seen, problem)
		default:
			res.correct++
			res.latencies = append(res.latencies, a.took)
		}
		switch {
		case a.body.Name == "":
		case paths[i] == execv1alpha1.PathWarm:
			res.warm++
		case paths[i] == execv1alpha1.PathCold:
			res.cold++
		default:
			res.unknown++
		}
	}
	return res, nil
}

// note keeps the first few distinct problems, to show them.
func (r *burstResult) note(seen map[string]bool, problem string) {
	if !seen[problem] && len(r.problems) < 5 {
		seen[problem] = true
		r.problems = append(r.problems, problem)
	}
}
