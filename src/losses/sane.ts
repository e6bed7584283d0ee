import * as tf from '@tensorflow/tfjs-core';
import { check, checkInRange, checkPositive, shapeString } from '../errors.js';
import { Rng } from '../random.js';
import { checkQueryKeyQueue } from './moco.js';
import { checkFinite, checkTensor, l2NormalizeRows, stopGradient } from './parts/features.js';
import { rowLogSumExp } from './parts/logSumExp.js';
import { tidyObject } from './parts/tidy.js';

/** Options of {@link refineLabels}. */
export interface RefineLabelsOptions {
  /** τ of `σ(a, b) = exp(cos(a, b) / τ)`. Default 0.2. */
  temperature?: number;
  /** τ' of the refinery: `p_ik ∝ σ(k_i, b̄_k)^{1/τ'}`; < 1 sharpens. Default 1. */
  tauPrime?: number;
  /** α_t, the weight of `p` in the refined label. Default 0 (one-hot). */
  alpha?: number;
  /** β_t, the weight of `q` (p without the self entry). Default 0. `alpha + beta` must be ≤ 1. */
  beta?: number;
  /** L2-normalise keys and queue (default true). With `false`, `cos` is a plain dot product. */
  normalize?: boolean;
  /**
   * `[s, D]` embeddings of the key views to compare with the key set, when they differ from the
   * keys: the online encoder's (no gradient), SANE's `refineWith: 'online'`. Default: the keys.
   */
  refineFrom?: tf.Tensor;
}

/** {@link refineLabels}'s result; every tensor is `[s, s+b]` over the key set `B̄ = [keys; queue]`. */
export interface RefinedLabels {
  /** `p_ik = softmax_k( cos(k_i, b̄_k) / (τ·τ') )`. */
  p: tf.Tensor2D;
  /** The same with the entry `k = i` removed and renormalised (`q_ii = 0`). */
  q: tf.Tensor2D;
  /** `ȳ_i = (1-α-β)·onehot_i + α·p_i + β·q_i`: the soft targets, no gradient. */
  targets: tf.Tensor2D;
}

/**
 * SANE's self-labeling refinery: soft labels over the key set `B̄ = {k_1..k_s} ∪ queue` from the
 * similarity of each sample's *key* view to every key. Entry i of `B̄` is the positive of query i.
 * Nothing here carries a gradient.
 *
 * @param keys `[s, D]` momentum-encoder embeddings of the key views.
 * @param queue `[b, D]` past keys, or `null`.
 */
export function refineLabels(
  keys: tf.Tensor,
  queue: tf.Tensor | null,
  options: RefineLabelsOptions = {},
): RefinedLabels {
  const fn = 'refineLabels';
  const { temperature, tauPrime, alpha, beta } = resolveRefinery(fn, options);
  checkQueryKeyQueue(fn, keys, keys, queue);
  if (options.refineFrom !== undefined) checkQueryKeyQueue(fn, options.refineFrom, keys, null);
  return tidyObject(() => {
    const keySet = buildKeySet(keys, queue, options.normalize ?? true);
    const s = keys.shape[0];
    const n = keySet.shape[0];
    const k = options.refineFrom
      ? stopGradient(
          ((options.normalize ?? true)
            ? l2NormalizeRows(options.refineFrom)
            : options.refineFrom) as tf.Tensor2D,
        )
      : tf.slice(keySet, [0, 0], [s, keySet.shape[1]]);
    const logits = tf.div(tf.matMul(k, keySet, false, true), temperature * tauPrime) as tf.Tensor2D;
    const p = tf.exp(tf.sub(logits, tf.reshape(rowLogSumExp(logits), [s, 1])));
    const self = tf.cast(tf.eye(s, n), 'bool');
    const withoutSelf = tf.where(
      self,
      tf.scalar(Number.NEGATIVE_INFINITY) as tf.Tensor,
      logits,
    ) as tf.Tensor2D;
    const q =
      n > 1 ? tf.exp(tf.sub(withoutSelf, tf.reshape(rowLogSumExp(withoutSelf), [s, 1]))) : tf.zerosLike(p);
    const targets = tf.addN([tf.mul(tf.eye(s, n), 1 - alpha - beta), tf.mul(p, alpha), tf.mul(q, beta)]);
    return { p: p as tf.Tensor2D, q: q as tf.Tensor2D, targets: targets as tf.Tensor2D };
  });
}

/** Options of {@link softLabelCrossEntropy}. */
export interface SoftLabelCrossEntropyOptions {
  /** τ. Default 0.2. */
  temperature?: number;
  /** L2-normalise queries and key set (default true). */
  normalize?: boolean;
  /** Throw a clear error when an input holds NaN or ±Infinity (default true). */
  checkFinite?: boolean;
}

/**
 * `L = -(1/s) Σ_i Σ_k y_ik · log( σ(q_i, b̄_k) / Σ_l σ(q_i, b̄_l) )`, `σ(a, b) = exp(cos(a, b) / τ)`.
 * The gradient flows into `queries` only; key set and targets are constants.
 *
 * @param queries `[s, D]`.
 * @param keySet `[n, D]` (SANE: `[keys; queue]`).
 * @param targets `[s, n]` soft labels, rows summing to 1.
 */
export function softLabelCrossEntropy(
  queries: tf.Tensor,
  keySet: tf.Tensor,
  targets: tf.Tensor,
  options: SoftLabelCrossEntropyOptions = {},
): tf.Scalar {
  const fn = 'softLabelCrossEntropy';
  const temperature = options.temperature ?? 0.2;
  checkPositive(fn, 'temperature', temperature);
  checkQueryKeyQueue(fn, queries, queries, keySet);
  checkTensor(fn, 'targets', targets);
  check(
    targets.rank === 2 && targets.shape[0] === queries.shape[0] && targets.shape[1] === keySet.shape[0],
    () =>
      `${fn}: targets must be [${queries.shape[0]}, ${keySet.shape[0]}] (queries × key set), but got shape ${shapeString(targets.shape)}.`,
  );
  return tf.tidy(() => {
    if (options.checkFinite ?? true) {
      checkFinite(fn, 'queries', queries);
      checkFinite(fn, 'keySet', keySet);
      checkFinite(fn, 'targets', targets);
    }
    const normalize = options.normalize ?? true;
    const q = (normalize ? l2NormalizeRows(queries) : queries) as tf.Tensor2D;
    const b = stopGradient((normalize ? l2NormalizeRows(keySet) : keySet) as tf.Tensor2D);
    const y = stopGradient(targets as tf.Tensor2D);
    const logits = tf.div(tf.matMul(q, b, false, true), temperature) as tf.Tensor2D;
    // Σ_k y_ik (lse_i - logit_ik) = lse_i Σ_k y_ik - Σ_k y_ik logit_ik
    const perQuery = tf.sub(tf.mul(rowLogSumExp(logits), tf.sum(y, 1)), tf.sum(tf.mul(y, logits), 1));
    return tf.mean(perQuery);
  });
}

/** Options of {@link momentumMixup}. */
export interface MomentumMixupOptions {
  /** Mixing weight θ; drawn from Beta(betaParameter, betaParameter) when absent. */
  theta?: number;
  /** The a of `θ ~ Beta(a, a)`. Default 1 (uniform). */
  betaParameter?: number;
  /** k(i): which key input is mixed into query i; a random permutation when absent. */
  permutation?: ArrayLike<number>;
  /** Random source for θ and the permutation (default a fresh `Rng(0)`, so calls are reproducible). */
  rng?: Rng;
}

/** {@link momentumMixup}'s result. */
export interface MomentumMixupResult {
  /** `x'_i = θ·x_i + (1-θ)·x̃_{k(i)}`, the shape of the query inputs. */
  mixedInputs: tf.Tensor;
  /** `y'_i = θ·ȳ_i + (1-θ)·ȳ_{k(i)}`, `[s, n]`. */
  mixedTargets: tf.Tensor2D;
  theta: number;
  permutation: Int32Array;
}

/**
 * SANE's momentum mixup: each query *input* is mixed with another sample's *key-view input*, and
 * the soft targets with the same weights, so the mixed query keeps a positive in the key set.
 *
 * @param queryInputs `[s, ...]` inputs of the query views.
 * @param keyInputs `[s, ...]` inputs of the key views (same shape).
 * @param targets `[s, n]` refined labels ȳ (from {@link refineLabels}).
 */
export function momentumMixup(
  queryInputs: tf.Tensor,
  keyInputs: tf.Tensor,
  targets: tf.Tensor,
  options: MomentumMixupOptions = {},
): MomentumMixupResult {
  const fn = 'momentumMixup';
  checkTensor(fn, 'queryInputs', queryInputs);
  checkTensor(fn, 'keyInputs', keyInputs);
  checkTensor(fn, 'targets', targets);
  const s = queryInputs.shape[0];
  check(
    s > 0 &&
      keyInputs.shape.length === queryInputs.shape.length &&
      keyInputs.shape.every((d, i) => d === queryInputs.shape[i]),
    () =>
      `${fn}: keyInputs must have the shape of queryInputs ${shapeString(queryInputs.shape)}, but got ${shapeString(keyInputs.shape)}.`,
  );
  check(
    targets.rank === 2 && targets.shape[0] === s,
    () => `${fn}: targets must be [${s}, n], but got shape ${shapeString(targets.shape)}.`,
  );
  const rng = options.rng ?? new Rng(0);
  const a = options.betaParameter ?? 1;
  checkPositive(fn, 'betaParameter', a);
  const theta = options.theta ?? rng.beta(a, a);
  checkInRange(fn, 'theta', theta, 0, 1);
  const permutation = options.permutation ? Int32Array.from(options.permutation) : rng.permutation(s);
  check(
    permutation.length === s && permutation.every((k) => Number.isInteger(k) && k >= 0 && k < s),
    () =>
      `${fn}: permutation must hold ${s} indices in [0, ${s}), but got [${Array.from(permutation).join(',')}].`,
  );
  return tidyObject(() => {
    const index = tf.tensor1d(permutation, 'int32');
    const mix = (x: tf.Tensor, partner: tf.Tensor) =>
      tf.add(tf.mul(x, theta), tf.mul(tf.gather(partner, index), 1 - theta));
    return {
      mixedInputs: mix(queryInputs, keyInputs),
      mixedTargets: mix(targets, targets) as tf.Tensor2D,
      theta,
      permutation,
    };
  });
}

/** Options of {@link saneLoss}. */
export interface SaneLossOptions extends RefineLabelsOptions {
  /** Query embeddings of the mixed inputs from {@link momentumMixup}; adds the mixup term. */
  mixedQueries?: tf.Tensor;
  /** θ and permutation used to make `mixedQueries` (from {@link momentumMixup}). */
  mixup?: { theta: number; permutation: ArrayLike<number> };
  /** Weight of the mixup term. Default 1. */
  mixupWeight?: number;
  /** Throw a clear error when an input holds NaN or ±Infinity (default true). */
  checkFinite?: boolean;
}

/** {@link saneLossDetails}'s result. */
export interface SaneLossDetails {
  /** `cleanLoss + mixupWeight · mixupLoss`. */
  loss: tf.Scalar;
  /** Soft-label cross-entropy of the queries with the refined targets ȳ. */
  cleanLoss: tf.Scalar;
  /** The same for the mixed queries with the mixed targets y' (0 without mixup). */
  mixupLoss: tf.Scalar;
  /** The refined labels. */
  labels: RefinedLabels;
}

/**
 * SANE (Zhou et al., NeurIPS 2021) on MoCo: the refinery's soft labels ȳ over `B̄ = [keys; queue]`
 * replace MoCo's one-hot target, plus the same loss on momentum-mixup queries with mixed labels.
 * With `alpha = beta = 0` and no mixup this is *not* {@link infoNCELoss}: the other in-batch keys
 * are extra negatives.
 */
export function saneLoss(
  queries: tf.Tensor,
  keys: tf.Tensor,
  queue: tf.Tensor | null,
  options: SaneLossOptions = {},
): tf.Scalar {
  return tf.tidy(() => saneLossDetails(queries, keys, queue, options).loss);
}

/** {@link saneLoss} with its two terms and the refined labels. */
export function saneLossDetails(
  queries: tf.Tensor,
  keys: tf.Tensor,
  queue: tf.Tensor | null,
  options: SaneLossOptions = {},
): SaneLossDetails {
  const fn = 'saneLoss';
  const { temperature } = resolveRefinery(fn, options);
  checkQueryKeyQueue(fn, queries, keys, queue);
  check(
    (options.mixedQueries === undefined) === (options.mixup === undefined),
    () => `${fn}: mixedQueries and mixup ({theta, permutation}) must be given together.`,
  );
  const mixupWeight = options.mixupWeight ?? 1;
  checkInRange(fn, 'mixupWeight', mixupWeight, 0, Number.MAX_VALUE);
  return tidyObject(() => {
    const normalize = options.normalize ?? true;
    const ce = { temperature, normalize, checkFinite: options.checkFinite };
    const labels = refineLabels(stopGradient(keys), queue, options);
    const keySet = buildKeySet(keys, queue, normalize);
    const cleanLoss = softLabelCrossEntropy(queries, keySet, labels.targets, ce);
    let mixupLoss: tf.Scalar = tf.scalar(0);
    if (options.mixedQueries && options.mixup) {
      checkQueryKeyQueue(fn, options.mixedQueries, queries, null);
      const index = tf.tensor1d(Int32Array.from(options.mixup.permutation), 'int32');
      const theta = options.mixup.theta;
      const mixedTargets = tf.add(
        tf.mul(labels.targets, theta),
        tf.mul(tf.gather(labels.targets, index), 1 - theta),
      );
      mixupLoss = softLabelCrossEntropy(options.mixedQueries, keySet, mixedTargets, ce);
    }
    return {
      loss: tf.add(cleanLoss, tf.mul(mixupLoss, mixupWeight)) as tf.Scalar,
      cleanLoss,
      mixupLoss,
      labels,
    };
  });
}

function resolveRefinery(fn: string, options: RefineLabelsOptions) {
  const temperature = options.temperature ?? 0.2;
  const tauPrime = options.tauPrime ?? 1;
  const alpha = options.alpha ?? 0;
  const beta = options.beta ?? 0;
  checkPositive(fn, 'temperature', temperature);
  checkPositive(fn, 'tauPrime', tauPrime);
  checkInRange(fn, 'alpha', alpha, 0, 1);
  checkInRange(fn, 'beta', beta, 0, 1);
  check(
    alpha + beta <= 1 + 1e-12,
    () => `${fn}: alpha + beta must be <= 1, but got ${alpha} + ${beta} = ${alpha + beta}.`,
  );
  return { temperature, tauPrime, alpha, beta };
}

/** `B̄ = [keys; queue]`, normalised when asked, without gradient. */
function buildKeySet(keys: tf.Tensor, queue: tf.Tensor | null, normalize: boolean): tf.Tensor2D {
  const all = queue && queue.shape[0] > 0 ? tf.concat([keys, queue], 0) : keys;
  return stopGradient((normalize ? l2NormalizeRows(all) : all) as tf.Tensor2D);
}
