import { describe, expect, it } from 'vitest';
import { LANGUAGES, languageInfo, languageKey, starterFor } from './languages';

describe('languageKey', () => {
  it.each([
    ['python', [], 'python'],
    ['cpp', ['c++', 'g++'], 'cpp'],
    ['c++', [], 'cpp'],
    ['g++', [], 'cpp'],
    ['C++', [], 'cpp'],
    ['javascript', ['node'], 'javascript'],
    ['node', [], 'javascript'],
    ['golang', [], 'go'],
    ['sqlite3', [], 'sqlite3'],
    ['lisp', [], 'commonlisp'],
    ['swipl', [], 'prolog'],
    // An unknown name with a known alias is dressed as the alias.
    ['gcc-cpp', ['cpp'], 'cpp'],
    // The name wins over an alias, so Prolog's "pl" alias does not make it Perl.
    ['prolog', ['pl'], 'prolog'],
    ['brainfuck', [], null],
  ])('%s (aliases %j) is %s', (language, aliases, want) => {
    expect(languageKey(language, aliases)).toBe(want);
  });
});

describe('starters', () => {
  // The languages issue 12 ships: each has a label, a mode and a starter.
  const shipped = [
    'python', 'javascript', 'typescript', 'c', 'cpp', 'go', 'rust', 'java', 'kotlin', 'ruby', 'php', 'perl', 'lua', 'bash',
    'r', 'sqlite3', 'pascal', 'fortran', 'ocaml', 'erlang', 'elixir', 'commonlisp', 'prolog', 'racket', 'awk', 'd',
  ];

  it.each(shipped)('%s has a starter that says hello', (lang) => {
    const info = LANGUAGES[lang];
    expect(info, lang).toBeDefined();
    expect(info.label).not.toBe('');
    expect(info.starter).toMatch(/Hello, /);
    expect(info.starter.endsWith('\n')).toBe(true);
  });

  it('reads a name from stdin where that is natural', () => {
    for (const [lang, reads] of Object.entries({
      python: 'stdin',
      c: 'fgets',
      cpp: 'getline',
      go: 'os.Stdin',
      rust: 'read_line',
      java: 'System.in',
      javascript: 'readFileSync(0',
      typescript: 'readFileSync(0',
      ruby: '$stdin',
      bash: 'read -r',
    })) {
      expect(LANGUAGES[lang].starter, lang).toContain(reads);
    }
  });

  it('gives the C++ starter for any of its names, and nothing for an unknown language', () => {
    expect(starterFor('c++')).toBe(LANGUAGES.cpp.starter);
    expect(starterFor('cpp', ['c++'])).toContain('#include <iostream>');
    expect(starterFor('whitespace')).toBe('');
    expect(languageInfo('whitespace')).toBeNull();
  });

  it('keeps Go tab-indented, as gofmt does', () => {
    expect(LANGUAGES.go.indent).toBe(0);
    expect(LANGUAGES.go.starter).toMatch(/\n\tline, _ :=/);
  });
});

describe('modes', () => {
  // Every mode loads (a wrong import path or export name fails here, not in a person's browser).
  it.each(Object.keys(LANGUAGES))('%s loads its mode', async (lang) => {
    const ext = await LANGUAGES[lang].mode();
    expect(ext).toBeTruthy();
  });
});
