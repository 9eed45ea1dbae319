// Uploads from the project page (/projects/{id}, writers only): drop files
// or a folder on the zone, or pick them with its two buttons. A dropped file
// becomes an asset titled with its name; a dropped folder becomes one asset
// titled with the folder's name, holding its files under their paths
// relative to it (as `dataerai upload FOLDER` does). Assets land in the
// collection the page shows.
//
// The bytes go through the same REST API as every client (docs/api.md
// "Uploads"): create the asset, open a session, PUT the chunks (three at a
// time, each with its BLAKE3 chunk digest, computed in upload-worker.js from
// File.slice — a file is never read whole into memory), complete with each
// file's BLAKE3 merged from its chunk digests. Network errors, 5xx and 429
// are retried with backoff (Retry-After respected); other errors show their
// ERR_* code and message.
//
// Resume after a reload: each session is kept in localStorage
// (`dataerai.upload.<upload_id>`: ids, chunk size, a fingerprint of the
// files' names, sizes and modification times, the chunk digests sent so far).
// Dropping the same file (or folder) again on the same project asks the
// server which chunks it holds and sends only the others. The page lists
// such unfinished uploads with "Resume…" and "Discard".

import { ApiError, csrfToken } from './api.js';
import { fileHash, fromHex, hash, isValidChunkSize, toHex } from './blake3.js';

const DEFAULT_CHUNK_SIZE = 8 * 1024 * 1024;
const MAX_CHUNK_SIZE = 512 * 1024 * 1024;
const PARALLEL_CHUNKS = 3;
const MAX_ATTEMPTS = 8;
const MAX_FILES = 100_000;
const STORE_PREFIX = 'dataerai.upload.';

// ------------------------------------------------------------------ requests

/** Whether a failed request may succeed if tried again. */
function retryable(err) {
  return err instanceof ApiError && (err.status === 0 || err.status === 408 || err.status === 429 || err.status >= 500);
}

/**
 * One call to /api/v1 (XMLHttpRequest: it reports upload progress). Resolves
 * to the parsed JSON answer; rejects with ApiError (status 0 for a network
 * failure; `retryAfter` in seconds when the server sent one) or an AbortError.
 */
function request(method, path, { json, body, headers = {}, signal, onProgress } = {}) {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(new DOMException('cancelled', 'AbortError'));
      return;
    }
    const xhr = new XMLHttpRequest();
    xhr.open(method, `/api/v1${path}`);
    xhr.setRequestHeader('accept', 'application/json');
    if (method !== 'GET') xhr.setRequestHeader('x-csrf-token', csrfToken());
    for (const [k, v] of Object.entries(headers)) xhr.setRequestHeader(k, v);
    let payload = body ?? null;
    if (json !== undefined) {
      xhr.setRequestHeader('content-type', 'application/json');
      payload = JSON.stringify(json);
    }
    if (onProgress) xhr.upload.onprogress = (e) => onProgress(e.loaded);
    const onAbort = () => xhr.abort();
    signal?.addEventListener('abort', onAbort, { once: true });
    const done = () => signal?.removeEventListener('abort', onAbort);
    xhr.onload = () => {
      done();
      let data = null;
      try {
        data = xhr.responseText ? JSON.parse(xhr.responseText) : null;
      } catch {
        data = null;
      }
      if (xhr.status >= 200 && xhr.status < 300) {
        resolve(data);
        return;
      }
      const e = (data && data.error) || {};
      const err = new ApiError(
        xhr.status,
        e.code || `HTTP_${xhr.status}`,
        e.message || xhr.statusText || 'request failed',
      );
      err.retryAfter = parseRetryAfter(xhr.getResponseHeader('retry-after'));
      reject(err);
    };
    xhr.onerror = () => {
      done();
      reject(new ApiError(0, 'ERR_SERVER_UNREACHABLE', 'the server could not be reached (network error)'));
    };
    xhr.ontimeout = xhr.onerror;
    xhr.onabort = () => {
      done();
      reject(new DOMException('cancelled', 'AbortError'));
    };
    xhr.send(payload);
  });
}

function parseRetryAfter(value) {
  if (!value) return null;
  const s = Number(value);
  if (Number.isFinite(s)) return Math.max(0, s);
  const at = Date.parse(value);
  return Number.isNaN(at) ? null : Math.max(0, (at - Date.now()) / 1000);
}

/** Wait `ms`, or reject at once when `signal` aborts. */
function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        reject(new DOMException('cancelled', 'AbortError'));
      },
      { once: true },
    );
  });
}

/**
 * `attempt()` until it succeeds, retrying what `retryable` allows with
 * exponential backoff (1 s, 2 s, 4 s … 30 s, ±20 %), or the server's
 * Retry-After (at most 5 min). `onRetry(err, seconds, n)` tells the page.
 */
async function withRetry(attempt, { signal, onRetry }) {
  for (let n = 1; ; n++) {
    try {
      return await attempt();
    } catch (err) {
      if (!retryable(err) || n >= MAX_ATTEMPTS || signal?.aborted) throw err;
      let seconds = Math.min(30, 2 ** (n - 1)) * (0.8 + 0.4 * Math.random());
      if (err.retryAfter != null) seconds = Math.min(300, Math.max(err.retryAfter, 0.5));
      onRetry?.(err, seconds, n);
      await sleep(seconds * 1000, signal);
    }
  }
}

// ------------------------------------------------------------------ hashing

/** A few hashing workers (upload-worker.js), shared by every upload of the page. */
class HashPool {
  constructor(size) {
    this.size = size;
    this.workers = [];
    this.idle = [];
    this.waiting = [];
    this.calls = new Map();
    this.nextId = 1;
  }

  acquire() {
    if (this.idle.length > 0) return Promise.resolve(this.idle.pop());
    if (this.workers.length < this.size) {
      const w = new Worker(new URL('./upload-worker.js', import.meta.url), { type: 'module' });
      w.onmessage = (e) => {
        const call = this.calls.get(e.data.id);
        this.calls.delete(e.data.id);
        this.release(w);
        if (!call) return;
        if (e.data.error) call.reject(new Error(e.data.error));
        else call.resolve(e.data);
      };
      w.onerror = (e) => {
        e.preventDefault();
        for (const [id, call] of this.calls) {
          if (call.worker === w) {
            this.calls.delete(id);
            call.reject(new Error(`the hashing worker failed: ${e.message || 'unknown error'}`));
          }
        }
      };
      this.workers.push(w);
      return Promise.resolve(w);
    }
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  release(worker) {
    const next = this.waiting.shift();
    if (next) next(worker);
    else this.idle.push(worker);
  }

  /** The digest of `blob` (chunk `index`) and, with `keep`, its bytes. */
  async digest(blob, fileSize, chunkSize, index, keep) {
    const worker = await this.acquire();
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.calls.set(id, { resolve, reject, worker });
      worker.postMessage({ id, blob, fileSize, chunkSize, index, keep });
    });
  }
}

// ------------------------------------------------------------------ saved sessions

/** The unfinished uploads this browser keeps for `projectId`. */
function savedUploads(projectId) {
  const out = [];
  for (let i = 0; i < localStorage.length; i++) {
    const key = localStorage.key(i);
    if (!key || !key.startsWith(STORE_PREFIX)) continue;
    try {
      const entry = JSON.parse(localStorage.getItem(key));
      if (entry && entry.project_id === projectId) out.push(entry);
    } catch {
      localStorage.removeItem(key);
    }
  }
  return out.sort((a, b) => a.started_at.localeCompare(b.started_at));
}

function saveUpload(entry) {
  const key = STORE_PREFIX + entry.upload_id;
  try {
    localStorage.setItem(key, JSON.stringify(entry));
  } catch {
    // Full: keep what resuming needs and hash received chunks again then.
    try {
      localStorage.setItem(key, JSON.stringify({ ...entry, digests: {} }));
    } catch {
      // Without storage the upload still runs; it just cannot resume.
    }
  }
}

function forgetUpload(uploadId) {
  localStorage.removeItem(STORE_PREFIX + uploadId);
}

/**
 * What makes two picks "the same files": kind, title, and each file's
 * name, size and modification time (a changed file is a new upload).
 */
function fingerprint(kind, title, files) {
  const text = JSON.stringify([kind, title, files.map((f) => [f.name, f.file.size, f.file.lastModified])]);
  return toHex(hash(new TextEncoder().encode(text))).slice(0, 32);
}

// ------------------------------------------------------------------ formatting

const UNITS = ['KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

/** Bytes in binary units, as the pages write them: `512 B`, `1.5 KiB`. */
function size(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  let v = bytes;
  let unit = 'B';
  for (const u of UNITS) {
    if (v < 1024) break;
    v /= 1024;
    unit = u;
  }
  return `${v.toFixed(1)} ${unit}`;
}

function duration(seconds) {
  if (!Number.isFinite(seconds)) return '';
  if (seconds < 60) return `${Math.max(1, Math.round(seconds))} s`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min`;
  const h = Math.floor(seconds / 3600);
  return `${h} h ${Math.round((seconds - h * 3600) / 60)} min`;
}

/** A time as the pages write dates (`2026-12-07 14:05`), in local time. */
function when(iso) {
  const d = new Date(iso);
  const two = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())} ${two(d.getHours())}:${two(d.getMinutes())}`;
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') node.className = v;
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children) if (c !== null && c !== undefined) node.append(c);
  return node;
}

/** Bytes per second over the last ~10 s of samples. */
class Rate {
  constructor() {
    this.samples = [];
  }

  add(bytes) {
    const now = performance.now();
    this.samples.push([now, bytes]);
    while (this.samples.length > 2 && now - this.samples[0][0] > 10_000) this.samples.shift();
  }

  perSecond() {
    if (this.samples.length < 2) return 0;
    const [t0, b0] = this.samples[0];
    const [t1, b1] = this.samples[this.samples.length - 1];
    return t1 > t0 ? ((b1 - b0) * 1000) / (t1 - t0) : 0;
  }
}

// ------------------------------------------------------------------ one upload

let jobCounter = 0;

/** One asset being uploaded: its files, state, progress and row on the page. */
class Job {
  constructor(uploader, kind, title, files) {
    this.uploader = uploader;
    this.kind = kind;
    this.title = title;
    this.files = files;
    this.total = files.reduce((n, f) => n + f.file.size, 0);
    this.done = 0; // bytes the server holds (sent now or before)
    this.sent = 0; // bytes sent by this page, for the rate
    this.inFlight = new Map();
    this.rate = new Rate();
    this.state = 'queued';
    this.controller = new AbortController();
    this.entry = null;
    this.assetId = null; // of an asset this upload made, until its session is kept
    this.id = ++jobCounter;
    this.view = this.render();
  }

  render() {
    const nameId = `upload-job-${this.id}`;
    this.stateText = el('span', { class: 'upload-state' }, 'Waiting');
    this.progress = el('progress', { max: Math.max(1, this.total), value: 0, 'aria-labelledby': nameId });
    this.numbers = el('span', { class: 'upload-numbers' }, `0 B of ${size(this.total)}`);
    this.cancelButton = el(
      'button',
      { type: 'button', class: 'btn btn-small btn-danger', onclick: () => this.cancel() },
      'Cancel',
      el('span', { class: 'visually-hidden' }, ` upload of ${this.title}`),
    );
    this.message = el('p', { class: 'upload-message', hidden: true });
    const what = this.kind === 'folder' ? `folder, ${this.files.length} file${this.files.length === 1 ? '' : 's'}` : 'file';
    return el(
      'li',
      { class: 'upload-job', 'data-upload-state': this.state },
      el(
        'div',
        { class: 'upload-job-head' },
        el('span', { class: 'upload-name', id: nameId }, this.title, el('span', { class: 'muted small' }, ` (${what})`)),
        this.stateText,
      ),
      this.progress,
      el('div', { class: 'upload-job-foot' }, this.numbers, this.cancelButton),
      this.message,
    );
  }

  setState(state, text) {
    this.state = state;
    this.view.dataset.uploadState = state;
    this.stateText.textContent = text;
    this.cancelButton.hidden = ['done', 'failed', 'cancelled'].includes(state);
    this.uploader.changed(this);
  }

  show(text, kind = 'info') {
    this.message.hidden = !text;
    this.message.className = `upload-message ${kind}`;
    this.message.replaceChildren(...(Array.isArray(text) ? text : [text ?? '']));
    if (kind === 'err') this.message.setAttribute('role', 'alert');
    else this.message.removeAttribute('role');
  }

  /** Bytes the server holds plus what is on the wire now. */
  progressBytes() {
    let wire = 0;
    for (const n of this.inFlight.values()) wire += n;
    return Math.min(this.total, this.done + wire);
  }

  update() {
    const bytes = this.progressBytes();
    this.progress.value = bytes;
    let text = `${size(bytes)} of ${size(this.total)}`;
    if (this.state === 'uploading') {
      const rate = this.rate.perSecond();
      if (rate > 0) text += ` · ${size(Math.round(rate))}/s · about ${duration((this.total - bytes) / rate)} left`;
    }
    this.numbers.textContent = text;
  }

  async cancel() {
    if (['done', 'failed', 'cancelled'].includes(this.state)) return;
    this.controller.abort();
    this.setState('cancelled', 'Cancelled');
    this.show('Cancelled: nothing was kept.');
    await discardSession(this.entry || (this.assetId && { asset_id: this.assetId }));
    this.uploader.refreshUnfinished();
  }

  /** The whole upload; never throws (failures are shown on the row). */
  async run() {
    const signal = this.controller.signal;
    const onRetry = (err, seconds, n) => {
      this.setState('retrying', 'Retrying');
      this.show(`${err.code}: ${err.message} — trying again in ${duration(seconds)} (attempt ${n + 1} of ${MAX_ATTEMPTS}).`, 'warn');
    };
    const call = (method, path, options = {}) =>
      withRetry(() => request(method, path, { ...options, signal }), { signal, onRetry });
    try {
      this.setState('preparing', 'Starting');
      const session = await this.openSession(call);
      this.uploader.refreshUnfinished();
      this.setState('uploading', 'Uploading');
      this.show(null);
      await this.sendChunks(session, call, onRetry);
      this.setState('completing', 'Checking');
      this.show(null);
      const checksums = session.files.map((f, i) => {
        const digests = [];
        for (let c = 0; c < f.chunk_count; c++) digests.push(fromHex(this.entry.digests[`${i}/${c}`]));
        return { file_index: i, checksum: `blake3:${toHex(fileHash(f.size, session.chunk_size, digests))}` };
      });
      await this.complete(call, checksums);
      forgetUpload(this.entry.upload_id);
      this.done = this.total;
      this.setState('done', 'Done');
      this.view.dataset.assetId = this.entry.asset_id;
      this.show(['Uploaded. ', el('a', { href: `/assets/${this.entry.asset_id}` }, `Open “${this.title}”`)], 'ok');
    } catch (err) {
      if (err?.name === 'AbortError' || this.state === 'cancelled') return;
      this.fail(err);
    } finally {
      this.update();
      this.uploader.changed(this);
    }
  }

  fail(err) {
    const text = err instanceof ApiError ? `${err.code}: ${err.message}` : String(err.message || err);
    this.setState('failed', 'Failed');
    const resumable = this.entry && (!(err instanceof ApiError) || retryable(err));
    if (err instanceof ApiError && err.code === 'ERR_INTEGRITY' && this.entry) {
      // The digests kept for this session are not to be trusted again.
      this.entry.digests = {};
      saveUpload(this.entry);
    }
    this.show(
      resumable ? `${text} The upload can go on later: drop or choose the same ${this.kind} again.` : text,
      'err',
    );
    this.uploader.refreshUnfinished();
  }

  /** Resume the session this browser kept for these files, or open a new one. */
  async openSession(call) {
    const projectId = this.uploader.projectId;
    const print = fingerprint(this.kind, this.title, this.files);
    const saved = savedUploads(projectId).find((e) => e.fingerprint === print && !this.uploader.isRunning(e.upload_id, this));
    if (saved) {
      try {
        const session = await call('GET', `/uploads/${saved.upload_id}`);
        if (session.status === 'open') {
          this.entry = saved;
          this.entry.digests ||= {};
          this.resumed = true;
          const held = session.files.reduce((n, f) => n + f.received_chunks.length, 0);
          this.show(`Resuming: the server already holds ${held} chunk${held === 1 ? '' : 's'}.`);
          return session;
        }
      } catch (err) {
        if (!(err instanceof ApiError) || err.status !== 404) throw err;
      }
      forgetUpload(saved.upload_id);
    }
    let chunkSize = Number(this.uploader.zone.dataset.chunkSize);
    if (!isValidChunkSize(chunkSize) || chunkSize > MAX_CHUNK_SIZE) chunkSize = DEFAULT_CHUNK_SIZE;
    const asset = await call('POST', '/assets', {
      json: {
        title: this.title,
        owner_type: 'project',
        owner_id: projectId,
        collection_id: this.uploader.collectionId,
      },
    });
    this.assetId = asset.asset_id;
    let session;
    try {
      session = await call('POST', `/assets/${asset.asset_id}/uploads`, {
        json: { files: this.files.map((f) => ({ name: f.name, size: f.file.size })), chunk_size: chunkSize },
      });
    } catch (err) {
      // No session, no use for the empty asset made for it.
      request('DELETE', `/assets/${asset.asset_id}`).catch(() => {});
      throw err;
    }
    this.entry = {
      upload_id: session.upload_id,
      asset_id: asset.asset_id,
      project_id: projectId,
      collection_id: this.uploader.collectionId,
      title: this.title,
      kind: this.kind,
      file_count: this.files.length,
      total_bytes: this.total,
      chunk_size: session.chunk_size,
      fingerprint: print,
      started_at: new Date().toISOString(),
      digests: {},
    };
    saveUpload(this.entry);
    return session;
  }

  /**
   * Every chunk the server lacks, PARALLEL_CHUNKS at a time: hash (worker),
   * PUT, remember its digest. Chunks it holds are only hashed when their
   * digest was not kept (the whole-file checksum needs every digest).
   */
  async sendChunks(session, call, onRetry) {
    const signal = this.controller.signal;
    const chunkSize = session.chunk_size;
    const tasks = [];
    this.done = 0;
    session.files.forEach((f, i) => {
      const held = new Set(f.received_chunks);
      for (let c = 0; c < f.chunk_count; c++) {
        const len = Math.min(chunkSize, f.size - c * chunkSize);
        const known = this.entry.digests[`${i}/${c}`];
        if (held.has(c)) {
          if (known) this.done += len;
          else tasks.push({ file: i, chunk: c, len, send: false });
        } else {
          tasks.push({ file: i, chunk: c, len, send: true });
        }
      }
    });
    if (session.files.length !== this.files.length) {
      throw new Error('the upload session does not list these files; discard it and upload again');
    }
    this.update();
    let saveTimer = null;
    const persist = () => {
      if (saveTimer === null) {
        saveTimer = setTimeout(() => {
          saveTimer = null;
          if (!signal.aborted) saveUpload(this.entry);
        }, 1000);
      }
    };
    let next = 0;
    const runner = async () => {
      while (next < tasks.length && !signal.aborted) {
        const t = tasks[next++];
        const file = this.files[t.file].file;
        const blob = file.slice(t.chunk * chunkSize, t.chunk * chunkSize + t.len);
        let result;
        try {
          result = await this.uploader.hashes.digest(blob, file.size, chunkSize, t.chunk, t.send);
        } catch (err) {
          throw new Error(`${this.files[t.file].name} could not be read (${err.message}); was it changed or moved?`);
        }
        const hex = toHex(result.digest);
        if (t.send) {
          const key = `${t.file}/${t.chunk}`;
          await withRetry(
            () => {
              this.inFlight.set(key, 0);
              return request('PUT', `/uploads/${session.upload_id}/files/${t.file}/chunks/${t.chunk}`, {
                body: result.bytes,
                headers: { 'content-type': 'application/octet-stream', 'x-dataerai-chunk-blake3': hex },
                signal,
                onProgress: (loaded) => {
                  const before = this.inFlight.get(key) || 0;
                  this.inFlight.set(key, loaded);
                  this.sent += Math.max(0, loaded - before);
                  this.rate.add(this.sent);
                  this.uploader.changed(this);
                },
              }).finally(() => {
                this.sent -= this.inFlight.get(key) || 0;
                this.inFlight.delete(key);
              });
            },
            { signal, onRetry },
          );
          this.sent += t.len;
          this.rate.add(this.sent);
          if (this.state === 'retrying') {
            this.setState('uploading', 'Uploading');
            this.show(null);
          }
        }
        this.entry.digests[`${t.file}/${t.chunk}`] = hex;
        this.done += t.len;
        persist();
        this.uploader.changed(this);
      }
    };
    try {
      await Promise.all(Array.from({ length: Math.min(PARALLEL_CHUNKS, tasks.length) }, runner));
    } finally {
      clearTimeout(saveTimer);
      // A cancelled upload is forgotten, not saved again.
      if (!signal.aborted) saveUpload(this.entry);
    }
  }

  async complete(call, checksums) {
    try {
      await call('POST', `/uploads/${this.entry.upload_id}/complete`, { json: { files: checksums } });
    } catch (err) {
      // A retried complete whose first answer was lost finds the session done.
      if (err instanceof ApiError && err.status === 400) {
        const s = await request('GET', `/uploads/${this.entry.upload_id}`).catch(() => null);
        if (s && s.status === 'complete') return;
      }
      throw err;
    }
  }
}

/**
 * Give up an upload session: abort it and delete its asset when the upload
 * made it and it holds no version (as the server does when a session
 * expires). Forget it in this browser whatever the server says.
 */
async function discardSession(entry) {
  if (!entry) return;
  if (entry.upload_id) {
    forgetUpload(entry.upload_id);
    await request('DELETE', `/uploads/${entry.upload_id}`).catch(() => {});
  }
  try {
    const asset = await request('GET', `/assets/${entry.asset_id}`);
    if (asset && asset.latest_content === null) await request('DELETE', `/assets/${entry.asset_id}`);
  } catch {
    // Gone already, or no longer ours to delete.
  }
}

// ------------------------------------------------------------------ the page

/** What was dropped or chosen, as uploads: one per file, one per folder. */
async function jobsFromDrop(dataTransfer) {
  // Entries must be taken while the drop event runs; reading them can wait.
  const entries = [];
  const loose = [];
  for (const item of dataTransfer.items || []) {
    if (item.kind !== 'file') continue;
    const entry = item.webkitGetAsEntry ? item.webkitGetAsEntry() : null;
    if (entry) entries.push(entry);
    else if (item.getAsFile()) loose.push(item.getAsFile());
  }
  if (entries.length === 0 && loose.length === 0) loose.push(...(dataTransfer.files || []));
  const picks = loose.map((file) => ({ kind: 'file', title: file.name, files: [{ file, name: file.name }] }));
  for (const entry of entries) {
    if (entry.isFile) {
      const file = await new Promise((resolve, reject) => entry.file(resolve, reject));
      picks.push({ kind: 'file', title: file.name, files: [{ file, name: file.name }] });
    } else if (entry.isDirectory) {
      const files = [];
      await walk(entry, '', files);
      picks.push({ kind: 'folder', title: entry.name, files });
    }
  }
  return picks;
}

async function walk(dir, prefix, out) {
  const reader = dir.createReader();
  for (;;) {
    const batch = await new Promise((resolve, reject) => reader.readEntries(resolve, reject));
    if (batch.length === 0) return;
    for (const e of batch) {
      if (e.isFile) {
        const file = await new Promise((resolve, reject) => e.file(resolve, reject));
        out.push({ file, name: prefix + e.name });
        if (out.length > MAX_FILES) throw new Error(`${dir.name} holds more than ${MAX_FILES} files; upload it with the dataerai command line`);
      } else if (e.isDirectory) {
        await walk(e, `${prefix}${e.name}/`, out);
      }
    }
  }
}

/** A folder input's files (webkitRelativePath "Top/sub/name"): one upload per top folder. */
function jobsFromFolderInput(fileList) {
  const folders = new Map();
  for (const file of fileList) {
    const rel = file.webkitRelativePath || file.name;
    const cut = rel.indexOf('/');
    const top = cut < 0 ? '' : rel.slice(0, cut);
    const name = cut < 0 ? rel : rel.slice(cut + 1);
    if (!folders.has(top)) folders.set(top, []);
    folders.get(top).push({ file, name });
  }
  return [...folders].map(([top, files]) =>
    top ? { kind: 'folder', title: top, files } : { kind: 'file', title: files[0].name, files },
  );
}

class Uploader {
  constructor(zone) {
    this.zone = zone;
    this.projectId = zone.dataset.projectId;
    this.collectionId = zone.dataset.collectionId;
    this.jobs = [];
    this.queue = [];
    this.running = null;
    this.hashes = new HashPool(Math.max(1, Math.min(PARALLEL_CHUNKS, (navigator.hardwareConcurrency || 2) - 1)));
    this.dirty = false;

    this.status = zone.querySelector('[data-upload-status]');
    this.list = el('ul', { class: 'upload-jobs' });
    this.overallBar = el('progress', { max: 1, value: 0, 'aria-labelledby': 'upload-overall-label' });
    this.overallCount = el('span', { class: 'upload-state' });
    this.overallNumbers = el('span', { class: 'upload-numbers' });
    this.reloadNote = el(
      'p',
      { class: 'small', hidden: true },
      'New assets appear in the list above when the page is ',
      el('a', { href: window.location.href }, 'reloaded'),
      '.',
    );
    this.panel = el(
      'div',
      { class: 'upload-panel', hidden: true },
      el(
        'div',
        { class: 'upload-overall' },
        el(
          'div',
          { class: 'upload-job-head' },
          el('strong', { id: 'upload-overall-label' }, 'All uploads'),
          this.overallCount,
        ),
        this.overallBar,
        el('div', { class: 'upload-job-foot' }, this.overallNumbers),
      ),
      this.list,
      this.reloadNote,
    );
    this.unfinishedList = el('ul', { class: 'upload-unfinished-list' });
    this.unfinished = el(
      'div',
      { class: 'upload-unfinished', hidden: true },
      el('h3', {}, 'Unfinished uploads'),
      el(
        'p',
        { class: 'small muted' },
        'These stopped before they were complete (the page was closed or reloaded). ' +
          'To resume one, drop or choose the same file or folder again: only the missing chunks are sent.',
      ),
      this.unfinishedList,
    );
    zone.append(this.unfinished, this.panel);
  }

  isRunning(uploadId, except) {
    return this.jobs.some((j) => j !== except && j.entry?.upload_id === uploadId && !['done', 'failed', 'cancelled'].includes(j.state));
  }

  add(picks) {
    for (const p of picks) {
      if (p.files.length === 0) {
        this.announce(`The folder “${p.title}” holds no files: nothing to upload.`);
        continue;
      }
      if (p.files.length > MAX_FILES) {
        this.announce(`“${p.title}” holds more than ${MAX_FILES} files; upload it with the dataerai command line.`);
        continue;
      }
      p.files.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      const job = new Job(this, p.kind, p.title, p.files);
      this.jobs.push(job);
      this.queue.push(job);
      this.list.append(job.view);
    }
    this.panel.hidden = this.jobs.length === 0;
    this.pump();
    this.changed();
  }

  async pump() {
    if (this.running) return;
    while (this.queue.length > 0) {
      const job = this.queue.shift();
      if (job.state === 'cancelled') continue;
      this.running = job;
      this.announce(`Uploading ${job.title}.`);
      await job.run();
      this.running = null;
      if (job.state === 'done') {
        this.announce(`${job.title} is uploaded.`);
        this.reloadNote.hidden = false;
      } else if (job.state === 'failed') {
        this.announce(`${job.title} failed: ${job.message.textContent}`);
      }
      this.refreshUnfinished();
    }
  }

  announce(text) {
    this.status.textContent = text;
  }

  /** Redraw progress soon (at most a few times a second). */
  changed() {
    if (this.dirty) return;
    this.dirty = true;
    setTimeout(() => {
      this.dirty = false;
      this.draw();
    }, 200);
  }

  draw() {
    let total = 0;
    let bytes = 0;
    let rate = 0;
    let finished = 0;
    let counted = 0;
    for (const j of this.jobs) {
      j.update();
      if (j.state === 'cancelled') continue;
      counted += 1;
      total += j.total;
      bytes += j.state === 'done' ? j.total : j.progressBytes();
      if (j.state === 'uploading') rate += j.rate.perSecond();
      if (j.state === 'done') finished += 1;
    }
    this.overallBar.max = Math.max(1, total);
    this.overallBar.value = bytes;
    this.overallCount.textContent = `${finished} of ${counted} done`;
    let text = `${size(bytes)} of ${size(total)}`;
    if (rate > 0) text += ` · ${size(Math.round(rate))}/s · about ${duration((total - bytes) / rate)} left`;
    this.overallNumbers.textContent = text;
  }

  /** List the sessions this browser keeps for the project that no upload runs now. */
  refreshUnfinished() {
    const entries = savedUploads(this.projectId).filter((e) => !this.isRunning(e.upload_id));
    this.unfinishedList.replaceChildren(
      ...entries.map((e) => {
        const detail = el('span', { class: 'muted small' }, ` ${e.kind === 'folder' ? `folder, ${e.file_count} files` : 'file'}, ${size(e.total_bytes)}, started ${when(e.started_at)}`);
        const row = el(
          'li',
          { 'data-upload-id': e.upload_id },
          el('div', {}, el('strong', {}, e.title), detail),
          el(
            'div',
            { class: 'upload-unfinished-actions' },
            el(
              'button',
              { type: 'button', class: 'btn btn-small', onclick: () => this.pick(e.kind) },
              `Resume (choose the ${e.kind} again)`,
              el('span', { class: 'visually-hidden' }, `: ${e.title}`),
            ),
            el(
              'button',
              {
                type: 'button',
                class: 'btn btn-small btn-danger',
                onclick: async () => {
                  row.remove();
                  this.unfinished.hidden = this.unfinishedList.children.length === 0;
                  await discardSession(e);
                  this.announce(`Discarded the unfinished upload of ${e.title}.`);
                },
              },
              'Discard',
              el('span', { class: 'visually-hidden' }, ` ${e.title}`),
            ),
          ),
        );
        return row;
      }),
    );
    this.unfinished.hidden = entries.length === 0;
  }

  /** Check the kept sessions with the server: forget those done, aborted or gone. */
  async checkUnfinished() {
    for (const e of savedUploads(this.projectId)) {
      try {
        const s = await request('GET', `/uploads/${e.upload_id}`);
        if (s.status !== 'open') forgetUpload(e.upload_id);
      } catch (err) {
        if (err instanceof ApiError && err.status === 404) forgetUpload(e.upload_id);
      }
    }
    this.refreshUnfinished();
  }

  pick(kind) {
    this.zone.querySelector(kind === 'folder' ? '#upload-folder' : '#upload-files').click();
  }
}

function setUp(zone) {
  const uploader = new Uploader(zone);
  const dropzone = zone.querySelector('.dropzone');
  const filesInput = zone.querySelector('#upload-files');
  const folderInput = zone.querySelector('#upload-folder');
  const report = (err) => uploader.announce(`Could not read what was dropped: ${err.message || err}`);

  filesInput.addEventListener('change', () => {
    uploader.add([...filesInput.files].map((file) => ({ kind: 'file', title: file.name, files: [{ file, name: file.name }] })));
    filesInput.value = '';
  });
  folderInput.addEventListener('change', () => {
    uploader.add(jobsFromFolderInput(folderInput.files));
    folderInput.value = '';
  });
  zone.querySelector('[data-choose="files"]').addEventListener('click', () => filesInput.click());
  zone.querySelector('[data-choose="folder"]').addEventListener('click', () => folderInput.click());

  const hasFiles = (e) => [...(e.dataTransfer?.types || [])].includes('Files');
  dropzone.addEventListener('dragover', (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    e.dataTransfer.dropEffect = 'copy';
    dropzone.classList.add('over');
  });
  dropzone.addEventListener('dragleave', (e) => {
    if (!dropzone.contains(e.relatedTarget)) dropzone.classList.remove('over');
  });
  dropzone.addEventListener('drop', (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    dropzone.classList.remove('over');
    jobsFromDrop(e.dataTransfer).then((picks) => uploader.add(picks), report);
  });
  // A file dropped next to the zone must not replace the page.
  window.addEventListener('dragover', (e) => {
    if (hasFiles(e) && !dropzone.contains(e.target)) {
      e.preventDefault();
      e.dataTransfer.dropEffect = 'none';
    }
  });
  window.addEventListener('drop', (e) => {
    if (hasFiles(e) && !dropzone.contains(e.target)) e.preventDefault();
  });

  dropzone.hidden = false;
  uploader.refreshUnfinished();
  uploader.checkUnfinished();
}

const zone = document.querySelector('[data-upload-zone]');
if (zone) setUp(zone);
