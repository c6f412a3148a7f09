// The language picker's logic, without React: which languages and versions to offer (from
// GET /runtimes), which one to start with, and what switching does to the editor's code.

import { LANGUAGES, languageInfo, languageKey } from './languages';

/** One Runtime as GET /runtimes lists it. */
export interface RuntimeInfo {
  language: string;
  version: string;
  aliases?: string[];
  display_name?: string;
  compiled?: boolean;
  ready?: boolean;
}

/** What the page runs with: a language and an exact version ("" lets the service pick). */
export interface LanguageChoice {
  language: string;
  version: string;
}

export interface VersionOption {
  version: string;
  /** The Runtime's display name, e.g. "C++ (GCC 14.2.0)". */
  label: string;
}

export interface LanguageOption {
  language: string;
  aliases: string[];
  label: string;
  compiled: boolean;
  /** Newest first. */
  versions: VersionOption[];
}

/**
 * Python with no version: the operator's built-in runner, which runs Python when no Runtime
 * offers it (a cluster without Runtimes, or a front service older than GET /runtimes).
 */
export const BUILTIN_PYTHON: LanguageOption = {
  language: 'python',
  aliases: ['python3', 'py'],
  label: 'Python',
  compiled: false,
  versions: [{ version: '', label: 'Python 3' }],
};

export const DEFAULT_CHOICE: LanguageChoice = { language: 'python', version: '' };

/** Compares two versions as semantic versions (numerically, a prerelease before its release); -1, 0 or 1. */
export function compareVersions(a: string, b: string): number {
  const parse = (v: string) => {
    const [core, pre = ''] = v.replace(/\+.*$/, '').split(/-(.*)/s, 2);
    return { nums: core.split('.').map((n) => Number.parseInt(n, 10) || 0), pre };
  };
  const x = parse(a);
  const y = parse(b);
  for (let i = 0; i < Math.max(x.nums.length, y.nums.length); i++) {
    const d = (x.nums[i] ?? 0) - (y.nums[i] ?? 0);
    if (d !== 0) return Math.sign(d);
  }
  if (x.pre === y.pre) return 0;
  if (x.pre === '') return 1;
  if (y.pre === '') return -1;
  return x.pre < y.pre ? -1 : 1;
}

/**
 * The languages to offer: one entry per language of the Ready Runtimes, its versions newest
 * first, sorted by label. Python is always there: when no Runtime (Ready or not) has the
 * language python, the built-in one is. runtimes null (not listed: an older service, or the
 * list failed) offers the built-in Python alone.
 */
export function pickerOptions(runtimes: readonly RuntimeInfo[] | null): LanguageOption[] {
  const byLanguage = new Map<string, LanguageOption>();
  for (const rt of runtimes ?? []) {
    if (!rt.ready || !rt.language) continue;
    let opt = byLanguage.get(rt.language);
    if (!opt) {
      const aliases = rt.aliases ?? [];
      opt = {
        language: rt.language,
        aliases,
        label: languageInfo(rt.language, aliases)?.label ?? stripVersion(rt.display_name) ?? rt.language,
        compiled: !!rt.compiled,
        versions: [],
      };
      byLanguage.set(rt.language, opt);
    }
    if (!opt.versions.some((v) => v.version === rt.version)) {
      opt.versions.push({ version: rt.version, label: rt.display_name || `${opt.label} ${rt.version}` });
    }
  }
  const options = [...byLanguage.values()];
  for (const o of options) o.versions.sort((a, b) => compareVersions(b.version, a.version));
  if (!(runtimes ?? []).some((rt) => rt.language === 'python')) options.push(BUILTIN_PYTHON);
  return options.sort((a, b) => a.label.localeCompare(b.label, 'en', { sensitivity: 'base' }));
}

// "C++ (GCC 14.2.0)" → "C++"; a display name with no version in brackets is kept.
function stripVersion(display: string | undefined): string | undefined {
  if (!display) return undefined;
  return display.replace(/\s*\([^)]*\)\s*$/, '') || display;
}

/** The option for a language name or alias, or undefined. */
export function findOption(options: readonly LanguageOption[], language: string): LanguageOption | undefined {
  const name = language.trim().toLowerCase();
  if (name === '') return undefined;
  const exact = options.find((o) => o.language === name) ?? options.find((o) => o.aliases.includes(name));
  if (exact) return exact;
  // A name the page maps to the same language (python3 for a Runtime named python).
  const key = languageKey(name);
  return key ? options.find((o) => languageKey(o.language, o.aliases) === key) : undefined;
}

export interface Resolved {
  choice: LanguageChoice;
  /** Why the choice differs from what was wanted, in a sentence; undefined when it does not. */
  problem?: string;
}

/**
 * What to run with, given what is wanted (the last choice, a snippet's or a submission's
 * language): the wanted language and version when offered; its newest version when that
 * version is gone; else the default (Python).
 */
export function resolveChoice(options: readonly LanguageOption[], wanted: LanguageChoice | null): Resolved {
  const fallback = (): LanguageChoice => {
    const py = findOption(options, 'python') ?? options[0];
    return py ? { language: py.language, version: py.versions[0]?.version ?? '' } : DEFAULT_CHOICE;
  };
  if (!wanted || wanted.language === '') return { choice: fallback() };
  const opt = findOption(options, wanted.language);
  if (!opt) {
    const choice = fallback();
    const name = languageInfo(wanted.language)?.label ?? wanted.language;
    return { choice, problem: `${name} is not available here, so ${findOption(options, choice.language)?.label ?? choice.language} is selected instead.` };
  }
  const newest = opt.versions[0]?.version ?? '';
  if (wanted.version === '' || opt.versions.some((v) => v.version === wanted.version)) {
    return { choice: { language: opt.language, version: wanted.version === '' ? newest : wanted.version } };
  }
  return {
    choice: { language: opt.language, version: newest },
    problem: `${opt.label} ${wanted.version} is not available here, so ${opt.label} ${newest} is selected instead.`,
  };
}

export function sameChoice(a: LanguageChoice, b: LanguageChoice): boolean {
  return a.language === b.language && a.version === b.version;
}

// Compared without trailing white space and with \n line ends, as the editor may leave them.
const norm = (s: string) => s.replace(/\r\n?/g, '\n').replace(/\s+$/, '');
const starters = new Set(Object.values(LANGUAGES).map((l) => norm(l.starter)));

/**
 * Whether switching language may replace the editor's code with the new language's starter:
 * only when the code is empty or still some language's untouched starter. Code the user
 * wrote or pasted is never replaced without asking (App offers the starter instead).
 */
export function mayReplaceCode(code: string): boolean {
  const c = norm(code);
  return c === '' || starters.has(c);
}
