import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import type { TrainingSplit } from '../data/dataset.js';
import { type DataSplit, isCachedSplit } from '../data/runData.js';

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

/**
 * Backbone embeddings of the first `limit` rows (default: all) of a split in memory or in the
 * image cache, in batches of 256 (the same batches as {@link embedSplit}, so the same numbers):
 * a cached split is read batch by batch with a prefetch, never whole.
 */
export async function embedDataSplit(
  model: tfl.LayersModel,
  split: DataSplit,
  inputShape: number[],
  limit = split.size,
  onProgress?: (done: number, total: number) => void,
): Promise<tf.Tensor2D> {
  const n = Math.min(limit, split.size);
  if (!isCachedSplit(split) && onProgress) {
    // in batches too, so that a progress line can follow (the same numbers: the same batches)
    const size = inputShape.reduce((a, b) => a * b, 1);
    const parts: tf.Tensor[] = [];
    try {
      for (let start = 0; start < n; start += 256) {
        const end = Math.min(n, start + 256);
        const slice = {
          inputs: split.inputs.subarray(start * size, end * size),
          labels: split.labels,
          size: end - start,
        };
        parts.push(embedSplit(model, slice, inputShape));
        onProgress(end, n);
        // a turn of the event loop, so the line reaches the terminal (and a signal is seen)
        await new Promise((resolve) => setImmediate(resolve));
      }
      return (parts.length === 1 ? parts[0].clone() : tf.concat(parts, 0)) as tf.Tensor2D;
    } finally {
      tf.dispose(parts);
    }
  }
  if (!isCachedSplit(split)) {
    const size = inputShape.reduce((a, b) => a * b, 1);
    const first =
      n === split.size
        ? split
        : { inputs: split.inputs.subarray(0, n * size), labels: split.labels, size: n };
    return embedSplit(model, first, inputShape);
  }
  const batches: Int32Array[] = [];
  for (let start = 0; start < n; start += 256)
    batches.push(Int32Array.from({ length: Math.min(n, start + 256) - start }, (_, k) => start + k));
  const reader = split.cache.batchReader(batches);
  const parts: tf.Tensor[] = [];
  try {
    for (let b = await reader.next(); b; b = await reader.next()) {
      const inputs = b.inputs;
      const rows = b.indices.length;
      parts.push(tf.tidy(() => model.predict(tf.tensor(inputs, [rows, ...inputShape])) as tf.Tensor));
      onProgress?.(Math.min(n, (b.batch + 1) * 256), n);
    }
    return tf.concat(parts, 0) as tf.Tensor2D;
  } finally {
    await reader.settle();
    tf.dispose(parts);
  }
}
