// The browser upload's BLAKE3 (crates/dataerai-server/src/web/static/blake3.js)
// against digests made by the Rust code the server checks chunks with
// (fixtures/blake3-vectors.json, written and kept current by
// crates/dataerai-proto/tests/browser_digest_vectors.rs). Needs no server
// and no browser.

import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  chunkCount,
  chunkDigest,
  fileHash,
  fromHex,
  hash,
  isValidChunkSize,
  subtreeChainingValue,
  toHex,
} from '../../crates/dataerai-server/src/web/static/blake3.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const vectors = JSON.parse(await readFile(path.join(HERE, 'fixtures', 'blake3-vectors.json'), 'utf8'));

/** The fixtures' input recipe: byte i is ((i * 2654435761) mod 2^32) >> 8, mod 256. */
function data(len) {
  const out = new Uint8Array(len);
  for (let i = 0; i < len; i++) out[i] = (Math.imul(i, 2654435761) >>> 8) & 0xff;
  return out;
}

test('the recipe makes the bytes the Rust test hashes', () => {
  assert.deepEqual([...data(4)], [0x00, 0x79, 0xf3, 0x6d]);
});

test('plain hashes: the published vectors and the Rust ones', () => {
  const empty = 'af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262';
  assert.equal(toHex(hash(new Uint8Array(0))), empty);
  assert.equal(
    toHex(hash(new TextEncoder().encode('abc'))),
    '6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85',
  );
  assert.ok(vectors.hashes.length > 10);
  for (const v of vectors.hashes) {
    assert.equal(toHex(hash(data(v.len))), v.blake3, `length ${v.len}`);
  }
});

test('input not aligned in its buffer hashes the same', () => {
  const buf = new Uint8Array(5001);
  buf.set(data(5000), 1);
  const v = vectors.hashes.find((h) => h.len === 5000);
  assert.equal(toHex(hash(buf.subarray(1))), v.blake3);
});

test('chunk digests and the file hash merged from them', () => {
  for (const f of vectors.files) {
    const all = data(f.size);
    const count = chunkCount(f.size, f.chunk_size);
    assert.equal(count, f.chunks.length, `size ${f.size}`);
    const digests = [];
    for (let i = 0; i < count; i++) {
      const bytes = all.subarray(i * f.chunk_size, Math.min(all.length, (i + 1) * f.chunk_size));
      const d = chunkDigest(bytes, f.size, f.chunk_size, i);
      assert.equal(toHex(d), f.chunks[i], `size ${f.size}, chunk size ${f.chunk_size}, chunk ${i}`);
      digests.push(d);
    }
    const whole = fileHash(f.size, f.chunk_size, digests);
    assert.equal(toHex(whole), f.file_hash, `size ${f.size}, chunk size ${f.chunk_size}`);
    assert.equal(toHex(hash(all)), f.file_hash);
    // From the hex a resumed upload keeps in localStorage.
    assert.equal(toHex(fileHash(f.size, f.chunk_size, f.chunks.map(fromHex))), f.file_hash);
  }
});

test('chunks far into big files (chunk counters past 2^32)', () => {
  for (const c of vectors.far_chunks) {
    const d = chunkDigest(data(c.len), c.file_size, c.chunk_size, c.index);
    assert.equal(toHex(d), c.digest, JSON.stringify(c));
  }
});

test('bad input is refused', () => {
  assert.throws(() => subtreeChainingValue(new Uint8Array(0), 1024), RangeError);
  assert.throws(() => subtreeChainingValue(new Uint8Array(1), 1000), RangeError);
  assert.throws(() => fileHash(5000, 1024, [new Uint8Array(32)]), /5 chunk/);
  assert.throws(() => fromHex('xyz'), RangeError);
  assert.ok(isValidChunkSize(1024) && isValidChunkSize(8 << 20) && isValidChunkSize(2 ** 40));
  assert.ok(!isValidChunkSize(512) && !isValidChunkSize(3 << 20) && !isValidChunkSize(0));
});
