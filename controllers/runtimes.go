package controllers

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/Masterminds/semver/v3"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/controller-runtime/pkg/client"

	execv1alpha1 "github.com/coderun-dev/coderun/api/v1alpha1"
	"github.com/coderun-dev/coderun/internal/config"
	"github.com/coderun-dev/coderun/internal/runtimes"
)

// How a run finds the Runtime that runs it (internal/runtimes resolves language and version
// over the cluster's Runtimes), and what that gives the run's pod: a runPlan.

// AnnotationSmokeTestOf on a CodeRun names the Runtime whose smoke test it is. Such a run
// resolves to that Runtime by name, Ready or not: it is how a Runtime becomes Ready.
const AnnotationSmokeTestOf = "exec.coderun.dev/smoke-test-of"

const (
	// builtinSourceFile is the program's name with the operator's built-in python.
	builtinSourceFile = "main.py"
	// builtinPythonVersion is the python of the shipped runner image (Debian's python3),
	// which a version range asked of the built-in python is matched against.
	builtinPythonVersion = "3.13.5"
)

// runPlan is how one run executes: the image, the program's file name, the compile step
// with its effective limits and the run command with the run's args. runtime is nil for
// the operator's built-in python, which runs with the runner's legacy flags (--source,
// --python) so that a cluster without any Runtime still runs python as before.
type runPlan struct {
	runtime      *execv1alpha1.Runtime
	ref          execv1alpha1.RuntimeRef
	image        string
	sourceFile   string
	runCommand   []string
	compile      *compilePlan
	env          []execv1alpha1.EnvVar
	scratch      resource.Quantity
	maxProcesses int
}

// compilePlan is a compile step with the limits it runs under.
type compilePlan struct {
	command        []string
	timeoutSeconds int32
	memory         resource.Quantity
}

// builtin reports whether the plan is the operator's built-in python.
func (p *runPlan) builtin() bool { return p.runtime == nil }

// runtimeName is the Runtime's name, "" for the built-in python.
func (p *runPlan) runtimeName() string { return p.ref.Name }

// podMemory is the memory limit of a pod that runs a program with programMemory under
// this plan: the larger of the program's and the compiler's memory, the scratch directory
// (memory-backed) and the runner itself.
func (p *runPlan) podMemory(programMemory int64) int64 {
	m := programMemory
	if p.compile != nil {
		m = max(m, p.compile.memory.Value())
	}
	return m + p.scratch.Value() + runnerMemory
}

// builtinPlan runs python with the operator's runner image.
func builtinPlan(cfg config.Config) *runPlan {
	return &runPlan{
		ref:          execv1alpha1.RuntimeRef{Language: string(execv1alpha1.LanguagePython), Version: builtinPythonVersion, Image: cfg.RunnerImage},
		image:        cfg.RunnerImage,
		sourceFile:   builtinSourceFile,
		scratch:      cfg.ScratchSize.DeepCopy(),
		maxProcesses: cfg.MaxProcesses,
	}
}

// runtimePlan runs with rt. args follow its run command; compile limits (nil: the
// Runtime's) are checked by checkRun, not here.
func runtimePlan(rt *execv1alpha1.Runtime, args []string, limits *execv1alpha1.CompileLimits, cfg config.Config) *runPlan {
	p := &runPlan{
		runtime:      rt,
		ref:          execv1alpha1.RuntimeRef{Name: rt.Name, Language: rt.Spec.Language, Version: rt.Spec.Version, Image: rt.Spec.Image},
		image:        rt.Spec.Image,
		sourceFile:   rt.Spec.SourceFile,
		runCommand:   append(append([]string{}, rt.Spec.Run.Command...), args...),
		env:          rt.Spec.Env,
		scratch:      cfg.ScratchSize.DeepCopy(),
		maxProcesses: cfg.MaxProcesses,
	}
	if rt.Spec.ScratchSize != nil {
		p.scratch = rt.Spec.ScratchSize.DeepCopy()
	}
	if rt.Spec.MaxProcesses != nil {
		p.maxProcesses = int(*rt.Spec.MaxProcesses)
	}
	if c := rt.Spec.Compile; c != nil {
		max := compileMaxima(c)
		p.compile = &compilePlan{command: c.Command, timeoutSeconds: *max.TimeoutSeconds, memory: max.Memory.DeepCopy()}
		if limits != nil && limits.TimeoutSeconds != nil {
			p.compile.timeoutSeconds = *limits.TimeoutSeconds
		}
		if limits != nil && limits.Memory != nil {
			p.compile.memory = limits.Memory.DeepCopy()
		}
	}
	return p
}

// compileMaxima are a compile step's limits, with the schema's defaults for those left
// out (an object written before the defaults existed, or built in a test).
func compileMaxima(c *execv1alpha1.CompileStep) execv1alpha1.CompileLimits {
	out := execv1alpha1.CompileLimits{TimeoutSeconds: &c.TimeoutSeconds, Memory: c.Memory}
	if c.TimeoutSeconds == 0 {
		out.TimeoutSeconds = new(int32)
		*out.TimeoutSeconds = 10
	}
	if c.Memory == nil {
		m := resource.MustParse("512Mi")
		out.Memory = &m
	}
	return out
}

// checkRun says, in a sentence, why run cannot run under plan, or "": compile limits above
// the Runtime's, or a file named like the program.
func checkRun(run *execv1alpha1.CodeRun, plan *runPlan) string {
	var why []string
	if l := run.Spec.CompileLimits; l != nil && plan.compile != nil {
		max := compileMaxima(plan.runtime.Spec.Compile)
		if l.TimeoutSeconds != nil && *l.TimeoutSeconds > *max.TimeoutSeconds {
			why = append(why, fmt.Sprintf("compileLimits.timeoutSeconds %d is above the maximum of %d of runtime %s", *l.TimeoutSeconds, *max.TimeoutSeconds, plan.ref.Name))
		}
		if l.Memory != nil && l.Memory.Cmp(*max.Memory) > 0 {
			why = append(why, fmt.Sprintf("compileLimits.memory %s is above the maximum of %s of runtime %s", l.Memory, max.Memory, plan.ref.Name))
		}
	}
	for _, f := range run.Spec.Files {
		if f.Name == plan.sourceFile {
			why = append(why, fmt.Sprintf("files: %q is the name of the program's own file (spec.source) for %s; give the file another name", f.Name, plan.ref.Language))
		}
	}
	return strings.Join(why, "; ")
}

// errRejected says why a run cannot run at all; its message is the run's result.
type errRejected struct{ message string }

func (e *errRejected) Error() string { return e.message }

func rejected(format string, args ...any) error {
	return &errRejected{message: fmt.Sprintf(format, args...)}
}

// selectRuntime picks the Runtime of list for language and versionRange: nil (and no
// error) for the operator's built-in python, when no Runtime offers python at all. It does
// not check that the Runtime is Ready. Its errors are *errRejected.
func selectRuntime(list []execv1alpha1.Runtime, language execv1alpha1.Language, versionRange string) (*execv1alpha1.Runtime, error) {
	rt, err := runtimes.Resolve(list, string(language), versionRange)
	if err == nil {
		return rt, nil
	}
	var rerr *runtimes.Error
	if !errors.As(err, &rerr) {
		return nil, err
	}
	if rerr.Language == string(execv1alpha1.LanguagePython) && !rerr.Known && !runtimes.Offers(list, string(execv1alpha1.LanguagePython)) {
		if versionRange == "" {
			return nil, nil
		}
		c, cerr := semver.NewConstraint(versionRange)
		if cerr == nil && c.Check(semver.MustParse(builtinPythonVersion)) {
			return nil, nil
		}
		if cerr == nil {
			return nil, rejected("language %q has no version matching %q; available: %s", language, versionRange, builtinPythonVersion)
		}
	}
	return nil, rejected("%s", err.Error())
}

// notReady says why rt cannot run programs, or "" when it can: it is Ready, or its smoke
// test is running right now. The latter is what a changed Runtime goes through on every
// helm upgrade that moves its image to a new tag: refusing its runs for those seconds would
// be an outage of the language, while a run on an image that turns out broken fails on its
// own (SystemError when the image cannot start, or the program's own failure).
func notReady(rt *execv1alpha1.Runtime) string {
	c := meta.FindStatusCondition(rt.Status.Conditions, execv1alpha1.RuntimeConditionReady)
	if runtimes.Ready(rt) || (c != nil && c.Reason == execv1alpha1.RuntimeReasonSmokeTestRunning) {
		return ""
	}
	why := "its smoke test has not run yet"
	if c != nil && c.Message != "" {
		why = c.Message
	}
	return fmt.Sprintf("runtime %s (%s %s) is not Ready: %s", rt.Name, rt.Spec.Language, rt.Spec.Version, why)
}

// listRuntimes lists the cluster's Runtimes from the cache.
func listRuntimes(ctx context.Context, c client.Reader) ([]execv1alpha1.Runtime, error) {
	list := &execv1alpha1.RuntimeList{}
	if err := c.List(ctx, list); err != nil {
		return nil, fmt.Errorf("listing Runtimes: %w", err)
	}
	return list.Items, nil
}

// planRun resolves run's language and version to the plan it runs with. Its errors are
// *errRejected when the run cannot run: the message says why and names what there is.
func (r *CodeRunReconciler) planRun(ctx context.Context, run *execv1alpha1.CodeRun) (*runPlan, error) {
	list, err := listRuntimes(ctx, r.Client)
	if err != nil {
		return nil, err
	}
	return planRunFrom(list, run, r.Config)
}

// planRunFrom is planRun over list.
func planRunFrom(list []execv1alpha1.Runtime, run *execv1alpha1.CodeRun, cfg config.Config) (*runPlan, error) {
	var rt *execv1alpha1.Runtime
	if name := run.Annotations[AnnotationSmokeTestOf]; name != "" {
		for i := range list {
			if list[i].Name == name && list[i].DeletionTimestamp == nil {
				rt = &list[i]
			}
		}
		if rt == nil {
			return nil, rejected("runtime %s, whose smoke test this is, does not exist", name)
		}
	} else {
		var err error
		if rt, err = selectRuntime(list, run.Spec.Language, run.Spec.Version); err != nil {
			return nil, err
		}
		if rt != nil {
			if why := notReady(rt); why != "" {
				return nil, rejected("%s", why)
			}
		}
	}
	plan := builtinPlan(cfg)
	if rt != nil {
		plan = runtimePlan(rt, run.Spec.Args, run.Spec.CompileLimits, cfg)
	} else if len(run.Spec.Args) > 0 {
		// The legacy runner flags give python no arguments.
		return nil, rejected("args need a python Runtime; the operator's built-in python runs programs without arguments")
	}
	if why := checkRun(run, plan); why != "" {
		return nil, rejected("%s", why)
	}
	return plan, nil
}
