import type * as tf from '@tensorflow/tfjs-core';
import { check } from '../errors.js';
import type { LabelsLike } from '../losses/parts/labels.js';
import { checkSameWidth } from './knn.js';
import { sharedLevelIds } from './labels.js';
import { forEachSimilarityRow, type SimilarityOptions } from './neighbors.js';

/** Options of {@link retrievalMetrics}. */
export interface RetrievalOptions extends Pick<SimilarityOptions, 'blockSize'> {
  /** K values of Recall@K. Default `[1, 5, 10]`. */
  recallAt?: readonly number[];
  /** Evaluate only these queries (e.g. the samples of held-out fine classes). Default: all. */
  queryIndices?: ArrayLike<number>;
  /**
   * Retrieve from this database instead of the queries themselves. Without it the protocol is
   * leave-one-out: each query searches every *other* query row (pytorch-metric-learning's
   * `AccuracyCalculator` with the query set as reference).
   */
  database?: { embeddings: tf.Tensor2D; labels: LabelsLike };
}

/** Retrieval quality at one level of the hierarchy: an item is relevant if it shares the level's prefix. */
export interface LevelRetrieval {
  /** 0 = coarsest. */
  level: number;
  /** Share of queries whose nearest item is relevant. */
  precisionAt1: number;
  /** `recallAt[K]`: share of queries with a relevant item among the K nearest. */
  recallAt: Record<number, number>;
  /** Mean over queries of (relevant items among the R nearest) / R, R = number of relevant items. */
  rPrecision: number;
  /** Mean average precision at R (Musgrave et al. 2020; pytorch-metric-learning's `mean_average_precision_at_r`). */
  mapAtR: number;
  /**
   * Queries with at least one relevant item (the others are left out, as in PML); with partial
   * labels, only queries that know this level (and only database items that know it are relevant).
   */
  numQueries: number;
}

/**
 * Precision@1, Recall@K, R-precision and mAP@R at every hierarchy level, by exact cosine search.
 * Ties are broken pessimistically (an item tied with an irrelevant one ranks after it), so a
 * collapsed embedding scores low rather than perfectly.
 *
 * @param embeddings `[Q, D]` query embeddings.
 * @param labels `[Q]` or `[Q, L]` label rows, coarsest first; -1 below a row's known prefix (a
 *   partial label): such a row is skipped as a query at the levels it does not know and is never
 *   relevant there.
 */
export function retrievalMetrics(
  embeddings: tf.Tensor2D,
  labels: LabelsLike,
  options: RetrievalOptions = {},
): LevelRetrieval[] {
  const fn = 'retrievalMetrics';
  const ks = options.recallAt ?? [1, 5, 10];
  const ids = sharedLevelIds(fn, labels, options.database?.labels);
  const database = options.database?.embeddings ?? embeddings;
  if (options.database) checkSameWidth(fn, embeddings, database);
  check(
    ids.queryLabels.rows === embeddings.shape[0] && ids.databaseLabels.rows === database.shape[0],
    () =>
      `${fn}: labels must have one row per embedding (${embeddings.shape[0]} queries, ${database.shape[0]} database), but got ${ids.queryLabels.rows} and ${ids.databaseLabels.rows}.`,
  );
  const leaveOneOut = options.database === undefined;
  const wanted = options.queryIndices ? new Set(Array.from(options.queryIndices)) : null;
  const m = database.shape[0];
  const levels = Array.from({ length: ids.numLevels }, () => ({
    p1: 0,
    recall: ks.map(() => 0),
    rPrecision: 0,
    map: 0,
    n: 0,
  }));
  const allSorted = new Float32Array(m);
  const levelSorted = new Float32Array(m); // reused: the ranking among database items known at a level
  const relevant = new Float32Array(m);
  forEachSimilarityRow(
    embeddings,
    database,
    (q, row) => {
      if (wanted && !wanted.has(q)) return;
      allSorted.set(row);
      allSorted.sort(); // ascending; the excluded self (-Infinity) comes first
      for (let l = 0; l < ids.numLevels; l++) {
        const known = ids.queryKnown[l];
        if (known && known[q] === 0) continue; // the query does not know this level
        // partial labels: items that do not know the level are left out of its ranking
        const dbKnown = ids.databaseKnown[l];
        let sorted = allSorted;
        let m = allSorted.length;
        if (dbKnown) {
          m = 0;
          for (let j = 0; j < dbKnown.length; j++) if (dbKnown[j] === 1) levelSorted[m++] = row[j];
          sorted = levelSorted.subarray(0, m).sort();
        }
        const start = leaveOneOut ? 1 : 0; // the query itself (-Infinity) when it is in the database
        const group = ids.members[l][ids.queryIds[l][q]];
        let r = 0;
        for (const j of group) if (!(leaveOneOut && j === q)) relevant[r++] = row[j];
        if (r === 0) continue;
        const rel = relevant.subarray(0, r).sort();
        // walk relevant sims from the largest; rank = number of items with sim >= s (pessimistic)
        let pointer = m; // sorted[pointer..m) are >= current s
        let hitsWithinR = 0;
        let ap = 0;
        let firstRank = 0;
        for (let k = 1; k <= r; k++) {
          const s = rel[r - k];
          while (pointer > start && sorted[pointer - 1] >= s) pointer--;
          const rank = m - pointer;
          if (k === 1) firstRank = rank;
          if (rank <= r) {
            hitsWithinR++;
            ap += k / rank;
          }
        }
        const acc = levels[l];
        acc.n++;
        if (firstRank === 1) acc.p1++;
        ks.forEach((kk, i) => {
          if (firstRank <= kk) acc.recall[i]++;
        });
        acc.rPrecision += hitsWithinR / r;
        acc.map += ap / r;
      }
    },
    { blockSize: options.blockSize, excludeSelf: leaveOneOut },
  );
  return levels.map((acc, level) => {
    const mean = (x: number) => (acc.n > 0 ? x / acc.n : 0);
    return {
      level,
      precisionAt1: mean(acc.p1),
      recallAt: Object.fromEntries(ks.map((k, i) => [k, mean(acc.recall[i])])),
      rPrecision: mean(acc.rPrecision),
      mapAtR: mean(acc.map),
      numQueries: acc.n,
    };
  });
}
