import type * as tf from '@tensorflow/tfjs-core';
import { check } from '../errors.js';
import type { LabelsLike } from '../losses/parts/labels.js';
import { Rng } from '../random.js';
import { sharedLevelIds } from './labels.js';
import { forEachSimilarityRow } from './neighbors.js';

/** Options of {@link hierarchyConsistency}. */
export interface ConsistencyOptions {
  /** Anchors evaluated (a seeded random subset when the set is larger). Default 2000. */
  maxAnchors?: number;
  /** Seed of the anchor subset. Default 0. */
  seed?: number;
  blockSize?: number;
}

/** {@link hierarchyConsistency}'s result. */
export interface HierarchyConsistency {
  /** Share of all counted triples ordered wrong. */
  violationRate: number;
  /**
   * `byLevel[l]`: triples (anchor, a positive at level l+1, an item that shares only the level-l
   * prefix) where the farther item is *more* similar to the anchor than the closer one.
   */
  byLevel: { level: number; violationRate: number; triples: number }[];
  anchors: number;
}

/**
 * How often the embedding orders a pair against the tree — what HiConE forbids: for an anchor,
 * an item sharing a longer label prefix should be more similar than one sharing a shorter prefix.
 * Counts every (anchor, closer, farther) triple exactly, by sorting similarities, for adjacent levels.
 *
 * @param embeddings `[N, D]`; `labels` `[N, L]` with L ≥ 2, coarsest first.
 */
export function hierarchyConsistency(
  embeddings: tf.Tensor2D,
  labels: LabelsLike,
  options: ConsistencyOptions = {},
): HierarchyConsistency {
  const fn = 'hierarchyConsistency';
  const ids = sharedLevelIds(fn, labels);
  const numLevels = ids.numLevels;
  check(numLevels >= 2, () => `${fn}: labels must have at least 2 levels [N, L], but got ${numLevels}.`);
  const n = embeddings.shape[0];
  check(
    ids.queryLabels.rows === n,
    () => `${fn}: labels must have ${n} rows, but got ${ids.queryLabels.rows}.`,
  );
  const maxAnchors = options.maxAnchors ?? 2000;
  const chosen = new Uint8Array(n);
  const order = n > maxAnchors ? new Rng(options.seed ?? 0).permutation(n).subarray(0, maxAnchors) : null;
  if (order) for (const i of order) chosen[i] = 1;
  else chosen.fill(1);

  const wrong = new Float64Array(numLevels - 1);
  const triples = new Float64Array(numLevels - 1);
  const near = new Float32Array(n);
  const far = new Float32Array(n);
  let anchors = 0;
  forEachSimilarityRow(
    embeddings,
    embeddings,
    (i, row) => {
      if (!chosen[i]) return;
      anchors++;
      for (let l = 0; l + 1 < numLevels; l++) {
        // near: share prefix 0..l+1 (i excluded); far: share 0..l but not l+1
        const fine = ids.queryIds[l + 1];
        const fineKnown = ids.queryKnown[l + 1];
        if (fineKnown && fineKnown[i] === 0) continue; // the anchor does not know level l+1
        let nn = 0;
        let nf = 0;
        for (const j of ids.members[l][ids.queryIds[l][i]]) {
          if (j === i || (fineKnown && fineKnown[j] === 0)) continue; // partial label: unknown at l+1
          if (fine[j] === fine[i]) near[nn++] = row[j];
          else far[nf++] = row[j];
        }
        if (nn === 0 || nf === 0) continue;
        const sortedNear = near.subarray(0, nn).sort();
        const sortedFar = far.subarray(0, nf).sort();
        // count pairs with far > near: walk both ascending
        let p = 0;
        let count = 0;
        for (let f = 0; f < nf; f++) {
          while (p < nn && sortedNear[p] < sortedFar[f]) p++;
          count += p;
        }
        wrong[l] += count;
        triples[l] += nn * nf;
      }
    },
    { blockSize: options.blockSize },
  );
  const totalWrong = wrong.reduce((a, b) => a + b, 0);
  const totalTriples = triples.reduce((a, b) => a + b, 0);
  return {
    violationRate: totalTriples > 0 ? totalWrong / totalTriples : 0,
    byLevel: Array.from(wrong, (w, level) => ({
      level,
      violationRate: triples[level] > 0 ? w / triples[level] : 0,
      triples: triples[level],
    })),
    anchors,
  };
}
