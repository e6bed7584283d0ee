import * as tf from '@tensorflow/tfjs-core';
import { check, checkPositive, shapeString } from '../errors.js';
import {
  type AnchorTerms,
  anchorTerms,
  buildContrast,
  meanOverCounted,
  type Positives,
} from './parts/contrast.js';
import { checkFinite, flattenFeatures, l2NormalizeRows } from './parts/features.js';
import { type LabelsLike, prefixGroupings, readLabelMatrix, singletonGrouping } from './parts/labels.js';
import { tidyObject } from './parts/tidy.js';

/** Options of {@link supConLoss}. */
export interface SupConOptions {
  /** τ in `s_ia = f_i·f_a / τ`. Default 0.07 (SupContrast). */
  temperature?: number;
  /** The loss is multiplied by `temperature / baseTemperature`. Default 0.07 (SupContrast). */
  baseTemperature?: number;
  /** `'all'`: every one of the N*V rows is an anchor (default); `'one'`: only view 0 of each sample. */
  contrastMode?: 'all' | 'one';
  /** L2-normalise rows inside the loss (default true); the gradient flows through it. */
  normalize?: boolean;
  /** Throw a clear error when the features hold NaN or ±Infinity (default true; costs one scalar read). */
  checkFinite?: boolean;
}

/** {@link supConLossDetails}'s result. */
export interface SupConDetails {
  /** The scalar loss, as {@link supConLoss} returns it. */
  loss: tf.Scalar;
  /** `[A]` per-anchor loss (scaled), 0 for anchors without positive; anchors in view-major order. */
  perAnchorLoss: tf.Tensor1D;
  /** `|P(i)|` per anchor. */
  numPositives: Float32Array;
  /** Anchors with at least one positive: the divisor of the mean. 0 means the loss is 0. */
  numAnchorsCounted: number;
}

/**
 * Supervised contrastive loss (Khosla et al. 2020, `L^sup`), exactly as the SupContrast
 * `SupConLoss`, except that anchors without positives are left out of the mean instead of
 * producing NaN:
 *
 * `L = -(τ/τ_base) · mean_{i ∈ I, |P(i)|>0} (1/|P(i)|) Σ_{p ∈ P(i)} log( exp(s_ip) / Σ_{a ≠ i} exp(s_ia) )`
 *
 * The denominator runs over all `N*V` rows but the anchor itself.
 *
 * @param features `[N, V, D]`, or flat `[N*V, D]` view-major (row `v*N + i` is view v of sample i).
 * SupCon needs a class for every row: labels with -1 (partial label paths) are an error; take
 * the finest level every row knows with `finestCommonLevel(labelRows)` (which says when there
 * is none) and pass its `labels`.
 *
 * @param labelsOrMask `[N]` integer class labels, or an `[N, N]` 0/1 positive mask (row i = the
 *   positives of anchor i; may be asymmetric), or `null` for SimCLR (only the other views).
 * @example
 * ```ts
 * const loss = supConLoss(model.apply(views) as tf.Tensor3D, labels, { temperature: 0.1 });
 * ```
 */
export function supConLoss(
  features: tf.Tensor,
  labelsOrMask: LabelsLike | null,
  options: SupConOptions = {},
): tf.Scalar {
  return tf.tidy(() => supConLossDetails(features, labelsOrMask, options).loss);
}

/** {@link supConLoss} with the per-anchor terms and positive counts, for logging and diagnostics. */
export function supConLossDetails(
  features: tf.Tensor,
  labelsOrMask: LabelsLike | null,
  options: SupConOptions = {},
): SupConDetails {
  const fn = 'supConLoss';
  const temperature = options.temperature ?? 0.07;
  const baseTemperature = options.baseTemperature ?? 0.07;
  const contrastMode = options.contrastMode ?? 'all';
  checkPositive(fn, 'temperature', temperature);
  checkPositive(fn, 'baseTemperature', baseTemperature);
  check(
    contrastMode === 'all' || contrastMode === 'one',
    () => `${fn}: contrastMode must be 'all' or 'one', but got ${String(contrastMode)}.`,
  );
  const positives = readPositives(fn, labelsOrMask, features);
  return tidyObject(() => {
    const numSamples = positives.kind === 'groups' ? positives.grouping.ids.length : positives.diag.length;
    const batch = flattenFeatures(fn, 'features', features, { numSamples });
    if (options.checkFinite ?? true) checkFinite(fn, 'features', features);
    const normalize = options.normalize ?? true;
    const flat = normalize ? l2NormalizeRows(batch.flat) : batch.flat;
    const anchorViews = contrastMode === 'all' ? batch.numViews : 1;
    if (!normalize) {
      // raw features so large that f_i·f_a / τ overflows float32 (e.g. 1e38): factor the scale out
      const largest = tf.max(tf.abs(flat)).dataSync()[0];
      const [, dim] = flat.shape;
      if (Number.isFinite(largest) && (largest * largest * dim) / temperature > OVERFLOW_LOGIT) {
        const terms = scaledAnchorTerms(
          flat,
          largest,
          batch.numSamples,
          batch.numViews,
          anchorViews,
          temperature,
          positives,
        );
        const scale = temperature / baseTemperature;
        return {
          loss: tf.mul(meanOverCounted(terms), scale) as tf.Scalar,
          perAnchorLoss: tf.mul(terms.perAnchor, scale) as tf.Tensor1D,
          numPositives: terms.numPositives,
          numAnchorsCounted: terms.numCounted,
        };
      }
    }
    const contrast = buildContrast(flat, batch.numSamples, batch.numViews, anchorViews, temperature);
    const terms: AnchorTerms = anchorTerms(contrast, positives);
    const scale = temperature / baseTemperature;
    return {
      loss: tf.mul(meanOverCounted(terms), scale) as tf.Scalar,
      perAnchorLoss: tf.mul(terms.perAnchor, scale) as tf.Tensor1D,
      numPositives: terms.numPositives,
      numAnchorsCounted: terms.numCounted,
    };
  });
}

/** Beyond this a logit (or a sum of a few exp-shifted ones) risks float32 overflow. */
const OVERFLOW_LOGIT = 1e30;

/**
 * The SupCon terms with the features' scale `c` factored out, for raw features whose logits
 * would overflow float32: with `g = f / c`, `u_ia = g_i·g_a` and `K = c²/τ` (possibly beyond
 * float32, i.e. Infinity), the anchor's term `log Σ_{a≠i} exp(s_ia) - mean_p s_ip` is
 * `K·(m_i - mean_p u_ip) + log Σ_{a≠i} exp(K·(u_ia - m_i))` with `m_i = max_{a≠i} u_ia`, where a
 * difference of exactly 0 contributes 0 (never `0 · Infinity`). Finite whenever the exact loss
 * fits float32; +Infinity (never NaN) when it does not.
 */
function scaledAnchorTerms(
  flat: tf.Tensor2D,
  c: number,
  n: number,
  v: number,
  anchorViews: number,
  temperature: number,
  positives: Positives,
): AnchorTerms {
  const rows = n * v;
  const numAnchors = anchorViews * n;
  // dense positive weights [A, N*V]: row a = v_a*N + i, column r = w*N + j
  const weights = new Float32Array(numAnchors * rows);
  const numPositives = new Float32Array(numAnchors);
  let numCounted = 0;
  for (let a = 0; a < numAnchors; a++) {
    const i = a % n;
    let count = 0;
    for (let r = 0; r < rows; r++) {
      if (r === a) continue;
      const j = r % n;
      let w = 0;
      if (positives.kind === 'groups') {
        const { ids, known } = positives.grouping;
        w = ids[i] === ids[j] && (!known || known[i] === 1) ? 1 : 0;
      } else {
        w = positives.values[i * n + j];
      }
      weights[a * rows + r] = w;
      count += w;
    }
    numPositives[a] = count;
    if (count > 0) numCounted++;
  }
  const k = (c * c) / temperature; // float64; Infinity once cast to float32 is handled below
  const g = tf.div(flat, c) as tf.Tensor2D;
  const anchors = numAnchors === rows ? g : tf.slice(g, [0, 0], [numAnchors, g.shape[1]]);
  const u = tf.matMul(anchors, g, false, true);
  const self = tf.cast(tf.eye(numAnchors, rows), 'bool');
  const others = tf.where(self, tf.fill([numAnchors, rows], Number.NEGATIVE_INFINITY), u);
  const max = tf.max(others, 1, true);
  const times = (d: tf.Tensor) => tf.where(tf.equal(d, 0), tf.zerosLike(d), tf.mul(d, k));
  const logSum = tf.log(tf.sum(tf.exp(times(tf.sub(others, max))), 1));
  const counts = tf.tensor1d(numPositives.map((x) => Math.max(x, 1)));
  const positiveMean = tf.div(tf.sum(tf.mul(u, tf.tensor2d(weights, [numAnchors, rows])), 1), counts);
  const gap = tf.relu(tf.sub(tf.reshape(max, [numAnchors]), positiveMean)); // ≥ 0 up to rounding
  const has = tf.tensor1d(numPositives.map((x) => (x > 0 ? 1 : 0)));
  const perAnchor = tf.where(tf.cast(has, 'bool'), tf.add(times(gap), logSum), tf.zerosLike(logSum));
  return { perAnchor: perAnchor as tf.Tensor1D, numPositives, numCounted };
}

/** Labels `[N]`, a `[N, N]` mask, or null (SimCLR), as sample-level positives. */
function readPositives(fn: string, labelsOrMask: LabelsLike | null, features: tf.Tensor): Positives {
  if (labelsOrMask === null || labelsOrMask === undefined) {
    check(
      features instanceof tf.Tensor,
      () => `${fn}: features must be a tf.Tensor, but got ${typeof features}.`,
    );
    check(
      features.rank === 3,
      () =>
        `${fn}: without labels, features must be rank 3 [N, V, D] so the views of each sample are known, but got shape ${shapeString(features.shape)}.`,
    );
    return { kind: 'groups', grouping: singletonGrouping(features.shape[0]) };
  }
  const isMatrix =
    labelsOrMask instanceof tf.Tensor
      ? labelsOrMask.rank === 2
      : labelsOrMask.length > 0 && typeof labelsOrMask[0] === 'object';
  if (!isMatrix) {
    const labels = readLabelMatrix(fn, 'labels', labelsOrMask);
    return { kind: 'groups', grouping: prefixGroupings(labels)[0] };
  }
  const mask = readLabelMatrix(fn, 'mask', labelsOrMask);
  check(
    mask.rows === mask.cols,
    () =>
      `${fn}: a rank-2 second argument is a positive mask and must be square [N, N], but got [${mask.rows},${mask.cols}]; pass class labels as a 1-D array [N].`,
  );
  const n = mask.rows;
  const rowSums = new Float32Array(n);
  const diag = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      const m = mask.values[i * n + j];
      check(m <= 1, () => `${fn}: mask must hold 0 or 1, but mask[${i},${j}] is ${m}.`);
      rowSums[i] += m;
    }
    diag[i] = mask.values[i * n + i];
  }
  return { kind: 'mask', values: Float32Array.from(mask.values), rowSums, diag };
}
