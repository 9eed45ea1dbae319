// Uploads from the browser, end to end, on the real server in headless
// Chromium: files and a folder chosen through the project page's inputs
// become assets whose BLAKE3 checksums (and downloaded bytes) match the local
// files; a multi-chunk upload cut off by the network resumes after a page
// reload and sends only what the server lacks; "Cancel" aborts the session
// and leaves no empty asset; a viewer gets no upload zone. The zone is
// photographed with progress at laptop and phone width, light and dark, and
// checked with axe-core.

import assert from 'node:assert/strict';
import { before } from 'node:test';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { hash, toHex } from '../../crates/dataerai-server/src/web/static/blake3.js';
import { browserSuite, screenshot } from './harness.mjs';

const PASSWORD = 'correct horse battery staple';
const OWNER = 'uma@example.org';
const VIEWER = 'val@example.org';
const MiB = 1024 * 1024;
/** The chunk PUTs of every upload, for `page.route`. */
const CHUNK_PUTS = '**/api/v1/uploads/*/files/*/chunks/*';

const s = browserSuite({
  password: PASSWORD,
  users: [OWNER, VIEWER],
  waitTimeoutMs: 30_000,
  stepTimeoutMs: 240_000,
});
const { step, api, signIn } = s;
let dir, server, page;
before(async () => ({ dir, server, page } = await s.start()));
const ids = {};

/** Bytes that differ from file to file (and from chunk to chunk). */
function pattern(len, seed) {
  const out = Buffer.alloc(Math.ceil(len / 4) * 4);
  for (let i = 0; i < out.length; i += 4) out.writeUInt32LE(Math.imul(i + seed, 2654435761) >>> 0, i);
  return out.subarray(0, len);
}

async function writeLocal(rel, bytes) {
  const p = path.join(dir, 'local', rel);
  await mkdir(path.dirname(p), { recursive: true });
  await writeFile(p, bytes);
  return p;
}

function blake3Of(bytes) {
  return `blake3:${toHex(hash(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length)))}`;
}

async function openProject() {
  await page.goto(`${server.url}/projects/${ids.project}?collection=${ids.sub}`);
  await page.locator('.dropzone').waitFor({ state: 'visible' });
}

/** Use `size` bytes per chunk for the next uploads (the zone's data-chunk-size). */
async function setChunkSize(size) {
  await page.locator('[data-upload-zone]').evaluate((z, s) => (z.dataset.chunkSize = String(s)), size);
}

/** The project's assets by title, with their latest content. */
async function assetsByTitle() {
  const r = await api('GET', `/api/v1/assets?owner_type=project&owner_id=${ids.project}&limit=1000`);
  assert.equal(r.status, 200, JSON.stringify(r.json));
  return new Map(r.json.items.map((a) => [a.title, a]));
}

/** The asset's files match the local ones: names, sizes, BLAKE3, and the bytes downloaded. */
async function assertContent(asset, expected) {
  assert.ok(asset, 'the asset exists');
  assert.deepEqual(asset.collection_ids, [ids.sub], `${asset.title} is filed in the shown collection`);
  const content = asset.latest_content;
  assert.ok(content, `${asset.title} has a complete version`);
  assert.deepEqual(
    content.files.map((f) => [f.name, f.size, f.checksum]),
    expected.map(([name, bytes]) => [name, bytes.length, blake3Of(bytes)]),
  );
  for (const f of content.files) {
    const got = await api(
      'GET',
      `/api/v1/assets/${asset.asset_id}/contents/${content.content_id}/files/${f.file_index}`,
      undefined,
      { raw: true },
    );
    assert.equal(got.status, 200);
    assert.ok(got.bytes.equals(expected[f.file_index][1]), `downloaded bytes of ${f.name}`);
  }
}

/** Wait until `count` upload rows are in `state` (fails early on a failed one). */
async function waitForJobs(count, state = 'done', timeout = 120_000) {
  const rows = page.locator(`.upload-job[data-upload-state="${state}"]`);
  const deadline = Date.now() + timeout;
  while ((await rows.count()) < count) {
    const failed = page.locator('.upload-job[data-upload-state="failed"] .upload-message');
    if (state !== 'failed' && (await failed.count()) > 0) {
      throw new Error(`an upload failed: ${await failed.first().textContent()}`);
    }
    if (Date.now() > deadline) throw new Error(`fewer than ${count} uploads are ${state}`);
    await page.waitForTimeout(200);
  }
}

/** The upload sessions this browser keeps in localStorage. */
async function keptSessions() {
  return page.evaluate(() =>
    Object.keys(localStorage)
      .filter((k) => k.startsWith('dataerai.upload.'))
      .map((k) => JSON.parse(localStorage.getItem(k))),
  );
}

step('the owner makes a project with a sub-collection and a viewer', async () => {
  await signIn(OWNER);
  const project = await api('POST', '/api/v1/projects', { name: 'Cryo-EM facility' });
  assert.equal(project.status, 201, JSON.stringify(project.json));
  ids.project = project.json.project_id;
  const sub = await api('POST', `/api/v1/projects/${ids.project}/collections`, { name: 'Grids 2026-12' });
  assert.equal(sub.status, 201);
  ids.sub = sub.json.collection_id;
  const member = await api('POST', `/api/v1/projects/${ids.project}/members`, { email: VIEWER, role: 'viewer' });
  assert.ok(member.status < 300, JSON.stringify(member.json));
});

step('writers get the upload zone; without JavaScript it says what to use instead', async () => {
  await openProject();
  await page.getByRole('button', { name: 'Choose files…' }).waitFor();
  await page.getByRole('button', { name: 'Choose a folder…' }).waitFor();
  assert.match(await page.locator('.dropzone').textContent(), /Drop files or a folder here\s+to upload them to Grids 2026-12/);
  // The HTML as a browser without JavaScript gets it: the zone hidden, a note instead.
  const html = await (
    await fetch(`${server.url}/projects/${ids.project}?collection=${ids.sub}`, {
      headers: { cookie: await s.cookieHeader() },
    })
  ).text();
  assert.match(html, /<div class="dropzone" hidden>/);
  assert.match(html, /<noscript>.*needs JavaScript.*dataerai upload PATH/s);
  assert.match(html, /<script type="module" src="\/static\/upload.js">/);
  await s.capture('upload-zone', { live: true });
});

step('files and a folder chosen through the inputs become assets with the right BLAKE3', async () => {
  await openProject();
  await setChunkSize(MiB); // so the 3 MiB file goes in several chunks
  const small = pattern(1000, 1);
  const medium = pattern(3 * MiB + 123, 2);
  const empty = Buffer.alloc(0);
  const files = [
    await writeLocal('notes.txt', small),
    await writeLocal('movie-0001.mrc', medium),
    await writeLocal('empty.dat', empty),
  ];
  await page.locator('#upload-files').setInputFiles(files);
  await waitForJobs(3);
  const f1 = pattern(2 * MiB + 5, 3);
  const f2 = pattern(4096, 4);
  const settings = Buffer.from('{"voltage_kv": 300}\n');
  await writeLocal('grid-07/frames/f-0001.tif', f1);
  await writeLocal('grid-07/frames/f-0002.tif', f2);
  await writeLocal('grid-07/settings.json', settings);
  await page.locator('#upload-folder').setInputFiles(path.join(dir, 'local', 'grid-07'));
  await waitForJobs(4);
  // The overall line follows the rows on the next repaint.
  await page.locator('.upload-overall', { hasText: '4 of 4 done' }).waitFor();
  assert.doesNotMatch(await page.locator('.upload-overall').textContent(), /left/);
  await screenshot(page, 'upload-done');

  const assets = await assetsByTitle();
  await assertContent(assets.get('notes.txt'), [['notes.txt', small]]);
  await assertContent(assets.get('movie-0001.mrc'), [['movie-0001.mrc', medium]]);
  await assertContent(assets.get('empty.dat'), [['empty.dat', empty]]);
  await assertContent(assets.get('grid-07'), [
    ['frames/f-0001.tif', f1],
    ['frames/f-0002.tif', f2],
    ['settings.json', settings],
  ]);
  // Each row links its asset; nothing is left to resume.
  const link = page.locator('.upload-job[data-upload-state="done"] a', { hasText: 'grid-07' });
  assert.equal(await link.getAttribute('href'), `/assets/${assets.get('grid-07').asset_id}`);
  assert.deepEqual(await keptSessions(), []);
});

step('a multi-chunk upload cut off by the network resumes after a reload and sends only the rest', async () => {
  await openProject();
  await setChunkSize(MiB);
  const big = pattern(40 * MiB, 5);
  const local = await writeLocal('tomogram-12.mrc', big);
  const chunks = 40;

  // The network lets 12 chunk PUTs through, then fails every other one
  // until it is mended. (The route stays to the end of the step: Chromium
  // can drop a request sent while interception is turned off.)
  let puts = 0;
  let mended = false;
  const cut = async (route) => {
    puts += 1;
    if (mended || puts <= 12) await route.continue();
    else await route.abort('failed');
  };
  await page.route(CHUNK_PUTS, cut);
  await page.locator('#upload-files').setInputFiles(local);
  await page.locator('.upload-job[data-upload-state="retrying"]').waitFor();
  await page.locator('.upload-message.warn', { hasText: 'ERR_SERVER_UNREACHABLE' }).waitFor();
  await page.waitForTimeout(400); // let the progress text catch up
  await s.capture('upload-progress', { live: true });

  const [kept] = await keptSessions();
  assert.ok(kept, 'the session is kept in localStorage');
  assert.equal(kept.chunk_size, MiB);
  const before = await api('GET', `/api/v1/uploads/${kept.upload_id}`);
  const held = before.json.files[0].received_chunks.length;
  assert.ok(held >= 1 && held <= 12, `the server holds ${held} chunks`);

  // Reload: the upload stops and is listed as unfinished.
  await openProject();
  mended = true;
  const row = page.locator(`.upload-unfinished li[data-upload-id="${kept.upload_id}"]`);
  await row.waitFor();
  assert.match(await row.textContent(), /tomogram-12\.mrc/);
  await row.getByRole('button', { name: /Resume \(choose the file again\)/ }).waitFor();
  await s.capture('upload-unfinished', { live: true });

  // The same file again: only the chunks the server lacks are sent.
  const sent = [];
  const count = (r) => {
    if (r.method() === 'PUT' && r.url().includes(`/uploads/${kept.upload_id}/`)) sent.push(r.url());
  };
  page.on('request', count);
  await page.locator('#upload-files').setInputFiles(local);
  await waitForJobs(1);
  page.off('request', count);
  assert.match(await page.locator('.upload-job .upload-message').first().textContent(), /Uploaded/);
  assert.ok(sent.length <= chunks - held, `${sent.length} PUTs after resuming, the server held ${held} of ${chunks}`);
  assert.ok(sent.length < chunks);
  assert.equal(await row.count(), 0, 'no longer listed as unfinished');
  assert.deepEqual(await keptSessions(), [], 'the finished session is forgotten');

  const asset = (await assetsByTitle()).get('tomogram-12.mrc');
  assert.equal(asset.asset_id, kept.asset_id, 'the resumed upload completed the same asset');
  await assertContent(asset, [['tomogram-12.mrc', big]]);
  await s.checkAccessibility('upload finished', { live: true });
  await page.unroute(CHUNK_PUTS, cut);
});

/**
 * Start uploading `bytes` as `name` with its chunk PUTs held unanswered
 * (they hang until the upload is cancelled or the page is left). Answers the
 * session kept in localStorage and `release()`, which removes the hold: call
 * it once the step's requests are done (Chromium can drop a request sent
 * while interception is turned off).
 */
async function startHeldUpload(name, bytes) {
  await openProject();
  await setChunkSize(MiB);
  const local = await writeLocal(name, bytes);
  const hold = () => {};
  await page.route(CHUNK_PUTS, hold);
  await page.locator('#upload-files').setInputFiles(local);
  await page.locator('.upload-job[data-upload-state="uploading"]').waitFor();
  const [kept] = await keptSessions();
  return { kept, release: () => page.unroute(CHUNK_PUTS, hold) };
}

/** Give the asset's removal a moment (up to 5 s): poll until its GET is a 404. */
async function waitUntilDeleted(assetId) {
  for (let i = 0; i < 50 && (await api('GET', `/api/v1/assets/${assetId}`)).status !== 404; i++) {
    await page.waitForTimeout(100);
  }
}

step('"Cancel" aborts the session and removes the empty asset', async () => {
  const { kept, release } = await startHeldUpload('cancel-me.bin', pattern(6 * MiB, 6));
  await page.getByRole('button', { name: 'Cancel upload of cancel-me.bin' }).click();
  await page.locator('.upload-job[data-upload-state="cancelled"]').waitFor();
  // The cancel's DELETEs are done before the hold goes.
  await waitUntilDeleted(kept.asset_id);
  assert.equal((await api('GET', `/api/v1/assets/${kept.asset_id}`)).status, 404);
  assert.equal((await api('GET', `/api/v1/uploads/${kept.upload_id}`)).status, 404);
  assert.deepEqual(await keptSessions(), []);
  await release();
});

step('an unfinished upload can be discarded', async () => {
  const { kept, release } = await startHeldUpload('discard-me.bin', pattern(5 * MiB, 7));
  // Leaving the page ends the held chunk requests; then the hold can go.
  await openProject();
  await release();
  const row = page.locator(`.upload-unfinished li[data-upload-id="${kept.upload_id}"]`);
  await row.getByRole('button', { name: /Discard/ }).click();
  await row.waitFor({ state: 'detached' });
  await waitUntilDeleted(kept.asset_id);
  assert.equal((await api('GET', `/api/v1/assets/${kept.asset_id}`)).status, 404);
  assert.deepEqual(await keptSessions(), []);
});

step('a viewer gets no upload zone', async () => {
  await signIn(VIEWER);
  await page.goto(`${server.url}/projects/${ids.project}?collection=${ids.sub}`);
  await page.getByRole('link', { name: 'movie-0001.mrc' }).waitFor();
  assert.equal(await page.locator('[data-upload-zone]').count(), 0);
  assert.equal(await page.locator('script[src="/static/upload.js"]').count(), 0);
});
