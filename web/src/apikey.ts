// The API key of a coderun whose API needs one: typed once, kept in this browser's
// localStorage, and sent with every API request as Authorization: Bearer <key>.

export const API_KEY_STORAGE = 'coderun-api-key';

type Storage = Pick<globalThis.Storage, 'getItem' | 'setItem' | 'removeItem'>;

/** The longest key the service takes (internal/auth.MaxKeyLength). */
export const MAX_KEY_LENGTH = 256;

/** Why key is not a key the service could take, or null when it could be one. */
export function keyProblem(key: string): string | null {
  if (key === '') return 'Type the key.';
  if (key.length > MAX_KEY_LENGTH) return `A key has at most ${MAX_KEY_LENGTH} characters.`;
  // Printable ASCII without spaces: anything else cannot travel in the header.
  if (!/^[\x21-\x7e]+$/.test(key)) return 'A key has no spaces and only ASCII letters, digits and symbols.';
  return null;
}

export function storedKey(storage: Storage | null | undefined): string | null {
  try {
    const k = storage?.getItem(API_KEY_STORAGE) ?? null;
    return k && keyProblem(k) === null ? k : null;
  } catch {
    return null; // storage disabled (private mode, sandboxed frame)
  }
}

/** Keeps key (trimmed); false when storage is unavailable or the key is not one. */
export function storeKey(storage: Storage | null | undefined, key: string): boolean {
  const k = key.trim();
  if (keyProblem(k) !== null) return false;
  try {
    if (!storage) return false;
    storage.setItem(API_KEY_STORAGE, k);
    return true;
  } catch {
    return false;
  }
}

export function forgetKey(storage: Storage | null | undefined): void {
  try {
    storage?.removeItem(API_KEY_STORAGE);
  } catch {
    // nothing kept, nothing to forget
  }
}

/** The header that carries key, or none without a key (anonymous access). */
export function authHeaders(key: string | null | undefined): Record<string, string> {
  return key ? { Authorization: `Bearer ${key}` } : {};
}
