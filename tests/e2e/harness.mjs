// Real processes for the browser tests: a `dataerai-server` on a temporary
// data dir (port 0), the `dataerai` CLI as a child process, and Debian's
// Chromium driven by playwright-core. Nothing here is mocked.
//
// Binaries come from $DATAERAI_BIN_DIR (default <repo>/target/debug); the
// browser from $CHROMIUM (default /usr/bin/chromium).

import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { after, test } from 'node:test';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, '..', '..');
export const BIN_DIR = process.env.DATAERAI_BIN_DIR || path.join(REPO, 'target', 'debug');
export const SERVER_BIN = path.join(BIN_DIR, 'dataerai-server');
export const CLI_BIN = path.join(BIN_DIR, 'dataerai');
export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
export const ARTIFACTS = path.join(HERE, 'artifacts');
// Screenshots of every page, kept as a test artefact (target/ is never committed).
export const SCREENSHOTS =
  process.env.DATAERAI_SCREENSHOTS || path.join(REPO, 'target', 'e2e-screenshots');

// Flags this machine needs: no sandbox (root, no user namespaces), no GPU,
// and nothing that would try to reach the network on its own.
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Fail early with a clear message instead of an ENOENT from spawn. */
export function checkPrerequisites() {
  const missing = [SERVER_BIN, CLI_BIN, CHROMIUM].filter((p) => !existsSync(p));
  if (missing.length > 0) {
    throw new Error(
      `missing ${missing.join(', ')}: run \`cargo build -p dataerai-server -p dataerai\` ` +
        '(or set DATAERAI_BIN_DIR) and install Debian\'s chromium (or set CHROMIUM)',
    );
  }
}

/** A fresh temporary directory; removed by `cleanup` unless DATAERAI_KEEP_TMP is set. */
export async function tempDir() {
  return mkdtemp(path.join(os.tmpdir(), 'dataerai-e2e-'));
}

export async function cleanup(dir) {
  if (dir && !process.env.DATAERAI_KEEP_TMP) {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Run a program to the end. Resolves {code, stdout, stderr}; never rejects on
 * a non-zero exit (tests assert on the code). Killed after `timeoutMs`.
 */
export function run(cmd, args, { env = {}, input, timeoutMs = 60_000 } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      env: { ...process.env, ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? `signal ${signal}`, stdout, stderr });
    });
    child.stdin.end(input ?? '');
  });
}

/**
 * Remember when `proc` is over: `proc.closed` resolves with its exit code once
 * it has exited AND its output pipes are drained (so nothing it printed is
 * missed; plain 'exit' can come before the last 'data').
 */
function track(proc) {
  proc.closed = new Promise((resolve) => {
    proc.once('close', (code, signal) => resolve(code ?? `signal ${signal}`));
    proc.once('error', (e) => resolve(`spawn error: ${e.message}`));
  });
  return proc;
}

/** Wait until `proc` is over (or `timeoutMs` passes: then kill it and reject). */
export function waitExit(proc, timeoutMs) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`process ${proc.spawnfile} did not exit within ${timeoutMs} ms`));
    }, timeoutMs);
  });
  return Promise.race([proc.closed, timeout]).finally(() => clearTimeout(timer));
}

/** Stop a child politely (SIGTERM), then firmly after 10 s. */
export async function stop(proc) {
  if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
  proc.kill('SIGTERM');
  try {
    await waitExit(proc, 10_000);
  } catch {
    // waitExit already sent SIGKILL.
  }
}

/** Resolve with the first match of `re` in the text `stream` produces, or reject after `timeoutMs`. */
function waitForOutput(proc, stream, re, timeoutMs, what) {
  return new Promise((resolve, reject) => {
    let text = '';
    const onData = (d) => {
      text += d;
      const m = text.match(re);
      if (m) {
        done();
        resolve(m);
      }
    };
    const onExit = (code) => {
      done();
      reject(new Error(`${what} exited with ${code} before printing ${re}:\n${text}`));
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`${what} did not print ${re} within ${timeoutMs} ms:\n${text}`));
    }, timeoutMs);
    function done() {
      clearTimeout(timer);
      stream.off('data', onData);
      proc.off('exit', onExit);
    }
    stream.on('data', onData);
    proc.once('exit', onExit);
  });
}

/**
 * Start the real server on `dir`/server, listening on a free loopback port.
 * Device-flow polling every second keeps the test fast.
 */
export async function startServer(dir) {
  const dataDir = path.join(dir, 'server');
  await mkdir(dataDir, { recursive: true });
  const proc = track(
    spawn(
      SERVER_BIN,
      ['serve', '--data-dir', dataDir, '--listen', '127.0.0.1:0', '--device-poll-interval-s', '1'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    ),
  );
  // Keep the server's log for failure messages (bounded: only the tail matters).
  let log = '';
  const keep = (d) => (log = (log + d).slice(-20_000));
  proc.stderr.on('data', keep);
  const m = await waitForOutput(
    proc,
    proc.stdout,
    /listening on (http:\/\/127\.0\.0\.1:\d+)/,
    60_000,
    'dataerai-server',
  );
  proc.stdout.on('data', keep);
  return {
    url: m[1],
    dataDir,
    proc,
    log: () => log,
    /** `dataerai-server admin …` on this server's data dir; rejects on failure. */
    async admin(args, input) {
      const r = await run(SERVER_BIN, ['admin', ...args, '--data-dir', dataDir], { input });
      if (r.code !== 0) {
        throw new Error(`admin ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
      }
      return r.stdout.trim();
    },
  };
}

/** A CLI bound to its own config and state dirs (one "machine" of a user). */
export async function cliFor(dir, label) {
  const configDir = path.join(dir, `config-${label}`);
  const stateDir = path.join(dir, `state-${label}`);
  await mkdir(configDir, { recursive: true, mode: 0o700 });
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  const env = { DATAERAI_CONFIG_DIR: configDir, DATAERAI_STATE_DIR: stateDir };
  return {
    configDir,
    env,
    run: (args, opts = {}) => run(CLI_BIN, args, { ...opts, env }),
    /** Start `dataerai auth login --server URL --no-browser`; returns the child. */
    spawnDeviceLogin(url) {
      return track(
        spawn(CLI_BIN, ['auth', 'login', '--server', url, '--no-browser'], {
          env: { ...process.env, ...env },
          stdio: ['ignore', 'pipe', 'pipe'],
        }),
      );
    },
  };
}

/**
 * Read what `dataerai auth login` prints for the person at the terminal: the
 * verification address, the user code and the address with the code filled in.
 */
export async function readDeviceCode(proc) {
  let stderr = '';
  proc.stderr.on('data', (d) => (stderr += d));
  await waitForOutput(
    proc,
    proc.stderr,
    /\(or open \S+ directly\)/,
    30_000,
    'dataerai auth login',
  );
  const code = stderr.match(/enter the code:\s+([A-Z]{4}-[A-Z]{4})/);
  const uri = stderr.match(/^\s+(http\S+\/device)\s*$/m);
  const complete = stderr.match(/\(or open (\S+) directly\)/);
  if (!code || !uri || !complete) {
    throw new Error(`cannot read the code and address from the CLI's output:\n${stderr}`);
  }
  return {
    userCode: code[1],
    verificationUri: uri[1],
    verificationUriComplete: complete[1],
    stderr: () => stderr,
  };
}

/** Debian's Chromium through playwright-core, with a fresh profile in `dir`. */
export async function launchBrowser(dir) {
  const userDataDir = path.join(dir, 'chromium-profile');
  await mkdir(userDataDir, { recursive: true });
  // launchPersistentContext is how playwright takes a --user-data-dir.
  return chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    timeout: 60_000,
  });
}

/** Save a screenshot (and the page's HTML) of `page` under artifacts/ for a failed test. */
export async function saveArtifacts(page, name) {
  if (!page || page.isClosed()) return;
  const safe = name.replace(/[^A-Za-z0-9_-]+/g, '_').slice(0, 80);
  await mkdir(ARTIFACTS, { recursive: true });
  const png = path.join(ARTIFACTS, `${safe}.png`);
  try {
    await page.screenshot({ path: png, fullPage: true });
    const html = await page.content();
    await writeFile(path.join(ARTIFACTS, `${safe}.html`), html);
    console.error(`# screenshot of the failed page: ${png} (${page.url()})`);
  } catch (e) {
    console.error(`# could not save a screenshot: ${e.message}`);
  }
}

/** Viewports the pages are photographed at: a laptop and a phone. */
const SCREENS = [
  { label: 'laptop', width: 1280, height: 800 },
  { label: 'phone', width: 390, height: 844 },
];

/**
 * Save full-page screenshots of what `page` shows now, at laptop and phone
 * width, as target/e2e-screenshots/<name>-<laptop|phone>.png (a test
 * artefact to look at the pages). The page is not reloaded: a form's answer can be
 * photographed too.
 */
export async function screenshot(page, name) {
  await mkdir(SCREENSHOTS, { recursive: true });
  const was = page.viewportSize();
  try {
    for (const s of SCREENS) {
      await page.setViewportSize({ width: s.width, height: s.height });
      await page.screenshot({ path: path.join(SCREENSHOTS, `${name}-${s.label}.png`), fullPage: true });
    }
  } finally {
    if (was) await page.setViewportSize(was);
  }
}


/**
 * Wait until no CSS transition or animation is running on `page` (a colour
 * scheme just switched fades the drop zone's background, and axe would read
 * the colours half-way).
 */
export async function settled(page) {
  await page.evaluate(() =>
    Promise.all(document.getAnimations().map((a) => a.finished.catch(() => null))),
  );
}

let axeSource;
/** axe-core's source (from npm), or null with a note when it is not installed. */
async function axeCore() {
  if (axeSource === undefined) {
    try {
      const require = createRequire(import.meta.url);
      axeSource = await readFile(require.resolve('axe-core/axe.min.js'), 'utf8');
    } catch {
      axeSource = null;
      console.error('# axe-core is not installed: accessibility not checked');
    }
  }
  return axeSource;
}

// ---------------------------------------------------------------- a file of browser tests

/**
 * What every browser test file sets up, and the page helpers its steps share.
 *
 * `start()`, called by the file's `before` hook, makes a fresh temporary
 * directory, starts the real server on it with `users` (and `admins`, server
 * administrators) whose password is `password`, and Chromium with one page
 * whose waits give up after `waitTimeoutMs`; it answers the suite, whose
 * `dir`, `server`, `browser` and `page` are then set:
 *
 *     const s = browserSuite({ password, users: [OWNER] });
 *     before(async () => ({ server, page } = await s.start()));
 *
 * After the file's tests the browser and the server are stopped and the
 * directory removed.
 *
 * - `step(name, body)`: a test (at most `stepTimeoutMs`) that, when it fails,
 *   keeps a screenshot of the page and prints the server's log tail.
 * - `signIn(email, password?)`: a fresh session (cookies cleared) through the
 *   sign-in form; checks that `/` sends to `/login` and that the browser lands on `/`.
 *   `fillSignIn(email, password?)` only fills in and sends the form the page is on.
 * - `api(method, path, body?, {csrf, raw})`: the REST API as the signed-in browser.
 * - `heading()`: the current page's <h1>.
 * - `checkAccessibility(name, {live, ready})` and `capture(name, {live, ready})`:
 *   axe-core, and screenshots in light and dark mode checked with axe-core.
 */
export function browserSuite({
  password,
  users = [],
  admins = [],
  waitTimeoutMs = 20_000,
  stepTimeoutMs = 180_000,
}) {
  const csrfOf = { cookie: null, token: null };
  const suite = {
    dir: undefined,
    server: undefined,
    browser: undefined,
    page: undefined,

    /** The set-up, for the file's `before` hook: answers the suite once it is ready. */
    async start() {
      checkPrerequisites();
      suite.dir = await tempDir();
      suite.server = await startServer(suite.dir);
      const createUser = (email, ...flags) =>
        suite.server.admin(['create-user', '--email', email, ...flags, '--password-stdin'], `${password}\n`);
      for (const email of admins) await createUser(email, '--admin');
      for (const email of users) await createUser(email);
      suite.browser = await launchBrowser(suite.dir);
      suite.browser.setDefaultTimeout(waitTimeoutMs);
      suite.page = suite.browser.pages()[0] ?? (await suite.browser.newPage());
      return suite;
    },

    step(name, body) {
      test(name, { timeout: stepTimeoutMs }, async () => {
        try {
          await body();
        } catch (e) {
          await saveArtifacts(suite.page, name);
          if (suite.server) console.error(`# server log tail:\n${suite.server.log().slice(-3000)}`);
          throw e;
        }
      });
    },

    async fillSignIn(email, pw = password) {
      const { page } = suite;
      await page.locator('input[name="email"]').fill(email);
      await page.locator('input[name="password"]').fill(pw);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.waitForLoadState();
    },

    async signIn(email, pw = password) {
      const { browser, page, server } = suite;
      await browser.clearCookies();
      await page.goto(`${server.url}/`);
      if (new URL(page.url()).pathname !== '/login') {
        throw new Error(`unsigned / went to ${page.url()}, not /login`);
      }
      await suite.fillSignIn(email, pw);
      if (new URL(page.url()).pathname !== '/') {
        throw new Error(`after signing in as ${email} the browser is at ${page.url()}, not /`);
      }
    },

    /** The <h1> of the current page (every page has exactly one). */
    async heading() {
      return (await suite.page.locator('h1').textContent()).trim();
    },

    /** The browser's cookies for the server, as a `cookie` header. */
    async cookieHeader() {
      const cookies = await suite.browser.cookies(suite.server.url);
      return cookies.map((c) => `${c.name}=${c.value}`).join('; ');
    },

    /**
     * `method path` of the REST API as the signed-in browser: its session
     * cookie, and on writes (unless `csrf: false`) the session's CSRF token,
     * read once per session from a page's form, in x-csrf-token. Resolves
     * {status, json}; `raw: true` gives {status, bytes} instead.
     */
    async api(method, path, body, { csrf = true, raw = false } = {}) {
      const { server } = suite;
      const headers = { cookie: await suite.cookieHeader() };
      if (body !== undefined) headers['content-type'] = 'application/json';
      if (method !== 'GET' && csrf) {
        if (csrfOf.cookie !== headers.cookie) {
          const html = await (await fetch(`${server.url}/tokens`, { headers })).text();
          csrfOf.cookie = headers.cookie;
          csrfOf.token = html.match(/name="csrf_token" value="([^"]+)"/)[1];
        }
        headers['x-csrf-token'] = csrfOf.token;
      }
      const r = await fetch(`${server.url}${path}`, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      if (raw) return { status: r.status, bytes: Buffer.from(await r.arrayBuffer()) };
      return { status: r.status, json: await r.json().catch(() => null) };
    },

    /**
     * axe-core over the current page: no serious or critical violation.
     * By default the page is reloaded with its CSP bypassed for the check
     * (and reloaded again with the CSP back); `ready` runs after each reload
     * (e.g. to wait for a script's drawing). `live: true` checks what the
     * page shows now instead, without reloading (an upload in progress, a
     * form's answer), evaluating axe through the DevTools protocol, which the
     * CSP does not govern. Skipped with a note when axe-core is not installed.
     */
    async checkAccessibility(name, { live = false, ready } = {}) {
      const { browser, page } = suite;
      const axe = await axeCore();
      if (!axe) return;
      const bypassCsp = async (on) => {
        const cdp = await browser.newCDPSession(page);
        await cdp.send('Page.setBypassCSP', { enabled: on });
        await cdp.detach();
        await page.reload();
        if (ready) await ready();
      };
      if (!live) await bypassCsp(true);
      await settled(page);
      await page.evaluate(axe);
      const result = await page.evaluate(() =>
        // eslint-disable-next-line no-undef
        axe.run(document, { resultTypes: ['violations'] }),
      );
      if (!live) await bypassCsp(false);
      const serious = result.violations.filter((v) => ['serious', 'critical'].includes(v.impact));
      if (serious.length > 0) {
        const lines = serious.map(
          (v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(' ')).join(', ')})`,
        );
        throw new Error(`accessibility violations on ${name}:\n${lines.join('\n')}`);
      }
    },

    /** Photograph the current page in light and dark mode; check both with axe (options as `checkAccessibility`). */
    async capture(name, options = {}) {
      const { page } = suite;
      await screenshot(page, name);
      await page.emulateMedia({ colorScheme: 'dark' });
      await screenshot(page, `${name}-dark`);
      await suite.checkAccessibility(`${name} (dark)`, options);
      await page.emulateMedia({ colorScheme: 'light' });
      await suite.checkAccessibility(name, options);
    },
  };

  after(async () => {
    await suite.browser?.close().catch(() => {});
    await stop(suite.server?.proc);
    await cleanup(suite.dir);
  });

  return suite;
}
