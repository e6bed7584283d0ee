/**
 * The batch-norm kernels on wasm against cpu: the training-mode pair (native: chunked,
 * multi-threaded sums; else JavaScript) and tfjs's own inference-mode `FusedBatchNorm` (native
 * where the addon is loaded; else the stock kernel), with its gradients.
 */
import assert from 'node:assert/strict';
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

it('FusedBatchNorm (tf.batchNorm, statistics given) matches cpu: odd shapes, with and without scale and offset, broadcast parameters, its gradients', async () => {
  const rng = new Rng(13); // the data do not depend on which tests ran before
  const normal = (size: number, scale = 1, shift = 0) =>
    Float32Array.from({ length: size }, () => shift + scale * rng.normal());
  // [4, 67, 67, 61] = 1,095,316 elements: past the 2^20 where the native kernel goes multi-threaded
  const shapes = [[3, 5, 7, 11], [13, 6], [7]];
  const cases: { shape: number[]; withScale: boolean; withOffset: boolean; paramShape?: number[] }[] = [
    { shape: [4, 67, 67, 61], withScale: true, withOffset: true },
  ];
  for (const shape of shapes)
    for (const [withScale, withOffset] of [
      [true, true],
      [false, false],
      [true, false],
      [false, true],
    ])
      cases.push({ shape, withScale, withOffset });
  // parameters of one value, and of x's full shape (tfjs indexes them modulo their length)
  cases.push({ shape: [3, 5, 7, 11], withScale: true, withOffset: true, paramShape: [1] });
  cases.push({ shape: [13, 6], withScale: true, withOffset: true, paramShape: [13, 6] });
  for (const { shape, withScale, withOffset, paramShape } of cases) {
    const cols = shape[shape.length - 1];
    const pShape = paramShape ?? [cols];
    const pSize = pShape.reduce((a, b) => a * b, 1);
    const size = shape.reduce((a, b) => a * b, 1);
    const data = {
      x: normal(size, 2, 0.5),
      mean: normal(pSize, 1, 0.3),
      variance: Float32Array.from({ length: pSize }, () => 0.05 + Math.abs(rng.normal())),
      offset: normal(pSize),
      scale: normal(pSize, 0.5, 1),
      w: normal(size),
    };
    const label = `${JSON.stringify(shape)} params ${JSON.stringify(pShape)} scale ${withScale} offset ${withOffset}`;
    const run = (withGrads: boolean) =>
      tf.tidy(() => {
        const x = tf.tensor(data.x, shape);
        const mean = tf.tensor(data.mean, pShape);
        const variance = tf.tensor(data.variance, pShape);
        const offset = withOffset ? tf.tensor(data.offset, pShape) : undefined;
        const scale = withScale ? tf.tensor(data.scale, pShape) : undefined;
        const y = tf.batchNorm(x, mean, variance, offset, scale, 1e-3);
        if (!withGrads) return [y.dataSync()];
        const weights = tf.tensor(data.w, shape);
        const inputs = [x, mean, variance, ...(offset ? [offset] : []), ...(scale ? [scale] : [])];
        const grads = tf.grads((...args: tf.Tensor[]) => {
          const [a, m, v] = args;
          const o = offset ? args[3] : undefined;
          const s = scale ? args[offset ? 4 : 3] : undefined;
          return tf.sum(tf.mul(tf.square(tf.batchNorm(a, m, v, o, s, 1e-3)), weights));
        })(inputs);
        return [y.dataSync(), ...grads.map((g) => g.dataSync())];
      });
    // gradients on the small shapes (the large one checks the threaded forward), and only with
    // both scale and offset: tfjs's engine, on every backend, cannot save the missing `scale` the
    // FusedBatchNorm gradient (stock and ours) asks for, nor walk a tape node whose `offset` is
    // undefined
    const withGrads = size < 2 ** 20 && withScale && withOffset;
    await useBackend('cpu');
    const expected = run(withGrads);
    await useBackend('wasm');
    const actual = run(withGrads);
    assert.equal(actual.length, expected.length);
    const names = [
      'y',
      'dx',
      'dmean',
      'dvariance',
      ...(withOffset ? ['doffset'] : []),
      ...(withScale ? ['dscale'] : []),
    ];
    expected.forEach((e, i) => {
      // the forward within 1e-5; gradients within 1e-4 (float32 sums over up to 1,155 elements,
      // in another order on each backend: a parameter of one value sums over all of x)
      const tolerance = i === 0 ? 1e-5 : 1e-4;
      const scale = i === 0 ? 1 : Array.from(e).reduce((m, v) => Math.max(m, Math.abs(v)), 1);
      expectClose(actual[i], e, { rtol: tolerance, atol: tolerance * scale }, `${names[i]} ${label}`);
    });
  }
});
