import * as tf from '@tensorflow/tfjs-core';
import { check, shapeString } from '../errors.js';
import { checkTensor, l2NormalizeRows } from '../losses/parts/features.js';

/** Options of {@link forEachSimilarityRow}. */
export interface SimilarityOptions {
  /** Queries per block: memory is `blockSize × M` floats. Default 512. */
  blockSize?: number;
  /** The queries are the database rows themselves (leave-one-out): row i never sees item i. */
  excludeSelf?: boolean;
}

/**
 * Cosine similarity of every query to every database row, one block of queries at a time, so
 * 70k × 70k never holds more than `blockSize × M` floats. `visit(q, row)` receives query index q
 * and its similarities to all M database rows (self set to -Infinity with `excludeSelf`); `row`
 * is reused between calls, copy it to keep it.
 */
export function forEachSimilarityRow(
  queries: tf.Tensor2D,
  database: tf.Tensor2D,
  visit: (query: number, row: Float32Array) => void,
  options: SimilarityOptions = {},
): void {
  const fn = 'forEachSimilarityRow';
  checkTensor(fn, 'queries', queries);
  checkTensor(fn, 'database', database);
  check(
    queries.rank === 2 && database.rank === 2 && queries.shape[1] === database.shape[1],
    () =>
      `${fn}: queries [Q, D] and database [M, D] must share D, but got ${shapeString(queries.shape)} and ${shapeString(database.shape)}.`,
  );
  const blockSize = options.blockSize ?? 512;
  const [numQueries, dim] = queries.shape;
  const m = database.shape[0];
  // transposed once, so every block is a plain [b, D] x [D, M] product
  const databaseT = tf.tidy(() => tf.transpose(l2NormalizeRows(database)));
  const normalized = l2NormalizeRows(queries);
  try {
    for (let start = 0; start < numQueries; start += blockSize) {
      const size = Math.min(blockSize, numQueries - start);
      const block = tf.tidy(() => tf.matMul(tf.slice(normalized, [start, 0], [size, dim]), databaseT));
      const sims = block.dataSync() as Float32Array;
      block.dispose();
      for (let r = 0; r < size; r++) {
        const q = start + r;
        const row = sims.subarray(r * m, (r + 1) * m);
        if (options.excludeSelf) row[q] = Number.NEGATIVE_INFINITY;
        visit(q, row);
      }
    }
  } finally {
    databaseT.dispose();
    normalized.dispose();
  }
}

/** {@link nearestNeighbors}'s result: `[Q, k]` row-major. */
export interface Neighbors {
  k: number;
  indices: Int32Array;
  similarities: Float32Array;
}

/**
 * Exact k nearest database rows of each query by cosine similarity, most similar first.
 *
 * @example
 * ```ts
 * const { indices } = nearestNeighbors(testEmbeddings, trainEmbeddings, 10);
 * ```
 */
export function nearestNeighbors(
  queries: tf.Tensor2D,
  database: tf.Tensor2D,
  k: number,
  options: SimilarityOptions = {},
): Neighbors {
  const m = database.shape[0] - (options.excludeSelf ? 1 : 0);
  check(Number.isInteger(k) && k >= 1, () => `nearestNeighbors: k must be an integer >= 1, but got ${k}.`);
  const kk = Math.min(k, m);
  const numQueries = queries.shape[0];
  const indices = new Int32Array(numQueries * kk);
  const similarities = new Float32Array(numQueries * kk);
  const heapIdx = new Int32Array(kk);
  const heapSim = new Float32Array(kk);
  forEachSimilarityRow(
    queries,
    database,
    (q, row) => {
      topK(row, kk, heapIdx, heapSim);
      indices.set(heapIdx, q * kk);
      similarities.set(heapSim, q * kk);
    },
    options,
  );
  return { k: kk, indices, similarities };
}

/**
 * The k largest entries of `row`, sorted descending, into `outIdx` / `outSim` (ties: lower index
 * first). A bounded min-heap: O(M log k).
 */
export function topK(row: Float32Array, k: number, outIdx: Int32Array, outSim: Float32Array): void {
  let size = 0;
  // heap ordered so that the root is the *worst* kept entry (smallest sim, then largest index)
  const worse = (a: number, b: number) =>
    outSim[a] < outSim[b] || (outSim[a] === outSim[b] && outIdx[a] > outIdx[b]);
  const swap = (a: number, b: number) => {
    const ti = outIdx[a];
    outIdx[a] = outIdx[b];
    outIdx[b] = ti;
    const ts = outSim[a];
    outSim[a] = outSim[b];
    outSim[b] = ts;
  };
  const siftDown = (i: number, n: number) => {
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let w = i;
      if (l < n && worse(l, w)) w = l;
      if (r < n && worse(r, w)) w = r;
      if (w === i) return;
      swap(i, w);
      i = w;
    }
  };
  for (let j = 0; j < row.length; j++) {
    const s = row[j];
    if (s === Number.NEGATIVE_INFINITY) continue;
    if (size < k) {
      outIdx[size] = j;
      outSim[size] = s;
      let i = size++;
      while (i > 0) {
        const p = (i - 1) >> 1;
        if (!worse(i, p)) break;
        swap(i, p);
        i = p;
      }
    } else if (s > outSim[0]) {
      outIdx[0] = j;
      outSim[0] = s;
      siftDown(0, size);
    }
  }
  // heap sort: repeatedly move the worst to the end -> descending order
  for (let n = size - 1; n > 0; n--) {
    swap(0, n);
    siftDown(0, n);
  }
}
