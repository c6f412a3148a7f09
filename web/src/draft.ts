// The draft: the code, its input and the language and version picked, kept in localStorage
// so that a reload (or the next visit) opens where the person left off.

import { DEFAULT_CHOICE, type LanguageChoice } from './picker';

export const DRAFT_KEY = 'coderun-draft';

export interface Draft extends LanguageChoice {
  code: string;
  stdin: string;
}

type Storage = Pick<globalThis.Storage, 'getItem' | 'setItem'>;

/**
 * The stored draft, or null when there is none (or storage is off, or it is junk). A draft
 * from before the language picker has no language: it was Python.
 */
export function loadDraft(storage: Storage | null | undefined): Draft | null {
  try {
    const raw = storage?.getItem(DRAFT_KEY);
    if (!raw) return null;
    const d = JSON.parse(raw) as Partial<Record<keyof Draft, unknown>>;
    if (typeof d !== 'object' || d === null || typeof d.code !== 'string') return null;
    const language = typeof d.language === 'string' && d.language !== '' ? d.language : DEFAULT_CHOICE.language;
    return {
      code: d.code,
      stdin: typeof d.stdin === 'string' ? d.stdin : '',
      language,
      version: typeof d.version === 'string' ? d.version : '',
    };
  } catch {
    return null; // storage disabled (private mode, sandboxed frame) or not JSON
  }
}

/** Keeps the draft; false when storage is unavailable or full. */
export function saveDraft(storage: Storage | null | undefined, d: Draft): boolean {
  try {
    if (!storage) return false;
    storage.setItem(DRAFT_KEY, JSON.stringify({ code: d.code, stdin: d.stdin, language: d.language, version: d.version }));
    return true;
  } catch {
    return false;
  }
}
