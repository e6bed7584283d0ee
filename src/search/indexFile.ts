import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ContrastiveError } from '../errors.js';
import { writeFileAtomic } from '../io/atomic.js';
import { HnswGraph } from './hnsw.js';
import { decodeIndexBytes, layoutIndexFile } from './indexFormat.js';
import type { IndexSnapshot } from './indexSchema.js';

/** The Node side of the index file: reading and writing files, hashing with `node:crypto`. The format itself is `indexFormat.ts`. */

export { INDEX_FORMAT_VERSION, INDEX_MAGIC } from './indexFormat.js';

/** Encodes an index snapshot as the bytes of one file. */
export function encodeIndexFile(snapshot: IndexSnapshot): Uint8Array {
  const { bytes, checksummed } = layoutIndexFile(snapshot);
  bytes.set(sha256(checksummed), 16);
  return bytes;
}

/**
 * Writes an index file atomically; with `graph`, the HNSW graph is stored after the vectors (with
 * the key of every row and the vectors' SHA-256), so that loading does not rebuild it.
 */
export async function writeIndexFile(
  path: string,
  snapshot: IndexSnapshot,
  graph?: { graph: HnswGraph; keys: number[] } | null,
): Promise<void> {
  const stored = graph
    ? {
        ...snapshot,
        graph: {
          bytes: await graphBytes(graph.graph),
          keys: graph.keys,
          vectorsSha256: vectorsSha256(snapshot.vectors),
        },
      }
    : snapshot;
  await writeFileAtomic(path, encodeIndexFile(stored));
}

/**
 * The HNSW graph a file holds, if it may be used: it must have been built on exactly these
 * vectors (their SHA-256), load, hold exactly the file's keys, and find a sample of the rows as
 * their own nearest neighbours. Null when there is none or it fails any check (the caller rebuilds
 * it from the vectors); never a crash from a stale or forged graph that usearch can read.
 */
export async function readIndexGraph(snapshot: IndexSnapshot): Promise<HnswGraph | null> {
  const stored = snapshot.graph;
  if (!stored || !snapshot.approximate) return null;
  if (stored.vectorsSha256 !== vectorsSha256(snapshot.vectors)) return null;
  const keys = stored.keys;
  if (!keys.every((k) => Number.isSafeInteger(k) && k >= 0) || new Set(keys).size !== keys.length)
    return null;
  const dir = await mkdtemp(join(tmpdir(), 'contrastive-graph-'));
  try {
    const file = join(dir, 'graph.usearch');
    await writeFile(file, stored.bytes);
    const graph = await HnswGraph.loadFrom(file, snapshot.dim, snapshot.approximate).catch(() => null);
    return graph?.covers(keys, snapshot.vectors, 64) ? graph : null;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function graphBytes(graph: HnswGraph): Promise<Uint8Array> {
  const dir = await mkdtemp(join(tmpdir(), 'contrastive-graph-'));
  try {
    const file = join(dir, 'graph.usearch');
    graph.saveTo(file);
    return new Uint8Array(await readFile(file));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** SHA-256 (hex) of `[N, D]` float32 vectors as the file stores them (little-endian). */
function vectorsSha256(vectors: Float32Array): string {
  const bytes = new Uint8Array(vectors.length * 4);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < vectors.length; i++) view.setFloat32(i * 4, vectors[i], true);
  return createHash('sha256').update(bytes).digest('hex');
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
