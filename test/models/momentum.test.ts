import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { useBackend } from '../../src/engine/backend.js';
import { ContrastiveModel } from '../../src/models/contrastiveModel.js';
import { mlpEncoder, projectionHead, smallConvEncoder } from '../../src/models/encoders.js';
import { momentumUpdate } from '../../src/models/momentum.js';
import { MomentumQueue } from '../../src/models/momentumQueue.js';
import { expectClose } from '../helpers/backends.js';

const tiny = (seed: number) =>
  new ContrastiveModel(
    mlpEncoder({ inputDim: 3, hiddenDims: [4], embeddingDim: 2, seed }),
    projectionHead({ inputDim: 2, outputDim: 2, seed }),
  );

describe('models and momentum parts', () => {
  before(async () => {
    await useBackend('cpu');
  });

  it('encoders are deterministic in their seed and have the documented shapes', () => {
    const a = smallConvEncoder({ inputShape: [28, 28, 1], widths: [4, 8], seed: 3 });
    const b = smallConvEncoder({ inputShape: [28, 28, 1], widths: [4, 8], seed: 3 });
    const c = smallConvEncoder({ inputShape: [28, 28, 1], widths: [4, 8], seed: 4 });
    const x = tf.ones([2, 28, 28, 1]);
    const [ya, yb, yc] = [a, b, c].map((m) => m.predict(x) as tf.Tensor);
    assert.deepEqual(ya.shape, [2, 8]);
    assert.deepEqual(Array.from(ya.dataSync()), Array.from(yb.dataSync()));
    assert.notDeepEqual(Array.from(ya.dataSync()), Array.from(yc.dataSync()));
    tf.dispose([x, ya, yb, yc]);
    for (const m of [a, b, c]) m.dispose();
  });

  it('momentumUpdate is θ_k ← m·θ_k + (1 − m)·θ_q for every weight', () => {
    const key = tiny(1);
    const query = tiny(2);
    const before = key.namedWeights().map((w) => Array.from(w.variable.dataSync()));
    const source = query.namedWeights().map((w) => Array.from(w.variable.dataSync()));
    momentumUpdate(key, query, 0.9);
    key.namedWeights().forEach((w, i) => {
      const expected = before[i].map((v, k) => 0.9 * v + 0.1 * source[i][k]);
      expectClose(w.variable.dataSync(), expected, { rtol: 1e-6, atol: 1e-7 }, w.name);
    });
    key.dispose();
    query.dispose();
  });

  it('MomentumQueue is a FIFO ring: wrap-around and a batch larger than the free space, by hand', () => {
    const q = new MomentumQueue(4, 2);
    assert.equal(q.length, 0);
    q.enqueue(Float32Array.from([1, 1, 2, 2, 3, 3]));
    assert.equal(q.length, 3);
    q.enqueue(
      tf.tensor2d([
        [4, 4],
        [5, 5],
      ]),
    );
    // ring: row 0 overwritten by 5 (oldest), rows 1..3 hold 2, 3, 4
    assert.deepEqual(Array.from(q.tensor().dataSync()), [5, 5, 2, 2, 3, 3, 4, 4]);
    q.enqueue(Float32Array.from([6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11]));
    // six rows into a queue of four: only the newest four survive
    assert.deepEqual(
      Array.from(q.tensor().dataSync()).sort((a, b) => a - b),
      [8, 8, 9, 9, 10, 10, 11, 11],
    );
    const copy = MomentumQueue.fromState(q.state());
    assert.deepEqual(Array.from(copy.tensor().dataSync()), Array.from(q.tensor().dataSync()));
    assert.throws(() => q.enqueue(tf.ones([2, 3])), /keys must be \[s, 2\], but got shape \[2,3\]/);
  });
});
