import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import type { TrainingSplit } from '../data/dataset.js';

/** Backbone embeddings of a split, in batches of 256, inference mode. */
export function embedSplit(model: tfl.LayersModel, split: TrainingSplit, inputShape: number[]): tf.Tensor2D {
  const size = inputShape.reduce((a, b) => a * b, 1);
  const parts: tf.Tensor[] = [];
  for (let start = 0; start < split.size; start += 256) {
    const end = Math.min(split.size, start + 256);
    parts.push(
      tf.tidy(
        () =>
          model.predict(
            tf.tensor(split.inputs.subarray(start * size, end * size), [end - start, ...inputShape]),
          ) as tf.Tensor,
      ),
    );
  }
  const out = tf.concat(parts, 0) as tf.Tensor2D;
  tf.dispose(parts);
  return out;
}
