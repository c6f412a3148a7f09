import { describe, expect, it } from 'vitest';
import { THEME_KEY, chooseTheme, otherTheme, storeTheme, storedTheme, systemTheme } from './theme';

function memoryStorage(init: Record<string, string> = {}) {
  const m = new Map(Object.entries(init));
  return {
    getItem: (k: string) => m.get(k) ?? null,
    setItem: (k: string, v: string) => void m.set(k, v),
    m,
  };
}

const throwing = {
  getItem: (): string | null => {
    throw new Error('SecurityError');
  },
  setItem: () => {
    throw new Error('QuotaExceededError');
  },
};

describe('theme', () => {
  it('follows the system until a pick is stored', () => {
    expect(chooseTheme(storedTheme(memoryStorage()), 'dark')).toBe('dark');
    expect(chooseTheme(storedTheme(memoryStorage()), 'light')).toBe('light');
    expect(chooseTheme(storedTheme(memoryStorage({ [THEME_KEY]: 'light' })), 'dark')).toBe('light');
    expect(chooseTheme(storedTheme(memoryStorage({ [THEME_KEY]: 'dark' })), 'light')).toBe('dark');
  });

  it('ignores junk and unavailable storage', () => {
    expect(storedTheme(memoryStorage({ [THEME_KEY]: 'purple' }))).toBeNull();
    expect(storedTheme(null)).toBeNull();
    expect(storedTheme(throwing)).toBeNull();
  });

  it('reads prefers-color-scheme', () => {
    expect(systemTheme((q) => ({ matches: q === '(prefers-color-scheme: dark)' }))).toBe('dark');
    expect(systemTheme(() => ({ matches: false }))).toBe('light');
    expect(systemTheme(undefined)).toBe('light');
  });

  it('remembers the toggle', () => {
    const s = memoryStorage();
    const next = otherTheme('light');
    expect(next).toBe('dark');
    expect(otherTheme(next)).toBe('light');
    expect(storeTheme(s, next)).toBe(true);
    expect(s.m.get(THEME_KEY)).toBe('dark');
    expect(storedTheme(s)).toBe('dark');
    expect(storeTheme(throwing, 'dark')).toBe(false);
    expect(storeTheme(null, 'dark')).toBe(false);
  });
});
