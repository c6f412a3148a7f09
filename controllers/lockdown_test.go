package controllers

import (
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
)

// assertLockedDown checks every security-relevant field that a cold run's Job and a pool
// member's Job share: one attempt, no token, no network names, no host namespaces,
// non-root with a uid of its own in the configured range, a read-only root, no
// capabilities, RuntimeDefault seccomp, a bounded memory scratch dir, the runner image and
// its limits. What differs (where the program comes from, the deadline, the CPU request)
// the callers check.
func assertLockedDown(t *testing.T, js batchv1.JobSpec) {
	t.Helper()
	if *js.BackoffLimit != 0 || *js.Completions != 1 || *js.Parallelism != 1 {
		t.Errorf("backoffLimit/completions/parallelism = %d/%d/%d, want 0/1/1", *js.BackoffLimit, *js.Completions, *js.Parallelism)
	}
	if js.TTLSecondsAfterFinished == nil || *js.TTLSecondsAfterFinished != 600 {
		t.Errorf("ttlSecondsAfterFinished = %v, want 600", js.TTLSecondsAfterFinished)
	}
	pod := js.Template.Spec
	checks := map[string]bool{
		"restartPolicy Never":                  pod.RestartPolicy == corev1.RestartPolicyNever,
		"no service-account token":             pod.AutomountServiceAccountToken != nil && !*pod.AutomountServiceAccountToken,
		"no service links":                     pod.EnableServiceLinks != nil && !*pod.EnableServiceLinks,
		"DNS policy None":                      pod.DNSPolicy == corev1.DNSNone,
		"DNS resolves nothing":                 pod.DNSConfig != nil && len(pod.DNSConfig.Nameservers) == 1 && pod.DNSConfig.Nameservers[0] == "127.0.0.1" && len(pod.DNSConfig.Searches) == 0,
		"no host namespaces":                   !pod.HostNetwork && !pod.HostPID && !pod.HostIPC,
		"no shared process namespace":          pod.ShareProcessNamespace != nil && !*pod.ShareProcessNamespace,
		"pod runAsNonRoot":                     *pod.SecurityContext.RunAsNonRoot,
		"pod RuntimeDefault seccomp":           pod.SecurityContext.SeccompProfile.Type == corev1.SeccompProfileTypeRuntimeDefault,
		"run uid in the configured range":      *pod.SecurityContext.RunAsUser >= 200000 && *pod.SecurityContext.RunAsUser < 300000,
		"gid equals uid":                       *pod.SecurityContext.RunAsGroup == *pod.SecurityContext.RunAsUser,
		"no runtime class unless configured":   pod.RuntimeClassName == nil,
		"one container":                        len(pod.Containers) == 1 && len(pod.InitContainers) == 0,
		"input and scratch volumes only":       len(pod.Volumes) == 2 && pod.Volumes[0].Name == "input" && pod.Volumes[1].EmptyDir != nil,
		"scratch is memory-backed and bounded": pod.Volumes[1].EmptyDir.Medium == corev1.StorageMediumMemory && pod.Volumes[1].EmptyDir.SizeLimit.String() == "16Mi",
	}
	c := pod.Containers[0]
	sc := c.SecurityContext
	for name, ok := range map[string]bool{
		"container runAsNonRoot":         *sc.RunAsNonRoot,
		"not privileged":                 !*sc.Privileged,
		"no privilege escalation":        !*sc.AllowPrivilegeEscalation,
		"read-only root filesystem":      *sc.ReadOnlyRootFilesystem,
		"all capabilities dropped":       len(sc.Capabilities.Drop) == 1 && sc.Capabilities.Drop[0] == "ALL" && len(sc.Capabilities.Add) == 0,
		"container RuntimeDefault":       sc.SeccompProfile.Type == corev1.SeccompProfileTypeRuntimeDefault,
		"runner image, fixed tag":        c.Image == "localhost/coderun-python:0.1.0" && c.ImagePullPolicy == corev1.PullIfNotPresent,
		"no TTY":                         !c.TTY,
		"input mounted at the input dir": c.VolumeMounts[0].MountPath == inputDir && c.VolumeMounts[0].Name == "input",
		"termination message from file":  c.TerminationMessagePath == "/dev/termination-log" && c.TerminationMessagePolicy == corev1.TerminationMessageReadFile,
	} {
		checks[name] = ok
	}
	for name, ok := range checks {
		if !ok {
			t.Errorf("lockdown check failed: %s", name)
		}
	}
	// Limits: memory is the program's 256Mi + 16Mi scratch + 32Mi for the runner.
	wantRes := map[corev1.ResourceName]string{"cpu": "1", "memory": "304Mi", "ephemeral-storage": "64Mi"}
	for name, want := range wantRes {
		if lim := c.Resources.Limits[name]; lim.String() != want {
			t.Errorf("%s: limit %s, want %s", name, lim.String(), want)
		}
	}
	for _, name := range []corev1.ResourceName{"memory", "ephemeral-storage"} {
		if lim, req := c.Resources.Limits[name], c.Resources.Requests[name]; req.Cmp(lim) != 0 {
			t.Errorf("%s: request %s, want the limit %s", name, req.String(), lim.String())
		}
	}
	for _, arg := range []string{"--timeout=10s", "--memory-limit=268435456", "--output-limit=65536", "--max-processes=64", "--report=/dev/termination-log"} {
		if !contains(c.Args, arg) {
			t.Errorf("runner args %v lack %s", c.Args, arg)
		}
	}
}
