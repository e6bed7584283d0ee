/**
 * supConLoss on raw (normalize: false) features so large that their logits overflow float32: the
 * scale is factored out, so the loss is the exact one (a float64 oracle) when it fits float32,
 * +Infinity when it does not — never NaN.
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { supConLoss } from '../../src/index.js';
import { Rng } from '../../src/random.js';
import { forEachBackend } from '../helpers/backends.js';

/** SupCon in float64 from its definition: rows view-major, labels per sample. */
function supConOracle(rows: number[][], labels: number[], temperature: number): number {
  const n = labels.length;
  const dot = (a: number[], b: number[]) => a.reduce((s, x, k) => s + x * b[k], 0);
  let total = 0;
  let counted = 0;
  rows.forEach((fi, i) => {
    const logits = rows.map((fa, a) => (a === i ? Number.NEGATIVE_INFINITY : dot(fi, fa) / temperature));
    const max = Math.max(...logits);
    const lse = max + Math.log(logits.reduce((s, x) => s + Math.exp(x - max), 0));
    const positives = logits.filter((_, a) => a !== i && labels[a % n] === labels[i % n]);
    if (positives.length === 0) return;
    total += lse - positives.reduce((s, x) => s + x, 0) / positives.length;
    counted++;
  });
  return total / counted;
}

const flatten = (rows: number[][], n: number, v: number) =>
  tf.tensor3d(Array.from({ length: n }, (_, i) => Array.from({ length: v }, (_, w) => rows[w * n + i])));

forEachBackend('supConLoss with huge raw features', () => {
  it('1e38 features in one direction: log(2N-1), not NaN', () => {
    const features = tf.fill([3, 2, 4], 1e38);
    const loss = supConLoss(features, [0, 1, 2], { normalize: false }).dataSync()[0];
    assert.ok(Math.abs(loss - Math.log(5)) < 1e-5, `got ${loss}`);
  });

  it('1e38 features whose exact loss exceeds float32: +Infinity, not NaN', () => {
    const features = tf.tensor3d([
      [
        [1e38, 0],
        [0, 1e38],
      ],
      [
        [-1e38, 0],
        [1e38, 1e38],
      ],
    ]);
    const loss = supConLoss(features, [0, 1], { normalize: false }).dataSync()[0];
    assert.equal(loss, Number.POSITIVE_INFINITY);
  });

  it('features of 1e15 and 1e16 (logits near float32 range): equal to the float64 oracle', () => {
    const rng = new Rng(4);
    for (const scale of [1e15, 1e16]) {
      const n = 4;
      const v = 2;
      const rows = Array.from({ length: n * v }, () => Array.from({ length: 3 }, () => scale * rng.normal()));
      const labels = [0, 1, 0, 1];
      const expected = supConOracle(rows, labels, 0.07);
      const loss = supConLoss(flatten(rows, n, v), labels, { normalize: false }).dataSync()[0];
      assert.ok(Number.isFinite(loss), `scale ${scale}: ${loss}`);
      assert.ok(
        Math.abs(loss - expected) <= 1e-4 * Math.abs(expected),
        `scale ${scale}: ${loss} vs ${expected}`,
      );
    }
  });

  it('ordinary raw features are unchanged (the regular path, equal to the oracle)', () => {
    const rng = new Rng(9);
    const rows = Array.from({ length: 8 }, () => Array.from({ length: 5 }, () => rng.normal()));
    const labels = [0, 1, 1, 0];
    const loss = supConLoss(flatten(rows, 4, 2), labels, {
      normalize: false,
      temperature: 0.5,
    }).dataSync()[0];
    const expected = supConOracle(rows, labels, 0.5) * (0.5 / 0.07);
    assert.ok(Math.abs(loss - expected) < 1e-4 * Math.abs(expected), `${loss} vs ${expected}`);
  });
});
