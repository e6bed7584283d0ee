import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';

/**
 * `embed` and `dispose` for a run's backbone and, for the head space, its projection head: what
 * Node's `openRunEncoder` and the browser's `openWebEncoder` both hand out (no Node import here).
 */
export function modelEmbedding(
  backbone: tfl.LayersModel,
  head: tfl.LayersModel | null,
): { embed(inputs: tf.Tensor): tf.Tensor2D; dispose(): void } {
  return {
    embed: (inputs) =>
      tf.tidy(() => {
        const features = backbone.predict(inputs) as tf.Tensor2D;
        return head ? (head.predict(features) as tf.Tensor2D) : features;
      }),
    dispose: () => {
      backbone.dispose();
      head?.dispose();
    },
  };
}
