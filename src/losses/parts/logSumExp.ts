import * as tf from '@tensorflow/tfjs-core';
import { unaryCustomGrad } from './tidy.js';

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
