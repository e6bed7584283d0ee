import * as tf from '@tensorflow/tfjs-core';
import { fusedLogSumExp, fusedLogSumExpAvailable } from '../../engine/kernels/logSumExp.js';
import { unaryCustomGrad } from './tidy.js';
import { DEFAULT_TILE_ELEMENTS, tiledLogSumExpExcludingSelf } from './tiledLogSumExp.js';

/** How {@link contrastLogSumExp} computes. */
export type LogSumExpForm = 'fused' | 'tiled' | 'dense';

/**
 * The one place that decides how a contrastive log-sum-exp is computed, for `anchors` of the
 * `rows` flat feature rows (anchors first):
 * - `fused`: the native kernel (wasm with the addon; `CONTRASTIVE_FUSED=0` turns it off), tile by
 *   tile in C, memory O(rows·D);
 * - `tiled`: blocks of rows in tfjs ops, any backend, once the `[rows, rows]` logits exceed one
 *   tile ({@link DEFAULT_TILE_ELEMENTS});
 * - `dense`: the `[anchors, rows]` logits and a row log-sum-exp.
 * Both block forms need every row to be an anchor.
 */
export function logSumExpForm(anchors: number, rows: number): LogSumExpForm {
  if (anchors !== rows) return 'dense';
  if (fusedLogSumExpAvailable() && process.env.CONTRASTIVE_FUSED !== '0') return 'fused';
  return rows * rows > DEFAULT_TILE_ELEMENTS ? 'tiled' : 'dense';
}

/**
 * `lse_a = log Σ_{k≠a} exp(f_a·f_k / τ)` for each anchor row `f_a` of `anchorRows [A, D]` (the
 * first A rows of `flat`, or `flat` itself) against all rows of `flat [rows, D]`, in the form
 * {@link logSumExpForm} picks.
 */
export function contrastLogSumExp(
  anchorRows: tf.Tensor2D,
  flat: tf.Tensor2D,
  temperature: number,
): tf.Tensor1D {
  const form = logSumExpForm(anchorRows.shape[0], flat.shape[0]);
  if (form === 'fused') return fusedLogSumExp(flat, temperature);
  if (form === 'tiled') return tiledLogSumExpExcludingSelf(flat, temperature);
  return rowLogSumExp(tf.div(tf.matMul(anchorRows, flat, false, true), temperature) as tf.Tensor2D, true);
}

/**
 * Row-wise log-sum-exp of `[A, M]` logits with a direct gradient, `dy * softmax(x)`. The stock
 * `tf.logSumExp` gradient goes through a broadcasting `Equal` that is slow on every CPU backend.
 * With `excludeSelf`, entry `[r, r]` of each row r < A is left out of the sum (the anchor is not
 * its own negative); it gets no gradient.
 */
export function rowLogSumExp(logits: tf.Tensor2D, excludeSelf = false): tf.Tensor1D {
  return (excludeSelf ? lseExcludingSelf : lse)(logits) as tf.Tensor1D;
}

function forward(x: tf.Tensor, save: tf.GradSaveFunc) {
  const max = tf.max(x, 1, true);
  // e = exp(x - max) serves both the value and the gradient softmax = e / Σe
  const e = tf.exp(tf.sub(x, max));
  const total = tf.sum(e, 1, true);
  save([e, total]);
  return {
    value: tf.reshape(tf.add(max, tf.log(total)), [x.shape[0]]),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [es, t] = saved;
      return tf.mul(es, tf.div(tf.reshape(dy, [es.shape[0], 1]), t));
    },
  };
}

const lse = unaryCustomGrad((x: tf.Tensor, save: tf.GradSaveFunc) => forward(x, save));

const lseExcludingSelf = unaryCustomGrad((x: tf.Tensor, save: tf.GradSaveFunc) => {
  const [a, m] = x.shape;
  const self = tf.cast(tf.eye(a, m), 'bool');
  return forward(tf.where(self, tf.fill([a, m], Number.NEGATIVE_INFINITY), x), save);
});
