import * as tf from '@tensorflow/tfjs-core';
import { segmentSumsAvailable } from '../../engine/kernels/segmentSum.js';
import type { Grouping } from './labels.js';
import { contrastLogSumExp } from './logSumExp.js';

/**
 * Who is a positive of whom, at sample level (`[N, N]`); views are handled by the caller's layout.
 * - `groups`: samples in the same group are positives (labels, or one level of a label tree);
 * - `mask`: an explicit `[N, N]` 0/1 matrix, row i = the positives of anchor i; `mask[i][i]`
 *   says whether the other views of i are positives (the SupContrast convention).
 */
export type Positives =
  | { kind: 'groups'; grouping: Grouping }
  | { kind: 'mask'; values: Float32Array; rowSums: Float32Array; diag: Float32Array };

/**
 * The part of a SupCon-family loss shared by every positive set: the anchors, and the
 * log-sum-exp over each anchor's contrast set `A(i)` (all `N*V` rows but the anchor itself).
 */
export interface Contrast {
  numSamples: number;
  numViews: number;
  /** 1 (only view 0 anchors, `contrastMode: 'one'`) or V (every row anchors). */
  anchorViews: number;
  temperature: number;
  /** `[anchorViews*N]`: `log Σ_{a ≠ i} exp(f_i·f_a / τ)` for anchor row i. */
  logDenominator: tf.Tensor1D;
  /** `[anchorViews, N, D]` anchor rows. */
  anchors: tf.Tensor3D;
  /** `[anchorViews, N]`: `f_i·f_i` of each anchor (1 when normalised). */
  anchorSelfDot: tf.Tensor2D;
  /** `[N, D]`: `Σ_v f_{v,j}`, the sum over the views of each sample. */
  viewSum: tf.Tensor2D;
}

/**
 * Builds the shared part from flat view-major features `[N*V, D]` (already normalised if the
 * loss normalises). The only `[A, N*V]` tensors are the logits and their log-sum-exp temporaries.
 */
export function buildContrast(
  flat: tf.Tensor2D,
  numSamples: number,
  numViews: number,
  anchorViews: number,
  temperature: number,
): Contrast {
  const [rows, dim] = flat.shape;
  const numAnchors = anchorViews * numSamples;
  const anchorRows = numAnchors === rows ? flat : tf.slice(flat, [0, 0], [numAnchors, dim]);
  const anchors = tf.reshape(anchorRows, [anchorViews, numSamples, dim]) as tf.Tensor3D;
  const logDenominator = contrastLogSumExp(anchorRows, flat, temperature);
  return {
    numSamples,
    numViews,
    anchorViews,
    temperature,
    logDenominator,
    anchors,
    anchorSelfDot: tf.sum(tf.square(anchors), -1),
    viewSum: tf.sum(tf.reshape(flat, [numViews, numSamples, dim]), 0),
  };
}

/** Per-anchor SupCon terms for one positive set. */
export interface AnchorTerms {
  /**
   * `[A]`: `-(1/|P(i)|) Σ_{p ∈ P(i)} log( exp(s_ip) / Σ_{a ≠ i} exp(s_ia) )`, and 0 for an anchor
   * without positives (such anchors are left out of the mean, never turned into NaN).
   */
  perAnchor: tf.Tensor1D;
  /** `|P(i)|` for each anchor, in anchor order (view-major). */
  numPositives: Float32Array;
  /** How many anchors have at least one positive: the divisor of the mean. */
  numCounted: number;
}

/**
 * Per-anchor loss `log Σ_{a≠i} exp(s_ia) - mean_{p ∈ P(i)} s_ip`. The mean positive logit is
 * `f_i · (Σ_{p ∈ P(i)} f_p) / (τ |P(i)|)`: the positive sum is a per-sample group sum of the
 * view sums, less the anchor itself, so no `[N*V, N*V]` mask is ever built.
 */
export function anchorTerms(contrast: Contrast, positives: Positives): AnchorTerms {
  const { numSamples: n, numViews: v, anchorViews, temperature } = contrast;
  const rowCount = new Float32Array(n); // positives of sample i among the N samples, self included if counted
  const selfWeight = new Float32Array(n); // 1 when i's own other views are positives
  let groupSum: tf.Tensor2D; // [N, D]: Σ_j S_ij viewSum_j
  if (positives.kind === 'groups') {
    const { ids, sizes, known } = positives.grouping;
    for (let i = 0; i < n; i++) {
      rowCount[i] = sizes[ids[i]];
      selfWeight[i] = 1;
    }
    if (known) {
      // a row that does not know this level is no anchor and nobody's positive here: its group
      // holds only rows equally unknown, and none of them counts a positive
      for (let i = 0; i < n; i++) {
        if (known[i] === 0) {
          rowCount[i] = 0;
          selfWeight[i] = 0;
        }
      }
    }
    if (sizes.length === n) {
      groupSum = contrast.viewSum; // every sample alone in its group
    } else if (segmentSumsAvailable()) {
      // per-group sums, gathered back per sample: O(N·D + G·D) memory
      const index = tf.tensor1d(ids, 'int32');
      groupSum = tf.gather(tf.unsortedSegmentSum(contrast.viewSum, index, sizes.length), index);
    } else {
      // one-hot [N, G] matmuls: differentiable on every backend, including stock wasm
      const oneHot = tf.cast(
        tf.oneHot(tf.tensor1d(ids, 'int32'), Math.max(sizes.length, 2)),
        'float32',
      ) as tf.Tensor2D;
      groupSum = tf.matMul(oneHot, tf.matMul(oneHot, contrast.viewSum, true, false));
    }
  } else {
    rowCount.set(positives.rowSums);
    selfWeight.set(positives.diag);
    groupSum = tf.matMul(tf.tensor2d(positives.values, [n, n]), contrast.viewSum);
  }
  const numAnchors = anchorViews * n;
  const numPositives = new Float32Array(numAnchors);
  const invCount = new Float32Array(numAnchors);
  const hasPositive = new Float32Array(numAnchors);
  let numCounted = 0;
  for (let a = 0; a < numAnchors; a++) {
    const i = a % n;
    const count = v * rowCount[i] - selfWeight[i];
    numPositives[a] = count;
    if (count > 0) {
      invCount[a] = 1 / (temperature * count);
      hasPositive[a] = 1;
      numCounted++;
    }
  }
  const shape: [number, number] = [anchorViews, n];
  // Σ_p f_i·f_p = f_i·groupSum_i - selfWeight_i·(f_i·f_i), shape [anchorViews, N]
  const positiveDot = tf.sub(
    tf.sum(tf.mul(contrast.anchors, groupSum), -1),
    tf.mul(contrast.anchorSelfDot, tf.tensor1d(selfWeight)),
  );
  const perAnchor = tf.sub(
    tf.mul(tf.reshape(contrast.logDenominator, shape), tf.tensor2d(hasPositive, shape)),
    tf.mul(positiveDot, tf.tensor2d(invCount, shape)),
  );
  return { perAnchor: tf.reshape(perAnchor, [numAnchors]), numPositives, numCounted };
}

/** Mean of the per-anchor terms over the anchors that have a positive (0 when none has). */
export function meanOverCounted(terms: AnchorTerms): tf.Scalar {
  return tf.div(tf.sum(terms.perAnchor), Math.max(terms.numCounted, 1));
}
