import { ContrastiveError } from '../errors.js';
import { LabelTree, type LabelTreeJSON } from '../hierarchy/labelTree.js';
import type { EmbeddingSpace, IndexSnapshot, ModelIdentity } from './embeddingIndex.js';
import type { HnswOptions } from './hnsw.js';

/**
 * The index file format (`docs/index-format.md`) as bytes in and out, with no Node-only import, so
 * the browser entry (`src/web`) reads the very same files. The SHA-256 is passed in: Node hashes
 * with `node:crypto` (`indexFile.ts`), the browser with SubtleCrypto or a small JS hash.
 */

/** The first 8 bytes of every index file. */
export const INDEX_MAGIC = 'TFJSCIDX';
/** The format version this library writes and reads (see `docs/index-format.md`). */
export const INDEX_FORMAT_VERSION = 1;

/** Bytes before the JSON header: magic (8), version (uint32), header length (uint32), SHA-256 (32). */
const PRELUDE = 48;

/** A SHA-256 of some bytes, synchronous or not. */
export type Sha256 = (data: Uint8Array) => Uint8Array | Promise<Uint8Array>;

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
  /** Nodes the model never saw in training (absent when none; readers of older files see none). */
  unseen?: string[][];
  /** The HNSW graph's bytes (after the vectors), its keys and the vectors' SHA-256 (absent: none stored). */
  graph?: { bytes: number; keys: number[]; vectorsSha256: string };
}

/**
 * Lays out an index snapshot as the bytes of one file, with the checksum slot (bytes 16..48) left
 * zero: fill it with the SHA-256 of `checksummed` (see {@link encodeIndexBytes}).
 */
export function layoutIndexFile(snapshot: IndexSnapshot): { bytes: Uint8Array; checksummed: Uint8Array } {
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
  if (snapshot.unseen?.length) header.unseen = snapshot.unseen;
  const graph = snapshot.approximate ? snapshot.graph : undefined;
  if (graph)
    header.graph = { bytes: graph.bytes.length, keys: graph.keys, vectorsSha256: graph.vectorsSha256 };
  if (snapshot.sources.some((s) => s !== undefined)) header.sources = snapshot.sources.map((s) => s ?? null);
  if (snapshot.thumbnails.some((s) => s !== undefined))
    header.thumbnails = snapshot.thumbnails.map((s) => s ?? null);
  const json = new TextEncoder().encode(JSON.stringify(header));
  const dataStart = Math.ceil((PRELUDE + json.length) / 4) * 4;
  const bytes = new Uint8Array(dataStart + count * snapshot.dim * 4 + (graph?.bytes.length ?? 0));
  if (graph) bytes.set(graph.bytes, dataStart + count * snapshot.dim * 4);
  bytes.set(new TextEncoder().encode(INDEX_MAGIC), 0);
  const view = new DataView(bytes.buffer);
  view.setUint32(8, INDEX_FORMAT_VERSION, true);
  view.setUint32(12, json.length, true);
  bytes.set(json, PRELUDE);
  const floats = new DataView(bytes.buffer, dataStart);
  const vectors = snapshot.vectors;
  for (let i = 0; i < count * snapshot.dim; i++) floats.setFloat32(i * 4, vectors[i], true);
  return { bytes, checksummed: bytes.subarray(PRELUDE) };
}

/** Encodes an index snapshot as the bytes of one file, checksum included. */
export async function encodeIndexBytes(snapshot: IndexSnapshot, sha256: Sha256): Promise<Uint8Array> {
  const { bytes, checksummed } = layoutIndexFile(snapshot);
  bytes.set(await sha256(checksummed), 16);
  return bytes;
}

/**
 * Decodes the bytes of an index file (`name` is used in messages), verifying the magic, the
 * version and the SHA-256 (reading rules 1–4 of `docs/index-format.md`). Synchronous when
 * `sha256` is; see {@link decodeIndexBytesAsync} for an asynchronous hash.
 */
export function decodeIndexBytes(
  bytes: Uint8Array,
  name: string,
  sha256: (data: Uint8Array) => Uint8Array,
): IndexSnapshot {
  const checksummed = checkIndexPrelude(bytes, name);
  checkIndexChecksum(bytes, sha256(checksummed), name);
  return parseIndexBody(bytes, name);
}

/** {@link decodeIndexBytes} with a hash that may be asynchronous (SubtleCrypto's `digest`). */
export async function decodeIndexBytesAsync(
  bytes: Uint8Array,
  name: string,
  sha256: Sha256,
): Promise<IndexSnapshot> {
  const checksummed = checkIndexPrelude(bytes, name);
  checkIndexChecksum(bytes, await sha256(checksummed), name);
  return parseIndexBody(bytes, name);
}

function failure(name: string, why: string): ContrastiveError {
  return new ContrastiveError(`EmbeddingIndex.load: ${name} ${why}`);
}

/** Rules 1–2: the magic and the version; returns the bytes the checksum covers. */
function checkIndexPrelude(bytes: Uint8Array, name: string): Uint8Array {
  if (bytes.length < PRELUDE || new TextDecoder().decode(bytes.subarray(0, 8)) !== INDEX_MAGIC)
    throw failure(name, `is not a tfjs-contrastive index file (it does not start with ${INDEX_MAGIC}).`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = view.getUint32(8, true);
  if (version > INDEX_FORMAT_VERSION)
    throw failure(
      name,
      `was written in index format version ${version}, newer than this tfjs-contrastive reads (${INDEX_FORMAT_VERSION}); upgrade tfjs-contrastive.`,
    );
  if (version < INDEX_FORMAT_VERSION)
    throw failure(
      name,
      `was written in index format version ${version}, older than this tfjs-contrastive reads (${INDEX_FORMAT_VERSION}); rebuild it with contrastive index.`,
    );
  return bytes.subarray(PRELUDE);
}

/** Rule 3: the stored SHA-256 must be that of the contents. */
function checkIndexChecksum(bytes: Uint8Array, actual: Uint8Array, name: string): void {
  const expected = bytes.subarray(16, 48);
  if (actual.length !== 32 || !expected.every((b, i) => b === actual[i]))
    throw failure(
      name,
      'is corrupt: its SHA-256 checksum does not match its contents (truncated or modified); rebuild it.',
    );
}

/** Rule 4: the header against the file length, the tree, the item lists. */
function parseIndexBody(bytes: Uint8Array, name: string): IndexSnapshot {
  const fail = (why: string): never => {
    throw failure(name, why);
  };
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
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
  const graph = header.graph;
  if (
    graph !== undefined &&
    !(
      graph !== null &&
      Number.isInteger(graph.bytes) &&
      graph.bytes >= 0 &&
      Array.isArray(graph.keys) &&
      graph.keys.length === count &&
      typeof graph.vectorsSha256 === 'string'
    )
  )
    fail("has a bad header: graph must give its bytes, one key per item and the vectors' SHA-256.");
  const graphBytes = graph?.bytes ?? 0;
  if (bytes.length !== dataStart + count * dim * 4 + graphBytes)
    fail(`has ${bytes.length} bytes, but its header describes ${dataStart + count * dim * 4 + graphBytes}.`);
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
    unseen: Array.isArray(header.unseen) ? header.unseen : [],
    graph: graph
      ? {
          bytes: bytes.slice(dataStart + count * dim * 4),
          keys: graph.keys,
          vectorsSha256: graph.vectorsSha256,
        }
      : undefined,
  };
}
