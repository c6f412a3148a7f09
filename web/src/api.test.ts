import { describe, expect, it } from 'vitest';
import { Api, ApiError, errorFromResponse, parseRetryAfter, snippetIdFromPath, type Fetch } from './api';

function answer(status: number, body: string, headers: Record<string, string> = {}): Fetch {
  return async () => new Response(body, { status, headers });
}

const req = { code: "print('hi')", stdin: '', language: 'python' as const };

describe('Api', () => {
  it('posts the run as JSON and returns the decoded answer', async () => {
    const calls: { url: string; init?: RequestInit }[] = [];
    const api = new Api(async (url, init) => {
      calls.push({ url, init });
      return new Response(JSON.stringify({ output: 'hi\n', time: 0.1, memory: 9000, exit_code: 0, reason: 'Completed' }), { status: 200 });
    });
    const r = await api.execute(req);
    expect(r.output).toBe('hi\n');
    expect(calls[0].url).toBe('/execute');
    expect(calls[0].init?.method).toBe('POST');
    expect(JSON.parse(String(calls[0].init?.body))).toEqual(req);
    expect((calls[0].init?.headers as Record<string, string>)['Content-Type']).toBe('application/json');
  });

  it('builds the submissions, snippet and submit paths', async () => {
    const urls: string[] = [];
    const api = new Api(async (url) => {
      urls.push(url);
      return new Response('{}', { status: 200 });
    });
    await api.submissions(2, 10);
    await api.submission(7);
    await api.snippet('a b/c');
    await api.submit(req);
    await api.saveSnippet(req);
    expect(urls).toEqual(['/submissions?page=2&per_page=10', '/submissions/7', '/snippets/a%20b%2Fc', '/submit', '/snippets']);
  });

  it('turns {"error"} answers into an ApiError with the server sentence', async () => {
    const api = new Api(answer(400, JSON.stringify({ error: 'code must not be empty' })));
    const err = await api.execute(req).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).status).toBe(400);
    expect((err as ApiError).message).toBe('code must not be empty');
  });

  it('says when to retry a 503', async () => {
    const api = new Api(answer(503, JSON.stringify({ error: 'Too many runs are waiting.' }), { 'Retry-After': '5' }));
    const err = (await api.execute(req).catch((e: unknown) => e)) as ApiError;
    expect(err.status).toBe(503);
    expect(err.retryAfter).toBe(5);
    expect(err.message).toBe('Too many runs are waiting. Try again in 5 s.');
  });

  it('keeps the reason of a 504 time-out', async () => {
    const api = new Api(answer(504, JSON.stringify({ error: 'The run did not finish in time.', reason: 'TimeLimitExceeded' })));
    const err = (await api.execute(req).catch((e: unknown) => e)) as ApiError;
    expect(err.status).toBe(504);
    expect(err.reason).toBe('TimeLimitExceeded');
  });

  it('falls back to the status when the error body is not JSON', async () => {
    const api = new Api(answer(502, '<html>Bad Gateway</html>'));
    const err = (await api.execute(req).catch((e: unknown) => e)) as ApiError;
    expect(err.message).toBe('Bad gateway (HTTP 502)');
    const err2 = (await new Api(answer(418, '')).execute(req).catch((e: unknown) => e)) as ApiError;
    expect(err2.message).toBe('Request failed (HTTP 418)');
  });

  it('reports a network failure as status 0', async () => {
    const api = new Api(async () => {
      throw new TypeError('Failed to fetch');
    });
    const err = (await api.execute(req).catch((e: unknown) => e)) as ApiError;
    expect(err).toBeInstanceOf(ApiError);
    expect(err.status).toBe(0);
    expect(err.message).toMatch(/Could not reach/);
  });

  it('passes an abort through untouched', async () => {
    const api = new Api(async () => {
      throw new DOMException('aborted', 'AbortError');
    });
    const err = await api.execute(req).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DOMException);
    expect((err as DOMException).name).toBe('AbortError');
  });

  it('sends the language and version, and reads the compile step back', async () => {
    const bodies: unknown[] = [];
    const api = new Api(async (_url, init) => {
      bodies.push(JSON.parse(String(init?.body)));
      return new Response(
        JSON.stringify({
          output: '', exit_code: 0, reason: 'CompileError', status: 'Failed', language: 'cpp', version: '14.2.0',
          compile: { output: "main.cpp:1:1: error: expected ';'\n", stdout: '', stderr: '', exit_code: 1, reason: 'NonZeroExit', time: 0.4, memory: 60000 },
        }),
        { status: 200 },
      );
    });
    const r = await api.execute({ code: 'int main(', stdin: '', language: 'cpp', version: '14.2.0' });
    expect(bodies[0]).toEqual({ code: 'int main(', stdin: '', language: 'cpp', version: '14.2.0' });
    expect(r.reason).toBe('CompileError');
    expect(r.compile?.exit_code).toBe(1);
    expect(r.compile?.output).toMatch(/error: expected/);
  });

  it('lists the runtimes, and none from a service without GET /runtimes', async () => {
    const list = [{ language: 'go', version: '1.24.4', aliases: ['golang'], display_name: 'Go 1.24.4', compiled: true, ready: true }];
    const urls: string[] = [];
    const api = new Api(async (url) => {
      urls.push(url);
      return new Response(JSON.stringify(list), { status: 200 });
    });
    expect(await api.runtimes()).toEqual(list);
    expect(urls).toEqual(['/runtimes']);
    expect(await new Api(answer(404, '{"error":"no route"}')).runtimes()).toBeNull();
    const err = (await new Api(answer(503, '{"error":"down"}')).runtimes().catch((e: unknown) => e)) as ApiError;
    expect(err.status).toBe(503);
    const notList = (await new Api(answer(200, '{"runtimes":[]}')).runtimes().catch((e: unknown) => e)) as ApiError;
    expect(notList).toBeInstanceOf(ApiError);
  });

  it('rejects a 200 whose body is not JSON', async () => {
    const err = (await new Api(answer(200, 'hello')).execute(req).catch((e: unknown) => e)) as ApiError;
    expect(err).toBeInstanceOf(ApiError);
    expect(err.message).toMatch(/not JSON/);
  });
});

describe('parseRetryAfter', () => {
  it('reads seconds and HTTP dates', () => {
    expect(parseRetryAfter(null)).toBeUndefined();
    expect(parseRetryAfter('')).toBeUndefined();
    expect(parseRetryAfter('12')).toBe(12);
    expect(parseRetryAfter('soon')).toBeUndefined();
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(parseRetryAfter('Thu, 01 Jan 2026 00:00:30 GMT', now)).toBe(30);
    expect(parseRetryAfter('Wed, 31 Dec 2025 00:00:00 GMT', now)).toBe(0);
  });
});

describe('errorFromResponse', () => {
  it('says when to retry a 429 (over an API key quota), and not elsewhere', () => {
    const e = errorFromResponse(429, new Headers({ 'Retry-After': '3' }), '{"error":"slow down"}');
    expect(e.message).toBe('slow down Try again in 3 s.');
    expect(e.retryAfter).toBe(3);
    const other = errorFromResponse(409, new Headers({ 'Retry-After': '3' }), '{"error":"conflict"}');
    expect(other.message).toBe('conflict');
    expect(other.retryAfter).toBe(3);
  });
  it('ignores a non-string error field', () => {
    expect(errorFromResponse(413, new Headers(), '{"error":{"x":1}}').message).toBe('Request too large (HTTP 413)');
  });
});

describe('snippetIdFromPath', () => {
  it('finds the id in /s/<id>', () => {
    expect(snippetIdFromPath('/s/3f2a-9c')).toBe('3f2a-9c');
    expect(snippetIdFromPath('/s/abc/')).toBe('abc');
    expect(snippetIdFromPath('/')).toBeNull();
    expect(snippetIdFromPath('/s/')).toBeNull();
    expect(snippetIdFromPath('/s/a/b')).toBeNull();
    expect(snippetIdFromPath('/s/%E0%A4%A')).toBeNull();
  });
});
