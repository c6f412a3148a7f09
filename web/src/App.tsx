import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { Api, ApiError, snippetIdFromPath, type CompileResult, type RunRequest, type RunResult, type Submission, type SubmissionPage } from './api';
import { forgetKey, keyProblem, storedKey, storeKey } from './apikey';
import { loadDraft, saveDraft } from './draft';
import { Editor, type EditorHandle } from './Editor';
import { codePreview, compileOutcome, formatMemory, formatTime, formatWhen, outcome, reasonLabel, segmentOutput } from './format';
import { LANGUAGES, languageInfo, starterFor } from './languages';
import {
  DEFAULT_CHOICE,
  findOption,
  mayReplaceCode,
  pickerOptions,
  resolveChoice,
  sameChoice,
  type LanguageChoice,
  type LanguageOption,
  type RuntimeInfo,
} from './picker';
import { chooseTheme, otherTheme, storeTheme, storedTheme, systemTheme, type Theme } from './theme';

// The key typed into the page, if the service asked for one (a 401), is read at each request.
const api = new Api(undefined, '', () => storedKey(safeLocalStorage()));
const isMac = typeof navigator !== 'undefined' && /Mac|iPhone|iPad/.test(navigator.platform || navigator.userAgent);
const MOD = isMac ? '⌘' : 'Ctrl';
const PER_PAGE = 10;

type Shown =
  | { kind: 'result'; result: RunResult; source: 'run' | 'submit' | 'submission'; submissionId?: number }
  | { kind: 'error'; error: ApiError; action: string };

type OutputView = 'all' | 'stdout' | 'stderr';

/** The request for the editor's code in the chosen language (no version: the newest). */
function runRequest(code: string, stdin: string, choice: LanguageChoice): RunRequest {
  return { code, stdin, language: choice.language, ...(choice.version ? { version: choice.version } : {}) };
}

function toError(e: unknown): ApiError {
  if (e instanceof ApiError) return e;
  return new ApiError(e instanceof Error ? e.message : String(e), 0);
}

function submissionAsResult(s: Submission): RunResult {
  return {
    output: s.output,
    stdout: s.stdout,
    stderr: s.stderr,
    time: s.time,
    memory: s.memory,
    exit_code: s.exit_code,
    reason: s.reason,
    name: s.name,
    language: s.language,
    version: s.version,
    // A saved submission compiled (it ran); only the compiler's words are kept.
    compile: s.compile_output ? { output: s.compile_output, stdout: '', stderr: '', exit_code: 0, reason: 'Completed' } : null,
  };
}

/** A language name as the page shows it ("cpp" → "C++"). */
function labelOf(language: string): string {
  return languageInfo(language)?.label ?? language;
}

export function App() {
  const snippetId = useMemo(() => snippetIdFromPath(window.location.pathname), []);
  // A first visit starts with Python's starter; later ones with the draft (and its language).
  const initial = useMemo(
    () =>
      snippetId
        ? { code: '', stdin: '', ...DEFAULT_CHOICE }
        : (loadDraft(safeLocalStorage()) ?? { code: LANGUAGES.python.starter, stdin: '', ...DEFAULT_CHOICE }),
    [snippetId],
  );
  const editor = useRef<EditorHandle>(null);
  const [code, setCode] = useState(initial.code);
  const [stdin, setStdin] = useState(initial.stdin);
  const [choice, setChoice] = useState<LanguageChoice>({ language: initial.language, version: initial.version });

  // Theme
  const [stored, setStored] = useState<Theme | null>(() => storedTheme(safeLocalStorage()));
  const [system, setSystem] = useState<Theme>(() => systemTheme(window.matchMedia?.bind(window)));
  const theme = chooseTheme(stored, system);
  useEffect(() => {
    document.documentElement.dataset.theme = theme;
  }, [theme]);
  useEffect(() => {
    const mq = window.matchMedia?.('(prefers-color-scheme: dark)');
    if (!mq) return;
    const on = () => setSystem(mq.matches ? 'dark' : 'light');
    mq.addEventListener('change', on);
    return () => mq.removeEventListener('change', on);
  }, []);
  const toggleTheme = () => {
    const next = otherTheme(theme);
    storeTheme(safeLocalStorage(), next);
    setStored(next);
  };

  // Keep the draft, with the language picked, across reloads.
  useEffect(() => {
    if (snippetId && code === '' && stdin === '') return;
    const id = setTimeout(() => saveDraft(safeLocalStorage(), { code, stdin, ...choice }), 300);
    return () => clearTimeout(id);
  }, [code, stdin, choice, snippetId]);

  // A notice above the editor: a loaded snippet or submission, or why it could not load.
  const [notice, setNotice] = useState<{ text: string; error?: boolean } | null>(null);
  useEffect(() => {
    if (!snippetId) return;
    setNotice({ text: 'Loading the shared snippet…' });
    api
      .snippet(snippetId)
      .then((s) => {
        editor.current?.setValue(s.code);
        setCode(s.code);
        setStdin(s.stdin ?? '');
        setChoice({ language: s.language || DEFAULT_CHOICE.language, version: s.version ?? '' });
        setNotice({ text: `Loaded a shared ${labelOf(s.language || DEFAULT_CHOICE.language)} snippet.` });
      })
      .catch((e: unknown) => {
        const err = toError(e);
        if (err.status === 401) setKeyAsked(true);
        setNotice({
          text: err.status === 404 ? 'This shared snippet does not exist (it may have been deleted).' : `Could not load the shared snippet: ${err.message}`,
          error: true,
        });
      });
  }, [snippetId]);

  // Languages: the cluster's Ready Runtimes (GET /runtimes). undefined while they load, null
  // when the service lists none (older than GET /runtimes, or the list failed): Python only.
  const [runtimes, setRuntimes] = useState<RuntimeInfo[] | null | undefined>(undefined);
  const loadRuntimes = useCallback(async () => {
    try {
      // A front service that just started answers 503 until it has listed the Runtimes:
      // wait as it says (a few times) rather than offer Python alone.
      for (let attempt = 1; ; attempt++) {
        try {
          setRuntimes(await api.runtimes());
          return;
        } catch (e) {
          const err = toError(e);
          if (err.status !== 503 || attempt >= 5) throw err;
          await new Promise((r) => setTimeout(r, Math.min(err.retryAfter ?? 2, 10) * 1000));
        }
      }
    } catch (e) {
      const err = toError(e);
      if (err.status === 401) setKeyAsked(true);
      setRuntimes(null);
      setNotice({ text: `Could not load the list of languages (${err.message}); only Python is offered.`, error: true });
    }
  }, []);
  useEffect(() => {
    void loadRuntimes();
  }, [loadRuntimes]);
  const options = useMemo(() => pickerOptions(runtimes ?? null), [runtimes]);
  // Once the list is in, the choice (the draft's, a snippet's, a submission's) must be one it
  // offers: else the newest version of the language, or Python, and a notice says so.
  useEffect(() => {
    if (runtimes === undefined) return;
    const r = resolveChoice(options, choice);
    if (sameChoice(r.choice, choice)) return;
    setChoice(r.choice);
    const problem = r.problem;
    if (problem) setNotice((n) => ({ text: n && !n.error && n.text.startsWith('Loaded') ? `${n.text} ${problem}` : problem, error: true }));
  }, [runtimes, options, choice]);
  const current: LanguageOption | undefined = findOption(options, choice.language);
  // Offered after a switch that kept the user's code: the new language's starter, one click away.
  const [offer, setOffer] = useState<{ language: string; label: string; starter: string } | null>(null);
  const switchLanguage = (language: string, version?: string) => {
    const opt = findOption(options, language);
    if (!opt) return;
    const next = { language: opt.language, version: version ?? opt.versions[0]?.version ?? '' };
    if (sameChoice(next, choice)) return;
    setChoice(next);
    if (next.language === choice.language) return; // another version: same language, same code
    setOffer(null);
    const starter = starterFor(opt.language, opt.aliases);
    // An untouched starter (or nothing) gives way to the new language's starter. Code the
    // person wrote or pasted stays: they may well have pasted it and then picked its
    // language, and a switch must never lose work. The starter is offered instead.
    if (mayReplaceCode(codeRef.current)) {
      editor.current?.setValue(starter);
      setCode(starter);
    } else if (starter !== '') {
      setOffer({ language: opt.language, label: opt.label, starter });
    }
  };
  const applyStarter = () => {
    if (!offer) return;
    // One undoable change: Ctrl/Cmd+Z in the editor brings the code back.
    editor.current?.setValue(offer.starter);
    setCode(offer.starter);
    setOffer(null);
    editor.current?.focus();
  };

  // API key: asked for when the service answers 401, kept in localStorage.
  const [hasKey, setHasKey] = useState(() => storedKey(safeLocalStorage()) !== null);
  const [keyAsked, setKeyAsked] = useState(false);
  const [keyInput, setKeyInput] = useState('');
  const [keyError, setKeyError] = useState<string | null>(null);
  const saveKey = (e: React.FormEvent) => {
    e.preventDefault();
    const k = keyInput.trim();
    const problem = keyProblem(k);
    if (problem) {
      setKeyError(problem);
      return;
    }
    if (!storeKey(safeLocalStorage(), k)) {
      setKeyError('This browser does not let the page keep the key (storage is off).');
      return;
    }
    setKeyInput('');
    setKeyError(null);
    setKeyAsked(false);
    setHasKey(true);
    setNotice({ text: 'Key saved in this browser. Run again.' });
    void loadRuntimes();
    void loadSubmissions(1);
  };
  const dropKey = () => {
    forgetKey(safeLocalStorage());
    setHasKey(false);
    setNotice({ text: 'Key forgotten.' });
    void loadSubmissions(1);
  };

  // Running
  const [busy, setBusy] = useState<null | 'run' | 'submit'>(null);
  const [elapsed, setElapsed] = useState(0);
  const [shown, setShown] = useState<Shown | null>(null);
  // How many results have been shown: data-run on the status, so a test can wait for the next one.
  const [shownCount, setShownCount] = useState(0);
  useEffect(() => {
    if (shown) setShownCount((n) => n + 1);
  }, [shown]);
  const [view, setView] = useState<OutputView>('all');
  const abort = useRef<AbortController | null>(null);
  const outputPane = useRef<HTMLElement>(null);
  // On one-column layouts the output is below the editor: bring it into view when a run starts.
  useEffect(() => {
    if (!busy || !outputPane.current) return;
    if (!window.matchMedia?.('(max-width: 860px)').matches) return;
    const r = outputPane.current.getBoundingClientRect();
    if (r.top > window.innerHeight * 0.6 || r.bottom < 0) outputPane.current.scrollIntoView({ block: 'start', behavior: 'smooth' });
  }, [busy]);

  useEffect(() => {
    if (!busy) return;
    const start = performance.now();
    setElapsed(0);
    const id = setInterval(() => setElapsed((performance.now() - start) / 1000), 100);
    return () => clearInterval(id);
  }, [busy]);

  const codeRef = useRef(code);
  codeRef.current = code;
  // An edit reaches codeRef at once, not at the next render: Ctrl+Enter right after a
  // keystroke runs exactly what the editor shows.
  const onCodeChange = useCallback((c: string) => {
    codeRef.current = c;
    setCode(c);
  }, []);
  const stdinRef = useRef(stdin);
  stdinRef.current = stdin;
  const busyRef = useRef(busy);
  busyRef.current = busy;
  const choiceRef = useRef(choice);
  choiceRef.current = choice;

  const run = useCallback(async (mode: 'run' | 'submit') => {
    if (busyRef.current) return;
    if (codeRef.current.trim() === '') {
      setShown({ kind: 'error', error: new ApiError('Write some code first.', 400), action: mode === 'run' ? 'Run' : 'Submit' });
      return;
    }
    const ctl = new AbortController();
    abort.current = ctl;
    busyRef.current = mode;
    setBusy(mode);
    const req = runRequest(codeRef.current, stdinRef.current, choiceRef.current);
    try {
      const result = mode === 'run' ? await api.execute(req, ctl.signal) : await api.submit(req, ctl.signal);
      setShown({ kind: 'result', result, source: mode, submissionId: result.submission_id });
      setView('all');
      if (mode === 'submit' && result.submission_id != null && result.submission_id > 0) {
        void loadSubmissions(1);
      }
    } catch (e) {
      if (e instanceof DOMException && e.name === 'AbortError') {
        setShown({ kind: 'error', error: new ApiError('Cancelled. The run was stopped.', 0), action: mode === 'run' ? 'Run' : 'Submit' });
      } else {
        const err = toError(e);
        if (err.status === 401) setKeyAsked(true);
        setShown({ kind: 'error', error: err, action: mode === 'run' ? 'Run' : 'Submit' });
      }
    } finally {
      abort.current = null;
      busyRef.current = null;
      setBusy(null);
    }
    // loadSubmissions is stable
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);
  const runCode = useCallback(() => void run('run'), [run]);

  // Ctrl/Cmd+Enter runs from anywhere on the page (the editor handles it itself first).
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (e.key === 'Enter' && (e.ctrlKey || e.metaKey) && !e.defaultPrevented) {
        e.preventDefault();
        runCode();
      }
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [runCode]);

  // Ctrl/Cmd+Enter also runs from the stdin box.
  const onStdinKey = (e: React.KeyboardEvent) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      runCode();
    }
  };

  // Sharing
  const [share, setShare] = useState<{
    state: 'saving' | 'saved' | 'error';
    url?: string;
    copied?: boolean;
    error?: string;
    code?: string;
    stdin?: string;
    choice?: LanguageChoice;
  } | null>(null);
  // A link is for the code it saved: hide it once the code, input or language changes.
  useEffect(() => {
    if (share?.state === 'saved' && (share.code !== code || share.stdin !== stdin || !share.choice || !sameChoice(share.choice, choice))) setShare(null);
  }, [code, stdin, choice, share]);
  const doShare = async () => {
    setShare({ state: 'saving' });
    try {
      const sharedChoice = choiceRef.current;
      const req = runRequest(codeRef.current, stdinRef.current, sharedChoice);
      const saved = await api.saveSnippet(req);
      const url = new URL(saved.url || `/s/${saved.id}`, window.location.origin).href;
      let copied = false;
      try {
        if (navigator.clipboard && window.isSecureContext) {
          await navigator.clipboard.writeText(url);
          copied = true;
        }
      } catch {
        copied = false;
      }
      setShare({ state: 'saved', url, copied, code: req.code, stdin: req.stdin, choice: sharedChoice });
    } catch (e) {
      const err = toError(e);
      if (err.status === 401) setKeyAsked(true);
      setShare({ state: 'error', error: err.message });
    }
  };

  // Submissions
  const [subs, setSubs] = useState<{ page: number; data?: SubmissionPage; loading: boolean; error?: string }>({ page: 1, loading: true });
  const loadSubmissions = useCallback(async (page: number) => {
    setSubs((s) => ({ ...s, page, loading: true, error: undefined }));
    try {
      const data = await api.submissions(page, PER_PAGE);
      setSubs({ page, data, loading: false });
    } catch (e) {
      const err = toError(e);
      if (err.status === 401) setKeyAsked(true);
      setSubs((s) => ({ ...s, page, loading: false, error: err.message }));
    }
  }, []);
  useEffect(() => {
    void loadSubmissions(1);
  }, [loadSubmissions]);

  const openSubmission = (s: Submission) => {
    editor.current?.setValue(s.code);
    setCode(s.code);
    setStdin(s.stdin ?? '');
    setChoice({ language: s.language || DEFAULT_CHOICE.language, version: s.version ?? '' });
    setOffer(null);
    setShown({ kind: 'result', result: submissionAsResult(s), source: 'submission', submissionId: s.id });
    setView('all');
    setNotice({ text: `Opened submission #${s.id}.` });
    editor.current?.focus();
  };

  const totalPages = subs.data ? Math.max(1, Math.ceil(subs.data.total / (subs.data.per_page || PER_PAGE))) : 1;

  return (
    <div className="app">
      <header className="topbar">
        <h1 className="brand">
          <span className="brand-mark" aria-hidden="true">
            ▶
          </span>
          coderun
        </h1>
        <p className="tagline">Run code in a sandbox on Kubernetes</p>
        <button
          type="button"
          className="btn ghost theme-toggle"
          onClick={toggleTheme}
          aria-label={theme === 'dark' ? 'Switch to light theme' : 'Switch to dark theme'}
          title={theme === 'dark' ? 'Switch to light theme' : 'Switch to dark theme'}
          data-testid="theme-toggle"
        >
          <span aria-hidden="true">{theme === 'dark' ? '☀' : '☾'}</span>
          <span className="theme-label">{theme === 'dark' ? 'Light' : 'Dark'}</span>
        </button>
        {hasKey && (
          <button type="button" className="btn ghost" onClick={dropKey} title="Forget the API key kept in this browser" data-testid="forget-key">
            Forget key
          </button>
        )}
      </header>
      {keyAsked && (
        <form className="key-prompt" onSubmit={saveKey} aria-labelledby="key-heading" data-testid="key-prompt">
          <h2 id="key-heading" className="pane-title">
            {hasKey ? 'The API key kept in this browser was refused' : 'This coderun needs an API key'}
          </h2>
          <label htmlFor="api-key">Key (kept in this browser, sent as Authorization: Bearer)</label>
          <input
            id="api-key"
            type="password"
            autoComplete="off"
            spellCheck={false}
            value={keyInput}
            onChange={(e) => setKeyInput(e.target.value)}
            aria-invalid={keyError !== null}
            aria-describedby={keyError ? 'api-key-error' : undefined}
            data-testid="api-key"
          />
          <button type="submit" className="btn primary" data-testid="save-key">
            Save key
          </button>
          {keyError && (
            <p id="api-key-error" className="key-error" role="alert">
              {keyError}
            </p>
          )}
        </form>
      )}

      <main className="layout">
        <section className="pane code-pane" aria-labelledby="code-heading">
          <div className="toolbar">
            <h2 id="code-heading" className="pane-title">
              Code
            </h2>
            <div className="actions">
              <button
                type="button"
                className="btn primary"
                onClick={runCode}
                disabled={busy !== null}
                aria-keyshortcuts="Control+Enter Meta+Enter"
                title={`Run (${MOD}+Enter)`}
                data-testid="run"
              >
                {busy === 'run' ? <span className="spinner" aria-hidden="true" /> : <span aria-hidden="true">▶</span>}
                Run
              </button>
              <button type="button" className="btn" onClick={() => void run('submit')} disabled={busy !== null} title="Run and save as a submission" data-testid="submit">
                {busy === 'submit' ? <span className="spinner" aria-hidden="true" /> : null}
                Submit
              </button>
              <button type="button" className="btn" onClick={() => void doShare()} disabled={share?.state === 'saving'} title="Save a link to this code" data-testid="share">
                Share
              </button>
            </div>
          </div>
          <div className="picker" data-testid="picker">
            <label htmlFor="language">Language</label>
            <select
              id="language"
              value={choice.language}
              onChange={(e) => switchLanguage(e.target.value)}
              disabled={runtimes === undefined}
              aria-busy={runtimes === undefined}
              data-testid="language"
            >
              {runtimes === undefined ? (
                // While the list loads, the language of the draft (or snippet) stands alone.
                <option value={choice.language}>{labelOf(choice.language)}</option>
              ) : (
                options.map((o) => (
                  <option key={o.language} value={o.language}>
                    {o.label}
                  </option>
                ))
              )}
            </select>
            {current && current.versions.length > 1 ? (
              <>
                <label htmlFor="version">Version</label>
                <select id="version" value={choice.version} onChange={(e) => switchLanguage(choice.language, e.target.value)} data-testid="version">
                  {current.versions.map((v) => (
                    <option key={v.version} value={v.version}>
                      {v.label}
                    </option>
                  ))}
                </select>
              </>
            ) : current && runtimes !== undefined ? (
              <span className="lang" data-testid="runtime-name">
                {current.versions[0]?.label}
              </span>
            ) : null}
            {current?.compiled && <span className="hint compiled-hint">compiled before it runs</span>}
          </div>
          {offer && offer.language === choice.language && (
            <p className="notice" role="status" data-testid="starter-offer">
              Your code was kept.
              <button type="button" className="btn small" onClick={applyStarter} data-testid="use-starter">
                Replace it with the {offer.label} starter
              </button>
              <button type="button" className="link-btn" onClick={() => setOffer(null)} aria-label="Dismiss">
                ×
              </button>
            </p>
          )}
          {notice && (
            <p className={`notice${notice.error ? ' error' : ''}`} role={notice.error ? 'alert' : 'status'} data-testid="notice">
              {notice.text}
              <button type="button" className="link-btn" onClick={() => setNotice(null)} aria-label="Dismiss notice">
                ×
              </button>
            </p>
          )}
          {share && (
            <div className={`share${share.state === 'error' ? ' error' : ''}`} data-testid="share-box" role="status">
              {share.state === 'saving' && <span>Saving a link…</span>}
              {share.state === 'error' && <span>Could not share: {share.error}</span>}
              {share.state === 'saved' && share.url && (
                <>
                  <label htmlFor="share-link">{share.copied ? 'Link copied:' : 'Copy this link:'}</label>
                  <input id="share-link" readOnly value={share.url} onFocus={(e) => e.currentTarget.select()} data-testid="share-link" />
                  <a href={share.url} target="_blank" rel="noreferrer">
                    Open
                  </a>
                </>
              )}
            </div>
          )}
          <div className="editor-wrap">
            <Editor ref={editor} initialValue={initial.code} language={choice.language} aliases={current?.aliases} onChange={onCodeChange} onRun={runCode} />
          </div>
          <label className="field-label" htmlFor="stdin">
            Input (stdin)
          </label>
          <textarea
            id="stdin"
            className="stdin"
            value={stdin}
            onChange={(e) => setStdin(e.target.value)}
            onKeyDown={onStdinKey}
            rows={3}
            spellCheck={false}
            placeholder="Text your program reads from standard input"
            data-testid="stdin"
          />
          <p className="hint">
            <kbd>{MOD}</kbd>+<kbd>Enter</kbd> runs · <kbd>Esc</kbd> then <kbd>Tab</kbd> leaves the editor
          </p>
        </section>

        <section className="pane output-pane" aria-labelledby="output-heading" ref={outputPane}>
          <div className="toolbar">
            <h2 id="output-heading" className="pane-title">
              Output
            </h2>
            {busy && (
              <button type="button" className="btn ghost small" onClick={() => abort.current?.abort()} data-testid="cancel">
                Cancel
              </button>
            )}
          </div>
          <OutputPanel busy={busy} elapsed={elapsed} shown={shown} count={shownCount} view={view} setView={setView} />
        </section>

        <section className="pane subs-pane" aria-labelledby="subs-heading">
          <div className="toolbar">
            <h2 id="subs-heading" className="pane-title">
              Submissions {subs.data ? <span className="count">{subs.data.total}</span> : null}
            </h2>
            <button type="button" className="btn ghost small" onClick={() => void loadSubmissions(subs.page)} disabled={subs.loading} data-testid="refresh-submissions">
              Refresh
            </button>
          </div>
          {subs.error && (
            <p className="notice error" role="alert">
              Could not load submissions: {subs.error}
            </p>
          )}
          {subs.data && subs.data.submissions.length === 0 && <p className="empty">No submissions yet. Submit a run that succeeds to save it here.</p>}
          {subs.data && subs.data.submissions.length > 0 && (
            <ul className="subs" data-testid="submissions" aria-busy={subs.loading}>
              {subs.data.submissions.map((s) => {
                const oc = outcome({ exit_code: s.exit_code, reason: s.reason });
                return (
                  <li key={s.id}>
                    {/* The button is named by what it shows (speech input users say what they
                        see: axe's label-content-name-mismatch); the title says what it does. */}
                    <button type="button" className="sub" onClick={() => openSubmission(s)} title={`Open submission #${s.id} in the editor`} data-testid={`submission-${s.id}`}>
                      <span className="sub-id">#{s.id}</span>
                      <code className="sub-code">{codePreview(s.code)}</code>
                      <span className="sub-meta">
                        <span className={`dot ${oc.ok ? 'ok' : 'bad'}`} aria-hidden="true" />
                        {oc.ok ? 'OK' : reasonLabel(s.reason)} · {formatTime(s.time)} · {formatMemory(s.memory)} · {formatWhen(s.created_at)} ·{' '}
                        {labelOf(s.language || DEFAULT_CHOICE.language)}
                      </span>
                    </button>
                  </li>
                );
              })}
            </ul>
          )}
          {subs.data && totalPages > 1 && (
            <nav className="pager" aria-label="Submission pages">
              <button type="button" className="btn small" disabled={subs.page <= 1 || subs.loading} onClick={() => void loadSubmissions(subs.page - 1)}>
                Newer
              </button>
              <span>
                Page {subs.page} of {totalPages}
              </span>
              <button type="button" className="btn small" disabled={subs.page >= totalPages || subs.loading} onClick={() => void loadSubmissions(subs.page + 1)}>
                Older
              </button>
            </nav>
          )}
        </section>
      </main>
    </div>
  );
}

function safeLocalStorage(): Storage | null {
  try {
    return window.localStorage;
  } catch {
    return null;
  }
}

interface OutputProps {
  busy: null | 'run' | 'submit';
  elapsed: number;
  shown: Shown | null;
  count: number;
  view: OutputView;
  setView(v: OutputView): void;
}

function OutputPanel({ busy, elapsed, shown, count, view, setView }: OutputProps) {
  if (busy) {
    return (
      <div className="output-body">
        <div className="status running" data-testid="result-status" data-run={count} data-status="running" role="status">
          <span className="spinner" aria-hidden="true" />
          <span className="status-title">{busy === 'run' ? 'Running…' : 'Submitting…'}</span>
          <span className="status-detail">waiting for a sandbox and running · {elapsed.toFixed(1)} s</span>
        </div>
        <div className="progress" aria-hidden="true">
          <div className="progress-bar" />
        </div>
        <pre className="output placeholder" data-testid="output" aria-live="polite" aria-busy="true" />
      </div>
    );
  }
  if (!shown) {
    return (
      <div className="output-body">
        <div className="status idle" data-testid="result-status" data-run={count} data-status="idle">
          <span className="status-title">Ready</span>
          <span className="status-detail">Press Run to see what your program prints.</span>
        </div>
        <pre className="output placeholder" data-testid="output" aria-live="polite" />
      </div>
    );
  }
  if (shown.kind === 'error') {
    const e = shown.error;
    // A 504 carrying a reason is a run that outlived its bound: show it as a failed run.
    if (e.reason) {
      return (
        <div className="output-body">
          <div className="status bad" data-testid="result-status" data-run={count} data-status="Failed" role="alert">
            <span className="status-title">Failed: {reasonLabel(e.reason)}</span>
            <span className="status-detail">{e.message}</span>
          </div>
          <pre className="output placeholder" data-testid="output" aria-live="polite" />
        </div>
      );
    }
    const title =
      e.status === 0 ? `${shown.action} did not finish` : e.status === 503 ? 'The service is busy' : e.status >= 500 ? 'Server error' : 'The request was refused';
    return (
      <div className="output-body">
        <div className="status error" data-testid="result-status" data-run={count} data-status="error" role="alert">
          <span className="status-title">
            {title}
            {e.status ? <span className="http"> HTTP {e.status}</span> : null}
          </span>
          <span className="status-detail" data-testid="error-message">
            {e.message}
          </span>
        </div>
        <pre className="output placeholder" data-testid="output" aria-live="polite" />
      </div>
    );
  }
  const r = shown.result;
  const oc = outcome(r);
  const segs = segmentOutput(r.output ?? '', r.stdout ?? '', r.stderr ?? '');
  const text = view === 'stdout' ? r.stdout : view === 'stderr' ? r.stderr : r.output;
  // A program that did not compile never ran: its time, memory and exit code mean nothing.
  const ran = r.reason !== 'CompileError';
  return (
    <div className="output-body">
      <div className={`status ${oc.ok ? 'ok' : 'bad'}`} data-testid="result-status" data-run={count} data-status={oc.status} data-reason={r.reason} role="status">
        <span className="status-title">
          <span aria-hidden="true">{oc.ok ? '✓ ' : '✗ '}</span>
          {oc.title}
        </span>
        {oc.detail && <span className="status-detail">{oc.detail}</span>}
      </div>
      {r.compile && <CompilePanel c={r.compile} />}
      {r.compile && <h3 className="section-title">Program</h3>}
      <dl className="stats">
        <div>
          <dt>Time</dt>
          <dd data-testid="time">{ran ? formatTime(r.time) : '—'}</dd>
        </div>
        <div>
          <dt>Memory</dt>
          <dd data-testid="memory">{ran ? formatMemory(r.memory) : '—'}</dd>
        </div>
        <div>
          <dt>Exit code</dt>
          <dd data-testid="exit-code">{ran ? (r.exit_code ?? '—') : '—'}</dd>
        </div>
        {shown.source === 'submit' && (
          <div>
            <dt>Saved</dt>
            <dd data-testid="submission-id">{shown.submissionId != null && shown.submissionId > 0 ? `#${shown.submissionId}` : 'no (run failed)'}</dd>
          </div>
        )}
        {shown.source === 'submission' && (
          <div>
            <dt>Submission</dt>
            <dd>#{shown.submissionId}</dd>
          </div>
        )}
      </dl>
      <div className="tabs" role="tablist" aria-label="Output streams">
        {(['all', 'stdout', 'stderr'] as const).map((v) => {
          const n = v === 'all' ? (r.output ?? '').length : (v === 'stdout' ? r.stdout : r.stderr)?.length ?? 0;
          return (
            <button
              key={v}
              type="button"
              role="tab"
              aria-selected={view === v}
              aria-controls="output-text"
              className={`tab${view === v ? ' active' : ''}${v === 'stderr' && n > 0 ? ' has-err' : ''}`}
              onClick={() => setView(v)}
              data-testid={`tab-${v}`}
            >
              {v === 'all' ? 'All' : v}
              {v !== 'all' && n > 0 ? <span className="tab-dot" aria-hidden="true" /> : null}
            </button>
          );
        })}
      </div>
      <pre id="output-text" role="tabpanel" className="output" data-testid="output" aria-live="polite" aria-label={`Output: ${view === 'all' ? 'stdout and stderr' : view}`}>
        {!ran ? (
          <span className="muted">(the program did not run: it did not compile)</span>
        ) : text === '' ? (
          <span className="muted">{view === 'all' ? '(no output)' : `(nothing on ${view})`}</span>
        ) : view === 'all' && segs ? (
          segs.map((s, i) =>
            s.stream === 'stderr' ? (
              <span key={i} className="stderr">
                {s.text}
              </span>
            ) : (
              <span key={i}>{s.text}</span>
            ),
          )
        ) : (
          <span className={view === 'stderr' ? 'stderr' : undefined}>{text}</span>
        )}
      </pre>
      {r.truncated && <p className="hint warn">The output was longer than the limit and was cut.</p>}
      {r.name && <p className="hint">CodeRun {r.name}</p>}
    </div>
  );
}

/**
 * The compile step, apart from the program's output: how it ended, its time and memory, and
 * the compiler's messages. A compile error is highlighted; a clean compile is one line.
 */
function CompilePanel({ c }: { c: CompileResult }) {
  const co = compileOutcome(c);
  const text = c.output || [c.stdout, c.stderr].filter(Boolean).join('');
  return (
    <section className={`compile ${co.ok ? 'ok' : 'bad'}`} aria-labelledby="compile-heading" data-testid="compile-panel" data-status={co.ok ? 'ok' : 'error'}>
      <h3 id="compile-heading" className="compile-title">
        <span aria-hidden="true">{co.ok ? '✓ ' : '✗ '}</span>
        {co.title}
        {c.time != null && (
          <span className="compile-stats">
            {formatTime(c.time)} · {formatMemory(c.memory)}
          </span>
        )}
      </h3>
      {/* The message says what the compiler's own words do not (a limit it hit). */}
      {!co.ok && c.message && text === '' && <p className="compile-message">{c.message}</p>}
      {text !== '' && (
        <pre className="output compile-output" data-testid="compile-output" aria-label="Compiler output" tabIndex={0}>
          {text}
        </pre>
      )}
    </section>
  );
}
