/** The blocked log-sum-exp (any backend) equals the plain one, in value and gradient, in O(rows·M) memory. */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { rowLogSumExp } from '../../src/losses/parts/logSumExp.js';
import { tiledLogSumExpExcludingSelf } from '../../src/losses/parts/tiledLogSumExp.js';
import { Rng } from '../../src/random.js';
import { expectClose, forEachBackend } from '../helpers/backends.js';

const M = 50;
const D = 8;
const rng = new Rng(11);
const features = Float32Array.from({ length: M * D }, () => rng.normal() * 0.4);
const weights = Float32Array.from({ length: M }, () => rng.next());

forEachBackend('tiledLogSumExpExcludingSelf', () => {
  it('matches the plain form over uneven blocks (7 rows each), value and gradient', async () => {
    const run = (lse: (f: tf.Tensor2D) => tf.Tensor1D) =>
      tf.tidy(() => {
        const w = tf.tensor1d(weights);
        const { value, grad } = tf.valueAndGrad((f: tf.Tensor) => tf.sum(tf.mul(lse(f as tf.Tensor2D), w)))(
          tf.tensor2d(features, [M, D]),
        );
        return [value.dataSync(), grad.dataSync(), lse(tf.tensor2d(features, [M, D])).dataSync()];
      });
    const expected = run((f) => rowLogSumExp(tf.div(tf.matMul(f, f, false, true), 0.1) as tf.Tensor2D, true));
    const before = tf.memory().numTensors;
    let actual: Float32Array[] = [];
    const profile = await tf.profile(() => {
      actual = run((f) => tiledLogSumExpExcludingSelf(f, 0.1, 7 * M)) as Float32Array[];
    });
    assert.equal(tf.memory().numTensors, before, 'leaked tensors');
    const largest = Math.max(
      ...profile.kernels.flatMap((k) =>
        k.outputShapes.map((s) => (s as number[]).reduce((a, b) => a * b, 1)),
      ),
    );
    // the largest tensors are the features (M·D) and a block of logits (7·M), never M·M
    assert.ok(
      largest <= Math.max(7 * M, M * D),
      `a kernel produced ${largest} elements; blocks hold at most ${7 * M}`,
    );
    expectClose(actual[2], expected[2], { rtol: 1e-5, atol: 1e-5 }, 'lse');
    expectClose(actual[0], expected[0], { rtol: 1e-5, atol: 1e-5 }, 'weighted sum');
    expectClose(actual[1], expected[1], { rtol: 1e-4, atol: 1e-5 }, 'gradient');
  });
});
