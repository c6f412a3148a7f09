// Pure formatting helpers for the output panel and the submissions list.

/** Seconds as "0 ms", "850 ms", "1.25 s", "12.3 s", "2 min 5 s". */
export function formatTime(seconds: number | null | undefined): string {
  if (seconds == null || !Number.isFinite(seconds) || seconds < 0) return '—';
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 10) return `${seconds.toFixed(2)} s`;
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const min = Math.floor(seconds / 60);
  const s = Math.round(seconds - min * 60);
  return `${min} min ${s} s`;
}

/** Peak memory in KiB as "512 KiB", "9.8 MiB", "1.50 GiB". */
export function formatMemory(kib: number | null | undefined): string {
  if (kib == null || !Number.isFinite(kib) || kib < 0) return '—';
  if (kib < 1024) return `${Math.round(kib)} KiB`;
  const mib = kib / 1024;
  if (mib < 10) return `${mib.toFixed(1)} MiB`;
  if (mib < 1024) return `${Math.round(mib)} MiB`;
  return `${(mib / 1024).toFixed(2)} GiB`;
}

const reasonLabels: Record<string, string> = {
  Completed: 'Completed',
  NonZeroExit: 'Non-zero exit',
  Signaled: 'Killed by a signal',
  TimeLimitExceeded: 'Time limit exceeded',
  MemoryLimitExceeded: 'Memory limit exceeded',
  OutputLimitExceeded: 'Output limit exceeded',
  Rejected: 'Rejected',
  CompileError: 'Compile error',
  SystemError: 'System error',
};

/** A reason code ("TimeLimitExceeded") as words ("Time limit exceeded"). */
export function reasonLabel(reason: string | null | undefined): string {
  if (!reason) return 'Unknown';
  return reasonLabels[reason] ?? reason.replace(/([a-z])([A-Z])/g, '$1 $2');
}

export interface OutcomeInput {
  status?: string;
  reason?: string;
  exit_code?: number | null;
  signal?: string;
  message?: string;
}

export interface Outcome {
  ok: boolean;
  /** "Succeeded" or "Failed", for data-status. */
  status: 'Succeeded' | 'Failed';
  title: string;
  detail: string;
}

/** Whether a run succeeded and how to say so. Falls back to the exit code when status is absent. */
export function outcome(r: OutcomeInput): Outcome {
  const ok = r.status ? r.status === 'Succeeded' : r.exit_code === 0 && (!r.reason || r.reason === 'Completed');
  // The server's message says it best; without one, name the exit code or signal.
  const parts: string[] = [];
  if (r.message) parts.push(r.message);
  else if (!ok) {
    if (r.signal) parts.push(`killed by ${r.signal}`);
    else if (r.exit_code != null && r.exit_code !== 0) parts.push(`exit code ${r.exit_code}`);
  }
  return {
    ok,
    status: ok ? 'Succeeded' : 'Failed',
    title: ok ? 'Success' : `Failed: ${reasonLabel(r.reason)}`,
    detail: parts.join(' · '),
  };
}

export interface CompileOutcomeInput {
  reason?: string;
  exit_code?: number | null;
  signal?: string;
}

/**
 * How a compile step ended, for the compile panel: "Compiled", "Compile error" (the compiler
 * refused the program: it exited non-zero) or "Compiler: <reason>" when it was stopped (out
 * of time or memory, killed by a signal).
 */
export function compileOutcome(c: CompileOutcomeInput): { ok: boolean; title: string } {
  if (c.reason === 'Completed' || (!c.reason && c.exit_code === 0)) return { ok: true, title: 'Compiled' };
  if (c.reason === 'NonZeroExit' || (!c.reason && c.exit_code != null)) {
    return { ok: false, title: c.exit_code != null ? `Compile error (exit code ${c.exit_code})` : 'Compile error' };
  }
  const why = c.reason === 'Signaled' && c.signal ? `killed by ${c.signal}` : reasonLabel(c.reason).toLowerCase();
  return { ok: false, title: `Compiler stopped: ${why}` };
}

export interface Segment {
  stream: 'stdout' | 'stderr';
  text: string;
}

function commonPrefix(a: string, ai: number, b: string, bi: number): number {
  let n = 0;
  while (ai + n < a.length && bi + n < b.length && a[ai + n] === b[bi + n]) n++;
  return n;
}

/**
 * Splits the interleaved output into stdout and stderr pieces, so stderr can be styled in place.
 * It takes the longest run that matches the next unread part of either stream; null when the
 * streams don't rebuild the output (truncated output, say), in which case show it unstyled.
 */
export function segmentOutput(output: string, stdout: string, stderr: string): Segment[] | null {
  const segs: Segment[] = [];
  let i = 0;
  let o = 0;
  let e = 0;
  const push = (stream: Segment['stream'], text: string) => {
    const last = segs[segs.length - 1];
    if (last && last.stream === stream) last.text += text;
    else segs.push({ stream, text });
  };
  while (i < output.length) {
    const no = commonPrefix(output, i, stdout, o);
    const ne = commonPrefix(output, i, stderr, e);
    if (no === 0 && ne === 0) return null;
    if (no >= ne) {
      push('stdout', output.slice(i, i + no));
      i += no;
      o += no;
    } else {
      push('stderr', output.slice(i, i + ne));
      i += ne;
      e += ne;
    }
  }
  if (o !== stdout.length || e !== stderr.length) return null;
  return segs;
}

/** An ISO timestamp as a short local date and time. */
export function formatWhen(iso: string, now: Date = new Date()): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const secs = Math.round((now.getTime() - d.getTime()) / 1000);
  if (secs >= 0 && secs < 60) return 'just now';
  if (secs >= 60 && secs < 3600) return `${Math.floor(secs / 60)} min ago`;
  if (secs >= 3600 && secs < 86400) return `${Math.floor(secs / 3600)} h ago`;
  return d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}

/** The first non-blank line of code, shortened, for a list entry. */
export function codePreview(code: string, max = 60): string {
  const line = code.split('\n').find((l) => l.trim() !== '')?.trim() ?? '';
  if (line === '') return '(empty)';
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}
