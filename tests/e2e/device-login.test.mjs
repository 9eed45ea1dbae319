// The whole browser sign-in, end to end, with real processes: the CLI prints
// a device code, headless Chromium signs in on the server's pages and
// approves it, and the CLI ends signed in. Then personal access tokens are
// created and revoked on /tokens, forms without a CSRF token are refused,
// and the user signs out.
//
// The tests in this file share one server, one user and one browser profile
// and run in order (node --test runs a file's tests one after another).

import assert from 'node:assert/strict';
import { before } from 'node:test';
import { browserSuite, cliFor, readDeviceCode, screenshot, waitExit } from './harness.mjs';

const EMAIL = 'ada@example.org';
const PASSWORD = 'correct horse battery staple';

const s = browserSuite({ password: PASSWORD, users: [EMAIL], stepTimeoutMs: 120_000 });
const { step, heading } = s;
let dir, server, page;
before(async () => ({ dir, server, page } = await s.start()));

step('a page that needs a session sends the browser to sign in, and a wrong password is refused', async () => {
  await page.goto(`${server.url}/tokens`);
  assert.match(new URL(page.url()).pathname, /^\/login$/, 'unsigned /tokens must redirect to /login');
  await screenshot(page, 'login');
  await s.fillSignIn(EMAIL, 'not the password');
  assert.equal(new URL(page.url()).pathname, '/login', 'a wrong password must not sign in');
  assert.equal(await page.locator('nav').count(), 0, 'no signed-in navigation after a wrong password');
  assert.match(await page.locator('.err').textContent(), /Wrong email or password/);
  await screenshot(page, 'login-refused');
});

step('device login: the CLI prints a code, the browser signs in and approves, the CLI ends signed in', async () => {
  const cli = await cliFor(dir, 'device');
  const login = cli.spawnDeviceLogin(server.url);
  let stdout = '';
  login.stdout.on('data', (d) => (stdout += d));
  let userCode;
  try {
    const code = await readDeviceCode(login);
    userCode = code.userCode;
    assert.equal(new URL(code.verificationUri).origin, server.url);

    // The plain address (the person types the code): sign in first…
    const response = await page.goto(code.verificationUri);
    assert.ok(response.ok(), `GET ${code.verificationUri}: ${response.status()}`);
    assert.equal(new URL(page.url()).pathname, '/login', '/device without a session must ask to sign in');
    await s.fillSignIn(EMAIL);
    // …then come back to /device (the `next` of the sign-in form).
    assert.equal(new URL(page.url()).pathname, '/device');
    assert.match(await page.locator('nav').textContent(), new RegExp(`Signed in as ${EMAIL}`));

    await screenshot(page, 'device-code');
    // Typed in lower case without the dash: the server normalises it.
    await page.locator('input[name="user_code"]').fill(code.userCode.replace('-', '').toLowerCase());
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.waitForLoadState();
    assert.equal(await heading(), 'Approve device login');
    assert.match(await page.locator('.code').textContent(), new RegExp(code.userCode));
    await screenshot(page, 'device-approve');

    // The CLI is still waiting: nothing is approved yet.
    assert.equal(login.exitCode, null, `the CLI must wait for approval:\n${code.stderr()}`);

    await page.getByRole('button', { name: 'Approve' }).click();
    await page.waitForLoadState();
    assert.equal(await heading(), 'Device approved');
    await page.getByText('Device approved. You can close this page').waitFor();
    await screenshot(page, 'device-approved');

    const exit = await waitExit(login, 60_000);
    assert.equal(exit, 0, `dataerai auth login failed:\n${code.stderr()}\n${stdout}`);
    assert.match(stdout, new RegExp(`Signed in to ${server.url} as ${EMAIL}`));
  } finally {
    if (login.exitCode === null) login.kill('SIGKILL');
  }

  const status = await cli.run(['auth', 'status', '--json']);
  assert.equal(status.code, 0, `auth status failed: ${status.stderr}`);
  const st = JSON.parse(status.stdout);
  assert.equal(st.user_email, EMAIL);
  assert.equal(st.server, server.url);
  assert.equal(st.token_kind, 'oauth');
  assert.ok(st.expires_at, 'an access token from the device flow expires');
  assert.ok(Date.parse(st.expires_at) > Date.now(), `expiry in the future: ${st.expires_at}`);
  assert.ok(st.refresh_expires_at, 'the refresh token expiry is shown');
  assert.deepEqual([...st.scopes].sort(), ['read', 'write']);

  // The code is used up: approving it again is refused.
  await page.goto(`${server.url}/device?user_code=${encodeURIComponent(userCode)}`);
  assert.equal(await heading(), 'Device login');
  assert.match(await page.locator('.err').textContent(), /unknown, expired or already used/);
});

step('a denied device code makes the CLI fail', async () => {
  const cli = await cliFor(dir, 'denied');
  const login = cli.spawnDeviceLogin(server.url);
  try {
    const code = await readDeviceCode(login);
    // The full address carries the code: straight to the confirmation (signed in already).
    await page.goto(code.verificationUriComplete);
    assert.equal(await heading(), 'Approve device login');
    await page.getByRole('button', { name: 'Deny' }).click();
    await page.waitForLoadState();
    assert.equal(await heading(), 'Device denied');
    const exit = await waitExit(login, 60_000);
    assert.notEqual(exit, 0, `a denied login must fail:\n${code.stderr()}`);
  } finally {
    if (login.exitCode === null) login.kill('SIGKILL');
  }
  const status = await cli.run(['auth', 'status', '--json']);
  assert.notEqual(status.code, 0, 'no credentials after a denied login');
});

step('a personal access token made on /tokens works until it is revoked', async () => {
  await page.goto(`${server.url}/tokens`);
  assert.equal(new URL(page.url()).pathname, '/tokens');
  const name = `e2e-ci-${Date.now()}`;
  await page.locator('input[name="name"]').fill(name);
  await page.locator('input[name="scope"][value="read"]').check();
  await page.locator('input[name="scope"][value="write"]').check();
  await page.getByRole('button', { name: 'Create token' }).click();
  await page.waitForLoadState();
  const token = (await page.locator('#new-token').textContent()).trim();
  assert.match(token, /^dtr_pat_[0-9a-f]{64}$/, 'the new token is shown once');
  const row = page.locator('tr[data-token-id]', { hasText: name });
  assert.equal(await row.count(), 1, 'one row for the new token');
  assert.match(await row.textContent(), /read write.*active/);
  await screenshot(page, 'tokens-created');

  // The token signs a fresh CLI in (the way scripts and CI do).
  const cli = await cliFor(dir, 'pat');
  const login = await cli.run(['auth', 'login', '--server', server.url, '--token-stdin'], {
    input: `${token}\n`,
  });
  assert.equal(login.code, 0, `auth login --token-stdin failed: ${login.stderr}`);
  const status = await cli.run(['auth', 'status', '--json']);
  assert.equal(status.code, 0, `auth status failed: ${status.stderr}`);
  const st = JSON.parse(status.stdout);
  assert.equal(st.user_email, EMAIL);
  assert.equal(st.token_kind, 'pat');
  assert.deepEqual([...st.scopes].sort(), ['read', 'write']);

  // Revoke it on the page…
  await row.getByRole('button', { name: 'Revoke' }).click();
  await page.waitForLoadState();
  assert.equal(new URL(page.url()).pathname, '/tokens');
  const revoked = page.locator('tr[data-token-id]', { hasText: name });
  assert.match(await revoked.textContent(), /revoked/);
  assert.equal(await revoked.getByRole('button', { name: 'Revoke' }).count(), 0, 'nothing left to revoke');
  await screenshot(page, 'tokens');

  // …and it stops working at once, for the signed-in CLI and for a new login.
  const after = await cli.run(['auth', 'status', '--json']);
  assert.notEqual(after.code, 0, `a revoked token must not work: ${after.stdout}`);
  assert.match(after.stderr + after.stdout, /ERR_AUTH_REQUIRED/);
  const again = await (await cliFor(dir, 'pat-again')).run(
    ['auth', 'login', '--server', server.url, '--token-stdin'],
    { input: `${token}\n` },
  );
  assert.notEqual(again.code, 0, 'signing in with a revoked token must fail');
  assert.match(again.stderr + again.stdout, /ERR_AUTH_REQUIRED/);
});

step('a form POST without the CSRF token (or with a wrong one) is refused with 403', async () => {
  // The browser context's request API sends the session cookie like a form would.
  const request = page.context().request;
  const name = `forged-${Date.now()}`;
  const missing = await request.post(`${server.url}/tokens`, {
    form: { name, scope: 'write' },
    maxRedirects: 0,
  });
  assert.equal(missing.status(), 403, 'POST /tokens without csrf_token');
  // Photograph the refusal page (its HTML shown in the page; nothing is posted again).
  await page.setContent(await missing.text());
  assert.equal(await heading(), 'Request refused');
  await screenshot(page, 'refused');
  const wrong = await request.post(`${server.url}/tokens`, {
    form: { name, scope: 'write', csrf_token: '0'.repeat(64) },
    maxRedirects: 0,
  });
  assert.equal(wrong.status(), 403, 'POST /tokens with a wrong csrf_token');
  const logout = await request.post(`${server.url}/logout`, { form: {}, maxRedirects: 0 });
  assert.equal(logout.status(), 403, 'POST /logout without csrf_token');
  const device = await request.post(`${server.url}/device`, {
    form: { user_code: 'BCDF-GHJK', action: 'approve' },
    maxRedirects: 0,
  });
  assert.equal(device.status(), 403, 'POST /device without csrf_token');

  // Nothing happened: no token was made and the session is still signed in.
  await page.goto(`${server.url}/tokens`);
  assert.equal(new URL(page.url()).pathname, '/tokens', 'still signed in');
  assert.equal(await page.locator('tr[data-token-id]', { hasText: name }).count(), 0);

  // A revoke without the token leaves the token active.
  const keep = `kept-${Date.now()}`;
  await page.locator('input[name="name"]').fill(keep);
  await page.getByRole('button', { name: 'Create token' }).click();
  await page.waitForLoadState();
  const row = page.locator('tr[data-token-id]', { hasText: keep });
  const tokenId = await row.getAttribute('data-token-id');
  assert.ok(tokenId, 'the new token has a row with its id');
  const revoke = await request.post(`${server.url}/tokens/${encodeURIComponent(tokenId)}/revoke`, {
    form: {},
    maxRedirects: 0,
  });
  assert.equal(revoke.status(), 403, 'POST /tokens/{id}/revoke without csrf_token');
  await page.goto(`${server.url}/tokens`);
  assert.match(await row.textContent(), /active/, 'the token is still active');

  // The sign-in form's double-submit token is checked too.
  const login = await request.post(`${server.url}/login`, {
    form: { email: EMAIL, password: PASSWORD, next: '/tokens' },
    maxRedirects: 0,
  });
  assert.equal(login.status(), 403, 'POST /login without csrf_token');
});

step('sign out ends the session', async () => {
  await page.goto(`${server.url}/tokens`);
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.waitForLoadState();
  await page.goto(`${server.url}/tokens`);
  assert.equal(new URL(page.url()).pathname, '/login', 'after sign-out /tokens asks to sign in again');
  const cookies = await page.context().cookies(server.url);
  const session = cookies.find((c) => c.name === 'dataerai_session');
  assert.ok(!session || session.value === '', 'the session cookie is gone');

  // The CLI signed in through the device flow keeps working: its tokens are
  // not the browser session.
  const cli = await cliFor(dir, 'device');
  const status = await cli.run(['auth', 'status', '--json']);
  assert.equal(status.code, 0, `device-flow credentials survive a browser sign-out: ${status.stderr}`);
});
