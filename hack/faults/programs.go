package main

import (
	"encoding/json"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/utils/ptr"

	execv1alpha1 "github.com/coderun-dev/coderun/api/v1alpha1"
)

// program is one kind of run in the mixed load. Each request or CodeRun carries a tag of
// its own in its source (its Idempotency-Key, or its CodeRun name), so that an answer can
// only be correct for the request that asked, and a saved submission can be matched to it.
type program struct {
	name   string
	source func(tag string) string
	limits execv1alpha1.Limits
	// reason is the result reason a correct run ends with; output, when set, the exact
	// output it prints.
	reason execv1alpha1.ResultReason
	output func(tag string) string
}

// programs is the mix, in the order the load cycles through them: hello world twice as
// often as the others. hello and pandas take the default limits (the warm pool's shape);
// the timeout and the memory hog ask for other limits, so they run in a Job and pod of their
// own (the cold path), which is what the containerd and kubelet faults hit.
var programs = func() []*program {
	hello := &program{
		name:   "hello",
		source: func(tag string) string { return fmt.Sprintf("print('hello %s')\n", tag) },
		reason: execv1alpha1.ReasonCompleted,
		output: func(tag string) string { return "hello " + tag + "\n" },
	}
	pandas := &program{
		name: "pandas",
		source: func(tag string) string {
			return fmt.Sprintf("import pandas\nprint(pandas.DataFrame({'x': [1, 2, 3]})['x'].sum(), '%s')\n", tag)
		},
		reason: execv1alpha1.ReasonCompleted,
		output: func(tag string) string { return "6 " + tag + "\n" },
	}
	timeout := &program{
		name:   "timeout",
		source: func(tag string) string { return fmt.Sprintf("print('%s', flush=True)\nwhile True: pass\n", tag) },
		limits: execv1alpha1.Limits{TimeoutSeconds: ptr.To[int32](2)},
		reason: execv1alpha1.ReasonTimeLimitExceeded,
	}
	oom := &program{
		name: "oom",
		// 1 GiB in 10 MiB chunks of non-zero bytes against a 64 MiB limit.
		source: func(tag string) string {
			return fmt.Sprintf("print('%s', flush=True)\nchunks = []\nfor i in range(103):\n    chunks.append(b'x' * (10 << 20))\nprint('survived')\n", tag)
		},
		limits: execv1alpha1.Limits{Memory: ptr.To(resource.MustParse("64Mi")), TimeoutSeconds: ptr.To[int32](20)},
		reason: execv1alpha1.ReasonMemoryLimitExceeded,
	}
	return []*program{hello, pandas, hello, timeout, oom}
}()

// requestBody is the JSON body of /execute and /submit for p with tag.
func (p *program) requestBody(tag string) []byte {
	body := map[string]any{"code": p.source(tag)}
	limits := map[string]any{}
	if t := p.limits.TimeoutSeconds; t != nil {
		limits["timeout_seconds"] = *t
	}
	if m := p.limits.Memory; m != nil {
		limits["memory"] = m.String()
	}
	if len(limits) > 0 {
		body["limits"] = limits
	}
	out, err := json.Marshal(body)
	if err != nil {
		panic(err) // only strings and numbers
	}
	return out
}

// verdict of one run's result.
type verdict int

const (
	// correct: the result the program must have.
	correct verdict = iota
	// systemError: a SystemError, an honest failure (the fault it names is in its message).
	systemError
	// wrong: any other result: counted as lost, since the user got no correct answer.
	wrong
)

// judge compares a result (its reason and output) with what p must end with.
func (p *program) judge(tag string, reason, output string) verdict {
	switch {
	case reason == string(execv1alpha1.ReasonSystemError):
		return systemError
	case reason != string(p.reason):
		return wrong
	case p.output != nil && output != p.output(tag):
		return wrong
	case p.output == nil && !strings.HasPrefix(output, tag+"\n"):
		// The timeout and the memory hog print their tag first, flushed.
		return wrong
	}
	return correct
}
