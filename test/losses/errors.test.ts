/** Every bad input gets a ContrastiveError whose message names the argument and what arrived. */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import {
  ContrastiveError,
  hiMulConLoss,
  infoNCELoss,
  momentumMixup,
  ntXentLoss,
  refineLabels,
  saneLoss,
  softLabelCrossEntropy,
  supConLoss,
} from '../../src/index.js';
import { forEachBackend } from '../helpers/backends.js';

function throwsMessage(fn: () => unknown, pattern: RegExp): void {
  tf.tidy(() => {
    assert.throws(fn, (error: unknown) => {
      assert.ok(error instanceof ContrastiveError, `expected a ContrastiveError, got ${String(error)}`);
      assert.match(error.message, pattern);
      return true;
    });
  });
}

forEachBackend('loss input errors', () => {
  const f = () => tf.ones([4, 2, 3]);

  it('wrong rank', () => {
    throwsMessage(
      () => supConLoss(tf.ones([8, 2, 4, 4]), [0, 1, 2, 3, 4, 5, 6, 7]),
      /^supConLoss: features must be rank 3 \[N, V, D\] or rank 2 \[N\*V, D\], but got rank 4 \(shape \[8,2,4,4\]\)\.$/,
    );
    throwsMessage(() => ntXentLoss(tf.ones([3])), /ntXentLoss: features must be rank 3 .* but got rank 1/);
    throwsMessage(
      () => infoNCELoss(tf.ones([2, 3, 1]), tf.ones([2, 3]), null),
      /infoNCELoss: queries must be rank 2 \[N, D\], but got shape \[2,3,1\]/,
    );
    throwsMessage(
      () => hiMulConLoss(f(), [[[0]], [[1]]] as unknown as number[][]),
      /hiMulConLoss: labels must hold non-negative integers \(or -1 at unknown levels\), but labels\[0,0\] is 0/,
    );
  });

  it('N mismatch between features and labels', () => {
    throwsMessage(
      () =>
        hiMulConLoss(
          tf.ones([32, 2, 128]),
          Array.from({ length: 31 }, () => [0, 0, 0]),
        ),
      /^hiMulConLoss: labels must have 32 rows to match features \[32,2,128\], but got 31\.$/,
    );
    throwsMessage(
      () => supConLoss(tf.ones([7, 3]), [0, 1]),
      /supConLoss: flat features \[7,3\] must have a multiple of N = 2 rows/,
    );
    throwsMessage(
      () =>
        supConLoss(f(), [
          [1, 0],
          [0, 1],
        ]),
      /supConLoss: labels must have 4 rows to match features \[4,2,3\], but got 2/,
    );
  });

  it('non-integer or negative labels', () => {
    throwsMessage(
      () => supConLoss(f(), [0, 1.5, 2, 3]),
      /^supConLoss: labels must hold non-negative integers, but labels\[1\] is 1\.5\.$/,
    );
    throwsMessage(() => supConLoss(f(), [0, -1, 2, 3]), /labels\[1\] is -1/);
    throwsMessage(
      () =>
        hiMulConLoss(f(), [
          [0, 1],
          [0, 2],
          [1, Number.NaN],
          [1, 1],
        ]),
      /labels\[2,1\] is NaN/,
    );
    throwsMessage(
      () =>
        hiMulConLoss(
          f(),
          tf.tensor2d([
            [0, 1],
            [0, 2],
            [1, 0.25],
            [1, 1],
          ]),
        ),
      /labels\[2,1\] is 0\.25/,
    );
    throwsMessage(
      () => hiMulConLoss(f(), [[0, 1], [0], [1, 0], [1, 1]]),
      /labels row 1 must have 2 entries like row 0, but got 1/,
    );
    throwsMessage(
      () =>
        supConLoss(f(), [
          [1, 0, 0, 0],
          [0, 2, 0, 0],
          [0, 0, 1, 0],
          [0, 0, 0, 1],
        ]),
      /mask must hold 0 or 1, but mask\[1,1\] is 2/,
    );
    throwsMessage(
      () => supConLoss(f(), [[1], [0], [0], [1]]),
      /must be square \[N, N\], but got \[4,1\]; pass class labels as a 1-D array/,
    );
  });

  it('NaN or infinity in features', () => {
    const bad = tf.tensor3d([
      [
        [1, 2],
        [3, 4],
      ],
      [
        [5, Number.NaN],
        [7, 8],
      ],
    ]);
    throwsMessage(
      () => supConLoss(bad, [0, 1]),
      /^supConLoss: features must be finite, but element \[1,0,1\] of shape \[2,2,2\] is NaN\.$/,
    );
    const inf = tf.tensor2d([
      [1, Number.POSITIVE_INFINITY],
      [0, 1],
    ]);
    throwsMessage(
      () => infoNCELoss(tf.ones([2, 2]), inf, null),
      /infoNCELoss: keys must be finite, but element \[0,1\] of shape \[2,2\] is Infinity/,
    );
    throwsMessage(
      () => hiMulConLoss(tf.fill([2, 2, 2], Number.NEGATIVE_INFINITY), [[0], [1]]),
      /element \[0,0,0\] .* is -Infinity/,
    );
  });

  it('temperature <= 0 and other bad hyper-parameters', () => {
    throwsMessage(
      () => supConLoss(f(), [0, 1, 2, 3], { temperature: 0 }),
      /^supConLoss: temperature must be a finite number > 0, but got 0\.$/,
    );
    throwsMessage(
      () => ntXentLoss(f(), { temperature: -1 }),
      /ntXentLoss: temperature must be a finite number > 0, but got -1/,
    );
    throwsMessage(
      () => hiMulConLoss(f(), [[0], [0], [1], [1]], { temperature: Number.NaN }),
      /temperature must be a finite number > 0, but got NaN/,
    );
    throwsMessage(
      () => infoNCELoss(tf.ones([2, 2]), tf.ones([2, 2]), null, { temperature: 0 }),
      /infoNCELoss: temperature/,
    );
    throwsMessage(
      () => hiMulConLoss(f(), [[0], [0], [1], [1]], { levelWeights: [1, 2] }),
      /levelWeights must have one entry per level \(1, coarsest first\), but got 2/,
    );
    throwsMessage(
      () => hiMulConLoss(f(), [[0], [0], [1], [1]], { mode: 'reference' }),
      /mode 'reference' needs labels with at least 2 columns/,
    );
    throwsMessage(
      () => hiMulConLoss(f(), [[0], [0], [1], [1]], { variant: 'hxx' as 'hmc' }),
      /variant must be 'hmc', 'hce' or 'hmce', but got hxx/,
    );
    throwsMessage(
      () => supConLoss(f(), [0, 1, 2, 3], { contrastMode: 'two' as 'one' }),
      /contrastMode must be 'all' or 'one', but got two/,
    );
  });

  it('alpha + beta > 1 in the SANE refinery', () => {
    const k = tf.ones([2, 3]);
    throwsMessage(
      () => refineLabels(k, null, { alpha: 0.7, beta: 0.5 }),
      /^refineLabels: alpha \+ beta must be <= 1, but got 0\.7 \+ 0\.5 = 1\.2\.$/,
    );
    throwsMessage(
      () => saneLoss(k, k, null, { alpha: 1.5 }),
      /saneLoss: alpha must be a number in \[0, 1\], but got 1\.5/,
    );
    throwsMessage(
      () => momentumMixup(k, k, tf.ones([2, 2]), { theta: 2 }),
      /momentumMixup: theta must be a number in \[0, 1\], but got 2/,
    );
    throwsMessage(
      () => momentumMixup(k, k, tf.ones([2, 2]), { permutation: [0, 5] }),
      /permutation must hold 2 indices in \[0, 2\), but got \[0,5\]/,
    );
    throwsMessage(
      () => saneLoss(k, k, null, { mixedQueries: k }),
      /mixedQueries and mixup \({theta, permutation}\) must be given together/,
    );
  });

  it('queue with a different D', () => {
    throwsMessage(
      () => infoNCELoss(tf.ones([4, 8]), tf.ones([4, 8]), tf.ones([16, 7])),
      /^infoNCELoss: queue must be \[K, 8\] \(same D as queries\), but got shape \[16,7\]\.$/,
    );
    throwsMessage(
      () => infoNCELoss(tf.ones([4, 8]), tf.ones([3, 8]), null),
      /keys must have the shape of queries \[4,8\], but got \[3,8\]/,
    );
    throwsMessage(
      () => saneLoss(tf.ones([4, 8]), tf.ones([4, 8]), tf.ones([16, 4])),
      /saneLoss: queue must be \[K, 8\]/,
    );
    throwsMessage(
      () => softLabelCrossEntropy(tf.ones([2, 3]), tf.ones([5, 3]), tf.ones([2, 4])),
      /targets must be \[2, 5\] \(queries × key set\), but got shape \[2,4\]/,
    );
  });

  it('empty batch and non-tensor input', () => {
    throwsMessage(() => supConLoss(tf.zeros([0, 2, 4]), []), /supConLoss: labels is empty \(shape \[0\]\)/);
    throwsMessage(
      () => ntXentLoss(tf.zeros([0, 2, 4])),
      /^ntXentLoss: features is an empty batch \(shape \[0,2,4\]\); need at least one row\.$/,
    );
    throwsMessage(
      () => infoNCELoss(tf.zeros([0, 4]), tf.zeros([0, 4]), null),
      /infoNCELoss: queries is an empty batch/,
    );
    throwsMessage(
      () => ntXentLoss([[1, 2]] as unknown as tf.Tensor),
      /ntXentLoss: features must be a tf.Tensor, but got an array/,
    );
    throwsMessage(
      () => supConLoss(tf.ones([2, 2], 'int32'), [0, 1]),
      /features must have dtype float32, but got int32/,
    );
    throwsMessage(() => supConLoss(tf.ones([4, 3]), null), /without labels, features must be rank 3/);
  });
});
