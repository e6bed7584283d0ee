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
  const lseColumn = tf.add(max, tf.log(tf.sum(tf.exp(tf.sub(x, max)), 1, true)));
  save([x, lseColumn]);
  return {
    value: tf.reshape(lseColumn, [x.shape[0]]),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [xs, l] = saved;
      return tf.mul(tf.reshape(dy, [xs.shape[0], 1]), tf.exp(tf.sub(xs, l)));
    },
  };
}

const lse = unaryCustomGrad((x: tf.Tensor, save: tf.GradSaveFunc) => forward(x, save));

const lseExcludingSelf = unaryCustomGrad((x: tf.Tensor, save: tf.GradSaveFunc) => {
  const [a, m] = x.shape;
  const self = tf.cast(tf.eye(a, m), 'bool');
  return forward(tf.where(self, tf.fill([a, m], Number.NEGATIVE_INFINITY), x), save);
});
