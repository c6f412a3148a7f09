// Browser test of the coderun page against a running front service, in Debian's Chromium driven
// by playwright-core (no browser download).
//
//   BASE_URL=http://127.0.0.1:8080 ARTIFACTS_DIR=../test/artifacts/browser node --test browser-test/run.mjs
//
// BASE_URL       the front service (default http://127.0.0.1:8080)
// ARTIFACTS_DIR  where screenshots go (default <repo>/test/artifacts/browser; relative to the cwd)
// CHROMIUM       the browser (default /usr/bin/chromium)
// RUN_TIMEOUT_MS how long one run may take, queueing and pod start included (default 120000)
//
// Every page fails its test on any console error, script error or Content-Security-Policy
// violation, from load through typing and running; a test names the failed loads it causes on
// purpose (a 404 or 503 it asks for). axe-core checks the page after a run in both themes.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

const BASE_URL = (process.env.BASE_URL || 'http://127.0.0.1:8080').replace(/\/+$/, '');
const ARTIFACTS_DIR = process.env.ARTIFACTS_DIR
  ? resolve(process.env.ARTIFACTS_DIR)
  : fileURLToPath(new URL('../../test/artifacts/browser/', import.meta.url));
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const RUN_TIMEOUT = Number(process.env.RUN_TIMEOUT_MS || 120_000);

mkdirSync(ARTIFACTS_DIR, { recursive: true });
const token = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;

let browser;
// Every error any page saw, for the last test; each test also checks its own pages (done()).
const pageErrors = [];
const errorsOf = new WeakMap();

before(async () => {
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // playwright-core gives every launch a fresh, empty profile (its own --user-data-dir).
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
});

after(async () => {
  await browser?.close();
});

/**
 * A page in a new context. expectFailedLoads: paths (regexps) of error answers the test asks for,
 * which Chromium logs as console errors ("Failed to load resource"); any other console error fails.
 */
async function newPage({ expectFailedLoads = [], ...options } = {}) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 }, colorScheme: 'light', ...options });
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  const errors = [];
  errorsOf.set(page, errors);
  const record = (what) => {
    errors.push(`${page.url()}: ${what}`);
    pageErrors.push(`${page.url()}: ${what}`);
  };
  page.on('pageerror', (e) => record(e.message));
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    const at = m.location()?.url ?? '';
    if (/^Failed to load resource/.test(m.text()) && expectFailedLoads.some((re) => re.test(new URL(at, BASE_URL).pathname))) return;
    record(`console: ${m.text()}${at ? ` (${at})` : ''}`);
  });
  // Chromium logs a CSP violation as a console error; the event also names the directive and the
  // element (retargeted to the shadow host for the editor).
  await page.exposeFunction('__cspViolation', (v) => record(`CSP violation: ${v}`));
  await page.addInitScript(() => {
    document.addEventListener(
      'securitypolicyviolation',
      (e) => window.__cspViolation(`${e.violatedDirective} on <${e.target?.nodeName?.toLowerCase()} class="${e.target?.className ?? ''}"> ${e.sample}`),
      true,
    );
  });
  return page;
}

/** Closes the page's context and fails if the page logged any error since it was opened. */
async function done(page) {
  await page.context().close();
  assert.deepEqual(errorsOf.get(page), [], 'no console errors, script errors or CSP violations on the page');
}

async function open(page, path = '/') {
  await page.goto(BASE_URL + path, { waitUntil: 'domcontentloaded' });
  await page.locator('.cm-content').waitFor();
}

/** Replaces the editor's text by typing it over the selected old text, as a person would. */
async function typeCode(page, code) {
  const content = page.locator('.cm-content');
  await content.click();
  await page.keyboard.press('ControlOrMeta+A');
  await page.keyboard.type(code);
  assert.equal(await editorText(page), code);
}

async function editorText(page) {
  return page.locator('.cm-content').evaluate((el) => [...el.querySelectorAll('.cm-line')].map((l) => l.textContent).join('\n'));
}

const status = (page) => page.getByTestId('result-status');

async function runCount(page) {
  return Number((await status(page).getAttribute('data-run')) ?? 0);
}

/** Starts a run with `start` and waits for its result; checks progress was shown with the buttons disabled. */
async function runAndWait(page, start) {
  const before = await runCount(page);
  await page.evaluate(() => {
    window.__sawBusy = false;
    const check = () => {
      const s = document.querySelector('[data-testid=result-status]');
      const run = document.querySelector('[data-testid=run]');
      if (s?.getAttribute('data-status') === 'running' && run?.disabled) window.__sawBusy = true;
    };
    new MutationObserver(check).observe(document.body, { subtree: true, childList: true, attributes: true });
  });
  const started = performance.now();
  await start();
  await page.waitForFunction(
    (n) => {
      const s = document.querySelector('[data-testid=result-status]');
      return s && Number(s.getAttribute('data-run')) > n && s.getAttribute('data-status') !== 'running';
    },
    before,
    { timeout: RUN_TIMEOUT },
  );
  // What a user waits for, from the click (or key) to the result on the page: on a warm pool,
  // an attach to a started member; otherwise a pod start. Logged, not asserted.
  const took = performance.now() - started;
  const shown = await status(page).getAttribute('data-status');
  console.log(`Run-to-result: ${took.toFixed(0)} ms (${shown})`);
  if (shown !== 'Succeeded') {
    // What the page showed, so that a run that fails when a test expects it to succeed says why.
    const text = await page.locator('[data-testid=result-status], [data-testid=error-message], [data-testid=output], [data-testid=compile-output]').allInnerTexts();
    console.log(`  shown: ${JSON.stringify(text.join(' | ').slice(0, 600))}; language ${await page.getByTestId('language').inputValue().catch(() => '?')}`);
  }
  assert.ok(await page.evaluate(() => window.__sawBusy), 'a progress state with Run disabled was shown while the run went on');
  assert.ok(await page.getByTestId('run').isEnabled(), 'Run is enabled again');
  return status(page).getAttribute('data-status');
}

const shot = (page, name, fullPage = false) => page.screenshot({ path: resolve(ARTIFACTS_DIR, name), fullPage });

/** Waits for the picker to hold the service's languages (GET /runtimes answered). */
async function pickerReady(page) {
  await page.locator('#language:not([disabled])').waitFor();
}

/** The picker's value for the language shown as label ("C++"), or null when it is not offered. */
async function offered(page, label) {
  await pickerReady(page);
  const opts = await page.locator('#language option').evaluateAll((os) => os.map((o) => ({ value: o.value, label: o.textContent })));
  return opts.find((o) => o.label === label)?.value ?? null;
}

/** Waits until the editor's mode for language (the picker's value) is in place. */
async function modeIn(page, language) {
  await page.waitForFunction((l) => {
    const el = document.querySelector('[data-testid=editor]');
    return el?.dataset.language === l && el.dataset.mode !== '';
  }, language);
}

/** Picks a language by its label and waits for its editor mode (mode) to be in place. */
async function pick(page, label, mode) {
  await page.getByLabel('Language', { exact: true }).selectOption({ label });
  await modeIn(page, await page.getByLabel('Language', { exact: true }).inputValue());
  assert.equal(await page.getByTestId('editor').getAttribute('data-mode'), mode);
}

/** Whether a word of the editor's text is highlighted as a token (coloured apart from the text). */
async function highlighted(page, word) {
  return page.locator('.cm-content').evaluate((el, w) => {
    const plain = getComputedStyle(el).color;
    return [...el.querySelectorAll('.cm-line span')].some((s) => s.textContent === w && getComputedStyle(s).color !== plain);
  }, word);
}

/** Runs axe-core on the page; fails on any serious or critical violation. */
async function axeCheck(page, t, what) {
  // Injected through the debugging protocol, which the page's CSP does not govern.
  if (!(await page.evaluate(() => 'axe' in window))) await page.evaluate(axeSource);
  const result = await page.evaluate(() =>
    // label-content-name-mismatch is experimental, so off unless named.
    window.axe.run(document, { rules: { 'label-content-name-mismatch': { enabled: true } }, resultTypes: ['violations'] }),
  );
  const summary = (v) => `${v.id} [${v.impact}] ${v.help}: ${v.nodes.map((n) => `${n.target.join(' ')} (${n.failureSummary?.split('\n')[1]?.trim()})`).join('; ')}`;
  for (const v of result.violations) t.diagnostic(`${what}: ${summary(v)}`);
  const bad = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert.deepEqual(bad.map(summary), [], `axe ${result.testEngine.version}, ${what}`);
}

describe(`coderun page at ${BASE_URL}`, () => {
  test('Hello, World! runs and shows success, time and memory', async () => {
    const page = await newPage();
    await open(page);
    await typeCode(page, "print('Hello, World!')");
    const st = await runAndWait(page, () => page.getByRole('button', { name: 'Run', exact: true }).click());
    const output = await page.getByTestId('output').innerText();
    assert.equal(st, 'Succeeded', `status ${st}, output: ${output}`);
    assert.match(output, /Hello, World!/);
    assert.match(await status(page).innerText(), /Success/);
    assert.match(await page.getByTestId('time').innerText(), /^\d+(\.\d+)? (ms|s)$|min/);
    assert.match(await page.getByTestId('memory').innerText(), /^\d+(\.\d+)? (KiB|MiB|GiB)$/);
    assert.equal(await page.getByTestId('exit-code').innerText(), '0');
    assert.equal(await page.getByTestId('output').getAttribute('aria-live'), 'polite');
    await shot(page, 'success.png');
    await done(page);
  });

  test('a syntax error run with Ctrl+Enter shows failure and SyntaxError', async () => {
    const page = await newPage();
    await open(page);
    await typeCode(page, "print('Hello, World!'");
    let executes = 0;
    page.on('request', (r) => {
      if (r.method() === 'POST' && new URL(r.url()).pathname === '/execute') executes++;
    });
    const st = await runAndWait(page, () => page.keyboard.press('Control+Enter'));
    assert.equal(executes, 1, 'Ctrl+Enter in the editor runs once');
    const output = await page.getByTestId('output').innerText();
    assert.equal(st, 'Failed', `status ${st}, output: ${output}`);
    assert.match(output, /SyntaxError/);
    assert.match(await status(page).innerText(), /Failed/);
    assert.equal(await page.getByTestId('exit-code').innerText(), '1');
    // The traceback is on stderr, shown styled in the combined view and alone on the stderr tab.
    assert.ok((await page.locator('[data-testid=output] .stderr').count()) > 0, 'stderr is styled');
    await page.getByRole('tab', { name: 'stderr' }).click();
    assert.match(await page.getByTestId('output').innerText(), /SyntaxError/);
    await page.getByRole('tab', { name: 'All' }).click();
    await shot(page, 'failure.png');
    await done(page);
  });

  test('Submit saves the run, the list shows it, and clicking it reopens code and stdin', async () => {
    const page = await newPage();
    await open(page);
    const code = `print('submitted ${token}')`;
    await typeCode(page, code);
    await page.getByLabel('Input (stdin)').fill(`stdin ${token}`);
    const st = await runAndWait(page, () => page.getByRole('button', { name: 'Submit', exact: true }).click());
    assert.equal(st, 'Succeeded', await page.getByTestId('output').innerText());
    const saved = await page.getByTestId('submission-id').innerText();
    const m = /^#(\d+)$/.exec(saved);
    assert.ok(m, `a submission id is shown, got ${JSON.stringify(saved)}`);
    // Named by what it shows (#id, code, outcome), so speech input can say what it sees.
    const item = page.getByRole('button', { name: new RegExp(`^#${m[1]} print\\('submitted ${token}'\\) OK`) });
    await item.waitFor();
    assert.equal(await item.getAttribute('data-testid'), `submission-${m[1]}`);

    await typeCode(page, "print('something else')");
    await page.getByLabel('Input (stdin)').fill('');
    await item.click();
    assert.equal(await editorText(page), code);
    assert.equal(await page.getByLabel('Input (stdin)').inputValue(), `stdin ${token}`);
    assert.match(await page.getByTestId('output').innerText(), new RegExp(`submitted ${token}`));
    await done(page);
  });

  test('Share saves a snippet, shows the /s/<id> link, and the link opens the code', async () => {
    const page = await newPage();
    await open(page);
    const code = `print('shared ${token}')`;
    await typeCode(page, code);
    await page.getByLabel('Input (stdin)').fill(`shared stdin ${token}`);
    await page.getByRole('button', { name: 'Share', exact: true }).click();
    const link = await page.getByTestId('share-link').inputValue();
    const url = new URL(link);
    assert.equal(url.origin, new URL(BASE_URL).origin);
    assert.match(url.pathname, /^\/s\/[^/]+$/);

    const other = await newPage();
    await other.goto(link, { waitUntil: 'domcontentloaded' });
    await other.getByText('Loaded a shared Python snippet.').waitFor();
    assert.equal(await editorText(other), code);
    assert.equal(await other.getByLabel('Input (stdin)').inputValue(), `shared stdin ${token}`);
    await done(other);

    const missing = await newPage({ expectFailedLoads: [/^\/snippets\/no-such-snippet-/] });
    await missing.goto(`${BASE_URL}/s/no-such-snippet-${token}`, { waitUntil: 'domcontentloaded' });
    await missing.getByRole('alert').filter({ hasText: /snippet/ }).waitFor();
    await done(missing);
    await done(page);
  });

  test('the picker offers the Ready languages; C++ shows its starter in its mode, compiles, runs, and a compile error shows the compile panel', async (t) => {
    const page = await newPage();
    await open(page);
    await pickerReady(page);
    const labels = await page.locator('#language option').allTextContents();
    t.diagnostic(`languages offered: ${labels.join(', ')}`);
    assert.ok(labels.includes('Python'), 'Python is offered');
    assert.equal(await page.getByLabel('Language', { exact: true }).inputValue(), 'python', 'a first visit starts in Python');
    if (!(await offered(page, 'C++'))) {
      t.skip('C++ is not offered by this coderun (make dev RUNTIMES=all ships it)');
      await done(page);
      return;
    }
    await pick(page, 'C++', 'cpp');
    const starter = await editorText(page);
    assert.match(starter, /^#include <iostream>\n/, 'the untouched Python starter gave way to the C++ starter');
    assert.match(starter, /std::getline\(std::cin, name\)/, 'the starter reads a name from stdin');
    assert.ok(await highlighted(page, 'return'), 'the C++ mode highlights the keyword return');
    assert.equal(await page.locator('.cm-content').getAttribute('aria-label'), 'C++ code');
    await page.getByLabel('Input (stdin)').fill('Ada');
    assert.equal(await runAndWait(page, () => page.getByTestId('run').click()), 'Succeeded', await page.getByTestId('output').innerText());
    assert.match(await page.getByTestId('output').innerText(), /Hello, /);
    const compiled = page.getByTestId('compile-panel');
    assert.equal(await compiled.getAttribute('data-status'), 'ok');
    assert.match(await compiled.innerText(), /Compiled/);

    await typeCode(page, 'int main() { return 0 ');
    assert.equal(await runAndWait(page, () => page.getByTestId('run').click()), 'Failed');
    assert.equal(await status(page).getAttribute('data-reason'), 'CompileError');
    assert.match(await status(page).innerText(), /Compile error/);
    assert.equal(await compiled.getAttribute('data-status'), 'error');
    assert.match(await compiled.innerText(), /Compile error/);
    // The compiler's messages are in their own panel, not in the program's output.
    assert.match(await page.getByTestId('compile-output').innerText(), /error/);
    assert.match(await page.getByTestId('output').innerText(), /did not run/);
    assert.equal(await page.getByTestId('exit-code').innerText(), '—');
    await shot(page, 'compile-error.png');
    await done(page);
  });

  test("every language offered runs its starter, which greets stdin's first line", async (t) => {
    const page = await newPage();
    await open(page);
    await pickerReady(page);
    const langs = await page.locator('#language option').evaluateAll((os) => os.map((o) => ({ value: o.value, label: o.textContent })));
    await page.getByLabel('Input (stdin)').fill('Ada');
    const failed = [];
    for (const { value, label } of langs) {
      // The previous starter is untouched, so each pick puts the new language's starter in.
      await page.getByLabel('Language', { exact: true }).selectOption(value);
      await modeIn(page, value);
      const code = await editorText(page);
      if (!/Hello, /.test(code)) {
        t.diagnostic(`${label}: the page has no starter for it`);
        continue;
      }
      const started = Date.now();
      const st = await runAndWait(page, () => page.getByTestId('run').click());
      const output = await page.getByTestId('output').innerText();
      const compile = (await page.getByTestId('compile-panel').count()) ? await page.getByTestId('compile-panel').innerText() : '';
      t.diagnostic(`${label}: ${st} in ${Date.now() - started} ms${compile ? ` (${compile.split('\n')[0]})` : ''}`);
      // SQLite's starter greets without reading stdin.
      if (st !== 'Succeeded' || !/Hello, (Ada|World)!/.test(output)) failed.push(`${label}: ${st}: ${output} ${compile}`.trim());
    }
    assert.deepEqual(failed, [], 'every starter runs and greets');
    await done(page);
  });

  test('switching language keeps code the user wrote, offers the starter (undoable), and is remembered', async (t) => {
    const page = await newPage();
    await open(page);
    await pickerReady(page);
    const other = (await page.locator('#language option').evaluateAll((os) => os.map((o) => ({ value: o.value, label: o.textContent })))).find(
      (o) => o.value !== 'python',
    );
    if (!other) {
      t.skip('only Python is offered by this coderun');
      await done(page);
      return;
    }
    const mine = `print('mine ${token}')`;
    await typeCode(page, mine);
    await page.getByLabel('Language', { exact: true }).selectOption(other.value);
    await page.getByTestId('starter-offer').waitFor();
    assert.equal(await editorText(page), mine, 'the code stays in the editor');
    await page.getByRole('button', { name: `Replace it with the ${other.label} starter` }).click();
    assert.notEqual(await editorText(page), mine);
    assert.equal(await page.getByTestId('starter-offer').count(), 0);
    await page.locator('.cm-content').click();
    await page.keyboard.press('ControlOrMeta+z');
    assert.equal(await editorText(page), mine, 'the starter is undone in one step');
    // The draft keeps the language (and the code) across a reload.
    await page.waitForTimeout(500);
    await page.reload({ waitUntil: 'domcontentloaded' });
    await pickerReady(page);
    assert.equal(await page.getByLabel('Language', { exact: true }).inputValue(), other.value);
    assert.equal(await editorText(page), mine);
    await done(page);
  });

  test('a Go snippet shared by link reopens as Go', async (t) => {
    const page = await newPage();
    await open(page);
    if (!(await offered(page, 'Go'))) {
      t.skip('Go is not offered by this coderun (make dev RUNTIMES=all ships it)');
      await done(page);
      return;
    }
    await pick(page, 'Go', 'go');
    const code = await editorText(page);
    assert.match(code, /^package main\n/);
    await page.getByLabel('Input (stdin)').fill(`go ${token}`);
    await page.getByRole('button', { name: 'Share', exact: true }).click();
    const link = await page.getByTestId('share-link').inputValue();
    await done(page);

    const reopened = await newPage();
    await reopened.goto(link, { waitUntil: 'domcontentloaded' });
    await reopened.getByText('Loaded a shared Go snippet.').waitFor();
    await pickerReady(reopened);
    assert.equal(await reopened.locator('#language option:checked').textContent(), 'Go');
    await modeIn(reopened, await reopened.getByLabel('Language', { exact: true }).inputValue());
    assert.equal(await reopened.getByTestId('editor').getAttribute('data-mode'), 'go');
    assert.equal(await editorText(reopened), code);
    assert.equal(await reopened.getByLabel('Input (stdin)').inputValue(), `go ${token}`);
    assert.ok(await highlighted(reopened, 'func'), 'the Go mode highlights the keyword func');
    await done(reopened);
  });

  test('the theme toggle switches to dark and is remembered', async () => {
    const page = await newPage({ colorScheme: 'light' });
    await open(page);
    const bg = () => page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    const theme = () => page.evaluate(() => document.documentElement.dataset.theme);
    assert.equal(await theme(), 'light');
    const lightBg = await bg();
    await page.getByRole('button', { name: 'Switch to dark theme' }).click();
    assert.equal(await theme(), 'dark');
    assert.notEqual(await bg(), lightBg, 'the background changed');
    await page.reload({ waitUntil: 'domcontentloaded' });
    await page.locator('.cm-content').waitFor();
    assert.equal(await theme(), 'dark', 'the choice survives a reload');
    await page.getByRole('button', { name: 'Switch to light theme' }).waitFor();

    await typeCode(page, "print('Hello, World!')\nprint('dark')");
    assert.equal(await runAndWait(page, () => page.getByTestId('run').click()), 'Succeeded');
    await shot(page, 'dark.png');
    await done(page);

    // With no stored choice, the system's dark preference is followed.
    const sys = await newPage({ colorScheme: 'dark' });
    await open(sys);
    assert.equal(await sys.evaluate(() => document.documentElement.dataset.theme), 'dark');
    await done(sys);
  });

  test('an overloaded service (503 with Retry-After) is shown clearly', async () => {
    const page = await newPage({ expectFailedLoads: [/^\/execute$/] });
    await page.route('**/execute', (route) =>
      route.fulfill({ status: 503, headers: { 'Retry-After': '7', 'Content-Type': 'application/json' }, body: JSON.stringify({ error: 'Too many runs are waiting.' }) }),
    );
    await open(page);
    await typeCode(page, "print('Hello, World!')");
    assert.equal(await runAndWait(page, () => page.getByTestId('run').click()), 'error');
    const text = await status(page).innerText();
    assert.match(text, /busy/);
    assert.match(text, /503/);
    assert.match(text, /Too many runs are waiting\. Try again in 7 s\./);
    await shot(page, 'busy.png');
    await done(page);
  });

  test('on a 375px phone the page fits without horizontal scroll', async () => {
    const page = await newPage({ viewport: { width: 375, height: 740 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
    await open(page);
    await typeCode(page, "print('Hello, World!')");
    assert.equal(await runAndWait(page, () => page.getByTestId('run').tap()), 'Succeeded');
    const overflow = await page.evaluate(() => ({
      scroll: document.documentElement.scrollWidth,
      width: document.documentElement.clientWidth,
      body: document.body.scrollWidth,
    }));
    assert.ok(overflow.scroll <= overflow.width && overflow.body <= overflow.width, `no horizontal scroll: ${JSON.stringify(overflow)}`);
    for (const name of ['Run', 'Submit', 'Share']) {
      const box = await page.getByRole('button', { name, exact: true }).boundingBox();
      assert.ok(box && box.x >= 0 && box.x + box.width <= 375, `${name} is on screen`);
    }
    await shot(page, 'phone.png', true);
    await done(page);
  });

  test('typing over selected, highlighted code edits it with no CSP violation', async () => {
    // Left to the browser, typing over a selection makes Chromium write the deleted text's colour
    // as an inline style onto the line, which the page's policy blocks (web/src/Editor.tsx).
    const page = await newPage();
    await open(page);
    await page.locator('.cm-content').click();
    await page.keyboard.press('ControlOrMeta+A');
    await page.keyboard.type("import sys\ndef f(x=1.5):\n# a comment\nreturn 'x'");
    // Python indents by 4 spaces (PEP 8).
    assert.equal(await editorText(page), "import sys\ndef f(x=1.5):\n    # a comment\n    return 'x'", 'typed lines are indented');
    await page.keyboard.press('Shift+ArrowUp');
    await page.keyboard.press('Shift+Home');
    await page.keyboard.type('pass');
    assert.equal(await editorText(page), "import sys\ndef f(x=1.5):\n    pass", 'two lines typed over');
    await page.locator('.cm-line').first().dblclick({ position: { x: 10, y: 5 } });
    await page.keyboard.type('from');
    assert.match(await editorText(page), /^from sys\n/, 'a double-clicked keyword typed over');
    await page.keyboard.press('ControlOrMeta+z');
    const undone = await editorText(page);
    assert.match(undone, /^import sys\n/, 'undone as one step');
    assert.equal(await runAndWait(page, () => page.keyboard.press('Control+Enter')), 'Succeeded', `the run of ${JSON.stringify(undone)}`);
    await done(page);
  });

  for (const theme of ['light', 'dark']) {
    test(`axe-core finds no serious or critical violation after runs (${theme} theme)`, async (t) => {
      const page = await newPage({ colorScheme: theme });
      await open(page);
      assert.equal(await page.evaluate(() => document.documentElement.dataset.theme), theme);
      // Every token colour, a saved submission in the list, then a success and a failure shown.
      await typeCode(page, `import sys\n# a comment\nclass A: pass\nx = len(str(1.5)) if None is None else 0\nprint('axe ${token}')`);
      assert.equal(await runAndWait(page, () => page.getByTestId('submit').click()), 'Succeeded');
      await page.locator('[data-testid^=submission-]').first().waitFor();
      for (const [code, want] of [["print('Hello, World!')", 'Succeeded'], ["print('unclosed'", 'Failed']]) {
        await typeCode(page, code);
        assert.equal(await runAndWait(page, () => page.getByTestId('run').click()), want);
        await axeCheck(page, t, `${theme} theme, after a run that ${want}`);
      }
      await shot(page, `axe-${theme}.png`);
      // The picker with its version list (a language with several versions, if there is one),
      // and the compile panel of a compile error.
      const multi = await page.locator('#language option').evaluateAll((os) => os.map((o) => o.value));
      for (const value of multi) {
        await page.getByLabel('Language', { exact: true }).selectOption(value);
        if (await page.locator('#version').count()) {
          await axeCheck(page, t, `${theme} theme, the picker with ${value}'s versions`);
          break;
        }
      }
      if (await offered(page, 'C++')) {
        await pick(page, 'C++', 'cpp');
        await typeCode(page, 'int main() { return 0 ');
        assert.equal(await runAndWait(page, () => page.getByTestId('run').click()), 'Failed');
        await page.getByTestId('compile-output').waitFor();
        await axeCheck(page, t, `${theme} theme, a compile error`);
        await shot(page, `axe-compile-${theme}.png`);
      } else {
        t.diagnostic('C++ is not offered here: the compile panel was not checked');
      }
      await done(page);
    });
  }

  test('no script errors or console errors (a blocked style or script, say) on any page', () => {
    assert.deepEqual(pageErrors, []);
  });
});
