/** The wasm kernel fixes agree with the reference cpu backend. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { useBackend } from '../../src/engine/backend.js';
import { Rng } from '../../src/random.js';
import { expectClose } from '../helpers/backends.js';

const rng = new Rng(3);
const normal = (shape: number[]) =>
  Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.normal());

async function onBoth<T extends ArrayLike<number>[]>(f: () => T): Promise<{ cpu: T; wasm: T }> {
  await useBackend('cpu');
  const cpu = f();
  await useBackend('wasm');
  const wasm = f();
  return { cpu, wasm };
}

describe('wasm kernel fixes', () => {
  it('transposed matmuls (and their gradients) match cpu', async () => {
    const [a, b] = [normal([2, 5, 7]), normal([2, 6, 7])];
    for (const [ta, tb] of [
      [false, true],
      [true, false],
      [true, true],
    ]) {
      const r = await onBoth(() =>
        tf.tidy(() => {
          const x = tf.tensor(a, ta ? [2, 7, 5] : [2, 5, 7]);
          const y = tf.tensor(b, tb ? [2, 7, 6] : [2, 6, 7]);
          const [gx, gy] = tf.grads((p: tf.Tensor, q: tf.Tensor) =>
            tf.sum(tf.square(tf.matMul(p, q, ta, !tb))),
          )([x, y]);
          return [tf.matMul(x, y, ta, !tb).dataSync(), gx.dataSync(), gy.dataSync()];
        }),
      );
      r.cpu.forEach((v, i) => {
        expectClose(
          r.wasm[i],
          v,
          { rtol: 1e-5, atol: 1e-5 },
          `transposeA=${ta} transposeB=${!tb} output ${i}`,
        );
      });
    }
  });

  it('Conv2DBackpropFilter exists on wasm and matches cpu (strides, padding, 1x1)', async () => {
    const cases: { x: number[]; f: number[]; s: number | [number, number]; p: 'same' | 'valid' }[] = [
      { x: [2, 8, 8, 3], f: [3, 3, 3, 4], s: 1, p: 'same' },
      { x: [2, 9, 9, 3], f: [3, 3, 3, 5], s: 2, p: 'same' },
      { x: [1, 7, 6, 2], f: [2, 3, 2, 3], s: [2, 1], p: 'valid' },
      { x: [2, 10, 10, 4], f: [1, 1, 4, 6], s: 2, p: 'valid' },
    ];
    for (const c of cases) {
      const [xd, fd] = [normal(c.x), normal(c.f)];
      const r = await onBoth(() =>
        tf.tidy(() => {
          const g = tf.grads((x: tf.Tensor, f: tf.Tensor) =>
            tf.sum(tf.square(tf.conv2d(x as tf.Tensor4D, f as tf.Tensor4D, c.s, c.p))),
          )([tf.tensor(xd, c.x), tf.tensor(fd, c.f)]);
          return g.map((t) => t.dataSync());
        }),
      );
      expectClose(r.wasm[1], r.cpu[1], { rtol: 1e-4, atol: 1e-4 }, `filter gradient ${JSON.stringify(c)}`);
      expectClose(r.wasm[0], r.cpu[0], { rtol: 1e-4, atol: 1e-4 }, `input gradient ${JSON.stringify(c)}`);
    }
  });

  it('clones and same-dtype casts share data instead of copying, and stay valid when the source goes', async () => {
    await useBackend('wasm');
    const x = tf.tensor(normal([64, 64]), [64, 64]);
    const values = x.dataSync().slice();
    const before = tf.memory().numDataBuffers;
    const clone = tf.clone(x);
    const cast = tf.cast(x, 'float32');
    assert.equal(tf.memory().numDataBuffers, before, 'a clone or cast allocated new data');
    x.dispose();
    expectClose(clone.dataSync(), values, { rtol: 0, atol: 0 }, 'clone');
    expectClose(cast.dataSync(), values, { rtol: 0, atol: 0 }, 'cast');
    clone.dispose();
    expectClose(cast.dataSync(), values, { rtol: 0, atol: 0 }, 'cast after the clone went');
    cast.dispose();
    // a cast to another dtype still converts
    const ints = tf.cast(tf.tensor([1.7, -2.2]), 'int32');
    assert.deepEqual(Array.from(ints.dataSync()), [1, -2]);
    ints.dispose();
  });
});
