// Browser test of the coderun page against a running front service, in Debian's Chromium driven
// by playwright-core (no browser download).
//
//   BASE_URL=http://127.0.0.1:8080 ARTIFACTS_DIR=../test/artifacts/browser node --test browser-test/run.mjs
//
// BASE_URL       the front service (default http://127.0.0.1:8080)
// ARTIFACTS_DIR  where screenshots go (default <repo>/test/artifacts/browser; relative to the cwd)
// CHROMIUM       the browser (default /usr/bin/chromium)
// RUN_TIMEOUT_MS how long one run may take, queueing and pod start included (default 120000)
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const BASE_URL = (process.env.BASE_URL || 'http://127.0.0.1:8080').replace(/\/+$/, '');
const ARTIFACTS_DIR = process.env.ARTIFACTS_DIR
  ? resolve(process.env.ARTIFACTS_DIR)
  : fileURLToPath(new URL('../../test/artifacts/browser/', import.meta.url));
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const RUN_TIMEOUT = Number(process.env.RUN_TIMEOUT_MS || 120_000);

mkdirSync(ARTIFACTS_DIR, { recursive: true });
const token = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;

let browser;
const pageErrors = [];

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

async function newPage(options = {}) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 }, colorScheme: 'light', ...options });
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  page.on('pageerror', (e) => pageErrors.push(`${page.url()}: ${e.message}`));
  page.on('console', (m) => {
    // Error answers the tests ask for (404 snippet, 503) are logged by Chromium as failed loads.
    if (m.type() === 'error' && !/Failed to load resource/.test(m.text())) pageErrors.push(`${page.url()}: console: ${m.text()}`);
  });
  return page;
}

async function open(page, path = '/') {
  await page.goto(BASE_URL + path, { waitUntil: 'domcontentloaded' });
  await page.locator('.cm-content').waitFor();
}

/** Replaces the editor's text by typing it, as a person would. */
async function typeCode(page, code) {
  const content = page.locator('.cm-content');
  await content.click();
  await page.keyboard.press('ControlOrMeta+A');
  await page.keyboard.press('Delete');
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
  await start();
  await page.waitForFunction(
    (n) => {
      const s = document.querySelector('[data-testid=result-status]');
      return s && Number(s.getAttribute('data-run')) > n && s.getAttribute('data-status') !== 'running';
    },
    before,
    { timeout: RUN_TIMEOUT },
  );
  assert.ok(await page.evaluate(() => window.__sawBusy), 'a progress state with Run disabled was shown while the run went on');
  assert.ok(await page.getByTestId('run').isEnabled(), 'Run is enabled again');
  return status(page).getAttribute('data-status');
}

const shot = (page, name, fullPage = false) => page.screenshot({ path: resolve(ARTIFACTS_DIR, name), fullPage });

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
    await page.context().close();
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
    await page.context().close();
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
    const item = page.getByRole('button', { name: `Open submission ${m[1]}`, exact: true });
    await item.waitFor();
    assert.match(await item.innerText(), new RegExp(`submitted ${token}`));

    await typeCode(page, "print('something else')");
    await page.getByLabel('Input (stdin)').fill('');
    await item.click();
    assert.equal(await editorText(page), code);
    assert.equal(await page.getByLabel('Input (stdin)').inputValue(), `stdin ${token}`);
    assert.match(await page.getByTestId('output').innerText(), new RegExp(`submitted ${token}`));
    await page.context().close();
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
    await other.getByText('Loaded a shared snippet.').waitFor();
    assert.equal(await editorText(other), code);
    assert.equal(await other.getByLabel('Input (stdin)').inputValue(), `shared stdin ${token}`);
    await other.context().close();

    const missing = await newPage();
    await missing.goto(`${BASE_URL}/s/no-such-snippet-${token}`, { waitUntil: 'domcontentloaded' });
    await missing.getByRole('alert').filter({ hasText: /snippet/ }).waitFor();
    await missing.context().close();
    await page.context().close();
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
    await page.context().close();

    // With no stored choice, the system's dark preference is followed.
    const sys = await newPage({ colorScheme: 'dark' });
    await open(sys);
    assert.equal(await sys.evaluate(() => document.documentElement.dataset.theme), 'dark');
    await sys.context().close();
  });

  test('an overloaded service (503 with Retry-After) is shown clearly', async () => {
    const page = await newPage();
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
    await page.context().close();
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
    await page.context().close();
  });

  test('no script errors or console errors (a blocked style or script, say) on any page', () => {
    assert.deepEqual(pageErrors, []);
  });
});
