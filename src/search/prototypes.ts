import type { LabelTree } from '../hierarchy/labelTree.js';

/** {@link nodePrototypes}'s result. */
export interface NodePrototypes {
  /** `[numNodes, dim]` L2-normalised mean embeddings (a node without items: a zero row). */
  vectors: Float32Array;
  /** Items behind each node. */
  counts: Int32Array;
  /** `[numNodes, dim]` unnormalised sums (so a caller can leave one item out of its own prototype). */
  sums: Float32Array;
}

/** The ancestor at `level` of a leaf. */
export function leafAncestor(tree: LabelTree, leaf: number, level: number): number {
  let id = leaf;
  for (let l = tree.depth - 1; l > level; l--) id = tree.parent(l, id);
  return id;
}

/**
 * Mean embedding of every node of `level` over `count` rows of `[count, dim]` unit vectors with
 * their leaf ids (`-1`: unlabelled, counted nowhere).
 */
export function nodePrototypes(
  tree: LabelTree,
  level: number,
  vectors: Float32Array,
  leaves: ArrayLike<number>,
  count: number,
  dim: number,
): NodePrototypes {
  const numNodes = tree.levelSizes[level];
  const sums = new Float32Array(numNodes * dim);
  const counts = new Int32Array(numNodes);
  for (let row = 0; row < count; row++) {
    const leaf = leaves[row];
    if (leaf < 0) continue;
    const node = leafAncestor(tree, leaf, level);
    counts[node]++;
    for (let j = 0; j < dim; j++) sums[node * dim + j] += vectors[row * dim + j];
  }
  const out = sums.slice();
  for (let node = 0; node < numNodes; node++) {
    let norm = 0;
    for (let j = 0; j < dim; j++) norm += out[node * dim + j] ** 2;
    if (norm > 0) for (let j = 0; j < dim; j++) out[node * dim + j] /= Math.sqrt(norm);
  }
  return { vectors: out, counts, sums };
}
