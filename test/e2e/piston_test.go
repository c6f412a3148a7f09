//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// pistonStage is a stage of Piston's /api/v2/execute answer.
type pistonStage struct {
	Stdout   string   `json:"stdout"`
	Stderr   string   `json:"stderr"`
	Output   string   `json:"output"`
	Code     *int32   `json:"code"`
	Signal   *string  `json:"signal"`
	Message  *string  `json:"message"`
	Status   *string  `json:"status"`
	CPUTime  *float64 `json:"cpu_time"`
	WallTime *float64 `json:"wall_time"`
	Memory   *int64   `json:"memory"`
}

func (s *pistonStage) String() string {
	if s == nil {
		return "none"
	}
	return fmt.Sprintf("code %s signal %s status %s message %s, %s ms, %s bytes, stdout %q stderr %q",
		ptrString(s.Code), ptrString(s.Signal), ptrString(s.Status), ptrString(s.Message), ptrString(s.WallTime), ptrString(s.Memory), s.Stdout, s.Stderr)
}

// pistonAnswer is Piston's /api/v2/execute answer, or its error {"message"}.
type pistonAnswer struct {
	Language string       `json:"language"`
	Version  string       `json:"version"`
	Run      *pistonStage `json:"run"`
	Compile  *pistonStage `json:"compile"`
	Message  string       `json:"message"`
}

// pistonRuntimeEntry is one of GET /api/v2/runtimes.
type pistonRuntimeEntry struct {
	Language string   `json:"language"`
	Version  string   `json:"version"`
	Aliases  []string `json:"aliases"`
}

// pistonExecute posts a program of the row's language and version range to Piston's
// /api/v2/execute, as Piston's clients write it: files[0] is the program.
func pistonExecute(ctx context.Context, t *testing.T, c runtimeCase, code, stdin string) pistonAnswer {
	t.Helper()
	body, err := json.Marshal(map[string]any{"language": c.Language, "version": c.VersionRange, "stdin": stdin,
		"files": []map[string]string{{"name": "program", "content": code}}})
	if err != nil {
		t.Fatal(err)
	}
	var ans pistonAnswer
	start := time.Now()
	if status := call(ctx, t, frontURL(t), "POST", "/api/v2/execute", string(body), &ans); status != 200 || ans.Run == nil {
		t.Fatalf("POST /api/v2/execute (%s %s): %d %+v", c.Language, c.VersionRange, status, ans)
	}
	if ans.Language != c.Language || ans.Version != c.Version {
		t.Errorf("ran by %s %s, want %s %s", ans.Language, ans.Version, c.Language, c.Version)
	}
	t.Logf("%s in %s: run %s; compile %s", c.Language, time.Since(start).Round(time.Millisecond), ans.Run, ans.Compile)
	return ans
}

// expectPistonCompiled: compile is there exactly for compiled languages, with code 0.
func expectPistonCompiled(t *testing.T, c runtimeCase, ans pistonAnswer) {
	t.Helper()
	switch {
	case !c.Compiled() && ans.Compile != nil:
		t.Errorf("compile = %s, want none (%s has no compile step)", ans.Compile, c.Language)
	case c.Compiled() && (ans.Compile == nil || ans.Compile.Code == nil || *ans.Compile.Code != 0 || ans.Compile.Status != nil):
		t.Errorf("compile = %s, want code 0 and status null", ans.Compile)
	}
}

// TestPiston runs each installed runtime's programs through Piston's POST /api/v2/execute:
// hello world, stdin echo, exit code 3 (status RE) and, for compiled languages, a compile
// error (compile.code not 0 and run a copy of compile, as Piston answers). GET
// /api/v2/runtimes lists each of them.
func TestPiston(t *testing.T) {
	cases := installedRuntimeCases(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var listed []pistonRuntimeEntry
	if status := call(ctx, t, frontURL(t), "GET", "/api/v2/runtimes", "", &listed); status != 200 {
		t.Fatalf("GET /api/v2/runtimes: %d", status)
	}
	for _, c := range cases {
		if !slices.ContainsFunc(listed, func(r pistonRuntimeEntry) bool {
			return r.Language == c.Language && r.Version == c.Version && r.Aliases != nil
		}) {
			t.Errorf("GET /api/v2/runtimes lacks %s %s: %+v", c.Language, c.Version, listed)
		}
	}

	slots := runtimeSlots()
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			ctx := takeRuntimeSlot(t, slots)

			// Piston gives a program at least one line of stdin: "" becomes "\n".
			ans := pistonExecute(ctx, t, c, c.Hello, "")
			if ans.Run.Stdout != helloStdout || ans.Run.Code == nil || *ans.Run.Code != 0 || ans.Run.Status != nil || ans.Run.Signal != nil {
				t.Errorf("hello world: run %s, want %q, code 0, status and signal null", ans.Run, helloStdout)
			}
			expectPistonCompiled(t, c, ans)

			ans = pistonExecute(ctx, t, c, c.Echo, echoStdin)
			if ans.Run.Stdout != echoStdin || ans.Run.Code == nil || *ans.Run.Code != 0 {
				t.Errorf("stdin echo: run %s, want %q and code 0", ans.Run, echoStdin)
			}
			expectPistonCompiled(t, c, ans)

			ans = pistonExecute(ctx, t, c, c.Exit3, "")
			if ans.Run.Code == nil || *ans.Run.Code != 3 || ptrString(ans.Run.Status) != "RE" || ptrString(ans.Run.Message) != "Exited with error status 3" {
				t.Errorf("exit 3: run %s, want code 3, status RE, message Exited with error status 3", ans.Run)
			}
			expectPistonCompiled(t, c, ans)

			if !c.Compiled() {
				return
			}
			ans = pistonExecute(ctx, t, c, c.CompileError, "")
			switch {
			case ans.Compile == nil:
				t.Errorf("compile error: compile is missing")
			case ans.Compile.Code != nil && *ans.Compile.Code == 0:
				t.Errorf("compile error: compile %s, want a code other than 0", ans.Compile)
			case !strings.Contains(ans.Compile.Output, c.CompileErrorOutput):
				t.Errorf("compile error: compile output %q does not contain %q", ans.Compile.Output, c.CompileErrorOutput)
			case !reflect.DeepEqual(ans.Run, ans.Compile):
				t.Errorf("compile error: run %s, want a copy of compile %s (Piston's answer when the compile fails)", ans.Run, ans.Compile)
			}
		})
	}
}

// pistonClientLanguages are what the npm client runs: the three.
var pistonClientLanguages = []string{"python", "cpp", "javascript"}

var npmOnce sync.Once

// pistonClientDir is test/e2e/piston-client with its packages installed (npm ci, once).
func pistonClientDir(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("piston-client")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := exec.LookPath("npm"); err != nil {
		t.Fatalf("npm is not on PATH (make test needs Node 20 with npm): %v", err)
	}
	var npmErr error
	var npmOut []byte
	npmOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund")
		cmd.Dir = dir
		npmOut, npmErr = cmd.CombinedOutput()
	})
	if npmErr != nil {
		t.Fatalf("npm ci in %s: %v\n%s", dir, npmErr, npmOut)
	}
	return dir
}

// TestPistonClient drives the Piston API with the npm package piston-client (pinned in
// test/e2e/piston-client), unchanged, as its users do: runtimes(), then execute() of
// Python, C++ and JavaScript with the client's defaults (the latest version, args 1 2 3,
// its compile and run timeouts, memory limits -1) and a line of stdin, and a C++ program
// that does not compile.
func TestPistonClient(t *testing.T) {
	cases := installedRuntimeCases(t)
	var langs []string
	for _, l := range pistonClientLanguages {
		if slices.ContainsFunc(cases, func(c runtimeCase) bool { return c.Language == l }) {
			langs = append(langs, l)
		} else if requireAllRuntimes() {
			t.Errorf("%s has no Ready Runtime", l)
		} else {
			t.Logf("%s has no Ready Runtime on this cluster (make dev RUNTIMES=all installs it); piston-client skips it", l)
		}
	}
	dir := pistonClientDir(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	start := time.Now()
	cmd := exec.CommandContext(ctx, "node", append([]string{"run.mjs", frontURL(t)}, langs...)...)
	cmd.Dir = dir
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node run.mjs: %v\n%s", err, out)
	}
	t.Logf("piston-client ran %v in %s", langs, time.Since(start).Round(time.Millisecond))
	var got struct {
		Runtimes []struct {
			Language string `json:"language"`
			Version  string `json:"version"`
		} `json:"runtimes"`
		Results map[string]struct {
			Hello        pistonAnswer  `json:"hello"`
			CompileError *pistonAnswer `json:"compileError"`
			Millis       int64         `json:"millis"`
		} `json:"results"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("run.mjs printed %s: %v", out, err)
	}
	for _, lang := range langs {
		r, ok := got.Results[lang]
		if !ok || r.Hello.Run == nil {
			t.Errorf("%s: no answer: %+v (message %q)", lang, r, r.Hello.Message)
			continue
		}
		want := "Hello, World! 1 2 3\nfrom stdin\n"
		if r.Hello.Language != lang || r.Hello.Run.Stdout != want || r.Hello.Run.Code == nil || *r.Hello.Run.Code != 0 {
			t.Errorf("%s hello through piston-client: %s %s run %s, want %q and code 0", lang, r.Hello.Language, r.Hello.Version, r.Hello.Run, want)
		}
		if (lang == "cpp") != (r.Hello.Compile != nil) {
			t.Errorf("%s: compile %s, want one for C++ only", lang, r.Hello.Compile)
		}
		t.Logf("%s %s through piston-client in %d ms: run %s; compile %s", lang, r.Hello.Version, r.Millis, r.Hello.Run, r.Hello.Compile)
		if lang != "cpp" {
			continue
		}
		ce := r.CompileError
		if ce == nil || ce.Compile == nil || ce.Compile.Code == nil || *ce.Compile.Code == 0 || !strings.Contains(ce.Compile.Stderr, "undefined_variable") ||
			!reflect.DeepEqual(ce.Run, ce.Compile) {
			t.Errorf("C++ compile error through piston-client: %+v, want compile with a code other than 0 naming undefined_variable, and run a copy of it", ce)
		}
	}
}
