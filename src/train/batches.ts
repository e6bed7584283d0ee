import * as tf from '@tensorflow/tfjs-core';
import type { TrainingSplit } from '../data/dataset.js';
import type { CachedBatchReader } from '../data/imageCache.js';
import { type CachedSplit, isCachedSplit, type RunData } from '../data/runData.js';
import { balancedBatches, hierarchicalBatches, randomBatches } from '../data/samplers.js';
import { ContrastiveError } from '../errors.js';
import type { Rng } from '../random.js';
import type { TrainConfig } from './config.js';

/** The batches (row indices into the training split) of one epoch, drawn by the configured sampler. */
export function epochBatches(config: TrainConfig, data: RunData, rng: Rng): Int32Array[] {
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

/** One step's batch: its inputs as a tensor, its label rows, and how long the step waited for them. */
export interface TrainingBatch {
  /** `[n, ...inputShape]`; the caller disposes it (before asking for the next batch). */
  x: tf.Tensor;
  labels: number[][];
  /** Milliseconds spent getting the inputs (copying them, or waiting for the cache read). */
  dataMs: number;
}

/** The batches of one epoch, in order, from a {@link BatchSource}. */
export interface EpochBatchReader {
  /** The next batch; call only while batches remain, after disposing the previous `x`. */
  next(): Promise<TrainingBatch>;
  /** Drops what was read ahead (a run stopped mid-epoch); the reader cannot be used after. */
  close(): Promise<void>;
}

/**
 * Where the loop's batches come from: the training split in memory ({@link InMemoryBatchSource})
 * or rows of the image cache read ahead while the step runs ({@link CachedBatchSource}); both
 * give the same tensors for the same rows. {@link batchSource} picks one.
 */
export interface BatchSource {
  /** Reads `batches[from]`, `batches[from + 1]`, … (row indices into the training split). */
  epoch(batches: readonly Int32Array[], from: number): EpochBatchReader;
}

/** The batch source of `data`'s training split: cached rows when it is streamed, else memory. */
export function batchSource(data: RunData, batchSize: number): BatchSource {
  return isCachedSplit(data.train)
    ? new CachedBatchSource(data, data.train, batchSize)
    : new InMemoryBatchSource(data, data.train, batchSize);
}

/** A batch's label rows, one array per sample. */
function labelRows(labels: Int32Array, depth: number, indices: ArrayLike<number>): number[][] {
  return Array.from(indices, (i) => Array.from(labels.subarray(i * depth, (i + 1) * depth)));
}

/**
 * Gathers a batch's inputs from the split in memory into one buffer reused for the whole run (a
 * fresh page costs ~10 µs on some VMs; a new Float32Array per step would pay it every time).
 */
export class InMemoryBatchSource implements BatchSource {
  private readonly inputSize: number;
  private readonly buffer: Float32Array;
  private readonly rowShape: number[];
  private readonly rows: Float32Array;

  constructor(
    private readonly data: RunData,
    private readonly split: TrainingSplit,
    batchSize: number,
  ) {
    // a split with cached feature views gives [n, views, D] batches: the trainer draws a view per sample
    this.rowShape = split.views ? [split.views.count, ...data.inputShape] : data.inputShape;
    this.rows = split.views?.inputs ?? split.inputs;
    this.inputSize = this.rowShape.reduce((a, b) => a * b, 1);
    this.buffer = new Float32Array(batchSize * this.inputSize);
  }

  /** The rows `indices` of the training split as a tensor `[n, ...inputShape]` and label rows. */
  gather(indices: Int32Array): TrainingBatch {
    const t0 = performance.now();
    const { data, split, rows, inputSize, buffer } = this;
    const n = indices.length;
    for (let r = 0; r < n; r++) {
      const i = indices[r];
      buffer.set(rows.subarray(i * inputSize, (i + 1) * inputSize), r * inputSize);
    }
    const labels = labelRows(split.labels, data.tree.depth, indices);
    const x = tf.tensor(buffer.subarray(0, n * inputSize), [n, ...this.rowShape]);
    return { x, labels, dataMs: performance.now() - t0 };
  }

  epoch(batches: readonly Int32Array[], from: number): EpochBatchReader {
    let k = from;
    return {
      next: async () => {
        // one turn of the event loop per step, as a cache read gives, so a signal (Ctrl-C) is
        // seen after the current step rather than at the end of the epoch
        await new Promise((resolve) => setImmediate(resolve));
        return this.gather(batches[k++]);
      },
      close: async () => undefined,
    };
  }
}

/**
 * Reads batches from the image cache with {@link CachedBatchReader}'s prefetch: batch k+1 is
 * read from disk while step k trains, into two buffers kept for the whole run. Memory is two
 * batches, whatever the size of the split.
 */
export class CachedBatchSource implements BatchSource {
  private lastReader: CachedBatchReader | undefined;

  constructor(
    private readonly data: RunData,
    private readonly split: CachedSplit,
    private readonly batchSize: number,
  ) {}

  epoch(batches: readonly Int32Array[], from: number): EpochBatchReader {
    const { data, split } = this;
    const rest = batches.slice(from);
    const reader = split.cache.batchReader(rest, this.lastReader);
    this.lastReader = reader;
    return {
      next: async () => {
        const t0 = performance.now();
        const batch = await reader.next();
        if (!batch)
          throw new ContrastiveError(
            `train: the image cache reader ran out of batches (${rest.length} of at most ${this.batchSize} samples).`,
          );
        const n = batch.indices.length;
        const labels = labelRows(split.labels, data.tree.depth, batch.indices);
        const x = tf.tensor(batch.inputs, [n, ...data.inputShape]);
        return { x, labels, dataMs: performance.now() - t0 };
      },
      close: () => reader.settle(),
    };
  }
}
