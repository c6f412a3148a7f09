import { describe, expect, it } from 'vitest';
import { API_KEY_STORAGE, authHeaders, forgetKey, keyProblem, storedKey, storeKey } from './apikey';
import { Api, ApiError } from './api';

function memoryStorage(): Storage & { data: Map<string, string> } {
  const data = new Map<string, string>();
  return {
    data,
    get length() {
      return data.size;
    },
    clear: () => data.clear(),
    getItem: (k: string) => data.get(k) ?? null,
    key: (i: number) => [...data.keys()][i] ?? null,
    removeItem: (k: string) => void data.delete(k),
    setItem: (k: string, v: string) => void data.set(k, v),
  };
}

const failing = {
  getItem: () => {
    throw new Error('SecurityError');
  },
  setItem: () => {
    throw new Error('QuotaExceededError');
  },
  removeItem: () => {
    throw new Error('SecurityError');
  },
};

describe('API key storage', () => {
  it('keeps a key typed once, trimmed, and forgets it', () => {
    const s = memoryStorage();
    expect(storedKey(s)).toBeNull();
    expect(storeKey(s, '  crk_abc  ')).toBe(true);
    expect(s.data.get(API_KEY_STORAGE)).toBe('crk_abc');
    expect(storedKey(s)).toBe('crk_abc');
    forgetKey(s);
    expect(storedKey(s)).toBeNull();
  });

  it('refuses what cannot be a key', () => {
    const s = memoryStorage();
    for (const bad of ['', '   ', 'two words', 'clé', 'x'.repeat(257), 'a\nb']) {
      expect(storeKey(s, bad)).toBe(false);
      expect(keyProblem(bad.trim())).not.toBeNull();
    }
    expect(s.data.size).toBe(0);
    // A bad value put there by hand is not sent.
    s.setItem(API_KEY_STORAGE, 'bad key');
    expect(storedKey(s)).toBeNull();
  });

  it('survives storage that is off', () => {
    expect(storedKey(failing)).toBeNull();
    expect(storeKey(failing, 'crk_abc')).toBe(false);
    expect(() => forgetKey(failing)).not.toThrow();
    expect(storedKey(null)).toBeNull();
  });

  it('makes the Bearer header only with a key', () => {
    expect(authHeaders('crk_abc')).toEqual({ Authorization: 'Bearer crk_abc' });
    expect(authHeaders(null)).toEqual({});
    expect(authHeaders('')).toEqual({});
  });
});

describe('Api with a key', () => {
  it('sends the key kept now on every request, and none without one (anonymous)', async () => {
    const s = memoryStorage();
    const sent: (string | undefined)[] = [];
    const api = new Api(
      async (_url, init) => {
        sent.push((init?.headers as Record<string, string>).Authorization);
        return new Response('{"submissions": [], "page": 1, "per_page": 20, "total": 0}', { status: 200 });
      },
      '',
      () => storedKey(s),
    );
    await api.submissions();
    storeKey(s, 'crk_abc');
    await api.submissions();
    await api.execute({ code: 'print(1)', stdin: '', language: 'python' });
    expect(sent).toEqual([undefined, 'Bearer crk_abc', 'Bearer crk_abc']);
  });

  it('turns a 401 into an ApiError with status 401 and the server sentence', async () => {
    const api = new Api(async () => new Response(JSON.stringify({ error: 'this API needs a key: send Authorization: Bearer <key>' }), { status: 401, headers: { 'WWW-Authenticate': 'Bearer' } }));
    const err = (await api.submissions().catch((e: unknown) => e)) as ApiError;
    expect(err).toBeInstanceOf(ApiError);
    expect(err.status).toBe(401);
    expect(err.message).toContain('needs a key');
  });

  it('says when to retry a 429, once', async () => {
    const over = new Api(async () => new Response(JSON.stringify({ error: 'key "alice" has 4 runs in flight, its limit; retry after 3 s', limit: 'in_flight' }), { status: 429, headers: { 'Retry-After': '3' } }));
    const err = (await over.execute({ code: 'x', stdin: '', language: 'python' }).catch((e: unknown) => e)) as ApiError;
    expect(err.status).toBe(429);
    expect(err.retryAfter).toBe(3);
    expect(err.message).toBe('key "alice" has 4 runs in flight, its limit; retry after 3 s');
    const proxy = new Api(async () => new Response('<html>slow down</html>', { status: 429, headers: { 'Retry-After': '7' } }));
    const perr = (await proxy.submissions().catch((e: unknown) => e)) as ApiError;
    expect(perr.message).toBe('Too many requests (HTTP 429) Try again in 7 s.');
  });
});
