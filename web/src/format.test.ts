import { describe, expect, it } from 'vitest';
import { codePreview, compileOutcome, formatMemory, formatTime, formatWhen, outcome, reasonLabel, segmentOutput } from './format';

describe('formatTime', () => {
  it.each([
    [0, '0 ms'],
    [0.0421, '42 ms'],
    [0.9994, '999 ms'],
    [1, '1.00 s'],
    [1.234, '1.23 s'],
    [12.345, '12.3 s'],
    [125, '2 min 5 s'],
    [null, '—'],
    [undefined, '—'],
    [Number.NaN, '—'],
    [-1, '—'],
  ])('%s s is %s', (s, want) => {
    expect(formatTime(s)).toBe(want);
  });
});

describe('formatMemory', () => {
  it.each([
    [0, '0 KiB'],
    [512, '512 KiB'],
    [1024, '1.0 MiB'],
    [10035, '9.8 MiB'],
    [262144, '256 MiB'],
    [1572864, '1.50 GiB'],
    [null, '—'],
  ])('%s KiB is %s', (k, want) => {
    expect(formatMemory(k)).toBe(want);
  });
});

describe('outcome', () => {
  it('uses status when given', () => {
    expect(outcome({ status: 'Succeeded', reason: 'Completed', exit_code: 0 })).toEqual({ ok: true, status: 'Succeeded', title: 'Success', detail: '' });
    const f = outcome({ status: 'Failed', reason: 'NonZeroExit', exit_code: 1, message: 'The program exited with code 1.' });
    expect(f.ok).toBe(false);
    expect(f.status).toBe('Failed');
    expect(f.title).toBe('Failed: Non-zero exit');
    expect(f.detail).toBe('The program exited with code 1.');
    expect(outcome({ status: 'Failed', reason: 'NonZeroExit', exit_code: 2 }).detail).toBe('exit code 2');
  });
  it('falls back to exit code and reason (stored submissions have no status)', () => {
    expect(outcome({ exit_code: 0, reason: 'Completed' }).ok).toBe(true);
    expect(outcome({ exit_code: 0 }).ok).toBe(true);
    expect(outcome({ exit_code: 0, reason: 'OutputLimitExceeded' }).ok).toBe(false);
    expect(outcome({ exit_code: null, reason: 'TimeLimitExceeded' }).title).toBe('Failed: Time limit exceeded');
    expect(outcome({ exit_code: null, reason: 'Signaled', signal: 'SIGKILL' }).detail).toBe('killed by SIGKILL');
    expect(outcome({ exit_code: null, reason: 'TimeLimitExceeded' }).detail).toBe('');
  });
});

describe('reasonLabel', () => {
  it('names known and unknown reasons', () => {
    expect(reasonLabel('MemoryLimitExceeded')).toBe('Memory limit exceeded');
    expect(reasonLabel('SomethingNew')).toBe('Something New');
    expect(reasonLabel('')).toBe('Unknown');
  });
});

describe('compileOutcome', () => {
  it.each([
    [{ reason: 'Completed', exit_code: 0 }, true, 'Compiled'],
    [{ reason: 'NonZeroExit', exit_code: 1 }, false, 'Compile error (exit code 1)'],
    [{ reason: 'TimeLimitExceeded', exit_code: null }, false, 'Compiler stopped: time limit exceeded'],
    [{ reason: 'MemoryLimitExceeded', exit_code: null }, false, 'Compiler stopped: memory limit exceeded'],
    [{ reason: 'Signaled', exit_code: null, signal: 'SIGSEGV' }, false, 'Compiler stopped: killed by SIGSEGV'],
    [{ exit_code: 0 }, true, 'Compiled'],
    [{ exit_code: 2 }, false, 'Compile error (exit code 2)'],
  ])('%j is ok=%s, %s', (c, ok, title) => {
    expect(compileOutcome(c)).toEqual({ ok, title });
  });

  it('names the top-level CompileError', () => {
    expect(reasonLabel('CompileError')).toBe('Compile error');
    expect(outcome({ status: 'Failed', reason: 'CompileError', exit_code: 0, message: 'did not compile' }).title).toBe('Failed: Compile error');
    expect(outcome({ reason: 'CompileError', exit_code: 0 }).ok).toBe(false);
  });
});

describe('segmentOutput', () => {
  it('splits stdout then a traceback', () => {
    const out = 'a\nTraceback\nError\n';
    expect(segmentOutput(out, 'a\n', 'Traceback\nError\n')).toEqual([
      { stream: 'stdout', text: 'a\n' },
      { stream: 'stderr', text: 'Traceback\nError\n' },
    ]);
  });
  it('handles interleaving and partial lines', () => {
    const out = 'one\nwarn\ntwo, no newline' + 'boom\n';
    expect(segmentOutput(out, 'one\ntwo, no newline', 'warn\nboom\n')).toEqual([
      { stream: 'stdout', text: 'one\n' },
      { stream: 'stderr', text: 'warn\n' },
      { stream: 'stdout', text: 'two, no newline' },
      { stream: 'stderr', text: 'boom\n' },
    ]);
  });
  it('copes with the same text on both streams', () => {
    const segs = segmentOutput('x\nx\nerr\n', 'x\n', 'x\nerr\n');
    expect(segs?.map((s) => s.text).join('')).toBe('x\nx\nerr\n');
  });
  it('gives only stderr for a syntax error', () => {
    expect(segmentOutput('SyntaxError\n', '', 'SyntaxError\n')).toEqual([{ stream: 'stderr', text: 'SyntaxError\n' }]);
  });
  it('is empty for no output', () => {
    expect(segmentOutput('', '', '')).toEqual([]);
  });
  it('gives up when the streams do not rebuild the output', () => {
    expect(segmentOutput('abc', 'ab', '')).toBeNull();
    expect(segmentOutput('abc', 'abcd', '')).toBeNull();
    expect(segmentOutput('a[truncated]', 'a', '')).toBeNull();
  });
});

describe('formatWhen', () => {
  const now = new Date('2026-06-01T12:00:00Z');
  it('is relative for the last day', () => {
    expect(formatWhen('2026-06-01T11:59:30Z', now)).toBe('just now');
    expect(formatWhen('2026-06-01T11:50:00Z', now)).toBe('10 min ago');
    expect(formatWhen('2026-06-01T09:00:00Z', now)).toBe('3 h ago');
  });
  it('is a date for older ones and leaves bad input alone', () => {
    expect(formatWhen('2026-05-01T09:00:00Z', now)).toMatch(/2026/);
    expect(formatWhen('not a date', now)).toBe('not a date');
  });
});

describe('codePreview', () => {
  it('shows the first non-blank line, shortened', () => {
    expect(codePreview('\n\n  print(1)\nprint(2)')).toBe('print(1)');
    expect(codePreview('   \n')).toBe('(empty)');
    expect(codePreview('x'.repeat(100), 10)).toBe('xxxxxxxxx…');
  });
});
