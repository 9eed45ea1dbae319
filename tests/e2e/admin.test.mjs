// The admin area in a browser, end to end: a server administrator creates a
// user on /admin/users, sets their password, the user signs in; the
// administrator disables them and their next sign-in is refused; the audit
// log filters by action and actor. Each admin page is photographed at laptop
// and phone width, light and dark, under target/e2e-screenshots/, and checked
// with axe-core (no serious or critical violations).

import assert from 'node:assert/strict';
import { before } from 'node:test';
import { browserSuite } from './harness.mjs';

const PASSWORD = 'correct horse battery staple';
const ADMIN = 'root@example.org';
const NEWCOMER = 'nora@example.org';
const NEW_PASSWORD = 'a brand new long password';

const s = browserSuite({ password: PASSWORD, admins: [ADMIN] });
const { step, capture, signIn } = s;
let server, browser, page;
before(async () => ({ server, browser, page } = await s.start()));

function flash() {
  return page.locator('.flash').first().textContent();
}

step('the administrator sees the Admin entry and the health page', async () => {
  await signIn(ADMIN);
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
  await signIn(ADMIN);
  await page.goto(`${server.url}/admin/users?q=nora`);
  await page.getByRole('button', { name: `Disable ${NEWCOMER}` }).click();
  await page.waitForLoadState();
  assert.match(await flash(), /nora@example.org is disabled/);
  await browser.clearCookies();
  await page.goto(`${server.url}/login`);
  await s.fillSignIn(NEWCOMER, NEW_PASSWORD);
  assert.equal(new URL(page.url()).pathname, '/login', 'the disabled user stays on the sign-in page');
  assert.match(await flash(), /disabled/);
});

step('the audit log filters by action and actor', async () => {
  await signIn(ADMIN);
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
