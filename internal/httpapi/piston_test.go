package httpapi

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	execv1alpha1 "github.com/coderun-dev/coderun/api/v1alpha1"
)

// Conformance of the Piston API v2, written from Piston's api/src/api/v2.js and job.js
// (and /work/shared/docs/compat-apis.md): every route, field, message and status code
// that coderun claims, and each deviation the README lists.

// pistonBody is a request of /api/v2/execute with the fields of v, and a program file
// unless v has files.
func pistonBody(v map[string]any) string {
	if _, ok := v["files"]; !ok {
		v["files"] = []any{map[string]any{"content": progHello}}
	}
	return mustJSON(v)
}

func TestPistonRuntimesAndPackages(t *testing.T) {
	f, _ := languageFixture(t, nil)
	a := f.do(t, "GET", "/api/v2/runtimes", "")
	// Ready Runtimes only (cobol is not), sorted by language and highest version first;
	// Piston's optional "runtime" is left out, and aliases is always an array.
	want := `[{"language":"cpp","version":"14.2.0","aliases":["c++","g++"]},` +
		`{"language":"python","version":"3.13.5","aliases":["py","py3","python3"]},` +
		`{"language":"python","version":"3.11.2","aliases":["py"]}]`
	if a.status != 200 || strings.TrimSpace(string(a.body)) != want {
		t.Errorf("GET /api/v2/runtimes: %d %s\nwant %s", a.status, a.body, want)
	}
	p := f.do(t, "GET", "/api/v2/packages", "")
	want = `[{"language":"cpp","language_version":"14.2.0","installed":true},` +
		`{"language":"python","language_version":"3.13.5","installed":true},` +
		`{"language":"python","language_version":"3.11.2","installed":true}]`
	if p.status != 200 || strings.TrimSpace(string(p.body)) != want {
		t.Errorf("GET /api/v2/packages: %d %s\nwant %s", p.status, p.body, want)
	}
	for _, method := range []string{"POST", "DELETE"} {
		a := f.do(t, method, "/api/v2/packages", `{"language": "ruby", "version": "3.3.8"}`)
		msg, _ := a.json(t)["message"].(string)
		if a.status != http.StatusMethodNotAllowed || a.header.Get("Allow") != "GET" || !strings.Contains(msg, "Runtime objects of the cluster") ||
			!strings.Contains(msg, "kubectl apply") {
			t.Errorf("%s /api/v2/packages: %d %v %s", method, a.status, a.header, a.body)
		}
	}
	// Before the catalog has listed the Runtimes: 503, rather than no runtimes at all.
	f, _ = languageFixture(t, func(c *staticCatalog, _ *Options) { c.synced, c.reason = false, "the API server has no Runtime kind" })
	for _, path := range []string{"/api/v2/runtimes", "/api/v2/packages"} {
		a := f.do(t, "GET", path, "")
		if msg, _ := a.json(t)["message"].(string); a.status != 503 || a.header.Get("Retry-After") == "" || !strings.Contains(msg, "no Runtime kind") {
			t.Errorf("GET %s unsynced: %d %s", path, a.status, a.body)
		}
	}
}

// TestPistonValidation sends each request Piston refuses, in its order of checks: 400
// with its {"message"} word for word (415 for a body declared as another type).
func TestPistonValidation(t *testing.T) {
	f, runner := languageFixture(t, nil)
	hello := []any{map[string]any{"content": progHello}}
	cpp := func(v map[string]any) string {
		v["language"], v["version"] = "cpp", "14.2.0"
		v["files"] = []any{map[string]any{"content": progCompiled}}
		return mustJSON(v)
	}
	for _, tc := range []struct {
		name, body string
		status     int
		message    string
	}{
		{"empty body", ``, 400, "language is required as a string"},
		{"no language", `{"version": "3.x", "files": []}`, 400, "language is required as a string"},
		{"language a number", `{"language": 3, "version": "3.x"}`, 400, "language is required as a string"},
		{"language empty", `{"language": "", "version": "3.x"}`, 400, "language is required as a string"},
		{"no version", `{"language": "python", "files": []}`, 400, "version is required as a string"},
		{"version a number", `{"language": "python", "version": 3}`, 400, "version is required as a string"},
		{"version empty", `{"language": "python", "version": ""}`, 400, "version is required as a string"},
		{"no files", `{"language": "python", "version": "3.x"}`, 400, "files is required as an array"},
		{"files an object", `{"language": "python", "version": "3.x", "files": {"content": "x"}}`, 400, "files is required as an array"},
		{"files a string", `{"language": "python", "version": "3.x", "files": "print(1)"}`, 400, "files is required as an array"},
		{"file without content", `{"language": "python", "version": "3.x", "files": [{"name": "a.py"}]}`, 400, "files[0].content is required as a string"},
		{"second file content a number", `{"language": "python", "version": "3.x", "files": [{"content": "x"}, {"content": 5}]}`, 400, "files[1].content is required as a string"},
		{"file not an object", `{"language": "python", "version": "3.x", "files": [7]}`, 400, "files[0].content is required as a string"},
		// Content is checked before the runtime.
		{"bad file of an unknown language", `{"language": "cobol", "version": "*", "files": [{}]}`, 400, "files[0].content is required as a string"},
		{"unknown language", pistonBody(map[string]any{"language": "brainfuck", "version": "*"}), 400, "brainfuck-* runtime is unknown"},
		{"case matters", pistonBody(map[string]any{"language": "Python", "version": "*"}), 400, "Python-* runtime is unknown"},
		{"no version matches", pistonBody(map[string]any{"language": "python", "version": "4.x"}), 400, "python-4.x runtime is unknown"},
		{"not a range", pistonBody(map[string]any{"language": "python", "version": "three"}), 400, "python-three runtime is unknown"},
		{"a Runtime that is not Ready", pistonBody(map[string]any{"language": "cobol", "version": "3.2.0"}), 400, "cobol-3.2.0 runtime is unknown"},
		{"only base64 files", pistonBody(map[string]any{"language": "python", "version": "*", "files": []any{map[string]any{"content": "eA==", "encoding": "base64"}}}), 400,
			"files must include at least one utf8 encoded file"},
		{"utf-8 is not utf8", pistonBody(map[string]any{"language": "python", "version": "*", "files": []any{map[string]any{"content": "x", "encoding": "utf-8"}}}), 400,
			"files must include at least one utf8 encoded file"},
		{"no files at all", pistonBody(map[string]any{"language": "python", "version": "*", "files": []any{}}), 400, "files must include at least one utf8 encoded file"},
		// The limits: memory_limit, timeout, cpu_time; compile before run.
		{"limit a string", pistonBody(map[string]any{"language": "python", "version": "*", "run_timeout": "3000"}), 400, "If specified, run_timeout must be a number"},
		{"limit true", pistonBody(map[string]any{"language": "python", "version": "*", "run_cpu_time": true}), 400, "If specified, run_cpu_time must be a number"},
		{"limit an array", pistonBody(map[string]any{"language": "python", "version": "*", "run_memory_limit": []int{1}}), 400, "If specified, run_memory_limit must be a number"},
		{"run_timeout over the maximum", pistonBody(map[string]any{"language": "python", "version": "*", "run_timeout": 60001}), 400,
			"run_timeout cannot exceed the configured limit of 60000"},
		{"run_cpu_time over the maximum", pistonBody(map[string]any{"language": "python", "version": "*", "run_cpu_time": json.RawMessage("1e400")}), 400,
			"run_cpu_time cannot exceed the configured limit of 60000"},
		{"run_memory_limit over the maximum", pistonBody(map[string]any{"language": "python", "version": "*", "run_memory_limit": 2e9}), 400,
			"run_memory_limit cannot exceed the configured limit of 1073741824"},
		{"negative timeout", pistonBody(map[string]any{"language": "python", "version": "*", "run_timeout": -5}), 400, "run_timeout must be non-negative"},
		{"memory before timeout", pistonBody(map[string]any{"language": "python", "version": "*", "run_timeout": -5, "run_memory_limit": -2}), 400,
			"run_memory_limit must be non-negative"},
		{"compile before run", cpp(map[string]any{"run_timeout": 99999, "compile_timeout": 99999}), 400, "compile_timeout cannot exceed the configured limit of 20000"},
		{"compile memory over the Runtime's", cpp(map[string]any{"compile_memory_limit": 1 << 30}), 400, "compile_memory_limit cannot exceed the configured limit of 536870912"},
		// coderun's own refusals, in Piston's shape.
		{"a file in a folder", pistonBody(map[string]any{"language": "python", "version": "*", "files": []any{hello[0], map[string]any{"name": "lib/util.py", "content": "x"}}}), 400,
			`files[1].name "lib/util.py" is not a file name coderun takes`},
		{"a file named as the program", pistonBody(map[string]any{"language": "python", "version": "3.13.5", "files": []any{hello[0], map[string]any{"name": "main.python", "content": "x"}}}), 400,
			`files[1].name "main.python" is the name the program (the first utf8 file) gets in python-3.13.5`},
		{"two files of one name", pistonBody(map[string]any{"language": "python", "version": "*", "files": []any{hello[0], map[string]any{"name": "a", "content": ""}, map[string]any{"name": "a", "content": ""}}}), 400,
			`files[2].name "a" is the name of another file`},
		{"base64 that is not", pistonBody(map[string]any{"language": "python", "version": "*", "files": []any{hello[0], map[string]any{"name": "d", "content": "%%%", "encoding": "base64"}}}), 400,
			"files[1].content is not valid base64"},
		{"binary file", pistonBody(map[string]any{"language": "python", "version": "*", "files": []any{hello[0], map[string]any{"name": "d", "content": "ff00", "encoding": "hex"}}}), 400,
			"files[1] decodes to bytes that are not UTF-8 text"},
		{"an empty program", pistonBody(map[string]any{"language": "python", "version": "*", "files": []any{map[string]any{"content": ""}}}), 400, "files[0].content is required as a string"},
		{"stdin a number", pistonBody(map[string]any{"language": "python", "version": "*", "stdin": 5}), 400, "If specified, stdin must be a string"},
		{"args not strings", pistonBody(map[string]any{"language": "python", "version": "*", "args": []any{1}}), 400, "If specified, args must be an array of strings"},
		{"too many args", pistonBody(map[string]any{"language": "python", "version": "*", "args": make([]string, 33)}), 400, "args has 33 arguments; at most 32"},
		{"programs over 64 KiB", pistonBody(map[string]any{"language": "python", "version": "*", "files": []any{map[string]any{"content": strings.Repeat("#", 40000)},
			map[string]any{"content": strings.Repeat("#", 30000)}}}), 400, "files are 70000 bytes together; at most 65536 bytes (64 KiB)"},
		{"not JSON", `{"language": `, 400, "the request body is not valid JSON"},
		{"an array", `[{"language": "python"}]`, 400, "the request body must be a JSON object, not array"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := f.do(t, "POST", "/api/v2/execute", tc.body)
			got := a.json(t)
			if a.status != tc.status || got["message"] != tc.message && !strings.HasPrefix(got["message"].(string), tc.message) {
				t.Errorf("got %d %s, want %d %q", a.status, a.body, tc.status, tc.message)
			}
			if len(got) != 1 {
				t.Errorf("the answer has other fields than message: %s", a.body)
			}
		})
	}
	if specs := runner.Specs(); len(specs) != 0 {
		t.Errorf("refused requests ran %d programs: %+v", len(specs), specs)
	}

	// Content types: JSON, or undeclared or text/plain (piston-client's), else 415.
	body := pistonBody(map[string]any{"language": "python", "version": "*"})
	for ct, status := range map[string]int{
		"application/json; charset=utf-8": 200, "text/plain;charset=UTF-8": 200,
		"application/x-www-form-urlencoded": 415, "multipart/form-data; boundary=x": 415, "application/xml": 415,
	} {
		req := httptestRequest("POST", "/api/v2/execute", body)
		req.Header.Set("Content-Type", ct)
		a := f.serve(req, false)
		if a.status != status || status == 415 && a.json(t)["message"] != "requests must be of type application/json" {
			t.Errorf("Content-Type %s: %d %s, want %d", ct, a.status, a.body, status)
		}
	}
	if a := f.serve(httptestRequest("POST", "/api/v2/execute", body), false); a.status != 200 {
		t.Errorf("without a Content-Type: %d %s", a.status, a.body)
	}
}

// TestPistonExecute runs one program per row and checks Piston's whole answer, and what
// reached the CodeRun.
func TestPistonExecute(t *testing.T) {
	helloRun := `"run":{"stdout":"Hello, World!\n","stderr":"","output":"Hello, World!\n","code":0,"signal":null,"message":null,"status":null,"cpu_time":16,"wall_time":39,"memory":8437760}`
	okCompile := `"compile":{"stdout":"","stderr":"","output":"","code":0,"signal":null,"message":null,"status":null,"cpu_time":640,"wall_time":812,"memory":92160000}`
	for _, tc := range []struct {
		name string
		req  map[string]any
		want string // the whole answer
		spec func(*testing.T, execv1alpha1.CodeRunSpec)
	}{
		{name: "hello, by alias, highest version", req: map[string]any{"language": "py", "version": "3"},
			want: `{"language":"python","version":"3.13.5",` + helloRun + `}`,
			spec: func(t *testing.T, s execv1alpha1.CodeRunSpec) {
				// The Runtime resolved here, exactly; stdin gets Piston's newline; no limits asked, none set.
				if s.Language != "python" || s.Version != "3.13.5" || s.Stdin != "\n" || s.Limits.TimeoutSeconds != nil || s.Limits.Memory != nil || s.CompileLimits != nil || s.Files != nil || s.Args != nil {
					t.Errorf("spec %+v", s)
				}
			}},
		{name: "a version range", req: map[string]any{"language": "python", "version": "<3.12"},
			want: `{"language":"python","version":"3.11.2",` + helloRun + `}`},
		{name: "stdin keeps its newline, args and more files reach the CodeRun", req: map[string]any{"language": "python", "version": "*", "stdin": "a\nb",
			"args": []string{"1", "two words"},
			"files": []any{
				map[string]any{"name": "data.b64", "content": base64.StdEncoding.EncodeToString([]byte("from base64\n")), "encoding": "base64"},
				map[string]any{"name": "ignored-name.py", "content": progEcho},
				map[string]any{"content": "helper = 1\n"},
				map[string]any{"name": "hex.txt", "content": "6869", "encoding": "hex"},
			}},
			want: `{"language":"python","version":"3.13.5","run":{"stdout":"a\nb\n","stderr":"","output":"a\nb\n","code":0,"signal":null,"message":null,"status":null,"cpu_time":16,"wall_time":39,"memory":8437760}}`,
			spec: func(t *testing.T, s execv1alpha1.CodeRunSpec) {
				files := mustJSON(s.Files)
				want := `[{"name":"data.b64","content":"from base64\n"},{"name":"file2.code","content":"helper = 1\n"},{"name":"hex.txt","content":"hi"}]`
				if s.Source != progEcho || files != want || mustJSON(s.Args) != `["1","two words"]` {
					t.Errorf("source %q files %s args %q", s.Source, files, s.Args)
				}
			}},
		{name: "limits: the lesser of timeout and CPU time in whole seconds, memory raised to 16Mi, -1 for none",
			req: map[string]any{"language": "cpp", "version": "14", "files": []any{map[string]any{"content": progCompiled}},
				"run_timeout": 2500, "run_cpu_time": 1200.5, "run_memory_limit": 1000, "compile_timeout": 15000, "compile_memory_limit": -1},
			want: `{"language":"cpp","version":"14.2.0","run":{"stdout":"OK\n","stderr":"","output":"OK\n","code":0,"signal":null,"message":null,"status":null,"cpu_time":16,"wall_time":39,"memory":8437760},` + okCompile + `}`,
			spec: func(t *testing.T, s execv1alpha1.CodeRunSpec) {
				if *s.Limits.TimeoutSeconds != 2 || s.Limits.Memory.String() != "16Mi" || *s.CompileLimits.TimeoutSeconds != 15 || s.CompileLimits.Memory != nil {
					t.Errorf("limits %+v compile %+v", s.Limits, s.CompileLimits)
				}
			}},
		{name: "falsy limits are left out; an interpreted runtime ignores compile limits", req: map[string]any{"language": "python", "version": "*",
			"run_timeout": 0, "run_memory_limit": nil, "run_cpu_time": false, "compile_timeout": 99999999},
			want: `{"language":"python","version":"3.13.5",` + helloRun + `}`,
			spec: func(t *testing.T, s execv1alpha1.CodeRunSpec) {
				if s.Limits.TimeoutSeconds != nil || s.Limits.Memory != nil || s.CompileLimits != nil {
					t.Errorf("limits %+v compile %+v", s.Limits, s.CompileLimits)
				}
			}},
		{name: "exit 3 is RE", req: map[string]any{"language": "python", "version": "*", "files": []any{map[string]any{"content": progExit3}}},
			want: `{"language":"python","version":"3.13.5","run":{"stdout":"","stderr":"","output":"","code":3,"signal":null,"message":"Exited with error status 3","status":"RE","cpu_time":20,"wall_time":41,"memory":9216000}}`},
		{name: "a signal is SG", req: map[string]any{"language": "python", "version": "*", "files": []any{map[string]any{"content": progSegfault}}},
			want: `{"language":"python","version":"3.13.5","run":{"stdout":"","stderr":"","output":"","code":null,"signal":"SIGSEGV","message":"Caught fatal signal 11","status":"SG","cpu_time":20,"wall_time":41,"memory":9216000}}`},
		{name: "the time limit is TO with SIGKILL", req: map[string]any{"language": "python", "version": "*", "files": []any{map[string]any{"content": progBusy}}},
			want: `{"language":"python","version":"3.13.5","run":{"stdout":"","stderr":"","output":"","code":null,"signal":"SIGKILL","message":"Time limit exceeded","status":"TO","cpu_time":20,"wall_time":41,"memory":9216000}}`},
		{name: "the memory limit is SG with SIGKILL", req: map[string]any{"language": "python", "version": "*", "files": []any{map[string]any{"content": progHog}}},
			want: `{"language":"python","version":"3.13.5","run":{"stdout":"","stderr":"","output":"","code":null,"signal":"SIGKILL","message":"Memory limit exceeded","status":"SG","cpu_time":20,"wall_time":41,"memory":9216000}}`},
		{name: "too much stdout is OL", req: map[string]any{"language": "python", "version": "*", "files": []any{map[string]any{"content": progFlood}}},
			want: `{"language":"python","version":"3.13.5","run":{"stdout":"yyyy","stderr":"","output":"yyyy","code":null,"signal":"SIGKILL","message":"stdout length exceeded","status":"OL","cpu_time":20,"wall_time":41,"memory":9216000}}`},
		{name: "too much stderr is EL", req: map[string]any{"language": "python", "version": "*", "files": []any{map[string]any{"content": progFloodStderr}}},
			want: `{"language":"python","version":"3.13.5","run":{"stdout":"","stderr":"eeee","output":"eeee","code":null,"signal":"SIGKILL","message":"stderr length exceeded","status":"EL","cpu_time":20,"wall_time":41,"memory":9216000}}`},
		{name: "a compile error: run is a copy of compile", req: map[string]any{"language": "c++", "version": "*", "files": []any{map[string]any{"name": "prog.cpp", "content": progCompileError}}},
			want: `{"language":"cpp","version":"14.2.0",` +
				`"run":{"stdout":"","stderr":"` + jsonText(compilerError) + `","output":"` + jsonText(compilerError) + `","code":1,"signal":null,"message":"Exited with error status 1","status":"RE","cpu_time":350,"wall_time":402,"memory":61440000},` +
				`"compile":{"stdout":"","stderr":"` + jsonText(compilerError) + `","output":"` + jsonText(compilerError) + `","code":1,"signal":null,"message":"Exited with error status 1","status":"RE","cpu_time":350,"wall_time":402,"memory":61440000}}`},
		{name: "the platform failed is XX", req: map[string]any{"language": "python", "version": "*", "files": []any{map[string]any{"content": progSystemError}}},
			want: `{"language":"python","version":"3.13.5","run":{"stdout":"","stderr":"","output":"","code":null,"signal":null,"message":"the run's pod could not be scheduled within 2m0s","status":"XX","cpu_time":null,"wall_time":null,"memory":null}}`},
		{name: "deleted mid-run is XX", req: map[string]any{"language": "python", "version": "*", "files": []any{map[string]any{"content": progDeleted}}},
			want: `{"language":"python","version":"3.13.5","run":{"stdout":"","stderr":"","output":"","code":null,"signal":null,"message":"the CodeRun run-00001 was deleted before it finished","status":"XX","cpu_time":null,"wall_time":null,"memory":null}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, runner := languageFixture(t, nil)
			a := f.do(t, "POST", "/api/v2/execute", pistonBody(tc.req))
			if a.status != 200 || strings.TrimSpace(string(a.body)) != tc.want {
				t.Errorf("got %d %s\nwant 200 %s", a.status, a.body, tc.want)
			}
			specs := runner.Specs()
			if len(specs) != 1 {
				t.Fatalf("%d runs, want 1", len(specs))
			}
			if tc.spec != nil {
				tc.spec(t, specs[0])
			}
		})
	}
}

// jsonText is s as it appears inside a JSON string.
func jsonText(s string) string {
	b, _ := json.Marshal(s)
	return string(b[1 : len(b)-1])
}

// TestPistonFailures: what the operator refuses is a 400 like Piston's validation errors;
// the front's own failures keep their status, in Piston's {"message"} shape.
func TestPistonFailures(t *testing.T) {
	f, _ := languageFixture(t, nil)
	a := f.do(t, "POST", "/api/v2/execute", pistonBody(map[string]any{"language": "python", "version": "*", "files": []any{map[string]any{"content": progRejected}}}))
	if a.status != 400 || a.json(t)["message"] != "compileLimits.timeoutSeconds 30 is above the Runtime's 20" {
		t.Errorf("rejected by the operator: %d %s", a.status, a.body)
	}
	f = newFixture(t, func(_ *fakeRunner, o *Options) { o.Runtimes = testCatalog() })
	a = f.do(t, "POST", "/api/v2/execute", pistonBody(map[string]any{"language": "python", "version": "*", "files": []any{map[string]any{"content": apiDown}}}))
	if a.status != 503 || a.header.Get("Retry-After") == "" || !strings.Contains(a.json(t)["message"].(string), "could not start the run") {
		t.Errorf("API server down: %d %s", a.status, a.body)
	}
	a = f.do(t, "POST", "/api/v2/execute", pistonBody(map[string]any{"language": "python", "version": "*"}), "Idempotency-Key", "")
	if a.status != 400 || !strings.Contains(a.json(t)["message"].(string), "Idempotency-Key") {
		t.Errorf("an empty Idempotency-Key: %d %s", a.status, a.body)
	}
	if m := f.metrics(t); !strings.Contains(m, `coderun_front_runs_total{reason="Error"} 1`+"\n") {
		t.Errorf("/metrics does not count the Piston run")
	}
}

// httptestRequest is a request with body and no headers.
func httptestRequest(method, target, body string) *http.Request {
	return httptest.NewRequest(method, target, strings.NewReader(body))
}
