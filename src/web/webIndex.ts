/// <reference lib="dom" />
import { ContrastiveError } from '../errors.js';
import { EmbeddingIndex } from '../search/embeddingIndex.js';
import { decodeIndexBytesAsync } from '../search/indexFormat.js';
import { sha256Async } from './sha256.js';
import { fetchBytes } from './webModel.js';

/** Options of {@link loadWebIndex}. */
export interface LoadWebIndexOptions {
  /** Named in messages. Default: the URL, or `'the index'`. */
  name?: string;
}

/**
 * Loads an index file written by `EmbeddingIndex.save` / `contrastive index` (the same bytes,
 * see `docs/index-format.md`) in the browser: its bytes, or a URL to fetch. The SHA-256 is
 * verified (SubtleCrypto, or a JS hash outside secure contexts) and a newer, older or corrupt
 * file is a {@link ContrastiveError} naming it. Search is exact in the browser: an index saved
 * with an HNSW graph is searched exactly (same results as Node's `--exact`).
 */
export async function loadWebIndex(
  source: ArrayBuffer | Uint8Array | string | URL,
  options: LoadWebIndexOptions = {},
): Promise<EmbeddingIndex> {
  let bytes: Uint8Array;
  let name = options.name;
  if (typeof source === 'string' || source instanceof URL) {
    name ??= String(source);
    bytes = await fetchBytes(new URL(source, globalThis.location?.href), 'loadWebIndex');
  } else if (source instanceof Uint8Array) bytes = source;
  else if (source instanceof ArrayBuffer) bytes = new Uint8Array(source);
  else
    throw new ContrastiveError(
      `loadWebIndex: source must be an ArrayBuffer, a Uint8Array or a URL, but got ${typeof source}.`,
    );
  const snapshot = await decodeIndexBytesAsync(bytes, name ?? 'the index', sha256Async);
  return EmbeddingIndex.fromSnapshot({ ...snapshot, approximate: null }, name ?? 'the index', 'loadWebIndex');
}
