// Client for the front service's HTTP API (same origin). Every call either resolves with the
// decoded JSON answer or rejects with an ApiError whose message is fit to show to a person.

import { authHeaders } from './apikey';
import type { RuntimeInfo } from './picker';

export type Reason =
  | 'Completed'
  | 'NonZeroExit'
  | 'Signaled'
  | 'TimeLimitExceeded'
  | 'MemoryLimitExceeded'
  | 'OutputLimitExceeded'
  | 'Rejected'
  | 'CompileError'
  | 'SystemError';

export interface RunRequest {
  code: string;
  stdin: string;
  /** A Runtime's language or alias (GET /runtimes). */
  language: string;
  /** An exact version or a semver range; left out, the newest. */
  version?: string;
}

/** The compile step of a run (null or absent when nothing was compiled). */
export interface CompileResult {
  /** The compiler's stdout and stderr in the order written. */
  output: string;
  stdout: string;
  stderr: string;
  exit_code: number | null;
  signal?: string;
  /** Completed, NonZeroExit, TimeLimitExceeded, ... of the compiler. */
  reason: string;
  message?: string;
  /** Wall-clock seconds (absent on a saved submission, which keeps only the output). */
  time?: number;
  cpu_time?: number;
  /** Peak memory in KiB (absent on a saved submission). */
  memory?: number;
}

export interface RunResult {
  output: string;
  stdout: string;
  stderr: string;
  /** Wall-clock seconds. */
  time: number;
  cpu_time?: number;
  /** Peak memory in KiB. */
  memory: number;
  exit_code: number | null;
  signal?: string;
  reason: Reason | string;
  message?: string;
  status?: 'Succeeded' | 'Failed';
  truncated?: boolean;
  name?: string;
  /** The language and version that ran (the Runtime's), from a service that has Runtimes. */
  language?: string;
  version?: string;
  /** The compile step, when the language compiles; with reason CompileError, the program did not run. */
  compile?: CompileResult | null;
  /** Only from POST /submit: the saved submission, or -1 when the run failed and was not saved. */
  submission_id?: number;
}

export interface Submission {
  id: number;
  code: string;
  stdin: string;
  language: string;
  version?: string;
  output: string;
  stdout: string;
  stderr: string;
  exit_code: number | null;
  time: number;
  memory: number;
  reason: string;
  name: string;
  created_at: string;
  /** What the compiler wrote ("" when nothing was compiled, or it wrote nothing). */
  compile_output?: string;
}

export interface SubmissionPage {
  submissions: Submission[];
  page: number;
  per_page: number;
  total: number;
}

export interface Snippet {
  id: string;
  code: string;
  stdin: string;
  language: string;
  version?: string;
  created_at?: string;
}

export interface SavedSnippet {
  id: string;
  url: string;
}

export class ApiError extends Error {
  /** HTTP status, or 0 when the server could not be reached at all. */
  readonly status: number;
  /** Seconds to wait before trying again (from Retry-After), when the server said so. */
  readonly retryAfter?: number;
  /** A run reason the error carries, e.g. TimeLimitExceeded on a 504. */
  readonly reason?: string;

  constructor(message: string, status: number, opts: { retryAfter?: number; reason?: string } = {}) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.retryAfter = opts.retryAfter;
    this.reason = opts.reason;
  }
}

/** Parses a Retry-After header: delay-seconds or an HTTP date. Undefined when absent or bad. */
export function parseRetryAfter(value: string | null, now: number = Date.now()): number | undefined {
  if (value == null) return undefined;
  const v = value.trim();
  if (v === '') return undefined;
  if (/^\d+$/.test(v)) return Number(v);
  const at = Date.parse(v);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, Math.ceil((at - now) / 1000));
}

const statusTexts: Record<number, string> = {
  400: 'Bad request',
  401: 'An API key is needed',
  404: 'Not found',
  408: 'Request timeout',
  413: 'Request too large',
  415: 'Unsupported media type',
  422: 'Unprocessable request',
  429: 'Too many requests',
  500: 'Internal server error',
  502: 'Bad gateway',
  503: 'Service unavailable',
  504: 'Gateway timeout',
};

/** Builds the ApiError for a non-2xx answer from its status, headers and body text. */
export function errorFromResponse(status: number, headers: Pick<Headers, 'get'>, body: string): ApiError {
  let message = '';
  let reason: string | undefined;
  try {
    const parsed: unknown = JSON.parse(body);
    if (parsed && typeof parsed === 'object') {
      const o = parsed as Record<string, unknown>;
      if (typeof o.error === 'string') message = o.error;
      if (typeof o.reason === 'string') reason = o.reason;
    }
  } catch {
    // Not JSON (a proxy's HTML page, say): fall back to the status line.
  }
  if (message === '') {
    message = `${statusTexts[status] ?? 'Request failed'} (HTTP ${status})`;
  }
  const retryAfter = parseRetryAfter(headers.get('Retry-After'));
  if ((status === 503 || status === 429) && retryAfter !== undefined && !/retry after \d+ s/i.test(message)) {
    message += ` Try again in ${retryAfter} s.`;
  }
  return new ApiError(message, status, { retryAfter, reason });
}

export type Fetch = (input: string, init?: RequestInit) => Promise<Response>;

export class Api {
  private readonly fetchImpl: Fetch;
  private readonly base: string;
  private readonly key: () => string | null;

  /** key gives the API key to send (read at each request, so a key typed later is used); null: none. */
  constructor(fetchImpl: Fetch = (i, init) => fetch(i, init), base = '', key: () => string | null = () => null) {
    this.fetchImpl = fetchImpl;
    this.base = base;
    this.key = key;
  }

  private async request<T>(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
    const init: RequestInit = { method, headers: { Accept: 'application/json', ...authHeaders(this.key()) }, signal };
    if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers = { ...init.headers, 'Content-Type': 'application/json' };
    }
    let res: Response;
    try {
      res = await this.fetchImpl(this.base + path, init);
    } catch (e) {
      if (e instanceof DOMException && e.name === 'AbortError') throw e;
      throw new ApiError('Could not reach the coderun service. Check your connection and try again.', 0);
    }
    const text = await res.text();
    if (!res.ok) throw errorFromResponse(res.status, res.headers, text);
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new ApiError(`The service sent an answer that is not JSON (HTTP ${res.status}).`, res.status);
    }
  }

  execute(req: RunRequest, signal?: AbortSignal): Promise<RunResult> {
    return this.request('POST', '/execute', req, signal);
  }

  submit(req: RunRequest, signal?: AbortSignal): Promise<RunResult> {
    return this.request('POST', '/submit', req, signal);
  }

  submissions(page = 1, perPage = 20): Promise<SubmissionPage> {
    return this.request('GET', `/submissions?page=${page}&per_page=${perPage}`);
  }

  submission(id: number): Promise<Submission> {
    return this.request('GET', `/submissions/${encodeURIComponent(String(id))}`);
  }

  saveSnippet(req: RunRequest): Promise<SavedSnippet> {
    return this.request('POST', '/snippets', req);
  }

  snippet(id: string): Promise<Snippet> {
    return this.request('GET', `/snippets/${encodeURIComponent(id)}`);
  }

  /** The cluster's Runtimes; null from a service that has none to list (404: older than GET /runtimes). */
  async runtimes(): Promise<RuntimeInfo[] | null> {
    try {
      const list = await this.request<unknown>('GET', '/runtimes');
      if (!Array.isArray(list)) throw new ApiError('The service sent a list of languages that is not a list.', 200);
      return list as RuntimeInfo[];
    } catch (e) {
      if (e instanceof ApiError && e.status === 404) return null;
      throw e;
    }
  }
}

/** The snippet id in a /s/<id> path, or null. */
export function snippetIdFromPath(pathname: string): string | null {
  const m = /^\/s\/([^/]+)\/?$/.exec(pathname);
  if (!m) return null;
  try {
    return decodeURIComponent(m[1]);
  } catch {
    return null;
  }
}
