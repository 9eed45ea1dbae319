// BLAKE3 in plain JavaScript, for the browser upload (upload-worker.js).
//
// The server checks every chunk of an upload against a digest the client
// sends (docs/api.md "Uploads"; reference code:
// crates/dataerai-proto/src/digest.rs):
//
// - a file of one chunk: the plain BLAKE3 hash of its bytes;
// - a file of several chunks (chunk sizes are powers of two, >= 1 KiB):
//   chunk i is a complete subtree of the file's BLAKE3 tree, and its digest is
//   that subtree's *chaining value*, hashed at input offset i * chunk_size and
//   not finalized as the root (blake3's hazmat `set_input_offset` +
//   `finalize_non_root`). `fileHash` merges the digests, in order, into the
//   hash of the whole file, so no byte is read twice.
//
// No wasm32 target and no npm package gives chaining values, hence this file:
// the compression function, the 1 KiB chunk state, the tree of a subtree at an
// input offset, and parent merges. Checked against digests made by the Rust
// code (tests/e2e/blake3.test.mjs, fixtures/blake3-vectors.json). Hash only,
// no keyed or derive-key modes. Lengths and offsets are JS numbers (exact up
// to 2^53 bytes).

export const CHUNK_LEN = 1024;
const BLOCK_LEN = 64;
const CHUNK_START = 1;
const CHUNK_END = 2;
const PARENT = 4;
const ROOT = 8;

const IV = new Uint32Array([
  0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
]);

// Whether a Uint32Array over the input reads words as BLAKE3 does (little
// endian): then full blocks are read in place, without copying.
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

// The compression function: chaining value `cv[cvOff..+8]`, message
// `m[mOff..+16]`; writes the 8-word output chaining value to `out[outOff..]`.
function compress(cv, cvOff, m, mOff, counter, blockLen, flags, out, outOff) {
  let s0 = cv[cvOff] | 0, s1 = cv[cvOff + 1] | 0, s2 = cv[cvOff + 2] | 0, s3 = cv[cvOff + 3] | 0;
  let s4 = cv[cvOff + 4] | 0, s5 = cv[cvOff + 5] | 0, s6 = cv[cvOff + 6] | 0, s7 = cv[cvOff + 7] | 0;
  let s8 = 0x6a09e667, s9 = 0xbb67ae85 | 0, s10 = 0x3c6ef372, s11 = 0xa54ff53a | 0;
  let s12 = counter | 0, s13 = Math.floor(counter / 4294967296) | 0, s14 = blockLen, s15 = flags;
  let m0 = m[mOff] | 0, m1 = m[mOff + 1] | 0, m2 = m[mOff + 2] | 0, m3 = m[mOff + 3] | 0;
  let m4 = m[mOff + 4] | 0, m5 = m[mOff + 5] | 0, m6 = m[mOff + 6] | 0, m7 = m[mOff + 7] | 0;
  let m8 = m[mOff + 8] | 0, m9 = m[mOff + 9] | 0, m10 = m[mOff + 10] | 0, m11 = m[mOff + 11] | 0;
  let m12 = m[mOff + 12] | 0, m13 = m[mOff + 13] | 0, m14 = m[mOff + 14] | 0, m15 = m[mOff + 15] | 0;
  for (let r = 0; r < 7; r++) {
    s0 = (s0 + s4 + m0) | 0; s12 ^= s0; s12 = (s12 >>> 16) | (s12 << 16);
    s8 = (s8 + s12) | 0; s4 ^= s8; s4 = (s4 >>> 12) | (s4 << 20);
    s0 = (s0 + s4 + m1) | 0; s12 ^= s0; s12 = (s12 >>> 8) | (s12 << 24);
    s8 = (s8 + s12) | 0; s4 ^= s8; s4 = (s4 >>> 7) | (s4 << 25);
    s1 = (s1 + s5 + m2) | 0; s13 ^= s1; s13 = (s13 >>> 16) | (s13 << 16);
    s9 = (s9 + s13) | 0; s5 ^= s9; s5 = (s5 >>> 12) | (s5 << 20);
    s1 = (s1 + s5 + m3) | 0; s13 ^= s1; s13 = (s13 >>> 8) | (s13 << 24);
    s9 = (s9 + s13) | 0; s5 ^= s9; s5 = (s5 >>> 7) | (s5 << 25);
    s2 = (s2 + s6 + m4) | 0; s14 ^= s2; s14 = (s14 >>> 16) | (s14 << 16);
    s10 = (s10 + s14) | 0; s6 ^= s10; s6 = (s6 >>> 12) | (s6 << 20);
    s2 = (s2 + s6 + m5) | 0; s14 ^= s2; s14 = (s14 >>> 8) | (s14 << 24);
    s10 = (s10 + s14) | 0; s6 ^= s10; s6 = (s6 >>> 7) | (s6 << 25);
    s3 = (s3 + s7 + m6) | 0; s15 ^= s3; s15 = (s15 >>> 16) | (s15 << 16);
    s11 = (s11 + s15) | 0; s7 ^= s11; s7 = (s7 >>> 12) | (s7 << 20);
    s3 = (s3 + s7 + m7) | 0; s15 ^= s3; s15 = (s15 >>> 8) | (s15 << 24);
    s11 = (s11 + s15) | 0; s7 ^= s11; s7 = (s7 >>> 7) | (s7 << 25);
    s0 = (s0 + s5 + m8) | 0; s15 ^= s0; s15 = (s15 >>> 16) | (s15 << 16);
    s10 = (s10 + s15) | 0; s5 ^= s10; s5 = (s5 >>> 12) | (s5 << 20);
    s0 = (s0 + s5 + m9) | 0; s15 ^= s0; s15 = (s15 >>> 8) | (s15 << 24);
    s10 = (s10 + s15) | 0; s5 ^= s10; s5 = (s5 >>> 7) | (s5 << 25);
    s1 = (s1 + s6 + m10) | 0; s12 ^= s1; s12 = (s12 >>> 16) | (s12 << 16);
    s11 = (s11 + s12) | 0; s6 ^= s11; s6 = (s6 >>> 12) | (s6 << 20);
    s1 = (s1 + s6 + m11) | 0; s12 ^= s1; s12 = (s12 >>> 8) | (s12 << 24);
    s11 = (s11 + s12) | 0; s6 ^= s11; s6 = (s6 >>> 7) | (s6 << 25);
    s2 = (s2 + s7 + m12) | 0; s13 ^= s2; s13 = (s13 >>> 16) | (s13 << 16);
    s8 = (s8 + s13) | 0; s7 ^= s8; s7 = (s7 >>> 12) | (s7 << 20);
    s2 = (s2 + s7 + m13) | 0; s13 ^= s2; s13 = (s13 >>> 8) | (s13 << 24);
    s8 = (s8 + s13) | 0; s7 ^= s8; s7 = (s7 >>> 7) | (s7 << 25);
    s3 = (s3 + s4 + m14) | 0; s14 ^= s3; s14 = (s14 >>> 16) | (s14 << 16);
    s9 = (s9 + s14) | 0; s4 ^= s9; s4 = (s4 >>> 12) | (s4 << 20);
    s3 = (s3 + s4 + m15) | 0; s14 ^= s3; s14 = (s14 >>> 8) | (s14 << 24);
    s9 = (s9 + s14) | 0; s4 ^= s9; s4 = (s4 >>> 7) | (s4 << 25);
    // The next round takes the message permuted.
    const t0 = m2, t1 = m6, t2 = m3, t3 = m10, t4 = m7, t5 = m0, t6 = m4, t7 = m13;
    const t8 = m1, t9 = m11, t10 = m12, t11 = m5, t12 = m9, t13 = m14, t14 = m15, t15 = m8;
    m0 = t0; m1 = t1; m2 = t2; m3 = t3; m4 = t4; m5 = t5; m6 = t6; m7 = t7;
    m8 = t8; m9 = t9; m10 = t10; m11 = t11; m12 = t12; m13 = t13; m14 = t14; m15 = t15;
  }
  out[outOff] = s0 ^ s8;
  out[outOff + 1] = s1 ^ s9;
  out[outOff + 2] = s2 ^ s10;
  out[outOff + 3] = s3 ^ s11;
  out[outOff + 4] = s4 ^ s12;
  out[outOff + 5] = s5 ^ s13;
  out[outOff + 6] = s6 ^ s14;
  out[outOff + 7] = s7 ^ s15;
}

const blockWords = new Uint32Array(16);
const blockBytes = new Uint8Array(blockWords.buffer);
const parentBlock = new Uint32Array(16);

// The chaining value of the 1 KiB chunk `bytes[start..end)` (at most
// CHUNK_LEN bytes, possibly empty) with chunk counter `counter`, into
// `out[outOff..+8]`; `root` finalizes it as the root of the tree.
function chunkChainingValue(bytes, words, start, end, counter, root, out, outOff) {
  out.set(IV, outOff);
  const blocks = Math.max(1, Math.ceil((end - start) / BLOCK_LEN));
  for (let b = 0; b < blocks; b++) {
    const pos = start + b * BLOCK_LEN;
    const len = Math.min(BLOCK_LEN, end - pos);
    let flags = b === 0 ? CHUNK_START : 0;
    if (b === blocks - 1) flags |= CHUNK_END | (root ? ROOT : 0);
    if (len === BLOCK_LEN && words !== null) {
      compress(out, outOff, words, pos >>> 2, counter, BLOCK_LEN, flags, out, outOff);
    } else {
      blockBytes.fill(0);
      if (len > 0) blockBytes.set(bytes.subarray(pos, pos + len));
      if (!LITTLE_ENDIAN) swapWords(blockWords);
      compress(out, outOff, blockWords, 0, counter, len, flags, out, outOff);
    }
  }
}

function swapWords(words) {
  for (let i = 0; i < words.length; i++) {
    const w = words[i];
    words[i] = ((w & 0xff) << 24) | ((w & 0xff00) << 8) | ((w >>> 8) & 0xff00) | (w >>> 24);
  }
}

// The parent of two chaining values (8 words each) into `out[outOff..+8]`.
function parent(left, leftOff, right, rightOff, root, out, outOff) {
  parentBlock.set(left.subarray(leftOff, leftOff + 8), 0);
  parentBlock.set(right.subarray(rightOff, rightOff + 8), 8);
  compress(IV, 0, parentBlock, 0, 0, BLOCK_LEN, PARENT | (root ? ROOT : 0), out, outOff);
}

// The input's words read in place, or null when they cannot be (an odd
// offset into its buffer, or a big-endian machine).
function wordsOf(bytes) {
  if (!LITTLE_ENDIAN || bytes.byteOffset % 4 !== 0) return null;
  return new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.length >>> 2);
}

// The BLAKE3 tree over `bytes`, whose first byte is at input offset
// `offset` (a multiple of CHUNK_LEN): the root hash when `root`, else the
// subtree's chaining value. Each 1 KiB chunk's chaining value is pushed on a
// stack and merged with its left neighbours as soon as they form a complete
// subtree; the last chunk is merged at the end (so it can carry ROOT).
function tree(bytes, offset, root) {
  const words = wordsOf(bytes);
  const chunks = Math.max(1, Math.ceil(bytes.length / CHUNK_LEN));
  const firstCounter = offset / CHUNK_LEN;
  const stack = new Uint32Array(64 * 8);
  let depth = 0;
  const cv = new Uint32Array(8);
  for (let j = 0; j < chunks - 1; j++) {
    const start = j * CHUNK_LEN;
    chunkChainingValue(bytes, words, start, start + CHUNK_LEN, firstCounter + j, false, cv, 0);
    // Counted within the subtree: it starts on a boundary of its own size.
    for (let total = j + 1; (total & 1) === 0; total = Math.floor(total / 2)) {
      depth -= 1;
      parent(stack, depth * 8, cv, 0, false, cv, 0);
    }
    stack.set(cv, depth * 8);
    depth += 1;
  }
  const last = (chunks - 1) * CHUNK_LEN;
  chunkChainingValue(bytes, words, last, bytes.length, firstCounter + chunks - 1, root && depth === 0, cv, 0);
  while (depth > 0) {
    depth -= 1;
    parent(stack, depth * 8, cv, 0, root && depth === 0, cv, 0);
  }
  return wordsToBytes(cv);
}

function wordsToBytes(words) {
  const out = new Uint8Array(32);
  for (let i = 0; i < 8; i++) {
    const w = words[i];
    out[4 * i] = w & 0xff;
    out[4 * i + 1] = (w >>> 8) & 0xff;
    out[4 * i + 2] = (w >>> 16) & 0xff;
    out[4 * i + 3] = w >>> 24;
  }
  return out;
}

function bytesToWords(bytes) {
  const out = new Uint32Array(8);
  for (let i = 0; i < 8; i++) {
    out[i] =
      bytes[4 * i] | (bytes[4 * i + 1] << 8) | (bytes[4 * i + 2] << 16) | (bytes[4 * i + 3] << 24);
  }
  return out;
}

/** The BLAKE3 hash (32 bytes) of `bytes` (a Uint8Array). */
export function hash(bytes) {
  return tree(bytes, 0, true);
}

/**
 * The chaining value of the subtree holding `bytes` at input offset `offset`
 * (a multiple of CHUNK_LEN; `bytes` non-empty and no longer than the largest
 * subtree that starts there) — blake3's `set_input_offset` +
 * `finalize_non_root`.
 */
export function subtreeChainingValue(bytes, offset) {
  if (offset % CHUNK_LEN !== 0) throw new RangeError(`offset ${offset} is not a multiple of 1024`);
  if (bytes.length === 0) throw new RangeError('a subtree is never empty');
  return tree(bytes, offset, false);
}

/** Chunks of a file: a 0-byte file has one (empty) chunk. */
export function chunkCount(size, chunkSize) {
  return size === 0 ? 1 : Math.ceil(size / chunkSize);
}

/** Chunk sizes that cut a file into subtrees: powers of two of at least 1 KiB. */
export function isValidChunkSize(chunkSize) {
  return Number.isSafeInteger(chunkSize) && chunkSize >= CHUNK_LEN && 2 ** Math.round(Math.log2(chunkSize)) === chunkSize;
}

/**
 * The digest of chunk `index` (its bytes) of a file of `fileSize` bytes cut
 * in chunks of `chunkSize`: what `x-dataerai-chunk-blake3` carries
 * (`ChunkDigest::of(..).compute(..)` in digest.rs).
 */
export function chunkDigest(bytes, fileSize, chunkSize, index) {
  if (chunkCount(fileSize, chunkSize) === 1) return hash(bytes);
  return subtreeChainingValue(bytes, index * chunkSize);
}

// The largest power of two <= n (n >= 1), exact beyond 2^32.
function largestPowerOfTwoAtMost(n) {
  let p = 1;
  while (p * 2 <= n) p *= 2;
  return p;
}

// Bytes in the left subtree of an input of `len` (> CHUNK_LEN) bytes.
function leftSubtreeLen(len) {
  return largestPowerOfTwoAtMost(Math.floor((len - 1) / CHUNK_LEN)) * CHUNK_LEN;
}

function merge(left, right, root) {
  const out = new Uint32Array(8);
  parent(bytesToWords(left), 0, bytesToWords(right), 0, root, out, 0);
  return wordsToBytes(out);
}

/**
 * The BLAKE3 hash of a whole file from the digests of all its chunks, in
 * order (`digest::file_hash`): the same tree walk, the top merge as root.
 */
export function fileHash(fileSize, chunkSize, digests) {
  const count = chunkCount(fileSize, chunkSize);
  if (digests.length !== count) {
    throw new RangeError(
      `a file of ${fileSize} bytes has ${count} chunk(s) of ${chunkSize} bytes, not ${digests.length}`,
    );
  }
  if (count === 1) return digests[0];
  const [l, r] = split(digests, chunkSize, leftSubtreeLen(fileSize));
  return merge(l, r, true);
}

function split(digests, chunkSize, leftLen) {
  const k = leftLen / chunkSize;
  const total = leftLen + (digests.length - k) * chunkSize; // an upper bound
  return [
    subtree(digests.slice(0, k), chunkSize, leftLen),
    subtree(digests.slice(k), chunkSize, total - leftLen),
  ];
}

function subtree(digests, chunkSize, maxLen) {
  if (digests.length === 1) return digests[0];
  const [l, r] = split(digests, chunkSize, leftSubtreeLen(maxLen));
  return merge(l, r, false);
}

export function toHex(bytes) {
  let s = '';
  for (const b of bytes) s += b.toString(16).padStart(2, '0');
  return s;
}

export function fromHex(hex) {
  if (!/^[0-9a-fA-F]{64}$/.test(hex)) throw new RangeError(`not a 32-byte hex digest: ${hex}`);
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}
