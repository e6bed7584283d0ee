import * as tf from '@tensorflow/tfjs-core';
import { check, checkPositive } from '../errors.js';
import { anchorTerms, buildContrast, meanOverCounted } from './parts/contrast.js';
import { checkFinite, flattenFeatures, l2NormalizeRows } from './parts/features.js';
import { type LabelMatrix, type LabelsLike, prefixGroupings, readLabelMatrix } from './parts/labels.js';
import { tidyObject } from './parts/tidy.js';

/** `'hmc'` HiMulCon, `'hce'` HiConE, `'hmce'` HiMulConE (both). */
export type HiMulConVariant = 'hmc' | 'hce' | 'hmce';

/**
 * λ per level: `'pow2'` is `2^(1/l)` (the reference `HMLC` class default), `'exp'` is `e^(1/l)` (what
 * the reference training script passes), l = 1 for the finest level the loss computes, 2 for the
 * next coarser, ... Or an explicit array, **coarsest level first**, one entry per level.
 */
export type LevelWeights = 'pow2' | 'exp' | readonly number[];

/** Options of {@link hiMulConLoss}. */
export interface HiMulConOptions {
  /** τ. Default 0.07 (the reference code). */
  temperature?: number;
  /** Which of the three losses (default `'hmce'`, the reference default). */
  variant?: HiMulConVariant;
  /** λ_l per level (default `'pow2'`). Ignored by `'hce'`, which weighs every level 1. */
  levelWeights?: LevelWeights;
  /**
   * `'paper'` (default): one level per label column, every level over all `N*V` rows (SPEC.md).
   * `'reference'`: the semantics of salesforce/hierarchicalContrastiveLearning `HMLC` bit for bit:
   * L-1 levels (the finest column never forms a level), one row per distinct prefix kept before
   * each coarser level, level losses scaled by `temperature / baseTemperature`, sum divided by L.
   */
  mode?: 'paper' | 'reference';
  /** Level losses are scaled by `temperature / baseTemperature`. Default: `temperature` in
   * `'paper'` mode (scale 1), 0.07 in `'reference'` mode (what its `SupConLoss` uses). */
  baseTemperature?: number;
  /** L2-normalise rows inside the loss (default true); the gradient flows through it. */
  normalize?: boolean;
  /** Throw a clear error when the features hold NaN or ±Infinity (default true). */
  checkFinite?: boolean;
}

/** One level of {@link hiMulConLossDetails}. */
export interface HiMulConLevel {
  /** The level is the label prefix of columns `0..column` (0 = coarsest). */
  column: number;
  /** λ applied to this level's used loss (1 for `'hce'`). */
  weight: number;
  /** The level's SupCon loss `L_l` before the HiConE clamp. */
  rawLoss: tf.Scalar;
  /** The loss entering the sum: `rawLoss`, or for HiConE `max(L_l, used loss of every finer level)`. */
  usedLoss: tf.Scalar;
  /** Samples contrasted at this level (all N in paper mode; fewer in reference mode). */
  sampleIndices: Int32Array;
  /** Anchors with at least one positive at this level; 0 means the level contributed 0. */
  numAnchorsCounted: number;
  /** Samples (of `sampleIndices`) whose label path reaches this level (all of them without partial labels). */
  numKnown: number;
}

/** {@link hiMulConLossDetails}'s result. */
export interface HiMulConDetails {
  loss: tf.Scalar;
  /** Coarsest level first. */
  levels: HiMulConLevel[];
}

/**
 * Hierarchical multi-label contrastive loss (Zhang et al., CVPR 2022): HiMulCon, HiConE or
 * HiMulConE over label paths. Paper mode:
 *
 * `L^HMC = (1/|L|) Σ_l λ_l · mean_i (-1/|P_l(i)|) Σ_{p ∈ P_l(i)} log( exp(s_ip) / Σ_{a ≠ i} exp(s_ia) )`
 *
 * where `P_l(i)` are the rows (any view, i excluded) whose label columns `0..l` equal i's. HiConE
 * walks from the finest level to the coarsest and uses `max(L_l, finer used losses)` so a pair
 * farther apart in the tree never costs less than a closer pair.
 *
 * **Partial labels.** A row may know only a prefix of its path (`Clothes/Tops` in a 3-level
 * tree): its unknown columns hold -1 (`UNKNOWN_LABEL`), always below the known prefix. At a
 * level l such a row does not know, it is not an anchor (it has no level-l class to pull towards)
 * and it is never a positive of any anchor (not even of its own other views); it takes part in
 * the levels it knows exactly as a fully labelled row does. It stays in every other anchor's
 * denominator `Σ_{a ≠ i} exp(s_ia)` at every level: the contrast set `A(i)` is label-free by
 * definition (all rows but i, positives included), so it does not depend on how deep other rows
 * happen to be labelled — a level's terms for the rows that know it are then the same whatever
 * the unknown rows' true classes are, the shared denominator is computed once for all levels, and
 * an unlabelled image still acts as the "some other image" SimCLR-style contrast it is. With every
 * level known nothing changes. In `'reference'` mode, rows equally unknown below the same prefix
 * count as one distinct label row when duplicates are removed (what `unique` does on the -1s).
 *
 * @param features `[N, V, D]`, or flat `[N*V, D]` view-major.
 * @param labels `[N, L]` integers, column 0 = coarsest level (a label path per row); -1 marks
 *   levels below a row's known prefix.
 * @example
 * ```ts
 * // paths Clothes/Tops/T-shirt ... as [N, 3] integer rows
 * const loss = hiMulConLoss(model.apply(views) as tf.Tensor3D, labelRows, { variant: 'hmce' });
 * ```
 */
export function hiMulConLoss(
  features: tf.Tensor,
  labels: LabelsLike,
  options: HiMulConOptions = {},
): tf.Scalar {
  return tf.tidy(() => hiMulConLossDetails(features, labels, options).loss);
}

/** {@link hiMulConLoss} with its per-level losses, for trainers to log. */
export function hiMulConLossDetails(
  features: tf.Tensor,
  labels: LabelsLike,
  options: HiMulConOptions = {},
): HiMulConDetails {
  const fn = 'hiMulConLoss';
  const temperature = options.temperature ?? 0.07;
  const variant = options.variant ?? 'hmce';
  const mode = options.mode ?? 'paper';
  const baseTemperature = options.baseTemperature ?? (mode === 'reference' ? 0.07 : temperature);
  checkPositive(fn, 'temperature', temperature);
  checkPositive(fn, 'baseTemperature', baseTemperature);
  check(
    variant === 'hmc' || variant === 'hce' || variant === 'hmce',
    () => `${fn}: variant must be 'hmc', 'hce' or 'hmce', but got ${String(variant)}.`,
  );
  check(
    mode === 'paper' || mode === 'reference',
    () => `${fn}: mode must be 'paper' or 'reference', but got ${String(mode)}.`,
  );
  const matrix = readLabelMatrix(fn, 'labels', labels, { allowUnknown: true });
  check(
    mode === 'paper' || matrix.cols >= 2,
    () =>
      `${fn}: mode 'reference' needs labels with at least 2 columns [N, L] (its finest column never forms a level), but got ${matrix.cols}.`,
  );
  const numLevels = mode === 'paper' ? matrix.cols : matrix.cols - 1;
  const weights = resolveLevelWeights(fn, options.levelWeights ?? 'pow2', numLevels);

  return tidyObject(() => {
    const batch = flattenFeatures(fn, 'features', features, { numSamples: matrix.rows });
    if (options.checkFinite ?? true) checkFinite(fn, 'features', features);
    const flat = (options.normalize ?? true) ? l2NormalizeRows(batch.flat) : batch.flat;
    const scale = temperature / baseTemperature;
    const raw =
      mode === 'paper'
        ? paperLevels(flat, batch.numSamples, batch.numViews, matrix, temperature)
        : referenceLevels(flat, batch.numSamples, batch.numViews, matrix, temperature);

    // Finest level first: HiConE's running max needs the finer levels before the coarser.
    const levels: HiMulConLevel[] = [];
    let total: tf.Scalar = tf.scalar(0);
    let finerMax: tf.Scalar | null = null;
    for (let c = numLevels - 1; c >= 0; c--) {
      const rawLoss = tf.mul(raw[c].loss, scale) as tf.Scalar;
      const usedLoss: tf.Scalar =
        variant === 'hmc' || finerMax === null ? rawLoss : (tf.maximum(rawLoss, finerMax) as tf.Scalar);
      finerMax = usedLoss;
      const weight = variant === 'hce' ? 1 : weights[c];
      total = tf.add(total, tf.mul(usedLoss, weight));
      levels.unshift({
        column: c,
        weight,
        rawLoss,
        usedLoss,
        sampleIndices: raw[c].sampleIndices,
        numAnchorsCounted: raw[c].numCounted,
        numKnown: raw[c].numKnown,
      });
    }
    return { loss: tf.div(total, matrix.cols) as tf.Scalar, levels };
  });
}

interface RawLevel {
  loss: tf.Scalar;
  sampleIndices: Int32Array;
  numCounted: number;
  numKnown: number;
}

function countKnown(known: Uint8Array | undefined, size: number): number {
  if (!known) return size;
  let k = 0;
  for (const x of known) k += x;
  return k;
}

/** Paper form: every level contrasts all N*V rows; only the positive sets change. */
function paperLevels(
  flat: tf.Tensor2D,
  n: number,
  v: number,
  labels: LabelMatrix,
  temperature: number,
): RawLevel[] {
  const contrast = buildContrast(flat, n, v, v, temperature);
  const all = Int32Array.from({ length: n }, (_, i) => i);
  return prefixGroupings(labels).map((grouping) => {
    const terms = anchorTerms(contrast, { kind: 'groups', grouping });
    return {
      loss: meanOverCounted(terms),
      sampleIndices: all,
      numCounted: terms.numCounted,
      numKnown: countKnown(grouping.known, n),
    };
  });
}

/**
 * Reference form (`HMLC.forward`): level with columns `0..c` for c = L-2 down to 0; after each
 * level only the first row (in current order) of each distinct prefix is kept, and the kept rows
 * are re-ordered by their prefix, ascending (what `unique(dim=0)` returns on CPU).
 */
function referenceLevels(
  flat: tf.Tensor2D,
  n: number,
  v: number,
  labels: LabelMatrix,
  temperature: number,
): RawLevel[] {
  const dim = flat.shape[1];
  // [N, V*D]: one row per sample, so a subset of samples is a row selection
  const bySample = tf.reshape(tf.transpose(tf.reshape(flat, [v, n, dim]), [1, 0, 2]), [n, v * dim]);
  const out: RawLevel[] = new Array(labels.cols - 1);
  let current: Int32Array = Int32Array.from({ length: n }, (_, i) => i);
  for (let c = labels.cols - 2; c >= 0; c--) {
    const m = current.length;
    const rows =
      m === n && current.every((s, i) => s === i)
        ? bySample
        : tf.matMul(tf.cast(tf.oneHot(tf.tensor1d(current, 'int32'), n), 'float32') as tf.Tensor2D, bySample);
    const subFlat = tf.reshape(tf.transpose(tf.reshape(rows, [m, v, dim]), [1, 0, 2]), [
      v * m,
      dim,
    ]) as tf.Tensor2D;
    const grouping = prefixGroupings(labels, current)[c];
    const terms = anchorTerms(buildContrast(subFlat, m, v, v, temperature), { kind: 'groups', grouping });
    out[c] = {
      loss: meanOverCounted(terms),
      sampleIndices: current,
      numCounted: terms.numCounted,
      numKnown: countKnown(grouping.known, m),
    };
    current = firstOfEachPrefix(current, grouping.ids, labels, c);
  }
  return out;
}

/** The first sample of each group (in current order), sorted by label prefix `0..c` ascending. */
function firstOfEachPrefix(
  current: Int32Array,
  groupIds: Int32Array,
  labels: LabelMatrix,
  c: number,
): Int32Array {
  const seen = new Set<number>();
  const kept: number[] = [];
  current.forEach((sample, i) => {
    if (!seen.has(groupIds[i])) {
      seen.add(groupIds[i]);
      kept.push(sample);
    }
  });
  const at = (s: number, k: number) => labels.values[s * labels.cols + k];
  kept.sort((a, b) => {
    for (let k = 0; k <= c; k++) if (at(a, k) !== at(b, k)) return at(a, k) - at(b, k);
    return 0;
  });
  return Int32Array.from(kept);
}

/** λ per level, coarsest first. */
export function resolveLevelWeights(fn: string, weights: LevelWeights, numLevels: number): number[] {
  if (weights === 'pow2' || weights === 'exp') {
    const base = weights === 'pow2' ? 2 : Math.E;
    return Array.from({ length: numLevels }, (_, c) => base ** (1 / (numLevels - c)));
  }
  check(
    Array.isArray(weights),
    () => `${fn}: levelWeights must be 'pow2', 'exp' or an array of numbers, but got ${String(weights)}.`,
  );
  check(
    weights.length === numLevels,
    () =>
      `${fn}: levelWeights must have one entry per level (${numLevels}, coarsest first), but got ${weights.length}.`,
  );
  weights.forEach((w, i) => {
    check(
      typeof w === 'number' && Number.isFinite(w) && w >= 0,
      () => `${fn}: levelWeights[${i}] must be a finite number >= 0, but got ${String(w)}.`,
    );
  });
  return [...weights];
}

/**
 * Where HiConE's clamp binds, per level (coarsest first), given the level losses **before** the
 * clamp (`rawLoss` of {@link hiMulConLossDetails}, read to numbers): `true` where the level's
 * used loss `max(L_l, used loss of the next finer level)` takes the finer value, i.e. a finer
 * level's loss exceeds `L_l` (ties do not bind: the max is then the level's own loss). The finest
 * level never binds. The clamp acts on level losses — each already a mean over anchors — not on
 * single anchors, so a step's activity is one yes/no per level; averaged over steps it is the
 * fraction of steps at which the constraint changed that level's loss (and its gradient: a bound
 * level passes the finer level's gradient instead of its own). The same walk as the loss, in the
 * same float32 values, so it agrees with it exactly; it computes nothing the loss needs and
 * changes neither its value nor its gradient.
 */
export function hiConEClampBinds(rawLosses: readonly number[]): boolean[] {
  const binds = new Array<boolean>(rawLosses.length).fill(false);
  let finerMax = Number.NEGATIVE_INFINITY;
  for (let c = rawLosses.length - 1; c >= 0; c--) {
    binds[c] = finerMax > rawLosses[c];
    finerMax = Math.max(finerMax, rawLosses[c]);
  }
  return binds;
}
