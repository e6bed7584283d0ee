import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { ContrastiveError } from '../errors.js';
import { LabelTree, type LabelTreeJSON } from '../hierarchy/labelTree.js';
import { writeFileAtomic } from '../io/atomic.js';
import type { EmbeddingSpace, IndexSnapshot, ModelIdentity } from './embeddingIndex.js';
import type { HnswOptions } from './hnsw.js';

/** The first 8 bytes of every index file. */
export const INDEX_MAGIC = 'TFJSCIDX';
/** The format version this library writes and reads (see `docs/index-format.md`). */
export const INDEX_FORMAT_VERSION = 1;

/** Bytes before the JSON header: magic (8), version (uint32), header length (uint32), SHA-256 (32). */
const PRELUDE = 48;

/** The JSON header of format version 1. */
interface IndexHeaderV1 {
  format: 'tfjs-contrastive/embedding-index';
  version: 1;
  dim: number;
  count: number;
  space: EmbeddingSpace;
  model: ModelIdentity | null;
  tree: LabelTreeJSON;
  ids: string[];
  /** Leaf id per item, -1 when unlabelled. */
  leaves: number[];
  /** Per item, or absent when no item has one. */
  sources?: (string | null)[];
  thumbnails?: (string | null)[];
  approximate: Required<HnswOptions> | null;
}

/** Encodes an index snapshot as the bytes of one file. */
export function encodeIndexFile(snapshot: IndexSnapshot): Uint8Array {
  const count = snapshot.ids.length;
  const header: IndexHeaderV1 = {
    format: 'tfjs-contrastive/embedding-index',
    version: 1,
    dim: snapshot.dim,
    count,
    space: snapshot.space,
    model: snapshot.model,
    tree: snapshot.tree.toJSON(),
    ids: snapshot.ids,
    leaves: Array.from(snapshot.leaves),
    approximate: snapshot.approximate,
  };
  if (snapshot.sources.some((s) => s !== undefined)) header.sources = snapshot.sources.map((s) => s ?? null);
  if (snapshot.thumbnails.some((s) => s !== undefined))
    header.thumbnails = snapshot.thumbnails.map((s) => s ?? null);
  const json = new TextEncoder().encode(JSON.stringify(header));
  const dataStart = Math.ceil((PRELUDE + json.length) / 4) * 4;
  const bytes = new Uint8Array(dataStart + count * snapshot.dim * 4);
  bytes.set(new TextEncoder().encode(INDEX_MAGIC), 0);
  const view = new DataView(bytes.buffer);
  view.setUint32(8, INDEX_FORMAT_VERSION, true);
  view.setUint32(12, json.length, true);
  bytes.set(json, PRELUDE);
  const floats = new DataView(bytes.buffer, dataStart);
  const vectors = snapshot.vectors;
  for (let i = 0; i < count * snapshot.dim; i++) floats.setFloat32(i * 4, vectors[i], true);
  bytes.set(sha256(bytes.subarray(PRELUDE)), 16);
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
  const fn = 'EmbeddingIndex.load';
  const fail = (why: string): never => {
    throw new ContrastiveError(`${fn}: ${name} ${why}`);
  };
  if (bytes.length < PRELUDE || new TextDecoder().decode(bytes.subarray(0, 8)) !== INDEX_MAGIC)
    fail(`is not a tfjs-contrastive index file (it does not start with ${INDEX_MAGIC}).`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = view.getUint32(8, true);
  if (version > INDEX_FORMAT_VERSION)
    fail(
      `was written in index format version ${version}, newer than this tfjs-contrastive reads (${INDEX_FORMAT_VERSION}); upgrade tfjs-contrastive.`,
    );
  if (version < INDEX_FORMAT_VERSION)
    fail(
      `was written in index format version ${version}, older than this tfjs-contrastive reads (${INDEX_FORMAT_VERSION}); rebuild it with contrastive index.`,
    );
  const expected = bytes.subarray(16, 48);
  const actual = sha256(bytes.subarray(PRELUDE));
  if (!expected.every((b, i) => b === actual[i]))
    fail('is corrupt: its SHA-256 checksum does not match its contents (truncated or modified); rebuild it.');
  const headerLength = view.getUint32(12, true);
  let header: IndexHeaderV1;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(PRELUDE, PRELUDE + headerLength)));
  } catch (error) {
    return fail(`has an unreadable header (${(error as Error).message}).`);
  }
  const { dim, count } = header;
  if (header.format !== 'tfjs-contrastive/embedding-index')
    fail(`has format ${JSON.stringify(header.format)}, not an embedding index.`);
  if (!(Number.isInteger(dim) && dim > 0 && Number.isInteger(count) && count >= 0))
    fail(`has a bad header: dim ${dim}, count ${count}.`);
  if (
    !Array.isArray(header.ids) ||
    header.ids.length !== count ||
    !Array.isArray(header.leaves) ||
    header.leaves.length !== count
  )
    fail(`has a bad header: ids and leaves must list ${count} items.`);
  const dataStart = Math.ceil((PRELUDE + headerLength) / 4) * 4;
  if (bytes.length !== dataStart + count * dim * 4)
    fail(`has ${bytes.length} bytes, but its header describes ${dataStart + count * dim * 4}.`);
  const vectors = new Float32Array(count * dim);
  const floats = new DataView(bytes.buffer, bytes.byteOffset + dataStart, count * dim * 4);
  for (let i = 0; i < vectors.length; i++) vectors[i] = floats.getFloat32(i * 4, true);
  let tree: LabelTree;
  try {
    tree = LabelTree.fromSerialized(header.tree);
  } catch (error) {
    return fail(`has a bad label tree: ${(error as Error).message}`);
  }
  return {
    dim,
    space: header.space,
    model: header.model,
    tree,
    ids: header.ids,
    leaves: Int32Array.from(header.leaves),
    sources: header.sources?.map((s) => s ?? undefined) ?? new Array(count).fill(undefined),
    thumbnails: header.thumbnails?.map((s) => s ?? undefined) ?? new Array(count).fill(undefined),
    vectors,
    approximate: header.approximate,
  };
}

function sha256(data: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(data).digest());
}
