/** Our gradient overrides agree with the same function written with plain differentiable ops. */
import { it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { Rng } from '../../src/random.js';
import { expectClose, forEachBackend } from '../helpers/backends.js';

forEachBackend('gradient overrides', () => {
  it('batch norm: every input gradient matches the unfused formula', () => {
    const rng = new Rng(4);
    const normal = (shape: number[], scale = 1, shift = 0) =>
      tf.tensor(
        Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => shift + scale * rng.normal()),
        shape,
      );
    tf.tidy(() => {
      const x = normal([3, 4, 5, 6]);
      const mean = normal([6]);
      const variance = tf.abs(normal([6], 0.1, 1));
      const offset = normal([6]);
      const scale = normal([6]);
      const weights = normal([3, 4, 5, 6]);
      const objective = (y: tf.Tensor) => tf.sum(tf.mul(tf.square(y), weights));
      const fused = tf.grads((a: tf.Tensor, m: tf.Tensor, v: tf.Tensor, o: tf.Tensor, s: tf.Tensor) =>
        objective(tf.batchNorm(a, m, v, o, s, 1e-3)),
      )([x, mean, variance, offset, scale]);
      const plain = tf.grads((a: tf.Tensor, m: tf.Tensor, v: tf.Tensor, o: tf.Tensor, s: tf.Tensor) =>
        objective(tf.add(tf.mul(tf.mul(tf.sub(a, m), tf.rsqrt(tf.add(v, 1e-3))), s), o)),
      )([x, mean, variance, offset, scale]);
      ['x', 'mean', 'variance', 'offset', 'scale'].forEach((name, i) => {
        expectClose(fused[i].dataSync(), plain[i].dataSync(), { rtol: 1e-4, atol: 1e-4 }, `d${name}`);
      });
    });
  });
});
