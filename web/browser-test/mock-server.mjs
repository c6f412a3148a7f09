// A stand-in for the front service, for working on the page without a cluster: it serves dist/
// the way the Go service does (index.html at / and /s/<id>, files under /assets/) and answers the
// HTTP API from memory with made-up results. It never runs the code it is sent; it only looks
// at it (print('...') calls, unbalanced brackets, a few "# mock:" markers) to pick an answer.
//
//   node browser-test/mock-server.mjs [port]     (binds 127.0.0.1; port 0 picks a free one)
//
// Markers: "# mock:503" answers 503 with Retry-After, "# mock:timeout" a 504, "# mock:slow"
// waits 2 s, "# mock:stderr" writes a warning between two lines of stdout.
import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import { extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pageCSP } from './csp.mjs';

const dist = fileURLToPath(new URL('../dist/', import.meta.url));
const types = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.css': 'text/css', '.svg': 'image/svg+xml', '.png': 'image/png' };

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

function fakeRun(code) {
  runs++;
  const name = `run-${String(runs).padStart(5, '0')}`;
  const base = { time: 0.03 + Math.random() * 0.05, cpu_time: 0.02, memory: 9000 + Math.floor(Math.random() * 2000), signal: '', truncated: false, name };
  if (!balanced(code)) {
    const line = code.split('\n').length;
    const stderr = `  File "/run/main.py", line ${line}\n    ${code.split('\n').at(-1)}\n    ^\nSyntaxError: '(' was never closed\n`;
    return { ...base, output: stderr, stdout: '', stderr, exit_code: 1, reason: 'NonZeroExit', message: 'The program exited with code 1.', status: 'Failed' };
  }
  const printed = [...code.matchAll(/print\(\s*(['"])((?:\\.|(?!\1).)*)\1\s*\)/g)].map((m) => m[2] + '\n');
  let stdout = printed.join('');
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
    if (b.code.includes('# mock:503')) return json(res, 503, { error: 'Too many runs are waiting.' }, { 'Retry-After': '7' });
    if (b.code.includes('# mock:timeout')) return json(res, 504, { error: 'The run did not finish within its time limit.', reason: 'TimeLimitExceeded' });
    await new Promise((r) => setTimeout(r, b.code.includes('# mock:slow') ? 2000 : 300));
    const r = fakeRun(b.code);
    if (url.pathname === '/execute') return json(res, 200, r);
    let id = -1;
    if (r.exit_code === 0) {
      id = submissions.length + 1;
      submissions.unshift({ id, code: b.code, stdin: b.stdin ?? '', language: 'python', output: r.output, stdout: r.stdout, stderr: r.stderr, exit_code: r.exit_code, time: r.time, memory: r.memory, reason: r.reason, name: r.name, created_at: new Date().toISOString() });
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
    snippets.set(id, { id, code: String(b.code ?? ''), stdin: String(b.stdin ?? ''), language: 'python', created_at: new Date().toISOString() });
    return json(res, 201, { id, url: `/s/${id}` });
  }
  m = /^\/snippets\/([^/]+)$/.exec(url.pathname);
  if (m && req.method === 'GET') {
    const s = snippets.get(m[1]);
    return s ? json(res, 200, s) : json(res, 404, { error: 'No snippet has that id.' });
  }
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
