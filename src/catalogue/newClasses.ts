import * as tf from '@tensorflow/tfjs-core';
import { ContrastiveError } from '../errors.js';
import { type LevelRetrieval, retrievalMetrics } from '../eval/retrieval.js';
import { formatLabelPath, parseLabelPath } from '../hierarchy/labelPath.js';
import { type LabelPath, LabelTree } from '../hierarchy/labelTree.js';
import type { EmbeddingIndex } from '../search/embeddingIndex.js';
import { isNodePath } from '../search/indexSchema.js';

/** {@link catalogueTree}'s result. */
export interface CatalogueTree {
  /** The run's tree, plus every node the labels add (the run's own nodes keep their ids). */
  tree: LabelTree;
  /** Nodes the run never saw in training (paths, coarsest first), parents before children. */
  unseen: string[][];
}

/**
 * The catalogue's own tree: the run's tree extended with every class of the data that the run's
 * tree does not hold (new leaves under known parents, or whole new branches), each new node
 * marked unseen in training. Paths shorter than the tree are padded by repeating their leaf (as
 * training pads them); a path deeper than the tree is an error naming it.
 */
export function catalogueTree(
  runTree: LabelTree,
  labels: Iterable<LabelPath | null | undefined>,
  where = 'catalogueTree',
): CatalogueTree {
  const depth = runTree.depth;
  const fresh = new Map<string, string[]>();
  for (const label of labels) {
    if (label === null || label === undefined) continue;
    const segments = (typeof label === 'string' ? parseLabelPath(label, runTree.separator) : [...label]).map(
      (s) => String(s).trim(),
    );
    if (segments.length === 0 || segments.some((s) => s === ''))
      throw new ContrastiveError(`${where}: label ${JSON.stringify(label)} has an empty segment.`);
    if (segments.length > depth)
      throw new ContrastiveError(
        `${where}: label ${JSON.stringify(formatLabelPath(segments, runTree.separator))} has ${segments.length} levels, but the run's tree has ${depth} (${runTree.levelNames.join(', ')}); new classes may add nodes, not levels.`,
      );
    while (segments.length < depth) segments.push(segments[segments.length - 1]);
    if (isNodePath(runTree, segments)) continue;
    fresh.set(segments.join('\u0000'), segments);
  }
  if (fresh.size === 0) return { tree: runTree, unseen: [] };
  const known = Array.from({ length: runTree.numClasses() }, (_, leaf) => runTree.path(depth - 1, leaf));
  let tree: LabelTree;
  try {
    tree = LabelTree.fromPaths([...known, ...fresh.values()], {
      levelNames: runTree.levelNames,
      separator: runTree.separator,
    });
  } catch (error) {
    throw new ContrastiveError(
      `${where}: the data's classes do not extend the run's tree: ${(error as Error).message}`,
    );
  }
  const unseen: string[][] = [];
  for (let l = 0; l < depth; l++)
    for (let id = 0; id < tree.levelSizes[l]; id++) {
      const path = tree.path(l, id);
      if (!isNodePath(runTree, path)) unseen.push(path);
    }
  unseen.sort((a, b) => a.length - b.length);
  return { tree, unseen };
}

/** Retrieval on the classes the run never saw (see {@link newClassRetrieval}). */
export interface NewClassRetrieval {
  /** The unseen leaves with items, joined with the tree's separator. */
  classes: string[];
  /** Items of those classes (the queries). */
  queries: number;
  /** Per level, coarsest first: P@1, mAP@R, ... of the queries against every other labelled item. */
  levels: (LevelRetrieval & { levelName: string })[];
}

/**
 * Retrieval on the new classes of a catalogue (its leaves marked unseen in training): every item
 * of an unseen leaf searches every other labelled item of the index (leave-one-out), relevant when
 * it shares the query's node at the level — what `eval` measures on held-out classes, here for
 * the classes the catalogue added. Null when the index has no item of an unseen leaf.
 */
export function newClassRetrieval(index: EmbeddingIndex): NewClassRetrieval | null {
  const tree = index.tree;
  const depth = tree.depth;
  const rows: number[] = [];
  for (let row = 0; row < index.size; row++) if (index.leafAt(row) >= 0) rows.push(row);
  const queryIndices: number[] = [];
  const classes = new Set<string>();
  rows.forEach((row, i) => {
    const path = tree.path(depth - 1, index.leafAt(row));
    if (index.isUnseen(path)) {
      queryIndices.push(i);
      classes.add(formatLabelPath(path, tree.separator));
    }
  });
  if (queryIndices.length === 0) return null;
  const labels = new Int32Array(rows.length * depth);
  rows.forEach((row, i) => {
    labels.set(tree.row(index.leafAt(row)), i * depth);
  });
  const vectors = new Float32Array(rows.length * index.dim);
  rows.forEach((row, i) => {
    vectors.set(index.rowVector(row), i * index.dim);
  });
  const embeddings = tf.tensor2d(vectors, [rows.length, index.dim]);
  const labelTensor = tf.tensor2d(labels, [rows.length, depth], 'int32');
  try {
    const levels = retrievalMetrics(embeddings, labelTensor, { queryIndices });
    return {
      classes: [...classes],
      queries: queryIndices.length,
      levels: levels.map((r) => ({ ...r, levelName: tree.levelNames[r.level] })),
    };
  } finally {
    embeddings.dispose();
    labelTensor.dispose();
  }
}
