/** Row gathers on wasm give exactly what cpu gives; other gathers and bad indices behave as stock. */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { useBackend } from '../../src/engine/backend.js';
import { Rng } from '../../src/random.js';

const rng = new Rng(30);

it('gathers along axis 0 (ranks 1-3, repeated and 2-D indices, int32 data), and along axis 1, match cpu exactly', async () => {
  const cases: {
    shape: number[];
    indices: number[];
    indexShape: number[];
    axis: number;
    dtype: 'float32' | 'int32';
  }[] = [
    { shape: [7], indices: [6, 0, 0, 3], indexShape: [4], axis: 0, dtype: 'float32' },
    { shape: [5, 3], indices: [4, 4, 1, 0, 2, 2], indexShape: [2, 3], axis: 0, dtype: 'float32' },
    { shape: [6, 2, 3], indices: [5, 1, 1], indexShape: [3], axis: 0, dtype: 'int32' },
    { shape: [4, 5], indices: [4, 0, 2], indexShape: [3], axis: 1, dtype: 'float32' },
    { shape: [3, 4], indices: [], indexShape: [0], axis: 0, dtype: 'float32' },
  ];
  for (const c of cases) {
    const size = c.shape.reduce((a, b) => a * b, 1);
    const data = Float32Array.from({ length: size }, () =>
      c.dtype === 'int32' ? rng.int(1000) : rng.normal(),
    );
    const run = () =>
      tf.tidy(() =>
        tf
          .gather(tf.tensor(data, c.shape, c.dtype), tf.tensor(c.indices, c.indexShape, 'int32'), c.axis)
          .dataSync(),
      );
    await useBackend('cpu');
    const expected = Array.from(run());
    await useBackend('wasm');
    const actual = Array.from(run());
    assert.deepEqual(actual, expected, JSON.stringify(c));
  }
});

it('an index out of range is the stock error naming it', async () => {
  await useBackend('wasm');
  assert.throws(
    () =>
      tf.tidy(() => tf.gather(tf.tensor2d([1, 2, 3, 4], [2, 2]), tf.tensor1d([0, 2], 'int32')).dataSync()),
    /index value 2 is not in \[0, 1\]/,
  );
});
