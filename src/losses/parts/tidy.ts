import * as tf from '@tensorflow/tfjs-core';
import '../../engine/gradients.js';

/**
 * `tf.tidy` for a function returning a plain object of tensors and numbers: every intermediate is
 * disposed, the tensors reachable from the result are kept.
 */
export function tidyObject<T>(fn: () => T): T {
  return tf.tidy(fn as () => tf.TensorContainer) as T;
}

/** A one-input `tf.customGrad`, typed: `f` returns the value and the gradient w.r.t. its input. */
export function unaryCustomGrad(
  f: (
    x: tf.Tensor,
    save: tf.GradSaveFunc,
  ) => { value: tf.Tensor; gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.Tensor },
): (x: tf.Tensor) => tf.Tensor {
  const op = tf.customGrad(f as unknown as Parameters<typeof tf.customGrad>[0]);
  return (x) => op(x);
}
