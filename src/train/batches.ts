import * as tf from '@tensorflow/tfjs-core';
import type { TrainingData } from '../data/dataset.js';
import { balancedBatches, hierarchicalBatches, randomBatches } from '../data/samplers.js';
import type { Rng } from '../random.js';
import type { TrainConfig } from './config.js';

/** The batches (row indices into the training split) of one epoch, drawn by the configured sampler. */
export function epochBatches(config: TrainConfig, data: TrainingData, rng: Rng): Int32Array[] {
  const depth = data.tree.depth;
  const fine = Int32Array.from(
    { length: data.train.size },
    (_, i) => data.train.labels[i * depth + depth - 1],
  );
  const batchSize = Math.min(config.batchSize, data.train.size);
  if (config.sampler === 'balanced') {
    const perClass = 4;
    const usable = Math.max(perClass, batchSize - (batchSize % perClass));
    return balancedBatches(fine, Math.min(usable, perClass * data.tree.levelSizes[depth - 1]), perClass, rng);
  }
  if (config.sampler === 'hierarchical') return hierarchicalBatches(fine, batchSize - (batchSize % 2), rng);
  return randomBatches(data.train.size, batchSize, rng);
}

/**
 * Gathers a batch's inputs into one buffer reused for the whole run (a fresh page costs ~10 µs on
 * some VMs; a new Float32Array per step would pay it every time) and its label rows.
 */
export class BatchGatherer {
  private readonly inputSize: number;
  private readonly buffer: Float32Array;

  constructor(
    private readonly data: TrainingData,
    batchSize: number,
  ) {
    this.inputSize = data.inputShape.reduce((a, b) => a * b, 1);
    this.buffer = new Float32Array(batchSize * this.inputSize);
  }

  /** The rows `indices` of the training split as a tensor `[n, ...inputShape]` and label rows. */
  gather(indices: Int32Array): { x: tf.Tensor; labels: number[][] } {
    const { data, inputSize, buffer } = this;
    const depth = data.tree.depth;
    const n = indices.length;
    for (let r = 0; r < n; r++) {
      const i = indices[r];
      buffer.set(data.train.inputs.subarray(i * inputSize, (i + 1) * inputSize), r * inputSize);
    }
    const labels = Array.from(indices, (i) =>
      Array.from(data.train.labels.subarray(i * depth, (i + 1) * depth)),
    );
    return { x: tf.tensor(buffer.subarray(0, n * inputSize), [n, ...data.inputShape]), labels };
  }
}
