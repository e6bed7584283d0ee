import * as tf from '@tensorflow/tfjs-core';
import { ContrastiveError, check, shapeString } from '../../errors.js';
import { unaryCustomGrad } from './tidy.js';

/** A batch of features after validation, in the flat view-major layout. */
export interface FlatFeatures {
  /** `[N*V, D]`, row `v*N + i` is view v of sample i. */
  flat: tf.Tensor2D;
  numSamples: number;
  numViews: number;
  dim: number;
}

/** What the caller knows about the batch layout when features arrive flat. */
export interface LayoutHint {
  /** N, when known from the labels. */
  numSamples?: number;
  /** V, when fixed by the loss (NT-Xent: 2). */
  numViews?: number;
}

/** Checks that `x` is a float32 tfjs tensor. */
export function checkTensor(fn: string, name: string, x: unknown): asserts x is tf.Tensor {
  check(
    x instanceof tf.Tensor,
    () =>
      `${fn}: ${name} must be a tf.Tensor, but got ${x === null ? 'null' : Array.isArray(x) ? 'an array' : typeof x}.`,
  );
  check(
    x.dtype === 'float32',
    () => `${fn}: ${name} must have dtype float32, but got ${x.dtype} (shape ${shapeString(x.shape)}).`,
  );
}

/**
 * Throws when `x` holds a NaN or an infinity, naming the first bad element. One reduction and
 * one scalar read in the common (finite) case.
 */
export function checkFinite(fn: string, name: string, x: tf.Tensor): void {
  const total = tf.tidy(() => tf.sum(x)).dataSync()[0];
  if (Number.isFinite(total)) return;
  const values = x.dataSync();
  const bad = values.findIndex((v) => !Number.isFinite(v));
  if (bad < 0) return; // the sum overflowed float32 but every element is finite
  const index: number[] = [];
  let rest = bad;
  for (let axis = x.rank - 1; axis >= 0; axis--) {
    index.unshift(rest % x.shape[axis]);
    rest = Math.floor(rest / x.shape[axis]);
  }
  throw new ContrastiveError(
    `${fn}: ${name} must be finite, but element [${index.join(',')}] of shape ${shapeString(x.shape)} is ${values[bad]}.`,
  );
}

/**
 * Validates a feature batch `[N, V, D]` (or flat `[N*V, D]`, view-major) and returns it flat.
 */
export function flattenFeatures(
  fn: string,
  name: string,
  features: unknown,
  hint: LayoutHint = {},
): FlatFeatures {
  checkTensor(fn, name, features);
  check(
    features.rank === 3 || features.rank === 2,
    () =>
      `${fn}: ${name} must be rank 3 [N, V, D] or rank 2 [N*V, D], but got rank ${features.rank} (shape ${shapeString(features.shape)}).`,
  );
  check(
    features.size > 0,
    () => `${fn}: ${name} is an empty batch (shape ${shapeString(features.shape)}); need at least one row.`,
  );
  if (features.rank === 3) {
    const [n, v, d] = features.shape as [number, number, number];
    check(
      hint.numSamples === undefined || hint.numSamples === n,
      () =>
        `${fn}: labels must have ${n} rows to match ${name} ${shapeString(features.shape)}, but got ${hint.numSamples}.`,
    );
    check(
      hint.numViews === undefined || hint.numViews === v,
      () => `${fn}: ${name} must have ${hint.numViews} views, but got shape ${shapeString(features.shape)}.`,
    );
    const flat = tf.reshape(tf.transpose(features, [1, 0, 2]), [v * n, d]) as tf.Tensor2D;
    return { flat, numSamples: n, numViews: v, dim: d };
  }
  const [rows, d] = features.shape as [number, number];
  let n: number;
  if (hint.numSamples !== undefined) {
    n = hint.numSamples;
    check(
      n > 0 && rows % n === 0,
      () =>
        `${fn}: flat ${name} ${shapeString(features.shape)} must have a multiple of N = ${n} rows (N*V, view-major), but got ${rows}.`,
    );
    check(
      hint.numViews === undefined || rows === n * hint.numViews,
      () => `${fn}: flat ${name} must have N*V = ${n * (hint.numViews ?? 1)} rows, but got ${rows}.`,
    );
  } else {
    const v = hint.numViews ?? 1;
    check(
      rows % v === 0,
      () =>
        `${fn}: flat ${name} ${shapeString(features.shape)} must have an even split into ${v} views, but got ${rows} rows.`,
    );
    n = rows / v;
  }
  return { flat: features as tf.Tensor2D, numSamples: n, numViews: rows / n, dim: d };
}

/**
 * Rows divided by their L2 norm, as `torch.nn.functional.normalize` (norm clamped at 1e-12). The
 * reciprocal square root form keeps the gradient finite for an all-zero row.
 */
export function l2NormalizeRows<T extends tf.Tensor>(x: T): T {
  return tf.tidy(() => tf.mul(x, tf.rsqrt(tf.maximum(tf.sum(tf.square(x), -1, true), 1e-24))) as T);
}

/**
 * A tensor with the value of `x` and no gradient: what `torch.Tensor.detach` does. Used for MoCo
 * keys, the queue and SANE's soft labels, which are targets, not parameters.
 */
export function stopGradient<T extends tf.Tensor>(x: T): T {
  return detach(x) as T;
}

const detach = unaryCustomGrad((x) => ({ value: tf.clone(x), gradFunc: (dy) => tf.zerosLike(dy) }));
