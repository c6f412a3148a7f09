import { describe, expect, it } from 'vitest';
import { LANGUAGES } from './languages';
import { BUILTIN_PYTHON, compareVersions, findOption, mayReplaceCode, pickerOptions, resolveChoice, type RuntimeInfo } from './picker';

const rt = (language: string, version: string, extra: Partial<RuntimeInfo> = {}): RuntimeInfo => ({
  language,
  version,
  aliases: [],
  display_name: `${language} ${version}`,
  compiled: false,
  ready: true,
  ...extra,
});

const cluster: RuntimeInfo[] = [
  rt('python', '3.13.5', { aliases: ['python3', 'py'] }),
  rt('cpp', '14.2.0', { aliases: ['c++', 'g++'], display_name: 'C++ (GCC 14.2.0)', compiled: true }),
  rt('java', '17.0.16'),
  rt('java', '21.0.8'),
  rt('java', '21.0.10'),
  rt('kotlin', '1.3.31', { ready: false }),
  rt('whitespace', '0.3.0', { display_name: 'Whitespace (wspace 0.3)' }),
];

describe('compareVersions', () => {
  it.each([
    ['1.2.3', '1.2.3', 0],
    ['21.0.10', '21.0.8', 1],
    ['3.9.0', '3.13.0', -1],
    ['1.0.0-rc.1', '1.0.0', -1],
    ['1.0.0', '1.0.0-rc.1', 1],
    ['1.0.0+build.5', '1.0.0', 0],
  ])('%s vs %s is %d', (a, b, want) => {
    expect(compareVersions(a, b)).toBe(want);
  });
});

describe('pickerOptions', () => {
  const options = pickerOptions(cluster);

  it('offers only Ready runtimes, one entry per language, sorted by label', () => {
    expect(options.map((o) => o.label)).toEqual(['C++', 'Java', 'Python', 'Whitespace']);
    expect(findOption(options, 'kotlin')).toBeUndefined();
  });

  it('lists versions newest first, by their display names', () => {
    expect(findOption(options, 'java')?.versions.map((v) => v.version)).toEqual(['21.0.10', '21.0.8', '17.0.16']);
    expect(findOption(options, 'cpp')?.versions).toEqual([{ version: '14.2.0', label: 'C++ (GCC 14.2.0)' }]);
    expect(findOption(options, 'cpp')?.compiled).toBe(true);
  });

  it('names a language the page does not know by its display name without the version', () => {
    expect(findOption(options, 'whitespace')?.label).toBe('Whitespace');
  });

  it('offers the built-in Python when no Runtime has Python, or when there is no list', () => {
    expect(pickerOptions(null)).toEqual([BUILTIN_PYTHON]);
    expect(pickerOptions([])).toEqual([BUILTIN_PYTHON]);
    expect(pickerOptions([rt('go', '1.24.4')]).map((o) => o.language)).toEqual(['go', 'python']);
  });

  it('does not offer Python when its Runtime exists but is not Ready (runs would be refused)', () => {
    expect(pickerOptions([rt('python', '3.13.5', { ready: false }), rt('go', '1.24.4')]).map((o) => o.language)).toEqual(['go']);
  });

  it('finds a language by name, alias or a name the page maps to it', () => {
    expect(findOption(options, 'c++')?.language).toBe('cpp');
    expect(findOption(options, 'CPP')?.language).toBe('cpp');
    expect(findOption(options, 'python3')?.language).toBe('python');
    expect(findOption(options, 'g++')?.language).toBe('cpp');
    expect(findOption(options, '')).toBeUndefined();
  });
});

describe('resolveChoice', () => {
  const options = pickerOptions(cluster);

  it('keeps an offered language and version', () => {
    expect(resolveChoice(options, { language: 'java', version: '17.0.16' })).toEqual({ choice: { language: 'java', version: '17.0.16' } });
  });

  it('takes the newest version when none is given, quietly', () => {
    expect(resolveChoice(options, { language: 'java', version: '' })).toEqual({ choice: { language: 'java', version: '21.0.10' } });
    expect(resolveChoice(options, null)).toEqual({ choice: { language: 'python', version: '3.13.5' } });
  });

  it('takes the newest version, and says so, when the version asked for is gone', () => {
    const r = resolveChoice(options, { language: 'java', version: '11.0.2' });
    expect(r.choice).toEqual({ language: 'java', version: '21.0.10' });
    expect(r.problem).toBe('Java 11.0.2 is not available here, so Java 21.0.10 is selected instead.');
  });

  it('falls back to Python, and says so, for a language not offered (or not Ready)', () => {
    const r = resolveChoice(options, { language: 'kotlin', version: '1.3.31' });
    expect(r.choice).toEqual({ language: 'python', version: '3.13.5' });
    expect(r.problem).toBe('Kotlin is not available here, so Python is selected instead.');
  });

  it('maps an alias to its language', () => {
    expect(resolveChoice(options, { language: 'c++', version: '' }).choice).toEqual({ language: 'cpp', version: '14.2.0' });
  });

  it('keeps the built-in Python with no version', () => {
    expect(resolveChoice(pickerOptions(null), { language: 'python', version: '' })).toEqual({ choice: { language: 'python', version: '' } });
  });
});

describe('mayReplaceCode', () => {
  it('replaces nothing or an untouched starter of any language', () => {
    expect(mayReplaceCode('')).toBe(true);
    expect(mayReplaceCode('  \n')).toBe(true);
    expect(mayReplaceCode(LANGUAGES.python.starter)).toBe(true);
    expect(mayReplaceCode(LANGUAGES.cpp.starter + '\n\n')).toBe(true);
    expect(mayReplaceCode(LANGUAGES.go.starter.replace(/\n/g, '\r\n'))).toBe(true);
  });

  it('keeps code the person wrote or changed', () => {
    expect(mayReplaceCode("print('mine')")).toBe(false);
    expect(mayReplaceCode(LANGUAGES.python.starter.replace('World', 'there'))).toBe(false);
  });
});
