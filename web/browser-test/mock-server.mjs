// A stand-in for the front service, for working on the page without a cluster: it serves dist/
// the way the Go service does (index.html at / and /s/<id>, files under /assets/) and answers the
// HTTP API from memory with made-up results. It never runs the code it is sent; it only looks
// at it (print('...') calls, unbalanced brackets, a few "# mock:" markers) to pick an answer.
//
//   node browser-test/mock-server.mjs [port]     (binds 127.0.0.1; port 0 picks a free one)
//
// Markers: "# mock:503" answers 503 with Retry-After, "# mock:timeout" a 504, "# mock:slow"
// waits 2 s, "# mock:stderr" writes a warning between two lines of stdout.
//
// GET /runtimes lists a made-up cluster (RUNTIMES below: two Java versions, a Kotlin whose
// smoke test failed). A compiled language's program with unbalanced brackets comes back as
// a CompileError with a compiler-like message in "compile"; the program is then not run.
import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import { extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pageCSP } from './csp.mjs';

const dist = fileURLToPath(new URL('../dist/', import.meta.url));
const types = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.css': 'text/css', '.svg': 'image/svg+xml', '.png': 'image/png' };

// What GET /runtimes answers: Ready ones and one that is not (Kotlin), as the front service
// lists the cluster's Runtimes.
const RUNTIMES = [
  { language: 'python', version: '3.13.5', aliases: ['python3', 'py'], display_name: 'Python 3.13.5', compiled: false, ready: true },
  { language: 'c', version: '14.2.0', aliases: ['gcc'], display_name: 'C (GCC 14.2.0)', compiled: true, ready: true },
  { language: 'cpp', version: '14.2.0', aliases: ['c++', 'g++'], display_name: 'C++ (GCC 14.2.0)', compiled: true, ready: true },
  { language: 'go', version: '1.24.4', aliases: ['golang'], display_name: 'Go 1.24.4', compiled: true, ready: true },
  { language: 'java', version: '21.0.8', aliases: [], display_name: 'Java 21.0.8 (OpenJDK)', compiled: false, ready: true },
  { language: 'java', version: '17.0.16', aliases: [], display_name: 'Java 17.0.16 (OpenJDK)', compiled: false, ready: true },
  { language: 'javascript', version: '20.19.2', aliases: ['js', 'node'], display_name: 'JavaScript (Node.js 20.19.2)', compiled: false, ready: true },
  { language: 'kotlin', version: '1.3.31', aliases: ['kt'], display_name: 'Kotlin 1.3.31', compiled: true, ready: false },
  { language: 'rust', version: '1.85.0', aliases: ['rs'], display_name: 'Rust 1.85.0', compiled: true, ready: true },
  { language: 'ruby', version: '3.3.8', aliases: ['rb'], display_name: 'Ruby 3.3.8', compiled: false, ready: true },
];
const sourceFiles = { python: 'main.py', c: 'main.c', cpp: 'main.cpp', go: 'main.go', rust: 'main.rs', kotlin: 'main.kt' };

/** The Runtime a request asks for, like internal/runtimes.Resolve (an exact version or none), or an error. */
function resolve(language = 'python', version = '') {
  const matching = RUNTIMES.filter((r) => r.language === language || r.aliases.includes(language));
  if (matching.length === 0) return { error: `no runtime for language "${language}"; available: ${[...new Set(RUNTIMES.map((r) => r.language))].join(', ')}` };
  const rt = version ? matching.find((r) => r.version === version) : matching[0];
  if (!rt) return { error: `language "${language}" has no version matching "${version}"; available: ${matching.map((r) => r.version).join(', ')}` };
  if (!rt.ready) return { error: `the runtime for ${rt.language} ${rt.version} is not ready: its smoke test failed` };
  return { rt };
}

const submissions = [];
const snippets = new Map();
let runs = 0;

function json(res, status, body, headers = {}) {
  res.writeHead(status, { 'Content-Type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

async function body(req) {
  const chunks = [];
  for await (const c of req) chunks.push(c);
  return Buffer.concat(chunks).toString('utf8');
}

function balanced(code) {
  const pairs = { ')': '(', ']': '[', '}': '{' };
  const stack = [];
  for (const ch of code.replace(/(['"])(?:\\.|(?!\1).)*\1/g, '')) {
    if ('([{'.includes(ch)) stack.push(ch);
    else if (ch in pairs && stack.pop() !== pairs[ch]) return false;
  }
  return stack.length === 0;
}

function fakeRun(code, rt, stdin) {
  runs++;
  const name = `run-${String(runs).padStart(5, '0')}`;
  const base = { time: 0.03 + Math.random() * 0.05, cpu_time: 0.02, memory: 9000 + Math.floor(Math.random() * 2000), signal: '', truncated: false, name, language: rt.language, version: rt.version, compile: null };
  if (rt.compiled) {
    const compile = { output: '', stdout: '', stderr: '', exit_code: 0, signal: '', reason: 'Completed', message: '', time: 0.4 + Math.random() * 0.3, cpu_time: 0.35, memory: 60000 };
    if (!balanced(code)) {
      const file = sourceFiles[rt.language] ?? 'main';
      const line = code.split('\n').length;
      const err = `${file}: In function 'int main()':\n${file}:${line}:1: error: expected '}' at end of input\n`;
      return {
        ...base,
        time: 0, cpu_time: 0, memory: 0, output: '', stdout: '', stderr: '', exit_code: 0, reason: 'CompileError', status: 'Failed',
        message: 'The program did not compile: the compiler exited with code 1.',
        compile: { ...compile, output: err, stderr: err, exit_code: 1, reason: 'NonZeroExit', message: 'The compiler exited with code 1.' },
      };
    }
    return { ...fakeProgram(code, base, stdin), compile };
  }
  return fakeProgram(code, base, stdin);
}

function fakeProgram(code, base, stdin = '') {
  if (!balanced(code)) {
    const line = code.split('\n').length;
    const stderr = `  File "/run/main.py", line ${line}\n    ${code.split('\n').at(-1)}\n    ^\nSyntaxError: '(' was never closed\n`;
    return { ...base, output: stderr, stdout: '', stderr, exit_code: 1, reason: 'NonZeroExit', message: 'The program exited with code 1.', status: 'Failed' };
  }
  // print('...') and the like in other languages: println!, puts, console.log, cout << "...".
  const printed = [...code.matchAll(/(?:print|println!?|Println|puts|console\.log|System\.out\.println|cout\s*<<)\s*\(?\s*(['"])((?:\\.|(?!\1).)*)\1/g)].map((m) => m[2] + '\n');
  let stdout = printed.join('');
  // A starter program (a greeting of a name) greets the first line of stdin, or the World.
  if (code.includes('Hello, ') && /name/i.test(code)) stdout = `Hello, ${stdin.split('\n')[0].trim() || 'World'}!\n`;
  let output = stdout;
  let stderr = '';
  if (code.includes('# mock:stderr')) {
    stderr = 'warning: this went to stderr\n';
    output = 'first line on stdout\n' + stderr + 'second line on stdout\n';
    stdout = 'first line on stdout\nsecond line on stdout\n';
  }
  return { ...base, output, stdout, stderr, exit_code: 0, reason: 'Completed', message: '', status: 'Succeeded' };
}

async function api(req, res, url) {
  if ((url.pathname === '/execute' || url.pathname === '/submit') && req.method === 'POST') {
    let b;
    try {
      b = JSON.parse(await body(req));
    } catch {
      return json(res, 400, { error: 'The request body is not valid JSON.' });
    }
    if (typeof b.code !== 'string') return json(res, 400, { error: 'The field "code" is required and must be a string.' });
    if (b.code.trim() === '') return json(res, 400, { error: 'The field "code" must not be empty.' });
    const { rt, error } = resolve(b.language, b.version);
    if (error) return json(res, 422, { error });
    if (b.code.includes('# mock:503')) return json(res, 503, { error: 'Too many runs are waiting.' }, { 'Retry-After': '7' });
    if (b.code.includes('# mock:timeout')) return json(res, 504, { error: 'The run did not finish within its time limit.', reason: 'TimeLimitExceeded' });
    await new Promise((r) => setTimeout(r, b.code.includes('# mock:slow') ? 2000 : 300));
    const r = fakeRun(b.code, rt, b.stdin ?? '');
    if (url.pathname === '/execute') return json(res, 200, r);
    let id = -1;
    if (r.exit_code === 0) {
      id = submissions.length + 1;
      submissions.unshift({ id, code: b.code, stdin: b.stdin ?? '', language: rt.language, version: b.version ?? '', output: r.output, stdout: r.stdout, stderr: r.stderr, exit_code: r.exit_code, time: r.time, memory: r.memory, reason: r.reason, name: r.name, created_at: new Date().toISOString() });
    }
    return json(res, 200, { ...r, submission_id: id });
  }
  if (url.pathname === '/submissions' && req.method === 'GET') {
    const page = Math.max(1, Number(url.searchParams.get('page') ?? 1) || 1);
    const per = Math.min(100, Math.max(1, Number(url.searchParams.get('per_page') ?? 20) || 20));
    return json(res, 200, { submissions: submissions.slice((page - 1) * per, page * per), page, per_page: per, total: submissions.length });
  }
  let m = /^\/submissions\/(\d+)$/.exec(url.pathname);
  if (m && req.method === 'GET') {
    const s = submissions.find((x) => x.id === Number(m[1]));
    return s ? json(res, 200, s) : json(res, 404, { error: 'No submission has that id.' });
  }
  if (url.pathname === '/snippets' && req.method === 'POST') {
    const b = JSON.parse((await body(req)) || '{}');
    const id = randomUUID();
    snippets.set(id, { id, code: String(b.code ?? ''), stdin: String(b.stdin ?? ''), language: String(b.language || 'python'), version: String(b.version ?? ''), created_at: new Date().toISOString() });
    return json(res, 201, { id, url: `/s/${id}` });
  }
  m = /^\/snippets\/([^/]+)$/.exec(url.pathname);
  if (m && req.method === 'GET') {
    const s = snippets.get(m[1]);
    return s ? json(res, 200, s) : json(res, 404, { error: 'No snippet has that id.' });
  }
  if (url.pathname === '/runtimes' && req.method === 'GET') return json(res, 200, RUNTIMES);
  if (url.pathname === '/healthz') return json(res, 200, { status: 'ok' });
  return null;
}

async function file(res, rel) {
  const path = normalize(join(dist, rel));
  if (!path.startsWith(dist)) return json(res, 404, { error: 'not found' });
  try {
    const data = await readFile(path);
    // The front service's policy (internal/httpapi/static.go, via csp.mjs): the page needs no
    // inline script or style and nothing off-site.
    res.writeHead(200, {
      'Content-Type': types[extname(path)] ?? 'application/octet-stream',
      'Content-Security-Policy': pageCSP,
      'X-Content-Type-Options': 'nosniff',
    });
    res.end(data);
  } catch {
    json(res, 404, { error: 'not found' });
  }
}

const server = createServer(async (req, res) => {
  const url = new URL(req.url ?? '/', 'http://127.0.0.1');
  try {
    if ((await api(req, res, url)) !== null) return;
    if (req.method !== 'GET') return json(res, 404, { error: 'not found' });
    if (url.pathname === '/' || /^\/s\/[^/]+$/.test(url.pathname)) return file(res, 'index.html');
    if (url.pathname.startsWith('/assets/')) return file(res, url.pathname.slice(1));
    json(res, 404, { error: 'not found' });
  } catch (e) {
    json(res, 500, { error: String(e) });
  }
});

const port = Number(process.argv[2] ?? process.env.PORT ?? 5180);
server.listen(port, '127.0.0.1', () => {
  console.log(`mock coderun service on http://127.0.0.1:${server.address().port}`);
});
