/** The batch-norm kernel pair on wasm (native: chunked, multi-threaded sums) against cpu's JavaScript form. */
import { it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { useBackend } from '../../src/engine/backend.js';
import { batchNormTraining } from '../../src/models/batchNorm.js';
import { Rng } from '../../src/random.js';
import { expectClose } from '../helpers/backends.js';

const rng = new Rng(12);
const normal = (size: number, scale = 1, shift = 0) =>
  Float32Array.from({ length: size }, () => shift + scale * rng.normal());

it('forward, statistics and all three gradients match cpu, on shapes below and above the threading threshold', async () => {
  // 16,411 × 67 = 1,099,537 elements: past the 2^20 where the native sums go multi-threaded, and
  // not a multiple of the 16 chunks; 5 × 3 stays on one thread
  for (const [rows, cols] of [
    [5, 3],
    [16411, 67],
  ]) {
    const data = {
      x: normal(rows * cols, 2, 0.5),
      gamma: normal(cols, 0.3, 1),
      beta: normal(cols),
      w: normal(rows * cols),
    };
    const run = () =>
      tf.tidy(() => {
        const x = tf.tensor2d(data.x, [rows, cols]);
        const gamma = tf.tensor1d(data.gamma);
        const beta = tf.tensor1d(data.beta);
        const weights = tf.tensor2d(data.w, [rows, cols]);
        const forward = batchNormTraining(x, gamma, beta, 1e-3)!;
        const [gx, gg, gb] = tf.grads((a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) =>
          tf.sum(
            tf.mul(batchNormTraining(a as tf.Tensor2D, g as tf.Tensor1D, b as tf.Tensor1D, 1e-3)!.y, weights),
          ),
        )([x, gamma, beta]);
        return [forward.y, forward.mean, forward.variance, gx, gg, gb].map((t) => t.dataSync());
      });
    await useBackend('cpu');
    const expected = run();
    await useBackend('wasm');
    const actual = run();
    ['y', 'mean', 'variance', 'dx', 'dgamma', 'dbeta'].forEach((label, i) => {
      const scale = Array.from(expected[i]).reduce((m, v) => Math.max(m, Math.abs(v)), 1);
      expectClose(actual[i], expected[i], { rtol: 1e-5, atol: 1e-5 * scale }, `${label} [${rows}, ${cols}]`);
    });
  }
});
