import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { useBackend } from '../../src/engine/backend.js';
import { readCheckpoint, writeCheckpoint } from '../../src/train/checkpoint.js';
import { Optimizer } from '../../src/train/optimizers.js';
import { cosineWithWarmup, linearRamp } from '../../src/train/schedules.js';
import { expectClose } from '../helpers/backends.js';

/** loss = Σ w² / 2 + Σ b, so grad w = w and grad b = 1. */
function setup() {
  const w = tf.variable(tf.tensor2d([[1, -2]]));
  const b = tf.variable(tf.tensor1d([0.5]));
  const loss = () => tf.add(tf.mul(tf.sum(tf.square(w)), 0.5), tf.sum(b)) as tf.Scalar;
  return { w, b, loss };
}

describe('optimisers, schedules, checkpoints', () => {
  before(async () => {
    await useBackend('cpu');
  });

  it('SGD with momentum and L2 decay, two steps by hand', () => {
    const { w, b, loss } = setup();
    const opt = new Optimizer([w, b], { kind: 'sgd', momentum: 0.9, weightDecay: 0.1 });
    opt.step(loss, 0.1).loss.dispose();
    // g_w = w + 0.1 w = 1.1 w (decay on the matrix only); buf = g; w -= 0.1 buf
    expectClose(w.dataSync(), [1 - 0.11, -2 + 0.22], { rtol: 1e-6 }, 'w after 1');
    expectClose(b.dataSync(), [0.4], { rtol: 1e-6 }, 'b after 1');
    opt.step(loss, 0.1).loss.dispose();
    const w1 = [0.89, -1.78];
    const buf = [1.1 * 0.9 * 1 + 1.1 * w1[0], 0.9 * 1.1 * -2 + 1.1 * w1[1]];
    expectClose(w.dataSync(), [w1[0] - 0.1 * buf[0], w1[1] - 0.1 * buf[1]], { rtol: 1e-5 }, 'w after 2');
    expectClose(b.dataSync(), [0.4 - 0.1 * (0.9 + 1)], { rtol: 1e-6 }, 'b after 2');
  });

  it('AdamW: first step is lr·sign(g) after bias correction, plus decoupled decay', () => {
    const { w, b, loss } = setup();
    const opt = new Optimizer([w, b], { kind: 'adamw', weightDecay: 0.5 });
    opt.step(loss, 0.01).loss.dispose();
    // m̂ = g, v̂ = g², update = g / (|g| + ε) ≈ sign(g); w ← w(1 - lr·wd) - lr·sign(g)
    expectClose(w.dataSync(), [1 * (1 - 0.005) - 0.01, -2 * (1 - 0.005) + 0.01], { rtol: 1e-5 }, 'w');
    expectClose(b.dataSync(), [0.5 - 0.01], { rtol: 1e-5 }, 'b (not decayed)');
  });

  it('state round-trips exactly: the next steps are identical', () => {
    const a = setup();
    const b = setup();
    const optA = new Optimizer([a.w, a.b], { kind: 'adam' });
    const optB = new Optimizer([b.w, b.b], { kind: 'adam' });
    for (let i = 0; i < 3; i++) optA.step(a.loss, 0.05).loss.dispose();
    b.w.assign(a.w);
    b.b.assign(a.b);
    optB.setState(optA.state());
    for (let i = 0; i < 3; i++) {
      optA.step(a.loss, 0.05).loss.dispose();
      optB.step(b.loss, 0.05).loss.dispose();
    }
    assert.deepEqual(Array.from(b.w.dataSync()), Array.from(a.w.dataSync()));
  });

  it('gradient clipping caps the global norm', () => {
    const { w, b, loss } = setup();
    const opt = new Optimizer([w, b], { kind: 'sgd', momentum: 0, gradClipNorm: 1 });
    const { gradNorm, loss: l } = opt.step(loss, 1);
    l.dispose();
    expectClose(gradNorm!, Math.sqrt(1 + 4 + 1), { rtol: 1e-6 });
    const moved = Math.hypot(w.dataSync()[0] - 1, w.dataSync()[1] + 2, b.dataSync()[0] - 0.5);
    expectClose(moved, 1, { rtol: 1e-4 }, 'step length');
  });

  it('schedules: warm-up, cosine, ramp', () => {
    const lr = cosineWithWarmup(1, 110, 10);
    assert.equal(lr(0), 0.1);
    assert.equal(lr(9), 1);
    expectClose(lr(60), 0.5, { atol: 1e-12 });
    expectClose(lr(110), 0, { atol: 1e-12 });
    const ramp = linearRamp(0.4, 100);
    assert.deepEqual([ramp(0), ramp(50), ramp(1000)], [0, 0.2, 0.4]);
  });

  it('checkpoints round-trip bit for bit', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'contrastive-ckpt-'));
    try {
      const tensors = [
        { name: 'a', shape: [2, 2], data: Float32Array.from([1.5, -2, Math.PI, 1e-30]) },
        { name: 'b', shape: [3], data: Float32Array.from([7, 8, 9]) },
      ];
      await writeCheckpoint(join(dir, 'c.bin'), { meta: { step: 3, rng: [1, 2, 3, 4] }, tensors });
      const back = await readCheckpoint(join(dir, 'c.bin'));
      assert.deepEqual(back.meta, { step: 3, rng: [1, 2, 3, 4] });
      back.tensors.forEach((t, i) => {
        assert.deepEqual(Array.from(t.data), Array.from(tensors[i].data));
        assert.deepEqual(t.shape, tensors[i].shape);
      });
      await assert.rejects(readCheckpoint(join(dir, 'none.bin')), /cannot read/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
