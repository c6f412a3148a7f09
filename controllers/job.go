package controllers

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	execv1alpha1 "github.com/coderun-dev/coderun/api/v1alpha1"
	"github.com/coderun-dev/coderun/internal/config"
)

const (
	containerName = "run"
	runnerPath    = "/usr/local/bin/coderun-runner"
	pythonPath    = "/usr/bin/python3"
	inputDir      = "/coderun/input"
	scratchDir    = "/tmp"
	// runnerMemory is what the runner itself (a small Go program) may use on top of the
	// program's memory limit; the runner holds the program to the limit itself, and the
	// pod's limit (program + scratch + runner) is the kernel-enforced backstop.
	runnerMemory = 32 << 20
	// deadlineSlack is added to the Job's activeDeadlineSeconds beyond start timeout and run
	// timeout, so the runner's own timeout always fires first and reports what happened.
	deadlineSlack = 30
	// userNamespaceIDs is how many uids and gids a pod in a user namespace of its own has,
	// 0 to 65535: what the kubelet maps by default (userNamespaces.idsPerPod).
	userNamespaceIDs = 65536
)

// maxJobNameLength keeps Job names valid as label values (the Job controller labels pods
// with their Job's name).
const maxJobNameLength = 63

// jobName derives the Job's name from the CodeRun's, so that creating it again is
// idempotent: the same run always maps to the same Job.
func jobName(run *execv1alpha1.CodeRun) string {
	if len(run.Name) <= maxJobNameLength {
		return run.Name
	}
	sum := sha256.Sum256([]byte(run.Name))
	suffix := hex.EncodeToString(sum[:])[:8]
	return run.Name[:maxJobNameLength-len(suffix)-1] + "-" + suffix
}

// preferredUID is the uid a run executes as when no other active run has it: a hash of the
// CodeRun's UID into the configured range, so that it is stable across reconciles.
func preferredUID(run *execv1alpha1.CodeRun, cfg config.Config) int64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(run.UID))
	return cfg.RunUIDMin + int64(h.Sum64()%uint64(cfg.RunUIDCount))
}

// buildJob returns the locked-down Job that runs the program of run with limits (complete:
// defaults filled in) as uid: the cold path. The program and its stdin reach the pod as
// read-only files of a downward API volume.
func buildJob(run *execv1alpha1.CodeRun, limits execv1alpha1.Limits, cfg config.Config, uid int64) *batchv1.Job {
	timeout := int64(*limits.TimeoutSeconds)
	labels := execv1alpha1.RunPodLabels()
	labels[execv1alpha1.LabelRunUID] = string(run.UID)
	shape := podShape{
		limits:     limits,
		cpuRequest: *limits.CPU,
		uid:        uid,
		args: []string{
			"--source=" + inputDir + "/main.py",
			"--stdin=" + inputDir + "/stdin",
		},
		input: corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{
			DefaultMode: ptr.To[int32](0o444),
			Items: []corev1.DownwardAPIVolumeFile{
				{Path: "main.py", FieldRef: &corev1.ObjectFieldSelector{FieldPath: annotationField(execv1alpha1.AnnotationSource)}},
				{Path: "stdin", FieldRef: &corev1.ObjectFieldSelector{FieldPath: annotationField(execv1alpha1.AnnotationStdin)}},
			},
		}},
		inputReadOnly: true,
	}
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{
			Name:      jobName(run),
			Namespace: run.Namespace,
			Labels:    labels,
			Annotations: map[string]string{
				execv1alpha1.AnnotationRun: run.Name,
			},
		},
		// A backstop in case the runner cannot enforce its timeout.
		Spec: lockedDownJobSpec(cfg, shape, int64(cfg.StartTimeout.Seconds())+timeout+deadlineSlack,
			metav1.ObjectMeta{
				Labels: labels,
				Annotations: map[string]string{
					execv1alpha1.AnnotationRun:    run.Name,
					execv1alpha1.AnnotationSource: run.Spec.Source,
					execv1alpha1.AnnotationStdin:  run.Spec.Stdin,
				},
			}),
	}
}

// JobForRun returns the Job that the cold path creates for run under cfg, with run's
// preferred uid, without an owner. It is for tools that must start the very same pod
// shape without the operator (the scale test's plain Jobs).
func JobForRun(run *execv1alpha1.CodeRun, cfg config.Config) *batchv1.Job {
	return buildJob(run, cfg.Effective(run.Spec.Limits), cfg, preferredUID(run, cfg))
}

// podShape is what differs between the pods of cold runs and of pool members.
type podShape struct {
	// limits are complete: the program's timeout, memory and CPU limit.
	limits execv1alpha1.Limits
	// cpuRequest is the pod's CPU request, at most limits.cpu.
	cpuRequest resource.Quantity
	uid        int64
	// args say where the program comes from (files, or a request on stdin).
	args []string
	// input is the volume mounted at inputDir.
	input         corev1.VolumeSource
	inputReadOnly bool
	// stdin keeps the container's stdin open for one attach (pool members).
	stdin bool
}

// podUID is the uid (and gid) that a run pod given uid runs as. In a user namespace of its
// own (hostUsers: false) a pod has only the ids below userNamespaceIDs, and one that runs as
// a uid from runUIDMin's range above them cannot even start its sandbox (runc: "unable to
// setup user: setgroups: invalid argument"): the uid is folded into
// [UserNamespaceRunUIDMin, UserNamespaceRunUIDEnd) there. Every such pod's ids map to host ids of its own, so runs stay
// apart on the node (and in RLIMIT_NPROC) even when two of them share a uid inside.
func podUID(cfg config.Config, uid int64) int64 {
	if cfg.HostUsers == nil || *cfg.HostUsers || uid < userNamespaceIDs {
		return uid
	}
	const lo, end = execv1alpha1.UserNamespaceRunUIDMin, execv1alpha1.UserNamespaceRunUIDEnd
	return lo + uid%(end-lo)
}

// lockedDownJobSpec returns the spec of a Job that runs one program in one locked-down pod.
// Every security-relevant field is set explicitly rather than left to defaults, so the
// Job reads as its own security policy; cold runs and pool members share all of it.
func lockedDownJobSpec(cfg config.Config, shape podShape, deadlineSeconds int64, podMeta metav1.ObjectMeta) batchv1.JobSpec {
	limits := shape.limits
	timeout := int64(*limits.TimeoutSeconds)
	programMemory := limits.Memory.Value()
	podMemory := resource.NewQuantity(programMemory+cfg.ScratchSize.Value()+runnerMemory, resource.BinarySI)
	resourceLimits := corev1.ResourceList{
		corev1.ResourceCPU:              limits.CPU.DeepCopy(),
		corev1.ResourceMemory:           *podMemory,
		corev1.ResourceEphemeralStorage: cfg.EphemeralStorage.DeepCopy(),
	}
	requests := resourceLimits.DeepCopy()
	requests[corev1.ResourceCPU] = shape.cpuRequest.DeepCopy()
	uid := podUID(cfg, shape.uid)
	args := append(slices.Clone(shape.args),
		"--python="+pythonPath,
		"--workdir="+scratchDir,
		"--timeout="+strconv.FormatInt(timeout, 10)+"s",
		"--memory-limit="+strconv.FormatInt(programMemory, 10),
		"--output-limit="+strconv.Itoa(cfg.OutputLimitBytes),
		"--max-processes="+strconv.Itoa(cfg.MaxProcesses),
		"--max-file-size="+strconv.FormatInt(cfg.MaxFileSizeBytes, 10),
		"--report=/dev/termination-log",
	)

	pod := corev1.PodSpec{
		RestartPolicy:                 corev1.RestartPolicyNever,
		TerminationGracePeriodSeconds: ptr.To[int64](2),
		// The program must not talk to the Kubernetes API or discover services.
		AutomountServiceAccountToken: ptr.To(false),
		EnableServiceLinks:           ptr.To(false),
		// DNS that resolves nothing: the only nameserver is the pod's own loopback, where
		// nothing listens. The runs namespace's NetworkPolicy denies all traffic as well.
		DNSPolicy:   corev1.DNSNone,
		DNSConfig:   &corev1.PodDNSConfig{Nameservers: []string{"127.0.0.1"}},
		HostNetwork: false, HostPID: false, HostIPC: false,
		ShareProcessNamespace: ptr.To(false),
		HostUsers:             cfg.HostUsers,
		SecurityContext: &corev1.PodSecurityContext{
			RunAsNonRoot:       ptr.To(true),
			RunAsUser:          ptr.To(uid),
			RunAsGroup:         ptr.To(uid),
			SupplementalGroups: []int64{},
			SeccompProfile:     &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
		NodeSelector: cfg.NodeSelector,
		Tolerations:  cfg.Tolerations,
		Containers: []corev1.Container{{
			Name:            containerName,
			Image:           cfg.RunnerImage,
			ImagePullPolicy: cfg.ImagePullPolicy,
			Command:         []string{runnerPath},
			Args:            args,
			// Without a TTY: a TTY would echo the request into the output and merge stderr
			// into stdout, and the runtime closes stdin after the first attach only without
			// one.
			Stdin:                    shape.stdin,
			StdinOnce:                shape.stdin,
			TTY:                      false,
			WorkingDir:               scratchDir,
			Resources:                corev1.ResourceRequirements{Requests: requests, Limits: resourceLimits},
			TerminationMessagePath:   "/dev/termination-log",
			TerminationMessagePolicy: corev1.TerminationMessageReadFile,
			SecurityContext: &corev1.SecurityContext{
				RunAsNonRoot:             ptr.To(true),
				Privileged:               ptr.To(false),
				AllowPrivilegeEscalation: ptr.To(false),
				ReadOnlyRootFilesystem:   ptr.To(true),
				Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
				SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			},
			VolumeMounts: []corev1.VolumeMount{
				{Name: "input", MountPath: inputDir, ReadOnly: shape.inputReadOnly},
				{Name: "scratch", MountPath: scratchDir},
			},
		}},
		Volumes: []corev1.Volume{
			{Name: "input", VolumeSource: shape.input},
			// A memory-backed scratch dir: the kernel enforces its size, and what the program
			// writes there counts toward the pod's memory limit.
			{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{
				Medium:    corev1.StorageMediumMemory,
				SizeLimit: ptr.To(cfg.ScratchSize.DeepCopy()),
			}}},
		},
	}
	if cfg.RuntimeClassName != "" {
		pod.RuntimeClassName = ptr.To(cfg.RuntimeClassName)
	}
	return batchv1.JobSpec{
		// One attempt: a program's failure is its result, not a reason to run it again.
		BackoffLimit:            ptr.To[int32](0),
		Completions:             ptr.To[int32](1),
		Parallelism:             ptr.To[int32](1),
		ActiveDeadlineSeconds:   ptr.To(deadlineSeconds),
		TTLSecondsAfterFinished: ptr.To(int32(cfg.JobTTL.Seconds())),
		Template:                corev1.PodTemplateSpec{ObjectMeta: podMeta, Spec: pod},
	}
}

func annotationField(key string) string {
	return fmt.Sprintf("metadata.annotations['%s']", key)
}
