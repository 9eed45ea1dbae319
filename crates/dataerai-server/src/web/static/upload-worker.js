// The hashing side of browser uploads (upload.js): a Web Worker, so hashing
// never blocks the page. Each message names one chunk of a file (a Blob from
// File.slice, read here, never the whole file) and answers its BLAKE3 chunk
// digest (blake3.js, as docs/api.md "Uploads" defines it) and, when the chunk
// is to be sent, its bytes (transferred, not copied), so the bytes sent are
// the bytes hashed.
//
//   → {id, blob, fileSize, chunkSize, index, keep}
//   ← {id, digest: Uint8Array(32), bytes: ArrayBuffer | null}  or  {id, error}

import { chunkDigest } from './blake3.js';

self.onmessage = async (event) => {
  const { id, blob, fileSize, chunkSize, index, keep } = event.data;
  try {
    const bytes = await blob.arrayBuffer();
    const digest = chunkDigest(new Uint8Array(bytes), fileSize, chunkSize, index);
    if (keep) {
      self.postMessage({ id, digest, bytes }, [bytes]);
    } else {
      self.postMessage({ id, digest, bytes: null });
    }
  } catch (e) {
    // A file changed, moved or deleted since it was chosen cannot be read.
    self.postMessage({ id, error: `${e.name || 'Error'}: ${e.message || e}` });
  }
};
