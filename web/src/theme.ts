// Light and dark themes: follow prefers-color-scheme until the person picks one with the toggle;
// the pick is remembered in localStorage.

export type Theme = 'light' | 'dark';

export const THEME_KEY = 'coderun-theme';

type Storage = Pick<globalThis.Storage, 'getItem' | 'setItem'>;

export function storedTheme(storage: Storage | null | undefined): Theme | null {
  try {
    const v = storage?.getItem(THEME_KEY);
    return v === 'light' || v === 'dark' ? v : null;
  } catch {
    return null; // storage disabled (private mode, sandboxed frame)
  }
}

export function systemTheme(matchMedia: ((q: string) => { matches: boolean }) | undefined): Theme {
  try {
    return matchMedia?.('(prefers-color-scheme: dark)').matches ? 'dark' : 'light';
  } catch {
    return 'light';
  }
}

/** The theme to show: the stored pick if there is one, else the system's. */
export function chooseTheme(stored: Theme | null, system: Theme): Theme {
  return stored ?? system;
}

export function otherTheme(t: Theme): Theme {
  return t === 'dark' ? 'light' : 'dark';
}

/** Remembers a pick; false when storage is unavailable (the pick then lasts until reload). */
export function storeTheme(storage: Storage | null | undefined, t: Theme): boolean {
  try {
    if (!storage) return false;
    storage.setItem(THEME_KEY, t);
    return true;
  } catch {
    return false;
  }
}
