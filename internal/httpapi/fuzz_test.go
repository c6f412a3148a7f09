package httpapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// The fuzz targets here feed each of the API's input parsers through the real handlers
// (a real SQLite file, the fake runner): the body of /snippets, the query of
// /submissions, the ids in paths, X-Request-Id, and whole requests of any method, path
// and body. Whatever comes in, the answer is never a 5xx, and an error is a JSON
// {"error": ...} in valid UTF-8. FuzzParseRunRequest (request_test.go) covers the body of
// /execute and /submit. `make fuzz` runs each for FUZZTIME.

// checkAnswer fails t unless a is not a 5xx, and is a JSON error when it is a 4xx.
func checkAnswer(t *testing.T, what string, a answer) {
	t.Helper()
	if a.status >= 500 {
		t.Fatalf("%s: %d %s", what, a.status, a.body)
	}
	if a.status >= 400 {
		var m map[string]any
		if err := json.Unmarshal(a.body, &m); err != nil {
			t.Fatalf("%s: %d is not JSON: %v: %q", what, a.status, err, a.body)
		}
		msg, _ := m["error"].(string)
		if msg == "" && strings.Contains(what, " /api/v2/") {
			msg, _ = m["message"].(string) // Piston's shape of errors
		}
		if msg == "" || !utf8.ValidString(msg) {
			t.Fatalf("%s: %d without an error sentence: %q", what, a.status, a.body)
		}
	}
}

// FuzzSnippetRequest: a snippet is saved exactly as sent, or refused with a 4xx.
func FuzzSnippetRequest(f *testing.F) {
	for _, tc := range badRequests {
		if len(tc.body) < 1000 {
			f.Add([]byte(tc.body))
		}
	}
	f.Add([]byte(`{"code": "print(input())", "stdin": "42", "language": "python"}`))
	f.Add([]byte("\xef\xbb\xbf{\"code\": \"print('\\u00e9')\", \"stdin\": \"\\ud83d\\ude00\"}"))
	fx := newFixture(f, nil)
	f.Fuzz(func(t *testing.T, body []byte) {
		a := fx.do(t, "POST", "/snippets", string(body))
		checkAnswer(t, "POST /snippets", a)
		if a.status != http.StatusCreated {
			if a.status != 400 && a.status != 413 && a.status != 422 {
				t.Fatalf("POST /snippets: %d %s", a.status, a.body)
			}
			return
		}
		var sent struct {
			Code, Stdin string
			Language    *string
		}
		if err := json.Unmarshal(bytes.TrimPrefix(body, []byte("\xef\xbb\xbf")), &sent); err != nil {
			t.Fatalf("saved a body encoding/json refuses: %v", err)
		}
		id, _ := a.json(t)["id"].(string)
		got := fx.do(t, "GET", "/snippets/"+id, "")
		var saved snippetJSON
		if got.status != 200 || json.Unmarshal(got.body, &saved) != nil {
			t.Fatalf("GET /snippets/%s: %d %s", id, got.status, got.body)
		}
		lang, _ := parseLanguage(sent.Language)
		if saved.Code != sent.Code || saved.Stdin != sent.Stdin || saved.Language != string(lang) {
			t.Fatalf("saved %q %q %q, sent %q %q %v", saved.Code, saved.Stdin, saved.Language, sent.Code, sent.Stdin, sent.Language)
		}
	})
}

// FuzzSubmissionsQuery: page and per_page are whole numbers in range, echoed in the
// answer, or 400.
func FuzzSubmissionsQuery(f *testing.F) {
	for _, q := range [][2]string{{"", ""}, {"1", "20"}, {"0", "1"}, {"-1", "101"}, {"1e3", "0x10"}, {"+5", " 7"}, {"1000000", "100"}, {"1000001", "é"}, {"99999999999999999999", "\x00"}} {
		f.Add(q[0], q[1])
	}
	fx := newFixture(f, nil)
	f.Fuzz(func(t *testing.T, page, perPage string) {
		q := url.Values{"page": {page}, "per_page": {perPage}}
		a := fx.do(t, "GET", "/submissions?"+q.Encode(), "")
		checkAnswer(t, "GET /submissions", a)
		inRange := func(s string, def, lo, hi int) (int, bool) {
			if s == "" {
				return def, true
			}
			n, err := strconv.Atoi(s)
			return n, err == nil && n >= lo && n <= hi
		}
		p, pOK := inRange(page, 1, 1, maxPage)
		pp, ppOK := inRange(perPage, defaultPerPage, 1, maxPerPage)
		if !pOK || !ppOK {
			if a.status != 400 {
				t.Fatalf("page %q per_page %q: %d, want 400", page, perPage, a.status)
			}
			return
		}
		var got struct {
			Page    int `json:"page"`
			PerPage int `json:"per_page"`
		}
		if a.status != 200 || json.Unmarshal(a.body, &got) != nil || got.Page != p || got.PerPage != pp {
			t.Fatalf("page %q per_page %q: %d %s, want 200 with %d and %d", page, perPage, a.status, a.body, p, pp)
		}
	})
}

// FuzzPathID: any id in /submissions/{id} and /snippets/{id} of an empty database gets a
// 404 (or gin's redirect for a path it cleans), never a 5xx.
func FuzzPathID(f *testing.F) {
	for _, id := range []string{"1", "0", "-1", "abc", "99999999999999999999", "6f1e3f7a-5a43-4a39-9a0e-3a2f0f1a9b77", "{6f1e3f7a-5a43-4a39-9a0e-3a2f0f1a9b77}", "", "..", "a/b", "%00", "\xff", strings.Repeat("日", 50)} {
		f.Add(id)
	}
	fx := newFixture(f, nil)
	f.Fuzz(func(t *testing.T, id string) {
		for _, prefix := range []string{"/submissions/", "/snippets/"} {
			target := prefix + url.PathEscape(id)
			a := fx.do(t, "GET", target, "")
			checkAnswer(t, "GET "+target, a)
			// ".." climbs to the page, as in any path.
			if a.status == 200 && id != ".." {
				t.Fatalf("GET %s: 200 from an empty database: %s", target, a.body)
			}
		}
	})
}

// FuzzRequestID: X-Request-Id is echoed when it is a safe token, or replaced.
func FuzzRequestID(f *testing.F) {
	for _, id := range []string{"trace-42.a:b_c", "", "has space", "<script>", "é", "a\r\nSet-Cookie: x=1", strings.Repeat("x", 129)} {
		f.Add(id)
	}
	fx := newFixture(f, nil)
	f.Fuzz(func(t *testing.T, id string) {
		a := fx.do(t, "GET", "/healthz", "", "X-Request-Id", id)
		got := a.header.Get(requestIDHeader)
		if !validRequestID(got) {
			t.Fatalf("X-Request-Id %q answered with %q", id, got)
		}
		if validRequestID(id) != (got == id) {
			t.Fatalf("X-Request-Id %q (valid: %t) answered with %q", id, validRequestID(id), got)
		}
	})
}

// FuzzRequest: a request of any method, target, content type, body and the headers the
// page's files are served by (Accept-Encoding, If-None-Match), through every route and
// middleware.
func FuzzRequest(f *testing.F) {
	for _, s := range []struct{ method, target, contentType, body, encoding, etag string }{
		{"GET", "/", "", "", "gzip;q=0, br", `"x", *`},
		{"GET", "/assets/vendor-def456.js", "", "", "GZIP", `W/"abc"`},
		{"POST", "/execute", "application/json", `{"code": "print(1)", "stdin": "hi"}`, "", ""},
		{"POST", "/submit", "application/json", `{"code": "x", "limits": {"timeout_seconds": 61}}`, "", ""},
		{"POST", "/snippets", "text/plain", `{"code": "x"}`, "", ""},
		{"GET", "/submissions?page=2&per_page=5", "", "", "", ""},
		{"GET", "/submissions/1", "", "", "", ""},
		{"GET", "/snippets/6f1e3f7a-5a43-4a39-9a0e-3a2f0f1a9b77", "", "", "", ""},
		{"PUT", "/execute", "application/json", "{}", "", ""},
		{"GET", "/s/x", "", "", "gzip", ""},
		{"HEAD", "/assets/index-abc123.js", "", "", "", ""},
		{"GET", "//execute/../healthz", "", "", "", ""},
		{"POST", "/execute", "application/x-www-form-urlencoded", "code=print(1)", "", ""},
		{"POST", "/api/v2/execute", "text/plain", `{"language": "python", "version": "*", "files": [{"content": "x"}]}`, "", ""},
		{"DELETE", "/api/v2/packages", "application/json", `{}`, "", ""},
		{"GET", "/runtimes", "", "", "", ""},
	} {
		f.Add(s.method, s.target, s.contentType, []byte(s.body), s.encoding, s.etag)
	}
	fx := newFixture(f, nil)
	f.Fuzz(func(t *testing.T, method, target, contentType string, body []byte, encoding, etag string) {
		u, err := url.ParseRequestURI(target)
		if err != nil || len(target) > 8<<10 {
			return // net/http refuses these before any handler (400 or 431)
		}
		req, err := http.NewRequest(method, u.String(), bytes.NewReader(body))
		if err != nil {
			return // not a method token: net/http refuses it
		}
		for name, value := range map[string]string{"Content-Type": contentType, "Accept-Encoding": encoding, "If-None-Match": etag} {
			if value != "" {
				req.Header.Set(name, value)
			}
		}
		rec := httptest.NewRecorder()
		fx.srv.ServeHTTP(rec, req)
		a := answer{status: rec.Code, header: rec.Result().Header, body: rec.Body.Bytes()}
		checkAnswer(t, method+" "+target, a)
	})
}
