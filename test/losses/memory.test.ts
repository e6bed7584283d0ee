/**
 * Memory and numerical hygiene of every loss: no leaked tensors after loss + gradient, no tensor
 * larger than `[N*V, N*V]` (no `[N, N, L]` stacks), finite values at tiny temperatures.
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import {
  hiMulConLoss,
  infoNCELoss,
  ntXentLoss,
  Rng,
  saneLoss,
  supConLoss,
  supConLossDetails,
} from '../../src/index.js';
import { forEachBackend } from '../helpers/backends.js';

const N = 24;
const V = 2;
const D = 16;

function inputs(seed: number) {
  const rng = new Rng(seed);
  const normal = (shape: number[]) =>
    tf.tensor(
      Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.normal()),
      shape,
    );
  const labels = Array.from({ length: N }, () => {
    const a = rng.int(2);
    return [a, 2 * a + rng.int(2), 4 * a + rng.int(4)];
  });
  return {
    features: normal([N, V, D]),
    queries: normal([N, D]),
    keys: normal([N, D]),
    queue: normal([40, D]),
    labels,
  };
}

type Input = ReturnType<typeof inputs>;
const LOSSES: [string, (x: Input, f: tf.Tensor) => tf.Scalar][] = [
  ['ntXentLoss', (_x, f) => ntXentLoss(f)],
  [
    'supConLoss',
    (x, f) =>
      supConLoss(
        f,
        x.labels.map((r) => r[2]),
      ),
  ],
  [
    'supConLoss mask',
    (x, f) =>
      supConLoss(
        f,
        x.labels.map((r) => x.labels.map((s) => Number(s[1] === r[1]))),
      ),
  ],
  ['hiMulConLoss paper', (x, f) => hiMulConLoss(f, x.labels, { variant: 'hmce' })],
  ['hiMulConLoss reference', (x, f) => hiMulConLoss(f, x.labels, { variant: 'hmce', mode: 'reference' })],
  ['infoNCELoss', (x, f) => infoNCELoss(tf.slice(tf.reshape(f, [N * V, D]), 0, N), x.keys, x.queue)],
  [
    'saneLoss',
    (x, f) => saneLoss(tf.slice(tf.reshape(f, [N * V, D]), 0, N), x.keys, x.queue, { alpha: 0.2, beta: 0.2 }),
  ],
];

forEachBackend('loss memory', () => {
  for (const [name, loss] of LOSSES) {
    it(`${name}: no leaked tensors after loss + gradient`, () => {
      const x = inputs(1);
      const before = tf.memory().numTensors;
      for (let step = 0; step < 3; step++) {
        const { value, grad } = tf.valueAndGrad((f: tf.Tensor) => loss(x, f))(x.features);
        assert.ok(Number.isFinite(value.dataSync()[0]));
        value.dispose();
        grad.dispose();
      }
      assert.equal(
        tf.memory().numTensors,
        before,
        `${name} leaked ${tf.memory().numTensors - before} tensor(s)`,
      );
    });

    it(`${name}: no tensor larger than [N*V, N*V] in forward and backward`, async () => {
      const x = inputs(2);
      const limit = (N * V) ** 2;
      const info = await tf.profile(() => {
        const { value, grad } = tf.valueAndGrad((f: tf.Tensor) => loss(x, f))(x.features);
        value.dispose();
        grad.dispose();
      });
      for (const kernel of info.kernels) {
        for (const shape of kernel.outputShapes) {
          const size = (shape as number[]).reduce((a, b) => a * b, 1);
          assert.ok(
            size <= limit,
            `${kernel.name} made a tensor of shape [${shape}] (> [${N * V}, ${N * V}])`,
          );
        }
      }
    });
  }

  it('temperature 0.01 with near-identical features gives finite losses and gradients', () => {
    const rng = new Rng(3);
    tf.tidy(() => {
      const base = tf.tensor(
        Float32Array.from({ length: D }, () => rng.normal()),
        [1, 1, D],
      );
      const noise = tf.tensor(
        Float32Array.from({ length: N * V * D }, () => 1e-4 * rng.normal()),
        [N, V, D],
      );
      const f = tf.add(base, noise);
      const x = inputs(4);
      for (const [name, loss] of LOSSES) {
        const opts = { temperature: 0.01 };
        const fn = (g: tf.Tensor) =>
          name.startsWith('hiMulCon')
            ? hiMulConLoss(g, x.labels, { ...opts, mode: name.endsWith('reference') ? 'reference' : 'paper' })
            : name === 'supConLoss'
              ? supConLoss(
                  g,
                  x.labels.map((r) => r[2]),
                  opts,
                )
              : loss(x, g);
        const { value, grad } = tf.valueAndGrad(fn)(f);
        assert.ok(Number.isFinite(value.dataSync()[0]), `${name}: loss ${value.dataSync()[0]}`);
        assert.ok(grad.dataSync().every(Number.isFinite), `${name}: non-finite gradient`);
      }
    });
  });

  it('anchors without positives are skipped, not NaN, and counted', () => {
    tf.tidy(() => {
      const f = tf.tensor(
        Float32Array.from({ length: 4 * 3 }, (_, i) => Math.sin(i + 1)),
        [4, 1, 3],
      );
      const details = supConLossDetails(f, [0, 0, 1, 2]);
      assert.equal(details.numAnchorsCounted, 2);
      assert.deepEqual(Array.from(details.numPositives), [1, 1, 0, 0]);
      assert.ok(Number.isFinite(details.loss.dataSync()[0]));
      const none = supConLossDetails(f, [0, 1, 2, 3]);
      assert.equal(none.numAnchorsCounted, 0);
      assert.equal(none.loss.dataSync()[0], 0);
      const grad = tf.grad((g: tf.Tensor) => supConLoss(g, [0, 1, 2, 3]))(f);
      assert.ok(grad.dataSync().every((v) => v === 0));
    });
  });
});
