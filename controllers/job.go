package controllers

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
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

// buildJob returns the locked-down Job that runs the program of run with the operator's
// built-in python: buildRunJob with builtinPlan.
func buildJob(run *execv1alpha1.CodeRun, limits execv1alpha1.Limits, cfg config.Config, uid int64) *batchv1.Job {
	return buildRunJob(run, builtinPlan(cfg), limits, cfg, uid)
}

// Where a cold run's input is in its pod: a downward API volume at inputDir holds the
// program under its sourceFile name and the other files in inputFilesDir, and stdin.
const (
	inputFilesDir = inputDir + "/files"
	inputStdin    = inputDir + "/stdin"
	// annotationFilePrefix and a file's index in spec.files name the pod annotation that
	// holds the file. By index, not by name: a file's name (up to 64 characters, maybe
	// ending in '.') is not always a valid annotation key.
	annotationFilePrefix = "exec.coderun.dev/file."
)

// buildRunJob returns the locked-down Job that runs the program of run under plan with
// limits (complete: defaults filled in) as uid: the cold path. The program, its other
// files and its stdin reach the pod as read-only files of a downward API volume.
func buildRunJob(run *execv1alpha1.CodeRun, plan *runPlan, limits execv1alpha1.Limits, cfg config.Config, uid int64) *batchv1.Job {
	timeout := int64(*limits.TimeoutSeconds)
	labels := execv1alpha1.RunPodLabels()
	labels[execv1alpha1.LabelRunUID] = string(run.UID)
	podAnnotations := map[string]string{
		execv1alpha1.AnnotationRun:    run.Name,
		execv1alpha1.AnnotationSource: run.Spec.Source,
		execv1alpha1.AnnotationStdin:  run.Spec.Stdin,
	}
	items := make([]corev1.DownwardAPIVolumeFile, 0, 2+len(run.Spec.Files))
	items = append(items,
		corev1.DownwardAPIVolumeFile{Path: "files/" + plan.sourceFile, FieldRef: &corev1.ObjectFieldSelector{FieldPath: annotationField(execv1alpha1.AnnotationSource)}},
		corev1.DownwardAPIVolumeFile{Path: "stdin", FieldRef: &corev1.ObjectFieldSelector{FieldPath: annotationField(execv1alpha1.AnnotationStdin)}},
	)
	for i, f := range run.Spec.Files {
		key := annotationFilePrefix + strconv.Itoa(i)
		podAnnotations[key] = f.Content
		items = append(items, corev1.DownwardAPIVolumeFile{Path: "files/" + f.Name, FieldRef: &corev1.ObjectFieldSelector{FieldPath: annotationField(key)}})
	}
	args := []string{"--stdin=" + inputStdin}
	if plan.builtin() {
		// The legacy flags: python runs the program by its path, beside the other files.
		args = append(args, "--source="+inputFilesDir+"/"+plan.sourceFile)
		if len(run.Spec.Files) > 0 {
			args = append(args, "--files="+inputFilesDir)
		}
	} else {
		args = append(args, "--files="+inputFilesDir)
		args = append(args, plan.commandArgs()...)
	}
	shape := podShape{
		limits:     limits,
		cpuRequest: *limits.CPU,
		uid:        uid,
		plan:       plan,
		args:       args,
		input: corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{
			DefaultMode: ptr.To[int32](0o444),
			Items:       items,
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
		// A backstop in case the runner cannot enforce its timeout; a compile step gets its
		// own time on top.
		Spec: lockedDownJobSpec(cfg, shape, int64(cfg.StartTimeout.Seconds())+timeout+plan.compileSeconds()+deadlineSlack,
			metav1.ObjectMeta{Labels: labels, Annotations: podAnnotations}),
	}
}

// commandArgs are the runner flags that say how a Runtime's program is compiled and run
// (the runner's contract: JSON argument vectors, and the Runtime's environment).
func (p *runPlan) commandArgs() []string {
	args := []string{"--run-command=" + jsonArgv(p.runCommand)}
	if c := p.compile; c != nil {
		args = append(args,
			"--compile-command="+jsonArgv(c.command),
			"--compile-timeout="+strconv.Itoa(int(c.timeoutSeconds))+"s",
			"--compile-memory-limit="+strconv.FormatInt(c.memory.Value(), 10),
		)
	}
	for _, e := range p.env {
		args = append(args, "--env="+e.Name+"="+e.Value)
	}
	return args
}

// compileSeconds is the compile step's time limit, 0 without one.
func (p *runPlan) compileSeconds() int64 {
	if p.compile == nil {
		return 0
	}
	return int64(p.compile.timeoutSeconds)
}

func jsonArgv(argv []string) string {
	data, err := json.Marshal(argv)
	if err != nil {
		panic(fmt.Sprintf("encoding an argument vector: %v", err)) // a []string always encodes
	}
	return string(data)
}

// JobForRun returns the Job that the cold path creates for run under cfg with the
// operator's built-in python, with run's preferred uid, without an owner. It is for tools
// that must start the very same pod shape without the operator (the scale test's plain
// Jobs).
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
	// plan is the image, commands and sizes of the Runtime the pod runs.
	plan *runPlan
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
	plan := shape.plan
	podMemory := resource.NewQuantity(plan.podMemory(programMemory), resource.BinarySI)
	resourceLimits := corev1.ResourceList{
		corev1.ResourceCPU:              limits.CPU.DeepCopy(),
		corev1.ResourceMemory:           *podMemory,
		corev1.ResourceEphemeralStorage: cfg.EphemeralStorage.DeepCopy(),
	}
	requests := resourceLimits.DeepCopy()
	requests[corev1.ResourceCPU] = shape.cpuRequest.DeepCopy()
	uid := podUID(cfg, shape.uid)
	args := slices.Clone(shape.args)
	if plan.builtin() {
		args = append(args, "--python="+pythonPath)
	}
	args = append(args,
		"--workdir="+scratchDir,
		"--timeout="+strconv.FormatInt(timeout, 10)+"s",
		"--memory-limit="+strconv.FormatInt(programMemory, 10),
		"--output-limit="+strconv.Itoa(cfg.OutputLimitBytes),
		"--max-processes="+strconv.Itoa(plan.maxProcesses),
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
			Image:           plan.image,
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
				SizeLimit: ptr.To(plan.scratch.DeepCopy()),
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
