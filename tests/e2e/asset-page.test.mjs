// The asset page in a real browser: the lineage graph (drawn by
// static/lineage.js from the REST lineage), its exports as files, in-place
// editing and deletion for writers, no controls for viewers, a locked node
// for what a viewer may not read, and a 500-asset lineage that still draws
// quickly. Screenshots at laptop and phone width, light and dark, under
// target/e2e-screenshots/asset-*.png; axe-core on each.
//
// The data is made through the REST API with the browser's session.

import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { before } from 'node:test';
import { browserSuite } from './harness.mjs';

const PASSWORD = 'correct horse battery staple';
const OWNER = 'olga@example.org';
const VIEWER = 'vic@example.org';
const OUTSIDER = 'oscar@example.org';
const BIG = 500;

const s = browserSuite({
  password: PASSWORD,
  users: [OWNER, VIEWER, OUTSIDER],
  waitTimeoutMs: 30_000,
  stepTimeoutMs: 300_000,
});
const { step, heading } = s;
let server, browser, page;
before(async () => ({ server, browser, page } = await s.start()));
const ids = {};

/** Wait until lineage.js has drawn the graph; answers its node count. */
async function graphDrawn() {
  await page.locator('#lineage-graph svg .node').first().waitFor();
  return page.locator('#lineage-graph svg .node').count();
}

async function created(reply, what) {
  assert.equal(reply.status, 201, `${what}: ${JSON.stringify(reply.json)}`);
  return reply.json;
}

/** A new asset of the project `projectId` (`fields`: title, record type, …). */
async function newAsset(projectId, fields) {
  const reply = await s.api('POST', '/api/v1/assets', { owner_type: 'project', owner_id: projectId, ...fields });
  return created(reply, fields.title);
}

/** A relationship `from` → `to` of `type` (`more`: analysis mode, …). */
async function relate(from, to, type, more = {}) {
  const reply = await s.api('POST', `/api/v1/assets/${from}/relationships`, { to_asset_id: to, type, ...more });
  return created(reply, `${from} ${type} ${to}`);
}

step('an outsider-owned origin, and a project with a figure derived from a scan', async () => {
  // Oscar's lab lends Olga read access to one calibration; Vic will not see it.
  await s.signIn(OUTSIDER);
  const lab = await created(await s.api('POST', '/api/v1/projects', { name: "Oscar's lab" }), 'project');
  const calibration = await newAsset(lab.project_id, {
    title: 'Detector calibration 2026',
    record_type: 'calibration',
  });
  const lend = await s.api('POST', `/api/v1/projects/${lab.project_id}/members`, { email: OWNER, role: 'viewer' });
  assert.ok(lend.status < 300, JSON.stringify(lend.json));

  await s.signIn(OWNER);
  const project = await created(await s.api('POST', '/api/v1/projects', { name: 'Beamline 7' }), 'project');
  ids.project = project.project_id;
  const raw = await newAsset(ids.project, {
    title: 'Scan 0001',
    record_type: 'raw_data',
    tags: ['calibrated'],
    metadata: { operator: 'Ada', beam: { energy_kev: 12.4 } },
  });
  ids.raw = raw.asset_id;
  const figure = await newAsset(ids.project, { title: 'Figure 3: lattice constant', record_type: 'figure' });
  ids.figure = figure.asset_id;
  await relate(ids.figure, ids.raw, 'derived_from', { analysis_mode: 'non_destructive' });
  await relate(ids.raw, calibration.asset_id, 'calibrated_with');
  const member = await s.api('POST', `/api/v1/projects/${ids.project}/members`, { email: VIEWER, role: 'viewer' });
  assert.ok(member.status < 300, JSON.stringify(member.json));
});

step('owner: the lineage graph of the figure, with legend, tooltips and screenshots', async () => {
  await page.goto(`${server.url}/assets/${ids.figure}`);
  assert.equal(await heading(), 'Figure 3: lattice constant');
  assert.equal(await graphDrawn(), 3);
  const svg = page.locator('#lineage-graph svg');
  assert.equal(await svg.locator('.node.locked').count(), 0, 'the owner reads every node');
  assert.equal(await svg.locator('a.node.current').getAttribute('href'), `/assets/${ids.figure}`);
  assert.equal(await svg.locator('a.node', { hasText: 'Scan 0001' }).getAttribute('href'), `/assets/${ids.raw}`);
  await svg.locator('a.node', { hasText: 'Detector calibration' }).waitFor();
  assert.equal(await svg.locator('.edge').count(), 2);
  const tips = await svg.locator('.edge > title').allTextContents();
  assert.ok(
    tips.includes('Figure 3: lattice constant derived_from Scan 0001 (non_destructive)'),
    JSON.stringify(tips),
  );
  const legend = await page.locator('.lineage-legend').textContent();
  for (const word of ['calibration', 'figure', 'raw_data', 'this asset']) assert.ok(legend.includes(word), legend);
  // The lists are folded away once the graph is drawn, still there.
  assert.equal(await page.locator('details.lineage-list').getAttribute('open'), null);
  // Nodes are links reached with the keyboard.
  await svg.locator('a.node').first().focus();
  assert.equal(await page.evaluate(() => document.activeElement?.classList.contains('node')), true);
  await s.capture('asset-lineage-owner', { ready: graphDrawn });
});

step('without JavaScript the same place shows the lineage as lists', async () => {
  // A second tab of the same session with scripts off.
  const plain = await browser.newPage();
  try {
    const cdp = await browser.newCDPSession(plain);
    await cdp.send('Emulation.setScriptExecutionDisabled', { value: true });
    await plain.goto(`${server.url}/assets/${ids.figure}`);
    assert.equal(await plain.locator('#lineage-graph svg').count(), 0);
    assert.equal(await plain.locator('#lineage-graph').isHidden(), true);
    const up = plain.locator('#lineage-up + ol');
    assert.equal(await up.locator('li').count(), 2);
    assert.match(await up.locator('li').first().textContent(), /depth 1\s*Scan 0001/);
  } finally {
    await plain.close();
  }
});

step('owner: exports of the lineage download as files', async () => {
  await page.goto(`${server.url}/assets/${ids.figure}?direction=up&depth=2`);
  await graphDrawn();
  const [prov] = await Promise.all([
    page.waitForEvent('download'),
    page.getByRole('link', { name: 'Export PROV-JSON' }).click(),
  ]);
  assert.match(prov.suggestedFilename(), /^provenance-[0-9a-f-]{8}\.json$/);
  const provDoc = JSON.parse(await readFile(await prov.path(), 'utf8'));
  assert.equal(Object.keys(provDoc.entity).length, 3, JSON.stringify(provDoc));
  const [crate] = await Promise.all([
    page.waitForEvent('download'),
    page.getByRole('link', { name: 'Export RO-Crate' }).click(),
  ]);
  assert.equal(crate.suggestedFilename(), 'ro-crate-metadata.json');
  const crateDoc = JSON.parse(await readFile(await crate.path(), 'utf8'));
  const root = crateDoc['@graph'].find((e) => e['@id'] === './');
  assert.equal(root.name, 'Lineage of Figure 3: lattice constant');
  const datasets = crateDoc['@graph'].filter((e) => e['@type'] === 'Dataset' && e.url);
  assert.equal(datasets.length, 3);
});

step('owner: edits title, tags and metadata in place; bad JSON is caught', async () => {
  await page.goto(`${server.url}/assets/${ids.raw}`);
  await page.locator('details#edit > summary').click();
  await page.locator('#edit-title').fill('Scan 0001 (re-calibrated)');
  await page.locator('#edit-tags').fill('calibrated, bright field');
  await page.locator('#edit-metadata').fill('{"operator": "Grace",');
  await page.getByRole('button', { name: 'Save changes' }).click();
  await page.locator('#edit-metadata-error').waitFor();
  assert.match(await page.locator('#edit-metadata-error').textContent(), /not valid JSON/);
  assert.equal(new URL(page.url()).search, '', 'nothing was sent');
  await page.locator('#edit-metadata').fill('{"operator": "Grace", "sample": "SrRuO3"}');
  await page.getByRole('button', { name: 'Save changes' }).click();
  await page.waitForURL(/done=saved/);
  assert.equal(await heading(), 'Scan 0001 (re-calibrated)');
  assert.match(await page.locator('.flash.ok').textContent(), /Changes saved/);
  await page.locator('.chips a.chip', { hasText: 'bright field' }).waitFor();
  await page.locator('table.md th', { hasText: 'sample' }).waitFor();
  assert.equal(await page.locator('table.md th', { hasText: 'beam' }).count(), 0, 'beam was removed');
  const asset = await s.api('GET', `/api/v1/assets/${ids.raw}`);
  assert.deepEqual(asset.json.metadata, { operator: 'Grace', sample: 'SrRuO3' });
  assert.deepEqual(asset.json.tags, ['calibrated', 'bright field']);
});

step('viewer: no edit controls, and the outsider-owned origin is a locked node', async () => {
  await s.signIn(VIEWER);
  await page.goto(`${server.url}/assets/${ids.figure}`);
  assert.equal(await graphDrawn(), 3);
  const svg = page.locator('#lineage-graph svg');
  const locked = svg.locator('.node.locked');
  assert.equal(await locked.count(), 1);
  assert.equal(await locked.evaluate((n) => n.tagName.toLowerCase()), 'g', 'a locked node is no link');
  assert.equal((await locked.textContent()).includes('Detector'), false);
  assert.equal((await svg.textContent()).includes('Detector calibration'), false);
  assert.equal(await page.locator('form.edit-form').count(), 0);
  assert.equal(await page.getByRole('button', { name: /Delete/ }).count(), 0);
  await s.capture('asset-lineage-viewer', { ready: graphDrawn });
});

step(`a lineage of ${BIG} assets draws every node, quickly`, async () => {
  await s.signIn(OWNER);
  // A tree: asset i was derived from asset ⌊(i−1)/3⌋ (depth 6 at 500).
  const make = (i) =>
    newAsset(ids.project, {
      title: i === 0 ? 'Run 500: beam time' : `Run 500 product ${i}`,
      record_type: ['raw_data', 'processed', 'figure', 'analysis'][i % 4],
    });
  const assets = [];
  for (let i = 0; i < BIG; i += 10) {
    const batch = await Promise.all(Array.from({ length: Math.min(10, BIG - i) }, (_, k) => make(i + k)));
    for (const a of batch) assets.push(a.asset_id);
  }
  for (let i = 1; i < BIG; i += 10) {
    const batch = [];
    for (let k = i; k < Math.min(i + 10, BIG); k++) {
      batch.push(relate(assets[k], assets[Math.floor((k - 1) / 3)], 'derived_from'));
    }
    await Promise.all(batch);
  }
  await page.goto(`${server.url}/assets/${assets[0]}?direction=down&depth=10#lineage`);
  assert.equal(await graphDrawn(), BIG);
  assert.equal(await page.locator('svg .node').count(), BIG);
  const layoutMs = Number(await page.locator('#lineage-graph').getAttribute('data-layout-ms'));
  assert.ok(layoutMs < 1000, `layout took ${layoutMs} ms`);
  assert.equal(await page.locator('#lineage-graph svg .edge').count(), BIG - 1);
  // Zoom out to see it whole.
  await page.getByRole('button', { name: 'Fit the graph in view' }).click();
  await s.capture('asset-lineage-500', { ready: graphDrawn });
});

step('owner: delete asks again, then goes to the project page with a flash', async () => {
  await page.goto(`${server.url}/assets/${ids.figure}`);
  await page.getByRole('button', { name: 'Delete this asset…' }).click();
  await page.waitForLoadState();
  assert.equal(await heading(), 'Delete Figure 3: lattice constant?');
  await page.getByRole('button', { name: 'Delete for good' }).click();
  await page.waitForURL(/\/projects\/.*done=asset-deleted/);
  assert.equal(new URL(page.url()).pathname, `/projects/${ids.project}`);
  assert.match(await page.locator('.flash.ok').textContent(), /The asset was deleted/);
  const gone = await page.goto(`${server.url}/assets/${ids.figure}`);
  assert.equal(gone.status(), 404);
});
