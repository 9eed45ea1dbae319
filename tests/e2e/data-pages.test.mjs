// The data in a browser, end to end: an owner, a viewer and an outsider sign
// in on the real server in headless Chromium and walk home → project →
// asset → search. Each page is photographed at laptop and phone width (and
// in dark mode) under target/e2e-screenshots/, and checked with axe-core
// when it is installed (no serious or critical violations).
//
// The data is made through the REST API with the owner's browser session
// (the API accepts it: GET with the cookie, writes with x-csrf-token), so
// this also drives the session-authenticated API as the pages' scripts will.

import assert from 'node:assert/strict';
import { before } from 'node:test';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { browserSuite, cliFor } from './harness.mjs';

const PASSWORD = 'correct horse battery staple';
const OWNER = 'olga@example.org';
const VIEWER = 'vic@example.org';
const OUTSIDER = 'oscar@example.org';

const s = browserSuite({ password: PASSWORD, users: [OWNER, VIEWER, OUTSIDER] });
const { step, api, capture, signIn, heading } = s;
let dir, server, page;
before(async () => ({ dir, server, page } = await s.start()));
const ids = {};

step('the owner makes a project with assets through the API with the browser session', async () => {
  await signIn(OWNER);
  const project = await api('POST', '/api/v1/projects', {
    name: 'Beamline 7',
    description: 'Diffraction runs of the 2026 campaign',
  });
  assert.equal(project.status, 201, JSON.stringify(project.json));
  ids.project = project.json.project_id;
  const refused = (await api('POST', '/api/v1/projects', { name: 'no csrf' }, { csrf: false })).status;
  assert.equal(refused, 403, 'a write with the cookie but without x-csrf-token is refused');
  const sub = await api('POST', `/api/v1/projects/${ids.project}/collections`, { name: 'Run 42' });
  assert.equal(sub.status, 201);
  ids.sub = sub.json.collection_id;
  const raw = await api('POST', '/api/v1/assets', {
    title: 'Scan 0001',
    owner_type: 'project',
    owner_id: ids.project,
    record_type: 'raw_data',
    tags: ['calibrated', 'bright field'],
    alias: 'scan-0001',
    description: 'First scan of the day, 12.4 keV',
    metadata: { beam: { energy_kev: 12.4, slits_mm: [1.5, 2] }, operator: 'Ada', sample: 'SrRuO3' },
  });
  assert.equal(raw.status, 201, JSON.stringify(raw.json));
  ids.raw = raw.json.asset_id;
  for (let i = 2; i <= 4; i++) {
    const a = await api('POST', '/api/v1/assets', {
      title: `Scan 000${i}`,
      owner_type: 'project',
      owner_id: ids.project,
      record_type: 'raw_data',
      tags: ['calibrated'],
    });
    assert.equal(a.status, 201);
  }
  const figure = await api('POST', '/api/v1/assets', {
    title: 'Figure 3: lattice constant',
    owner_type: 'project',
    owner_id: ids.project,
    record_type: 'figure',
    collection_id: ids.sub,
    tags: ['paper'],
  });
  assert.equal(figure.status, 201);
  ids.figure = figure.json.asset_id;
  const rel = await api('POST', `/api/v1/assets/${ids.figure}/relationships`, {
    to_asset_id: ids.raw,
    type: 'derived_from',
    analysis_mode: 'non_destructive',
    qualifiers: { step: 'integration' },
  });
  assert.equal(rel.status, 201, JSON.stringify(rel.json));
  // Content for the scan, uploaded with the CLI (BLAKE3 chunks, as users do).
  const token = await server.admin(['create-token', '--email', OWNER, '--scope', 'read,write']);
  const cli = await cliFor(dir, 'owner');
  const login = await cli.run(['auth', 'login', '--server', server.url, '--token-stdin'], {
    input: `${token.split(/\s+/).find((w) => w.startsWith('dtr_pat_'))}\n`,
  });
  assert.equal(login.code, 0, login.stderr);
  const files = path.join(dir, 'scan-0001');
  await mkdir(path.join(files, 'frames'), { recursive: true });
  await writeFile(path.join(files, 'frames', 'frame-000.tif'), Buffer.alloc(48_000, 7));
  await writeFile(path.join(files, 'settings.json'), '{"exposure_ms": 20}\n');
  const up = await cli.run(['upload', files, '--asset', ids.raw], { timeoutMs: 120_000 });
  assert.equal(up.code, 0, up.stderr);
  const member = await api('POST', `/api/v1/projects/${ids.project}/members`, {
    email: VIEWER,
    role: 'viewer',
  });
  assert.ok(member.status < 300, JSON.stringify(member.json));
});

step('owner: home, project, asset and search pages', async () => {
  await page.goto(`${server.url}/`);
  assert.equal(await heading(), 'Your data');
  await page.getByRole('link', { name: 'Beamline 7' }).waitFor();
  await capture('home-owner');

  await page.getByRole('link', { name: 'Beamline 7' }).click();
  await page.waitForLoadState();
  assert.equal(await heading(), 'Beamline 7');
  await page.locator('.tree').getByRole('link', { name: 'Run 42' }).waitFor();
  await page.getByRole('link', { name: 'Scan 0001' }).waitFor();
  await page.getByRole('cell', { name: VIEWER, exact: true }).waitFor();
  await capture('project-owner');

  await page.getByRole('link', { name: 'Scan 0001' }).click();
  await page.waitForLoadState();
  assert.equal(await heading(), 'Scan 0001');
  await page.locator('table.md th', { hasText: 'energy_kev' }).waitFor();
  await page.getByRole('cell', { name: 'frames/frame-000.tif' }).waitFor();
  // In the relationships table (the lineage graph links to it too).
  await page.locator('table.relationships').getByRole('link', { name: 'Figure 3: lattice constant' }).waitFor();
  await capture('asset-owner');

  await page.locator('#site-q').fill('tag:calibrated');
  await page.locator('#site-q').press('Enter');
  await page.waitForLoadState();
  assert.equal(await heading(), 'Search');
  assert.match(await page.locator('.result-count').textContent(), /4\s+assets match/);
  assert.equal(new URL(page.url()).searchParams.get('q'), 'tag:calibrated');
  await page.locator('.facet a.chip', { hasText: 'bright field' }).click();
  await page.waitForLoadState();
  assert.equal(new URL(page.url()).searchParams.get('q'), 'tag:calibrated tag:"bright field"');
  assert.match(await page.locator('.result-count').textContent(), /1\s+asset matches/);
  await page.goto(`${server.url}/search?q=${encodeURIComponent('type:raw_data')}`);
  await capture('search-owner');
});

step('viewer: sees the project read-only and the same asset', async () => {
  await signIn(VIEWER);
  await page.getByRole('link', { name: 'Beamline 7' }).waitFor();
  assert.match(await page.locator('.project .badge.role').textContent(), /viewer/);
  await capture('home-viewer');
  await page.goto(`${server.url}/projects/${ids.project}?collection=${ids.sub}`);
  await page.getByRole('link', { name: 'Figure 3: lattice constant' }).waitFor();
  await capture('project-viewer');
  await page.goto(`${server.url}/assets/${ids.figure}`);
  assert.equal(await heading(), 'Figure 3: lattice constant');
});

step('outsider: nothing of the project, the same 404 page for known and unknown ids', async () => {
  await signIn(OUTSIDER);
  assert.equal(await page.getByRole('link', { name: 'Beamline 7' }).count(), 0);
  await capture('home-outsider');
  const known = await page.goto(`${server.url}/projects/${ids.project}`);
  assert.equal(known.status(), 404);
  const knownText = await page.locator('main').textContent();
  await capture('not-found-outsider');
  const unknown = await page.goto(`${server.url}/projects/00000000-0000-0000-0000-000000000000`);
  assert.equal(unknown.status(), 404);
  assert.equal(await page.locator('main').textContent(), knownText);
  const asset = await page.goto(`${server.url}/assets/${ids.raw}`);
  assert.equal(asset.status(), 404);
  await page.goto(`${server.url}/search?q=tag%3Acalibrated`);
  assert.match(await page.locator('.result-count').textContent(), /0\s+assets match/);
  await capture('search-outsider');
});
