import type * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';

/**
 * A backbone and a projection head (and, for the cross-entropy baseline, a linear classifier).
 * Downstream embeddings come from the backbone; the loss sees the head's output, as in SimCLR,
 * SupCon and HiMulCon.
 */
export class ContrastiveModel {
  constructor(
    readonly backbone: tfl.LayersModel,
    readonly head: tfl.LayersModel,
    readonly classifier?: tfl.LayersModel,
  ) {}

  /** Backbone embeddings `[N, E]`. `training` switches batch norm to batch statistics. */
  embed(x: tf.Tensor, training = false): tf.Tensor2D {
    return this.backbone.apply(x, { training }) as tf.Tensor2D;
  }

  /** Head outputs `[N, P]` of backbone embeddings. */
  project(embeddings: tf.Tensor, training = false): tf.Tensor2D {
    return this.head.apply(embeddings, { training }) as tf.Tensor2D;
  }

  /** Every part. */
  get parts(): tfl.LayersModel[] {
    return this.classifier ? [this.backbone, this.head, this.classifier] : [this.backbone, this.head];
  }

  /** The variables the optimiser updates. */
  get trainableVariables(): tf.Variable[] {
    return this.parts.flatMap((m) => m.trainableWeights.map((w) => w.read() as tf.Variable));
  }

  /**
   * All weights (trainable and batch-norm statistics) by a stable name, for checkpoints: part and
   * position, since tfjs-layers numbers layer names globally (`dense_Dense17`), differently in every
   * process and for every model built.
   */
  namedWeights(): { name: string; variable: tf.Variable }[] {
    return this.parts.flatMap((m, p) =>
      m.weights.map((w, i) => ({ name: `${p}/${i}`, variable: w.read() as tf.Variable })),
    );
  }

  dispose(): void {
    for (const m of this.parts) m.dispose();
  }
}
