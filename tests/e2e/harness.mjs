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
  const before = page.viewportSize();
  try {
    for (const s of SCREENS) {
      await page.setViewportSize({ width: s.width, height: s.height });
      await page.screenshot({ path: path.join(SCREENSHOTS, `${name}-${s.label}.png`), fullPage: true });
    }
  } finally {
    if (before) await page.setViewportSize(before);
  }
}

// ---------------------------------------------------------------- signed-in pages

/** Sign `email` in through /login in `browser` (a fresh session: cookies cleared first). */
export async function signIn(browser, page, server, email, password) {
  await browser.clearCookies();
  await page.goto(`${server.url}/login`);
  await page.locator('input[name="email"]').fill(email);
  await page.locator('input[name="password"]').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForLoadState();
  if (new URL(page.url()).pathname !== '/') {
    throw new Error(`signing in as ${email} did not land on / but on ${page.url()}`);
  }
}

/**
 * The REST API as the signed-in browser: its session cookie, and on writes
 * the session's CSRF token (read from a page's form) in x-csrf-token.
 * Resolves {status, json}; `raw: true` gives {status, bytes} instead.
 */
export function sessionApi(browser, server) {
  return async function api(method, path, body, { csrf = true, raw = false } = {}) {
    const cookies = await browser.cookies(server.url);
    const headers = { cookie: cookies.map((c) => `${c.name}=${c.value}`).join('; ') };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (method !== 'GET' && csrf) {
      const html = await (await fetch(`${server.url}/tokens`, { headers })).text();
      headers['x-csrf-token'] = html.match(/name="csrf_token" value="([^"]+)"/)[1];
    }
    const r = await fetch(`${server.url}${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (raw) return { status: r.status, bytes: Buffer.from(await r.arrayBuffer()) };
    return { status: r.status, json: await r.json().catch(() => null) };
  };
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
/**
 * axe-core over what `page` shows now (no reload: a page's live state, such
 * as an upload in progress, is checked as it is): no serious or critical
 * violation. Skipped with a note when axe-core is not installed.
 */
export async function checkAccessibility(page, name) {
  if (axeSource === undefined) {
    try {
      const require = createRequire(import.meta.url);
      axeSource = await readFile(require.resolve('axe-core/axe.min.js'), 'utf8');
    } catch {
      axeSource = null;
      console.error('# axe-core is not installed: accessibility not checked');
    }
  }
  if (!axeSource) return;
  await settled(page);
  // Evaluated through the DevTools protocol, which the pages' CSP does not govern.
  await page.evaluate(axeSource);
  const result = await page.evaluate(() =>
    // eslint-disable-next-line no-undef
    axe.run(document, { resultTypes: ['violations'] }),
  );
  const serious = result.violations.filter((v) => ['serious', 'critical'].includes(v.impact));
  if (serious.length > 0) {
    const lines = serious.map(
      (v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(' ')).join(', ')})`,
    );
    throw new Error(`accessibility violations on ${name}:\n${lines.join('\n')}`);
  }
}

/** Photograph what `page` shows at laptop and phone width, light and dark, and check it with axe. */
export async function capture(page, name) {
  await screenshot(page, name);
  await page.emulateMedia({ colorScheme: 'dark' });
  await screenshot(page, `${name}-dark`);
  await checkAccessibility(page, `${name} (dark)`);
  await page.emulateMedia({ colorScheme: 'light' });
  await checkAccessibility(page, name);
}

/**
 * A signed-in browser on `server` for the data-page tests: sign in through
 * the form, call the REST API with the browser's session (cookie, and the
 * session's CSRF token in x-csrf-token on writes), check a page with
 * axe-core and photograph it in light and dark mode.
 */
export function browserSession(browser, page, server, password) {
  let axeSource;
  const csrfOf = { cookie: null, token: null };
  const self = {
    /** Sign in as `email` (cookies cleared first); lands on `/`. */
    async signIn(email) {
      await browser.clearCookies();
      await page.goto(`${server.url}/`);
      if (new URL(page.url()).pathname !== '/login') {
        throw new Error(`unsigned / went to ${page.url()}, not /login`);
      }
      await page.locator('input[name="email"]').fill(email);
      await page.locator('input[name="password"]').fill(password);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.waitForLoadState();
      if (new URL(page.url()).pathname !== '/') {
        throw new Error(`after sign-in the browser is at ${page.url()}, not /`);
      }
    },

    /** `method path` of the REST API as the signed-in browser: {status, json}. */
    async api(method, path, body, { csrf = true } = {}) {
      const cookies = await browser.cookies(server.url);
      const headers = {
        cookie: cookies.map((c) => `${c.name}=${c.value}`).join('; '),
        'content-type': 'application/json',
      };
      if (method !== 'GET' && csrf) {
        // The session's token, read once per session from a page's form.
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
      return { status: r.status, json: await r.json().catch(() => null) };
    },

    /**
     * Check the current page with axe-core (from npm, run with the page's CSP
     * bypassed, then restored): no serious or critical violation. `ready`
     * runs after each reload (e.g. to wait for a script's drawing).
     */
    async checkAccessibility(name, { ready } = {}) {
      if (axeSource === undefined) {
        try {
          const require = createRequire(import.meta.url);
          axeSource = await readFile(require.resolve('axe-core/axe.min.js'), 'utf8');
        } catch {
          axeSource = null;
          console.error('# axe-core is not installed: accessibility not checked');
        }
      }
      if (!axeSource) return;
      const bypass = async (on) => {
        const cdp = await browser.newCDPSession(page);
        await cdp.send('Page.setBypassCSP', { enabled: on });
        await cdp.detach();
        await page.reload();
        if (ready) await ready();
      };
      await bypass(true);
      await page.evaluate(axeSource);
      const result = await page.evaluate(() =>
        // eslint-disable-next-line no-undef
        axe.run(document, { resultTypes: ['violations'] }),
      );
      await bypass(false);
      const serious = result.violations.filter((v) => ['serious', 'critical'].includes(v.impact));
      if (serious.length > 0) {
        throw new Error(
          `accessibility violations on ${name}:\n` +
            serious
              .map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(' ')).join(', ')})`)
              .join('\n'),
        );
      }
    },

    /** Photograph the current page in light and dark mode; check both with axe. */
    async capture(name, options = {}) {
      await screenshot(page, name);
      await page.emulateMedia({ colorScheme: 'dark' });
      await screenshot(page, `${name}-dark`);
      await self.checkAccessibility(`${name} (dark)`, options);
      await page.emulateMedia({ colorScheme: 'light' });
      await self.checkAccessibility(name, options);
    },
  };
  return self;
}
