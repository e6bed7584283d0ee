import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { check } from '../errors.js';
import type { ContrastiveModel } from '../models/contrastiveModel.js';

/** What {@link gradCacheGradients} computes. */
export interface GradCacheResult {
  /** The loss over the whole batch's features. */
  loss: tf.Scalar;
  /** One gradient per variable, in the order given, summed over the chunks. */
  gradients: tf.Tensor[];
}

/**
 * GradCache (Gao et al. 2021, "Scaling Deep Contrastive Learning Batch Size under Memory Limited
 * Setup"): the gradients of `loss(forward(rows))` with respect to `variables`, holding the
 * activations of at most `chunk` rows at a time.
 *
 * 1. `forward` runs on the rows in chunks of `chunk` without a tape; only the features `[rows, d]`
 *    are kept.
 * 2. `loss` runs on all the features, and its gradient with respect to them is taken (cheap: the
 *    loss only, no network).
 * 3. Each chunk runs through `forward` again, on the tape, and back-propagates its slice of that
 *    feature gradient (the gradient of `sum(features_chunk · cached_gradient_chunk)`); the
 *    variables' gradients are summed over the chunks.
 *
 * For a network whose rows do not interact (no training-mode batch norm) this is the full-batch
 * gradient up to float rounding. Training-mode batch norm normalises each chunk by its own
 * statistics (both passes see the same chunks, so the gradient is exact for that per-chunk
 * network), and its moving statistics move once per chunk of the taped pass: the `restore`
 * variables (the moving statistics) are put back after the first pass. Layers that draw random
 * numbers (dropout in a loaded backbone) draw them anew in each pass, so the gradient is then
 * only approximate; the built-in encoders have none. `rows` must hold the inputs already
 * augmented: both passes see the same rows.
 */
export function gradCacheGradients(
  forward: (rows: tf.Tensor) => tf.Tensor2D,
  rows: tf.Tensor,
  chunk: number,
  loss: (features: tf.Tensor2D) => tf.Scalar,
  variables: readonly tf.Variable[],
  restore: readonly tf.Variable[] = [],
): GradCacheResult {
  check(
    Number.isInteger(chunk) && chunk >= 1,
    () => `gradCacheGradients: chunk must be a positive integer, but got ${chunk}.`,
  );
  const total = rows.shape[0];
  const chunks: [number, number][] = [];
  for (let start = 0; start < total; start += chunk) chunks.push([start, Math.min(chunk, total - start)]);
  const slice = (start: number, size: number) => tf.slice(rows, start, size);

  // 1. features without a tape; the moving statistics the forward moves are put back after
  const saved = restore.map((v) => tf.clone(v));
  let features: tf.Tensor2D;
  try {
    features = tf.tidy(() =>
      tf.concat(
        chunks.map(([start, size]) => tf.tidy(() => forward(slice(start, size)))),
        0,
      ),
    );
  } finally {
    restore.forEach((v, i) => {
      v.assign(saved[i]);
    });
    tf.dispose(saved);
  }

  // 2. the loss and its gradient with respect to the features
  let lossValue: tf.Scalar;
  let featureGrad: tf.Tensor2D;
  try {
    const result = tf.valueAndGrad((f: tf.Tensor) => loss(f as tf.Tensor2D))(features);
    lossValue = result.value;
    featureGrad = result.grad as tf.Tensor2D;
  } finally {
    features.dispose();
  }

  // 3. each chunk again, on the tape, back-propagating its slice of the feature gradient
  let sums: (tf.Tensor | undefined)[] = variables.map(() => undefined);
  try {
    for (const [start, size] of chunks) {
      const upstream = tf.slice(featureGrad, start, size);
      const input = slice(start, size);
      try {
        const { value, grads } = tf.variableGrads(
          () => tf.sum(tf.mul(forward(input), upstream)) as tf.Scalar,
          variables as tf.Variable[],
        );
        value.dispose();
        sums = variables.map((v, i) => {
          const g = grads[v.name];
          const before = sums[i];
          if (g === undefined) return before;
          if (before === undefined) return g;
          const next = tf.add(before, g);
          tf.dispose([before, g]);
          return next;
        });
      } finally {
        tf.dispose([upstream, input]);
      }
    }
  } catch (error) {
    tf.dispose(sums.filter((g): g is tf.Tensor => g !== undefined));
    lossValue.dispose();
    throw error;
  } finally {
    featureGrad.dispose();
  }
  const gradients = variables.map((v, i) => sums[i] ?? tf.zerosLike(v));
  return { loss: lossValue, gradients };
}

/**
 * The variables a training-mode forward of `model` writes: the non-trainable weights of the
 * layers that train (the moving statistics of their batch norm). Frozen layers are left out: a
 * frozen batch norm runs in inference mode and writes nothing.
 */
export function forwardState(model: ContrastiveModel): tf.Variable[] {
  const leaves = (layer: tfl.layers.Layer): tfl.layers.Layer[] =>
    layer instanceof tfl.LayersModel ? layer.layers.flatMap(leaves) : [layer];
  return model.parts
    .flatMap(leaves)
    .filter((layer) => layer.trainable)
    .flatMap((layer) => layer.nonTrainableWeights.map((w) => w.read() as tf.Variable));
}
