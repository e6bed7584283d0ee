/** Segment sums and their gradient (our override) give what a one-hot matmul gives, negative ids included. */
import { it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { segmentSumsAvailable } from '../../src/engine/kernels/segmentSum.js';
import { Rng } from '../../src/random.js';
import { expectClose, forEachBackend } from '../helpers/backends.js';

forEachBackend('segment sums', () => {
  it('forward and gradient match the one-hot form; a negative id gets no sum and no gradient', (t) => {
    if (!segmentSumsAvailable()) {
      // stock wasm has no UnsortedSegmentSum; the losses use one-hot matmuls there
      t.skip(`no UnsortedSegmentSum kernel on ${tf.getBackend()} (needs the native engine)`);
      return;
    }
    const rng = new Rng(8);
    const [n, d, groups] = [37, 5, 6];
    const ids = Int32Array.from({ length: n }, (_, i) => (i % 11 === 3 ? -1 : rng.int(groups)));
    const x = tf.tensor2d(
      Float32Array.from({ length: n * d }, () => rng.normal()),
      [n, d],
    );
    const w = tf.tensor2d(
      Float32Array.from({ length: groups * d }, () => rng.normal()),
      [groups, d],
    );
    tf.tidy(() => {
      const segmentIds = tf.tensor1d(ids, 'int32');
      // one-hot of a negative id is all zeros: the same contract
      const oneHot = tf.cast(tf.oneHot(segmentIds, groups), 'float32');
      const viaSegments = (t: tf.Tensor) => tf.sum(tf.mul(tf.unsortedSegmentSum(t, segmentIds, groups), w));
      const viaOneHot = (t: tf.Tensor) => tf.sum(tf.mul(tf.matMul(oneHot, t as tf.Tensor2D, true, false), w));
      expectClose(
        tf.unsortedSegmentSum(x, segmentIds, groups).dataSync(),
        tf.matMul(oneHot, x, true, false).dataSync(),
        { rtol: 1e-6, atol: 1e-6 },
        'segment sums',
      );
      expectClose(
        tf.grad(viaSegments)(x).dataSync(),
        tf.grad(viaOneHot)(x).dataSync(),
        { rtol: 0, atol: 0 },
        'gradient',
      );
    });
    tf.dispose([x, w]);
  });
});
