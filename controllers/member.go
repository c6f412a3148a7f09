package controllers

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	execv1alpha1 "github.com/coderun-dev/coderun/api/v1alpha1"
	"github.com/coderun-dev/coderun/internal/config"
)

// memberInputSize bounds the writable input folder of a member, where the runner writes
// the program and its stdin once they arrive (64 KiB each at most, plus room).
var memberInputSize = resource.MustParse("1Mi")

// poolShape is a pool's member shape with the operator's defaults filled in.
func poolShape(pool *execv1alpha1.CodeRunPool, cfg config.Config) execv1alpha1.Limits {
	return cfg.Effective(pool.Spec.Limits)
}

// maxIdleSeconds is how long pool's members wait for a program.
func maxIdleSeconds(pool *execv1alpha1.CodeRunPool) int64 {
	if pool.Spec.MaxIdleSeconds == nil {
		return 600
	}
	return int64(*pool.Spec.MaxIdleSeconds)
}

// buildMemberJob returns a new member of pool: a Job built by the same locked-down builder
// as a cold run's, whose runner waits for one request on stdin (internal/delivery)
// instead of reading the program from files. It runs plan's Runtime (the pool's), as uid,
// which no other member or active run has.
//
// Its deadline covers the start, the longest wait and the longest run, so a member that is
// busy with a run is never killed by it: the runner exits unused at maxIdleSeconds, and a
// run claimed before that gets at most the pool's timeout (and the Runtime's compile
// time).
//
// It carries annotationMemberSpec, the digest of what it was built from.
func buildMemberJob(pool *execv1alpha1.CodeRunPool, plan *runPlan, cfg config.Config, uid int64) *batchv1.Job {
	job := memberJob(pool, plan, cfg, uid)
	job.Annotations = map[string]string{annotationMemberSpec: memberSpecDigest(pool, plan, cfg)}
	return job
}

// annotationMemberSpec on a member Job is a digest of the Job spec built for its pool and
// the operator's configuration (runner image, limits, runtime class...) and the pool's
// Runtime (image, commands), without the member's uid. An idle member whose digest is not
// what the pool would get now was made for an older pool, Runtime or operator (before a
// helm upgrade, say) and is replaced, so that no run takes a member built on an old image
// or configuration.
const annotationMemberSpec = "exec.coderun.dev/member-spec"

// memberSpecDigest is the annotationMemberSpec of a member of pool built now.
func memberSpecDigest(pool *execv1alpha1.CodeRunPool, plan *runPlan, cfg config.Config) string {
	spec, err := json.Marshal(memberJob(pool, plan, cfg, 0).Spec)
	if err != nil {
		panic(fmt.Sprintf("encoding a member's Job spec: %v", err)) // a JobSpec always encodes
	}
	sum := sha256.Sum256(spec)
	return hex.EncodeToString(sum[:12])
}

// memberJob is buildMemberJob without the annotation.
func memberJob(pool *execv1alpha1.CodeRunPool, plan *runPlan, cfg config.Config, uid int64) *batchv1.Job {
	shape := poolShape(pool, cfg)
	cpuRequest := shape.CPU.DeepCopy()
	if r := pool.Spec.CPURequest; r != nil && r.Cmp(cpuRequest) < 0 {
		cpuRequest = r.DeepCopy()
	}
	idle := maxIdleSeconds(pool)
	podLabels := execv1alpha1.RunPodLabels()
	podLabels[execv1alpha1.LabelPool] = pool.Name
	jobLabels := map[string]string{execv1alpha1.LabelMember: execv1alpha1.MemberIdle}
	for k, v := range podLabels {
		jobLabels[k] = v
	}
	args := []string{
		"--request=stdin",
		"--input-dir=" + inputDir,
		"--idle-timeout=" + strconv.FormatInt(idle, 10) + "s",
	}
	if !plan.builtin() {
		// The Runtime's commands; each request brings the program's files and args.
		args = append(args, plan.commandArgs()...)
	}
	spec := lockedDownJobSpec(cfg, podShape{
		limits:     shape,
		cpuRequest: cpuRequest,
		uid:        uid,
		plan:       plan,
		args:       args,
		// The runner writes the program here when it arrives; the program's own /tmp
		// starts empty.
		input: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{
			Medium:    corev1.StorageMediumMemory,
			SizeLimit: ptr.To(memberInputSize.DeepCopy()),
		}},
		stdin: true,
	}, int64(cfg.StartTimeout.Seconds())+idle+int64(*shape.TimeoutSeconds)+plan.compileSeconds()+deadlineSlack,
		metav1.ObjectMeta{Labels: podLabels})
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName: memberNamePrefix(pool.Name),
			Namespace:    pool.Namespace,
			Labels:       jobLabels,
		},
		Spec: spec,
	}
}

// memberNamePrefix keeps generated member names within the 63 characters of a label value
// (the Job controller labels pods with their Job's name).
func memberNamePrefix(pool string) string {
	const room = maxJobNameLength - 6 // generateName appends 5 characters
	if len(pool) > room-1 {
		pool = pool[:room-1]
	}
	return pool + "-"
}

// memberUID is the uid a member's pod runs as.
func memberUID(job *batchv1.Job) int64 {
	if sc := job.Spec.Template.Spec.SecurityContext; sc != nil && sc.RunAsUser != nil {
		return *sc.RunAsUser
	}
	return 0
}

// isMember reports whether job is a pool member (idle or claimed).
func isMember(job *batchv1.Job) bool {
	_, ok := job.Labels[execv1alpha1.LabelPool]
	return ok
}

// jobFinished reports whether job has completed or failed.
func jobFinished(job *batchv1.Job) bool {
	return jobCondition(job, batchv1.JobComplete) != nil || jobCondition(job, batchv1.JobFailed) != nil
}

// podRunning reports whether pod's run container is running, so that an attach reaches
// the runner waiting for its request.
func podRunning(pod *corev1.Pod) bool {
	if pod == nil || !pod.DeletionTimestamp.IsZero() || pod.Status.Phase != corev1.PodRunning {
		return false
	}
	cs := runContainerStatus(pod)
	return cs != nil && cs.State.Running != nil
}

// jobOfPod is the name of the Job that owns pod, or "".
func jobOfPod(pod *corev1.Pod) string {
	if ref := metav1.GetControllerOf(pod); ref != nil && ref.Kind == "Job" {
		return ref.Name
	}
	return ""
}
