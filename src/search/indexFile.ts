import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { ContrastiveError } from '../errors.js';
import { writeFileAtomic } from '../io/atomic.js';
import type { IndexSnapshot } from './embeddingIndex.js';
import { decodeIndexBytes, layoutIndexFile } from './indexFormat.js';

/** The Node side of the index file: reading and writing files, hashing with `node:crypto`. The format itself is `indexFormat.ts`. */

export { INDEX_FORMAT_VERSION, INDEX_MAGIC } from './indexFormat.js';

/** Encodes an index snapshot as the bytes of one file. */
export function encodeIndexFile(snapshot: IndexSnapshot): Uint8Array {
  const { bytes, checksummed } = layoutIndexFile(snapshot);
  bytes.set(sha256(checksummed), 16);
  return bytes;
}

/** Writes an index file atomically. */
export async function writeIndexFile(path: string, snapshot: IndexSnapshot): Promise<void> {
  await writeFileAtomic(path, encodeIndexFile(snapshot));
}

/** Reads and verifies an index file; errors name the file and what is wrong with it. */
export async function readIndexFile(path: string): Promise<IndexSnapshot> {
  const bytes = await readFile(path).catch((error: NodeJS.ErrnoException) => {
    throw new ContrastiveError(`EmbeddingIndex.load: cannot read ${path}: ${error.code ?? error.message}.`);
  });
  return decodeIndexFile(bytes, path);
}

/** Decodes the bytes of an index file (`name` is used in messages). */
export function decodeIndexFile(bytes: Uint8Array, name: string): IndexSnapshot {
  return decodeIndexBytes(bytes, name, sha256);
}

function sha256(data: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(data).digest());
}
