import { ContrastiveError } from '../errors.js';
import type { LabelTree } from '../hierarchy/labelTree.js';
import type { HnswOptions } from './hnsw.js';

/**
 * Which output of the trained model an index holds: the backbone's (what the papers evaluate, and
 * the default) or the projection head's (the space the loss was computed in).
 */
export type EmbeddingSpace = 'backbone' | 'head';

/** The model that made an index's vectors, so queries are embedded the same way. */
export interface ModelIdentity {
  /** SHA-256 (hex) of the model's files (topology and weights; with the head's for `'head'`). */
  checksum: string;
  /** Where the model was loaded from (a run folder), for messages. */
  source: string;
}

/** Everything the file format stores (see `docs/index-format.md`). */
export interface IndexSnapshot {
  dim: number;
  space: EmbeddingSpace;
  model: ModelIdentity | null;
  tree: LabelTree;
  ids: string[];
  /** Leaf id per item, `-1` when unlabelled. */
  leaves: Int32Array;
  sources: (string | undefined)[];
  thumbnails: (string | undefined)[];
  /** `[N, dim]` L2-normalised rows. */
  vectors: Float32Array;
  /** HNSW settings when the index searches approximately, else null. */
  approximate: Required<HnswOptions> | null;
  /**
   * Nodes of `tree` (paths, coarsest first) that the model never saw in training: the catalogue's
   * own classes beyond the run's tree. Absent or empty when the tree is the run's.
   */
  unseen?: string[][];
  /**
   * The HNSW graph as usearch saved it, with the item key of every row and the SHA-256 (hex) of
   * the vectors it was built on; absent when the index is exact or the file holds no graph.
   */
  graph?: { bytes: Uint8Array; keys: number[]; vectorsSha256: string };
}

/**
 * Checks what a snapshot holds before an index is made of it (a file whose checksum is valid can
 * still hold bad rows when it was written by something else): unique ids, leaves of the tree, and
 * finite, non-zero vectors. Errors are one line naming `name` (the file) and the row.
 */
export function checkSnapshot(snapshot: IndexSnapshot, name: string, where = 'EmbeddingIndex.load'): void {
  const { dim, ids, leaves, vectors, tree } = snapshot;
  for (const path of snapshot.unseen ?? []) {
    if (!isNodePath(tree, path))
      throw new ContrastiveError(
        `${where}: ${name} marks ${JSON.stringify(path)} as unseen in training, but it is not a node of its tree.`,
      );
  }
  const n = ids.length;
  const seen = new Set<string>();
  const numLeaves = tree.numClasses();
  for (let row = 0; row < n; row++) {
    const id = ids[row];
    if (typeof id !== 'string' || id === '')
      throw new ContrastiveError(
        `${where}: ${name} row ${row} has id ${JSON.stringify(id)}, not a non-empty string.`,
      );
    if (seen.has(id))
      throw new ContrastiveError(`${where}: ${name} holds id ${JSON.stringify(id)} twice (row ${row}).`);
    seen.add(id);
    const leaf = leaves[row];
    if (!(Number.isInteger(leaf) && leaf >= -1 && leaf < numLeaves))
      throw new ContrastiveError(
        `${where}: ${name} row ${row} (item ${JSON.stringify(id)}) has leaf ${leaf}, not a leaf of its tree.`,
      );
    let norm = 0;
    for (let j = 0; j < dim; j++) {
      const v = vectors[row * dim + j];
      if (!Number.isFinite(v))
        throw new ContrastiveError(
          `${where}: ${name} row ${row} (item ${JSON.stringify(id)}) holds ${v} at column ${j}: an index must hold finite vectors; rebuild it from the model.`,
        );
      norm += v * v;
    }
    if (!(norm > 0))
      throw new ContrastiveError(
        `${where}: ${name} row ${row} (item ${JSON.stringify(id)}) is all zeros: an index must hold unit vectors; rebuild it from the model.`,
      );
  }
}

/** Whether `path` (segments, coarsest first) names a node of `tree`. */
export function isNodePath(tree: LabelTree, path: readonly string[]): boolean {
  if (!Array.isArray(path) || path.length === 0 || path.length > tree.depth) return false;
  let parent = -1;
  for (let l = 0; l < path.length; l++) {
    const names = tree.classes(l);
    let found = -1;
    for (let id = 0; id < names.length && found < 0; id++)
      if (names[id] === path[l] && (l === 0 || tree.parent(l, id) === parent)) found = id;
    if (found < 0) return false;
    parent = found;
  }
  return true;
}
