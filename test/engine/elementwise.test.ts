/** The native element-wise kernels on wasm give exactly what cpu gives, NaN and signed zeros included. */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { useBackend } from '../../src/engine/backend.js';
import { Rng } from '../../src/random.js';

const rng = new Rng(21);
/** Normal values with NaN, ±0 and ±Infinity sprinkled in. */
function values(size: number): Float32Array {
  const special = [Number.NaN, 0, -0, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY];
  return Float32Array.from({ length: size }, (_, i) =>
    i % 97 === 0 ? special[(i / 97) % special.length] : rng.normal(),
  );
}

function assertSame(
  actual: Float32Array | Int32Array | Uint8Array,
  expected: typeof actual,
  label: string,
): void {
  assert.equal(actual.length, expected.length, label);
  for (let i = 0; i < expected.length; i++) {
    if (!Object.is(actual[i], expected[i]) && !(Number.isNaN(actual[i]) && Number.isNaN(expected[i]))) {
      assert.fail(`${label}: element ${i} is ${actual[i]}, expected ${expected[i]}`);
    }
  }
}

it('add, sub, mul, relu, step and the ReLU gradient match cpu exactly, small and past the threading threshold', async () => {
  // 70,001 elements: past the 65,536 where the native loops go multi-threaded, not a block multiple
  for (const shape of [
    [3, 5],
    [7, 10001],
  ]) {
    const size = shape[0] * shape[1];
    const [a, b, w] = [values(size), values(size), values(size)];
    const bias = values(shape[1]);
    const run = () =>
      tf.tidy(() => {
        const x = tf.tensor2d(a, shape as [number, number]);
        const y = tf.tensor2d(b, shape as [number, number]);
        const reluGrad = tf.grad((t: tf.Tensor) =>
          tf.sum(tf.mul(tf.relu(t), tf.tensor2d(w, shape as [number, number]))),
        )(x);
        return [
          tf.add(x, y),
          tf.sub(x, y),
          tf.mul(x, y),
          tf.add(x, tf.tensor1d(bias)), // broadcast: the stock kernel
          tf.relu(x),
          tf.step(x, 0.25),
          reluGrad,
        ].map((t) => t.dataSync() as Float32Array);
      });
    await useBackend('cpu');
    const expected = run();
    await useBackend('wasm');
    const actual = run();
    ['add', 'sub', 'mul', 'broadcast add', 'relu', 'step', 'relu gradient'].forEach((label, i) => {
      assertSame(actual[i], expected[i], `${label} ${JSON.stringify(shape)}`);
    });
  }
});

it('clipByValue and pad (ranks 1 to 4, every axis padded; rank 5 and int32 take the stock kernels) match cpu exactly', async () => {
  const cases: { shape: number[]; paddings: [number, number][] }[] = [
    { shape: [7], paddings: [[2, 3]] },
    {
      shape: [3, 5],
      paddings: [
        [0, 1],
        [2, 0],
      ],
    },
    {
      shape: [2, 5, 3],
      paddings: [
        [1, 1],
        [0, 0],
        [1, 2],
      ],
    },
    {
      shape: [3, 7, 5, 3],
      paddings: [
        [0, 0],
        [0, 1],
        [1, 0],
        [0, 0],
      ],
    },
    {
      shape: [2, 9, 7, 5],
      paddings: [
        [1, 0],
        [1, 1],
        [0, 2],
        [1, 1],
      ],
    },
    // past the threading threshold: ZeroPadding2D's shape in MobileNetV2
    {
      shape: [4, 112, 112, 24],
      paddings: [
        [0, 0],
        [0, 1],
        [0, 1],
        [0, 0],
      ],
    },
    {
      shape: [1, 2, 3, 2, 2],
      paddings: [
        [0, 1],
        [1, 0],
        [0, 0],
        [1, 1],
        [0, 1],
      ],
    },
  ];
  const data = cases.map((c) => values(c.shape.reduce((a, b) => a * b, 1)));
  const run = () =>
    cases.flatMap((c, k) =>
      tf.tidy(() => {
        const x = tf.tensor(data[k], c.shape);
        // NaN left out of the clip: the stock wasm kernel (the no-addon path) clamps it, cpu keeps it
        const finite = tf.tensor(
          data[k].map((v) => (Number.isNaN(v) ? 0 : v)),
          c.shape,
        );
        return [
          tf.clipByValue(finite, -0.5, 6),
          tf.pad(x, c.paddings),
          tf.pad(x, c.paddings, -1.25),
          tf.pad(tf.cast(tf.mul(x, 10), 'int32'), c.paddings, 3),
        ].map((t) => t.dataSync() as Float32Array | Int32Array);
      }),
    );
  await useBackend('cpu');
  const expected = run();
  await useBackend('wasm');
  const actual = run();
  expected.forEach((e, i) => {
    const c = cases[Math.floor(i / 4)];
    assertSame(
      actual[i],
      e,
      `${['clip', 'pad 0', 'pad -1.25', 'pad int32'][i % 4]} ${JSON.stringify(c.shape)}`,
    );
  });
});
