import * as tf from '@tensorflow/tfjs-core';
import { check, checkPositive, shapeString } from '../errors.js';
import { checkFinite, checkTensor, l2NormalizeRows, stopGradient } from './parts/features.js';
import { rowLogSumExp } from './parts/logSumExp.js';

/** Options of {@link infoNCELoss}. */
export interface InfoNCEOptions {
  /** τ in `σ(a, b) = exp(cos(a, b) / τ)`. Default 0.07 (MoCo v1; MoCo v2 uses 0.2). */
  temperature?: number;
  /** L2-normalise queries, keys and queue inside the loss (default true). */
  normalize?: boolean;
  /** Throw a clear error when an input holds NaN or ±Infinity (default true). */
  checkFinite?: boolean;
}

/**
 * MoCo's InfoNCE loss with a queue of negatives:
 * `L = -(1/N) Σ_i log( σ(q_i, k_i) / (σ(q_i, k_i) + Σ_b σ(q_i, queue_b)) )`.
 * Keys and queue carry no gradient (they come from the momentum encoder); the gradient flows
 * into the queries only. A queue entry equal to the positive key is still a negative.
 *
 * @param queries `[N, D]` online-encoder embeddings.
 * @param keys `[N, D]` momentum-encoder embeddings; `keys[i]` is the positive of `queries[i]`.
 * @param queue `[K, D]` past keys (negatives), or `null` for none.
 * @example
 * ```ts
 * const loss = infoNCELoss(model.apply(xq), keyEncoder.apply(xk), queue.tensor(), { temperature: 0.2 });
 * ```
 */
export function infoNCELoss(
  queries: tf.Tensor,
  keys: tf.Tensor,
  queue: tf.Tensor | null,
  options: InfoNCEOptions = {},
): tf.Scalar {
  const fn = 'infoNCELoss';
  const temperature = options.temperature ?? 0.07;
  checkPositive(fn, 'temperature', temperature);
  checkQueryKeyQueue(fn, queries, keys, queue);
  return tf.tidy(() => {
    if (options.checkFinite ?? true) {
      checkFinite(fn, 'queries', queries);
      checkFinite(fn, 'keys', keys);
      if (queue) checkFinite(fn, 'queue', queue);
    }
    const normalize = options.normalize ?? true;
    const prep = (x: tf.Tensor) => (normalize ? l2NormalizeRows(x) : x) as tf.Tensor2D;
    const q = prep(queries);
    const k = stopGradient(prep(keys));
    // positive logit [N, 1], then negatives [N, K]: logits = [q·k, q·queue^T] / τ
    const positive = tf.div(tf.sum(tf.mul(q, k), 1, true), temperature) as tf.Tensor2D;
    const logits =
      queue && queue.shape[0] > 0
        ? (tf.concat(
            [positive, tf.div(tf.matMul(q, stopGradient(prep(queue)), false, true), temperature)],
            1,
          ) as tf.Tensor2D)
        : positive;
    return tf.mean(tf.sub(rowLogSumExp(logits), tf.reshape(positive, [-1])));
  });
}

/** Shared shape checks of the MoCo/SANE family. */
export function checkQueryKeyQueue(fn: string, queries: unknown, keys: unknown, queue: unknown): void {
  checkTensor(fn, 'queries', queries);
  checkTensor(fn, 'keys', keys);
  const shape: number[] = queries.shape;
  check(
    queries.rank === 2,
    () => `${fn}: queries must be rank 2 [N, D], but got shape ${shapeString(shape)}.`,
  );
  check(
    shape[0] > 0 && shape[1] > 0,
    () => `${fn}: queries is an empty batch (shape ${shapeString(shape)}).`,
  );
  check(
    keys.rank === 2 && keys.shape[0] === queries.shape[0] && keys.shape[1] === queries.shape[1],
    () =>
      `${fn}: keys must have the shape of queries ${shapeString(queries.shape)}, but got ${shapeString(keys.shape)}.`,
  );
  if (queue === null || queue === undefined) return;
  checkTensor(fn, 'queue', queue);
  check(
    queue.rank === 2 && queue.shape[1] === queries.shape[1],
    () =>
      `${fn}: queue must be [K, ${queries.shape[1]}] (same D as queries), but got shape ${shapeString(queue.shape)}.`,
  );
}
