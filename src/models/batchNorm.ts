import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import type { BatchNormalization as StockBatchNormalization } from '@tensorflow/tfjs-layers/dist/layers/normalization.js';
import { BATCH_NORM, BATCH_NORM_GRAD } from '../engine/kernels/batchNorm.js';
import { batchNormKernelsAvailable } from '../engine/registry.js';

/** Batch statistics and output of {@link batchNormTraining}. */
export interface BatchNormTrainingResult {
  y: tf.Tensor2D;
  /** Batch mean per column. */
  mean: tf.Tensor1D;
  /** Biased batch variance per column (divided by the number of rows), as Keras uses it. */
  variance: tf.Tensor1D;
}

/**
 * Training-mode batch norm of `x [rows, C]` with one forward and one gradient kernel:
 * `y = (x − mean) / sqrt(variance + ε) · γ + β` over the batch statistics, differentiable in `x`,
 * `γ` and `β` (through the statistics too, as the composed form). Only `y` and the statistics
 * outlive the call; the composed form keeps about a dozen `x`-sized tensors until the step ends.
 * Returns null when the active backend lacks the kernels (`tensorflow`): use the composed form.
 */
export function batchNormTraining(
  x: tf.Tensor2D,
  gamma: tf.Tensor1D,
  beta: tf.Tensor1D,
  epsilon: number,
): BatchNormTrainingResult | null {
  if (!batchNormKernelsAvailable()) return null;
  const attrs = { epsilon } as unknown as tf.NamedAttrMap;
  let stats: tf.Tensor1D[] = [];
  const op = tf.customGrad((...args) => {
    const [input, scale, offset, save] = args as [tf.Tensor2D, tf.Tensor1D, tf.Tensor1D, tf.GradSaveFunc];
    const [y, mean, variance] = tf
      .engine()
      .runKernel(BATCH_NORM, { x: input, gamma: scale, beta: offset }, attrs) as [
      tf.Tensor2D,
      tf.Tensor1D,
      tf.Tensor1D,
    ];
    save([input, scale, mean, variance]);
    // customGrad runs this in a tidy that would dispose the statistics: keep them past it
    stats = [tf.keep(mean), tf.keep(variance)];
    return {
      value: y,
      gradFunc: (dy: tf.Tensor2D, saved: tf.Tensor[]) => {
        const [xs, g, m, v] = saved;
        return tf
          .engine()
          .runKernel(BATCH_NORM_GRAD, { x: xs, dy, mean: m, variance: v, gamma: g }, attrs) as [
          tf.Tensor,
          tf.Tensor,
          tf.Tensor,
        ];
      },
    };
  });
  const y = op(x, gamma, beta) as tf.Tensor2D;
  // clones belong to the caller's scope like any op's output; the kept originals go
  const [mean, variance] = stats.map((t) => {
    const owned = tf.clone(t);
    t.dispose();
    return owned;
  });
  return { y, mean, variance };
}

/** The private fields of tfjs-layers' BatchNormalization that training needs. */
interface BatchNormInternals {
  axis: number;
  momentum: number;
  epsilon: number;
  center: boolean;
  scale: boolean;
  gamma: tfl.LayerVariable;
  beta: tfl.LayerVariable;
  movingMean: tfl.LayerVariable;
  movingVariance: tfl.LayerVariable;
}

// tfjs-layers does not export the class; its serialization registry holds it.
const Stock = tf.serialization.SerializationMap.getMap().classNameMap
  .BatchNormalization[0] as unknown as typeof StockBatchNormalization;

/**
 * tfjs-layers' `BatchNormalization`, with training over the last axis done by
 * {@link batchNormTraining}: same weights, same moving-average updates, same saved config
 * (class name `BatchNormalization`, so stock tfjs loads our models), a fraction of the memory.
 * Registered in place of the stock class, so models loaded from disk use it too.
 */
export class FusedBatchNormalization extends Stock {
  static override className = 'BatchNormalization';

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>): tf.Tensor | tf.Tensor[] {
    // a frozen batch norm runs in inference mode: its moving statistics are kept as they are
    if (!this.trainable && kwargs.training === true) kwargs = { ...kwargs, training: false };
    const self = this as unknown as BatchNormInternals;
    const input = Array.isArray(inputs) ? inputs[0] : inputs;
    const rank = input.rank;
    const axis = self.axis >= 0 ? self.axis : self.axis + rank;
    if (
      kwargs.training !== true ||
      axis !== rank - 1 ||
      !self.center ||
      !self.scale ||
      input.dtype !== 'float32'
    ) {
      return super.call(inputs, kwargs);
    }
    return tf.tidy(() => {
      const channels = input.shape[rank - 1];
      const flat = tf.reshape(input, [-1, channels]) as tf.Tensor2D;
      const result = batchNormTraining(
        flat,
        self.gamma.read() as tf.Tensor1D,
        self.beta.read() as tf.Tensor1D,
        self.epsilon,
      );
      if (!result) return super.call(inputs, kwargs);
      // the stock layer's moving averages, term for term
      for (const [variable, value] of [
        [self.movingMean, result.mean],
        [self.movingVariance, result.variance],
      ] as const) {
        tf.tidy(() => {
          const old = variable.read();
          variable.write(tf.sub(old, tf.mul(tf.sub(old, value), 1 - self.momentum)));
        });
      }
      return tf.reshape(result.y, input.shape);
    });
  }
}
tf.serialization.registerClass(FusedBatchNormalization);

/** `tfl.layers.batchNormalization`, made with {@link FusedBatchNormalization}. */
export function batchNormalization(
  args?: ConstructorParameters<typeof StockBatchNormalization>[0],
): FusedBatchNormalization {
  return new FusedBatchNormalization(args);
}
