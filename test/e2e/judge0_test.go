//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	execv1alpha1 "github.com/coderun-dev/coderun/api/v1alpha1"
	"github.com/coderun-dev/coderun/internal/runs"
)

// judge0Answer is a Judge0 submission as /judge0/submissions shows it with
// fields=token,status,stdout,stderr,compile_output,exit_code,exit_signal,message,time,memory,language_id.
type judge0Answer struct {
	Token  string `json:"token"`
	Status *struct {
		ID          int    `json:"id"`
		Description string `json:"description"`
	} `json:"status"`
	Stdout        *string `json:"stdout"`
	Stderr        *string `json:"stderr"`
	CompileOutput *string `json:"compile_output"`
	ExitCode      *int32  `json:"exit_code"`
	ExitSignal    *int32  `json:"exit_signal"`
	Message       *string `json:"message"`
	Time          *string `json:"time"`
	Memory        *int64  `json:"memory"`
	LanguageID    int     `json:"language_id"`
	Error         string  `json:"error"`
}

const judge0Fields = "token,status,stdout,stderr,compile_output,exit_code,exit_signal,message,time,memory,language_id"

func (a judge0Answer) String() string {
	s := func(p *string) string {
		if p == nil {
			return "null"
		}
		return fmt.Sprintf("%q", *p)
	}
	status := "null"
	if a.Status != nil {
		status = fmt.Sprintf("%d %s", a.Status.ID, a.Status.Description)
	}
	return fmt.Sprintf("status %s, stdout %s, stderr %s, compile_output %s, exit_code %s, message %s, time %s, memory %s",
		status, s(a.Stdout), s(a.Stderr), s(a.CompileOutput), ptrString(a.ExitCode), s(a.Message), s(a.Time), ptrString(a.Memory))
}

func (a judge0Answer) statusID() int {
	if a.Status == nil {
		return 0
	}
	return a.Status.ID
}

// judge0Submit posts one submission to the front's Judge0 API, with wait=true or not.
func judge0Submit(ctx context.Context, t *testing.T, waitResult bool, sub map[string]any) judge0Answer {
	t.Helper()
	body, err := json.Marshal(sub)
	if err != nil {
		t.Fatal(err)
	}
	var ans judge0Answer
	status := call(ctx, t, frontURL(t), http.MethodPost, fmt.Sprintf("/judge0/submissions?wait=%t&fields=%s", waitResult, judge0Fields), string(body), &ans)
	if status != http.StatusCreated {
		t.Fatalf("POST /judge0/submissions (language %v): %d %+v", sub["language_id"], status, ans)
	}
	return ans
}

// judge0Get reads a submission by its token.
func judge0Get(ctx context.Context, t *testing.T, token string) judge0Answer {
	t.Helper()
	var ans judge0Answer
	if status := call(ctx, t, frontURL(t), http.MethodGet, "/judge0/submissions/"+token+"?fields="+judge0Fields, "", &ans); status != http.StatusOK {
		t.Fatalf("GET /judge0/submissions/%s: %d %+v", token, status, ans)
	}
	return ans
}

// judge0CommonIDs are the Judge0 CE 1.13 ids that clients hard-code most, by language.
var judge0CommonIDs = map[string]int{"python": 71, "c": 50, "cpp": 54, "java": 62, "javascript": 63, "go": 60, "rust": 73}

// TestJudge0 runs each installed runtime that has a Judge0 language id through the front's
// Judge0 API with wait=true, as Judge0 clients do: hello world Accepted against its
// expected_output, stdin echo, exit code 3 as Runtime Error (NZEC), and for compiled
// languages a Compilation Error with the compiler's messages in compile_output; the
// hello world also under the id clients hard-code most for the language. The languages
// list has every such runtime under its id.
func TestJudge0(t *testing.T) {
	var cases []runtimeCase
	for _, c := range installedRuntimeCases(t) {
		if c.Judge0ID != 0 {
			cases = append(cases, c)
		}
	}
	if len(cases) == 0 {
		t.Skip("no installed runtime has a Judge0 language id")
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var langs []struct {
		ID   int    `json:"id"`
		Name string `json:"name"`
	}
	if status := call(ctx, t, frontURL(t), http.MethodGet, "/judge0/languages", "", &langs); status != http.StatusOK {
		t.Fatalf("GET /judge0/languages: %d", status)
	}
	listed := map[int]string{}
	for _, l := range langs {
		listed[l.ID] = l.Name
	}
	for _, c := range cases {
		if _, ok := listed[c.Judge0ID]; !ok {
			t.Errorf("GET /judge0/languages has no id %d (%s): %v", c.Judge0ID, c.Name, langs)
		}
	}

	slots := runtimeSlots()
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			ctx := takeRuntimeSlot(t, slots)
			submit := func(what, code, stdin string, expected *string) judge0Answer {
				sub := map[string]any{"source_code": code, "language_id": c.Judge0ID, "stdin": stdin}
				if expected != nil {
					sub["expected_output"] = *expected
				}
				start := time.Now()
				ans := judge0Submit(ctx, t, true, sub)
				t.Logf("%s in %s: %s", what, time.Since(start).Round(time.Millisecond), ans)
				return ans
			}

			hello := helloStdout
			ans := submit("hello world", c.Hello, "", &hello)
			if ans.statusID() != 3 || ans.Stdout == nil || *ans.Stdout != helloStdout || ans.Time == nil || ans.Memory == nil {
				t.Errorf("hello world: %s; want Accepted (3), stdout %q, a time and memory", ans, helloStdout)
			}
			// The id clients hard-code most for the language (Judge0 CE 1.13's), when the
			// Runtime claims another: it runs the same Runtime.
			if id, ok := judge0CommonIDs[c.Language]; ok && id != c.Judge0ID {
				sub := map[string]any{"source_code": c.Hello, "language_id": id, "expected_output": helloStdout}
				if ans := judge0Submit(ctx, t, true, sub); ans.statusID() != 3 {
					t.Errorf("hello world as Judge0 id %d: %s; want Accepted (3)", id, ans)
				}
			}
			wrong := "Goodbye\n"
			if ans := submit("wrong answer", c.Hello, "", &wrong); ans.statusID() != 4 {
				t.Errorf("hello world against %q: %s; want Wrong Answer (4)", wrong, ans)
			}
			ans = submit("stdin echo", c.Echo, echoStdin, nil)
			if ans.statusID() != 3 || ans.Stdout == nil || *ans.Stdout != echoStdin {
				t.Errorf("stdin echo: %s; want Accepted, stdout %q", ans, echoStdin)
			}
			ans = submit("exit 3", c.Exit3, "", nil)
			if ans.statusID() != 11 || ans.ExitCode == nil || *ans.ExitCode != 3 || ans.Message == nil || *ans.Message != "Exited with error status 3" {
				t.Errorf("exit 3: %s; want Runtime Error (NZEC) (11), exit_code 3", ans)
			}
			if !c.Compiled() {
				return
			}
			ans = submit("compile error", c.CompileError, "", nil)
			if ans.statusID() != 6 || ans.CompileOutput == nil || !strings.Contains(*ans.CompileOutput, c.CompileErrorOutput) ||
				ans.Stdout != nil || ans.Time != nil || ans.ExitCode != nil {
				t.Errorf("compile error: %s; want Compilation Error (6), compile_output with %q, no stdout, time or exit code", ans, c.CompileErrorOutput)
			}
		})
	}
}

// TestJudge0Tokens: a submission without wait answers its token at once and is read back
// by it once run; after its CodeRun is deleted, the token still reads the same result
// (the submission is kept in the front's database).
func TestJudge0Tokens(t *testing.T) {
	var c *runtimeCase
	for _, rc := range installedRuntimeCases(t) {
		if rc.Judge0ID != 0 {
			c = &rc
			break
		}
	}
	if c == nil {
		t.Skip("no installed runtime has a Judge0 language id")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	start := time.Now()
	created := judge0Submit(ctx, t, false, map[string]any{"source_code": c.Echo, "language_id": c.Judge0ID, "stdin": echoStdin})
	if created.Token == "" || created.Status != nil {
		t.Fatalf("POST without wait: %+v; want the token alone", created)
	}
	t.Logf("token %s after %s (%s, id %d)", created.Token, time.Since(start).Round(time.Millisecond), c.Name, c.Judge0ID)

	var ans judge0Answer
	err := wait.PollUntilContextCancel(ctx, 500*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		ans = judge0Get(ctx, t, created.Token)
		if id := ans.statusID(); id != 1 && id != 2 {
			return true, nil
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("the submission is still %s after %s: %v", ans, time.Since(start).Round(time.Second), err)
	}
	t.Logf("finished after %s: %s", time.Since(start).Round(time.Millisecond), ans)
	if ans.statusID() != 3 || ans.Stdout == nil || *ans.Stdout != echoStdin {
		t.Fatalf("read back: %s; want Accepted with stdout %q", ans, echoStdin)
	}

	// Its CodeRun (named for the token, its Idempotency-Key; API keys are off here) is
	// deleted: the token still reads the result.
	run := &execv1alpha1.CodeRun{ObjectMeta: metav1.ObjectMeta{Name: runs.NameFor("", created.Token), Namespace: runsNamespace}}
	if err := k8s.Delete(ctx, run); err != nil && !apierrors.IsNotFound(err) {
		t.Fatalf("deleting the CodeRun %s of the submission: %v", run.Name, err)
	}
	err = wait.PollUntilContextCancel(ctx, 500*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		return apierrors.IsNotFound(k8s.Get(ctx, client.ObjectKeyFromObject(run), &execv1alpha1.CodeRun{})), nil
	})
	if err != nil {
		t.Fatalf("the CodeRun %s is not gone: %v", run.Name, err)
	}
	again := judge0Get(ctx, t, created.Token)
	if again.String() != ans.String() {
		t.Errorf("after its CodeRun was deleted the token reads %s; want the same %s", again, ans)
	}
}
