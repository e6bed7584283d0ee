import * as tf from '@tensorflow/tfjs-core';
import { check, shapeString } from '../errors.js';
import type { Rng } from '../random.js';

/** The serialisable state of a {@link MomentumQueue}. */
export interface MomentumQueueState {
  size: number;
  dim: number;
  /** Entries filled so far (≤ size). */
  filled: number;
  /** Where the next key is written. */
  position: number;
  data: Float32Array;
}

/**
 * MoCo's queue of past keys: K rows of dimension D in a ring buffer, first in, first out. Keys
 * are copied in, so the queue holds no tensor and carries no gradient.
 *
 * @example
 * ```ts
 * const queue = new MomentumQueue(4096, 128);
 * const loss = infoNCELoss(q, k, queue.tensor(), {temperature: 0.2}); // then, after the step:
 * queue.enqueue(k);
 * ```
 */
export class MomentumQueue {
  private readonly data: Float32Array;
  private filled = 0;
  private position = 0;

  constructor(
    readonly size: number,
    readonly dim: number,
  ) {
    check(
      Number.isInteger(size) && size > 0,
      () => `MomentumQueue: size must be a positive integer, but got ${size}.`,
    );
    check(
      Number.isInteger(dim) && dim > 0,
      () => `MomentumQueue: dim must be a positive integer, but got ${dim}.`,
    );
    this.data = new Float32Array(size * dim);
  }

  /** Fills the whole queue with random unit vectors (MoCo's initialisation). */
  fillRandom(rng: Rng): void {
    for (let r = 0; r < this.size; r++) {
      let norm = 0;
      for (let k = 0; k < this.dim; k++) {
        const v = rng.normal();
        this.data[r * this.dim + k] = v;
        norm += v * v;
      }
      norm = Math.sqrt(norm) || 1;
      for (let k = 0; k < this.dim; k++) this.data[r * this.dim + k] /= norm;
    }
    this.filled = this.size;
    this.position = 0;
  }

  /** Number of keys held. */
  get length(): number {
    return this.filled;
  }

  /** Adds keys `[s, D]`, overwriting the oldest when full. */
  enqueue(keys: tf.Tensor | Float32Array): void {
    let values: Float32Array;
    if (keys instanceof tf.Tensor) {
      check(
        keys.rank === 2 && keys.shape[1] === this.dim,
        () =>
          `MomentumQueue.enqueue: keys must be [s, ${this.dim}], but got shape ${shapeString(keys.shape)}.`,
      );
      values = keys.dataSync() as Float32Array;
    } else {
      check(
        keys.length % this.dim === 0,
        () => `MomentumQueue.enqueue: ${keys.length} values is not a multiple of D = ${this.dim}.`,
      );
      values = keys;
    }
    const rows = values.length / this.dim;
    // only the newest `size` rows survive a batch larger than the queue
    const start = Math.max(0, rows - this.size);
    for (let r = start; r < rows; r++) {
      this.data.set(values.subarray(r * this.dim, (r + 1) * this.dim), this.position * this.dim);
      this.position = (this.position + 1) % this.size;
    }
    this.filled = Math.min(this.size, this.filled + rows);
  }

  /** The held keys as a `[length, D]` tensor (a copy; dispose it after use). */
  tensor(): tf.Tensor2D {
    return tf.tensor2d(this.data.subarray(0, this.filled * this.dim), [this.filled, this.dim]);
  }

  state(): MomentumQueueState {
    return {
      size: this.size,
      dim: this.dim,
      filled: this.filled,
      position: this.position,
      data: this.data.slice(),
    };
  }

  static fromState(state: MomentumQueueState): MomentumQueue {
    const queue = new MomentumQueue(state.size, state.dim);
    queue.data.set(state.data);
    queue.filled = state.filled;
    queue.position = state.position;
    return queue;
  }
}
