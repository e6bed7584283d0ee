import * as tf from '@tensorflow/tfjs-core';
import { check, checkPositive } from '../errors.js';
import type { LabelMatrix, LabelsLike } from '../losses/parts/labels.js';
import { sharedLevelIds, sharedPrefixLength } from './labels.js';
import { nearestNeighbors } from './neighbors.js';

/** Options of {@link knnClassify}. */
export interface KnnOptions {
  /** Neighbours that vote. Default 200 (InstDisc / MoCo protocol). */
  k?: number;
  /** Vote weight `exp(cos / temperature)`. Default 0.07. */
  temperature?: number;
  /** The level whose classes are predicted (0 = coarsest). Default: the finest. */
  level?: number;
  /** Queries per similarity block. Default 512. */
  blockSize?: number;
}

/** {@link knnClassify}'s result. */
export interface KnnResult {
  /** Predicted label row of each query (`[Q, L]` row-major, the path of the winning class). */
  predicted: LabelMatrix;
  /**
   * Accuracy at every level: the predicted path's prefix equals the true one (levels up to
   * `level`), over the queries that know the level (partial labels: -1 below a known prefix).
   */
  accuracyByLevel: number[];
  /** Accuracy at the predicted level: the usual kNN top-1 accuracy. */
  accuracy: number;
}

/**
 * Weighted k-nearest-neighbour classification on frozen embeddings, the protocol of Wu et al.
 * (InstDisc) used by MoCo: the k most cosine-similar training items vote for their class with
 * weight `exp(sim / τ)`; the class with the largest total wins.
 *
 * @param queries `[Q, D]` test embeddings; `queryLabels` their true label rows.
 * @param database `[M, D]` training embeddings; `databaseLabels` their label rows. With partial
 *   labels only database rows that know `level` vote, and each level's accuracy counts only the
 *   queries that know it.
 */
export function knnClassify(
  queries: tf.Tensor2D,
  queryLabels: LabelsLike,
  database: tf.Tensor2D,
  databaseLabels: LabelsLike,
  options: KnnOptions = {},
): KnnResult {
  const fn = 'knnClassify';
  const k = options.k ?? 200;
  const temperature = options.temperature ?? 0.07;
  checkPositive(fn, 'temperature', temperature);
  check(Number.isInteger(k) && k >= 1, () => `${fn}: k must be an integer >= 1, but got ${k}.`);
  checkSameWidth(fn, queries, database);
  const ids = sharedLevelIds(fn, queryLabels, databaseLabels);
  const level = options.level ?? ids.numLevels - 1;
  check(
    Number.isInteger(level) && level >= 0 && level < ids.numLevels,
    () => `${fn}: level must be in [0, ${ids.numLevels - 1}], but got ${level}.`,
  );
  check(
    ids.queryLabels.rows === queries.shape[0] && ids.databaseLabels.rows === database.shape[0],
    () =>
      `${fn}: labels must have one row per embedding (${queries.shape[0]} queries, ${database.shape[0]} database), but got ${ids.queryLabels.rows} and ${ids.databaseLabels.rows}.`,
  );
  // partial labels: only database rows that know the predicted level vote
  const voters = ids.databaseKnown[level];
  const voterRows = voters ? Int32Array.from(knownIndices(voters)) : null;
  check(
    voterRows === null || voterRows.length > 0,
    () => `${fn}: no database row knows level ${level}, so none can vote for a class there.`,
  );
  const voterEmbeddings = voterRows ? tf.gather(database, voterRows) : database;
  const neighbors = nearestNeighbors(queries, voterEmbeddings, k, { blockSize: options.blockSize });
  if (voterRows) {
    voterEmbeddings.dispose();
    for (let r = 0; r < neighbors.indices.length; r++) neighbors.indices[r] = voterRows[neighbors.indices[r]];
  }
  const classOf = ids.databaseIds[level];
  const numQ = queries.shape[0];
  const cols = ids.queryLabels.cols;
  const predicted: LabelMatrix = { values: new Int32Array(numQ * cols), rows: numQ, cols };
  const score = new Map<number, number>();
  const firstRow = new Map<number, number>(); // a database row of each class, to read its path
  for (let q = 0; q < numQ; q++) {
    score.clear();
    for (let r = 0; r < neighbors.k; r++) {
      const j = neighbors.indices[q * neighbors.k + r];
      const c = classOf[j];
      score.set(
        c,
        (score.get(c) ?? 0) + Math.exp((neighbors.similarities[q * neighbors.k + r] - 1) / temperature),
      );
      if (!firstRow.has(c)) firstRow.set(c, j);
    }
    let best = -1;
    let bestScore = -1;
    for (const [c, s] of score) {
      if (s > bestScore || (s === bestScore && c < best)) {
        best = c;
        bestScore = s;
      }
    }
    const row = firstRow.get(best)!;
    // the winning class's path; columns finer than `level` are not predicted, copy the class's first row
    predicted.values.set(ids.databaseLabels.values.subarray(row * cols, (row + 1) * cols), q * cols);
  }
  const accuracyByLevel = Array.from({ length: level + 1 }, (_, l) => {
    const known = ids.queryKnown[l];
    let hits = 0;
    let counted = 0;
    for (let q = 0; q < numQ; q++) {
      if (known && known[q] === 0) continue; // the query does not know this level
      counted++;
      if (sharedPrefixLength(predicted, q, ids.queryLabels, q) > l) hits++;
    }
    return counted > 0 ? hits / counted : 0;
  });
  return { predicted, accuracyByLevel, accuracy: accuracyByLevel[level] };
}

function knownIndices(known: Uint8Array): number[] {
  const out: number[] = [];
  known.forEach((k, i) => {
    if (k === 1) out.push(i);
  });
  return out;
}

/**
 * Refuses, naming the calling function, queries and a database that are not both `[n, D]` with
 * the same D (embeddings of two different models, or a transposed matrix).
 */
export function checkSameWidth(fn: string, queries: tf.Tensor, database: tf.Tensor): void {
  check(
    queries instanceof tf.Tensor &&
      queries.rank === 2 &&
      database instanceof tf.Tensor &&
      database.rank === 2,
    () =>
      `${fn}: queries and database must be 2-D [n, D] tensors, but got ${describe(queries)} and ${describe(database)}.`,
  );
  check(
    queries.shape[1] === database.shape[1],
    () =>
      `${fn}: queries [${queries.shape}] and database [${database.shape}] must have the same embedding size D, but got ${queries.shape[1]} and ${database.shape[1]} (embeddings of different models?).`,
  );
}

function describe(x: unknown): string {
  return x instanceof tf.Tensor ? `shape [${x.shape}]` : typeof x;
}
