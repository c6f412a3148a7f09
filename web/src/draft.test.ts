import { describe, expect, it } from 'vitest';
import { DRAFT_KEY, loadDraft, saveDraft } from './draft';

function memoryStorage(init: Record<string, string> = {}) {
  const m = new Map(Object.entries(init));
  return { getItem: (k: string) => m.get(k) ?? null, setItem: (k: string, v: string) => void m.set(k, v), m };
}

describe('draft', () => {
  it('keeps code, stdin, language and version', () => {
    const s = memoryStorage();
    expect(saveDraft(s, { code: 'fn main() {}', stdin: 'x', language: 'rust', version: '1.85.0' })).toBe(true);
    expect(loadDraft(s)).toEqual({ code: 'fn main() {}', stdin: 'x', language: 'rust', version: '1.85.0' });
  });

  it('reads a draft from before the picker as Python', () => {
    const s = memoryStorage({ [DRAFT_KEY]: JSON.stringify({ code: 'print(1)', stdin: '' }) });
    expect(loadDraft(s)).toEqual({ code: 'print(1)', stdin: '', language: 'python', version: '' });
  });

  it('has none without storage, or with junk in it', () => {
    expect(loadDraft(null)).toBeNull();
    expect(loadDraft(memoryStorage())).toBeNull();
    expect(loadDraft(memoryStorage({ [DRAFT_KEY]: '{' }))).toBeNull();
    expect(loadDraft(memoryStorage({ [DRAFT_KEY]: '"text"' }))).toBeNull();
    expect(loadDraft(memoryStorage({ [DRAFT_KEY]: JSON.stringify({ code: 5 }) }))).toBeNull();
    const throwing = {
      getItem: (): string | null => {
        throw new Error('SecurityError');
      },
      setItem: () => {
        throw new Error('QuotaExceededError');
      },
    };
    expect(loadDraft(throwing)).toBeNull();
    expect(saveDraft(throwing, { code: '', stdin: '', language: 'python', version: '' })).toBe(false);
  });
});
