// The admin area in a browser, end to end: a server administrator creates a
// user on /admin/users, sets their password, the user signs in; the
// administrator disables them and their next sign-in is refused; the audit
// log filters by action and actor. Each admin page is photographed at laptop
// and phone width, light and dark, under target/e2e-screenshots/, and checked
// with axe-core (no serious or critical violations).

import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { after, before, test } from 'node:test';
import { readFile } from 'node:fs/promises';
import {
  checkPrerequisites,
  cleanup,
  launchBrowser,
  saveArtifacts,
  screenshot,
  startServer,
  stop,
  tempDir,
} from './harness.mjs';

const PASSWORD = 'correct horse battery staple';
const ADMIN = 'root@example.org';
const NEWCOMER = 'nora@example.org';
const NEW_PASSWORD = 'a brand new long password';
const STEP_TIMEOUT_MS = 20_000;

let dir;
let server;
let browser;
let page;

before(async () => {
  checkPrerequisites();
  dir = await tempDir();
  server = await startServer(dir);
  await server.admin(['create-user', '--email', ADMIN, '--admin', '--password-stdin'], `${PASSWORD}\n`);
  browser = await launchBrowser(dir);
  browser.setDefaultTimeout(STEP_TIMEOUT_MS);
  page = browser.pages()[0] ?? (await browser.newPage());
});

after(async () => {
  await browser?.close().catch(() => {});
  await stop(server?.proc);
  await cleanup(dir);
});

function step(name, body) {
  test(name, { timeout: 180_000 }, async () => {
    try {
      await body();
    } catch (e) {
      await saveArtifacts(page, name);
      if (server) console.error(`# server log tail:\n${server.log().slice(-3000)}`);
      throw e;
    }
  });
}

async function signIn(email, password) {
  await browser.clearCookies();
  await page.goto(`${server.url}/login`);
  await page.locator('input[name="email"]').fill(email);
  await page.locator('input[name="password"]').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForLoadState();
}

function flash() {
  return page.locator('.flash').first().textContent();
}

let axeSource;
async function checkAccessibility(name) {
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
  // The pages' CSP allows no test scripts: bypass it for the check only.
  const cdp = await browser.newCDPSession(page);
  await cdp.send('Page.setBypassCSP', { enabled: true });
  await page.reload();
  await page.evaluate(axeSource);
  const result = await page.evaluate(() =>
    // eslint-disable-next-line no-undef
    axe.run(document, { resultTypes: ['violations'] }),
  );
  await cdp.send('Page.setBypassCSP', { enabled: false });
  await cdp.detach();
  await page.reload();
  const serious = result.violations.filter((v) => ['serious', 'critical'].includes(v.impact));
  assert.deepEqual(
    serious.map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(' ')).join(', ')})`),
    [],
    `accessibility violations on ${name}`,
  );
}

/** Photograph a GET page in light and dark mode; check it with axe. */
async function capture(name) {
  await screenshot(page, name);
  await page.emulateMedia({ colorScheme: 'dark' });
  await screenshot(page, `${name}-dark`);
  await checkAccessibility(`${name} (dark)`);
  await page.emulateMedia({ colorScheme: 'light' });
  await checkAccessibility(name);
}

step('the administrator sees the Admin entry and the health page', async () => {
  await signIn(ADMIN, PASSWORD);
  assert.equal(new URL(page.url()).pathname, '/');
  await page.locator('nav').getByRole('link', { name: 'Admin' }).click();
  await page.waitForLoadState();
  assert.equal(new URL(page.url()).pathname, '/admin');
  const text = await page.locator('main').textContent();
  for (const words of ['Server health', 'Database', 'Blob store', 'Fullest allocations']) {
    assert.ok(text.includes(words), `${words} on /admin`);
  }
  await capture('admin-health');
});

step('the administrator creates a user and sets their password; the user signs in', async () => {
  await page.goto(`${server.url}/admin/users`);
  await page.locator('#new-email').fill(NEWCOMER);
  await page.getByRole('button', { name: 'Create user' }).click();
  await page.waitForLoadState();
  assert.match(await flash(), /User nora@example.org created/);
  assert.ok(await page.locator(`tr[data-email="${NEWCOMER}"]`).isVisible());
  assert.match(await page.locator(`tr[data-email="${NEWCOMER}"]`).textContent(), /no password/);
  await page.locator('#pw-email').fill(NEWCOMER);
  await page.locator('#pw-password').fill(NEW_PASSWORD);
  await page.getByRole('button', { name: 'Set password' }).click();
  await page.waitForLoadState();
  assert.match(await flash(), /Password of nora@example.org set/);
  await page.goto(`${server.url}/admin/users`);
  await capture('admin-users');

  await signIn(NEWCOMER, NEW_PASSWORD);
  assert.equal(new URL(page.url()).pathname, '/', 'the new user signs in');
  assert.equal(await page.locator('nav').getByRole('link', { name: 'Admin' }).count(), 0);
  const resp = await page.goto(`${server.url}/admin`);
  assert.equal(resp.status(), 404, 'a non-administrator gets the 404 page');
});

step('the administrator disables the user; their sign-in is refused', async () => {
  await signIn(ADMIN, PASSWORD);
  await page.goto(`${server.url}/admin/users?q=nora`);
  await page.getByRole('button', { name: `Disable ${NEWCOMER}` }).click();
  await page.waitForLoadState();
  assert.match(await flash(), /nora@example.org is disabled/);
  await signIn(NEWCOMER, NEW_PASSWORD);
  assert.equal(new URL(page.url()).pathname, '/login', 'the disabled user stays on the sign-in page');
  assert.match(await flash(), /disabled/);
});

step('the audit log filters by action and actor', async () => {
  await signIn(ADMIN, PASSWORD);
  await page.goto(`${server.url}/admin/audit`);
  await page.locator('#f-action').fill('user.disabled');
  await page.getByRole('button', { name: 'Filter' }).click();
  await page.waitForLoadState();
  const rows = page.locator('table.audit tbody tr');
  assert.equal(await rows.count(), 1);
  assert.match(await rows.first().textContent(), /root@example\.org/);
  await page.goto(`${server.url}/admin/audit?actor=${encodeURIComponent(ADMIN)}`);
  const actions = await page.locator('table.audit tbody tr td[data-label="Action"]').allTextContents();
  for (const a of ['user.created', 'user.password_set', 'user.disabled', 'auth.sign_in']) {
    assert.ok(actions.includes(a), `${a} by the administrator: ${actions}`);
  }
  await capture('admin-audit');
});
