import assert from 'node:assert/strict';
import { it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { augmentImages, views } from '../../src/data/augment.js';
import { balancedBatches, hierarchicalBatches, randomBatches } from '../../src/data/samplers.js';
import { Rng } from '../../src/random.js';
import { forEachBackend } from '../helpers/backends.js';

const classes = Int32Array.from({ length: 200 }, (_, i) => (i * 7) % 10);

it('random batches: every index at most once per epoch, all but the dropped remainder', () => {
  const batches = randomBatches(103, 10, new Rng(1));
  assert.equal(batches.length, 10);
  const seen = new Set(batches.flatMap((b) => Array.from(b)));
  assert.equal(seen.size, 100);
  assert.deepEqual(randomBatches(103, 10, new Rng(1)), batches);
  assert.notDeepEqual(randomBatches(103, 10, new Rng(2)), batches);
});

it('balanced batches: exactly m samples of each of B/m distinct classes', () => {
  for (const batch of balancedBatches(classes, 20, 4, new Rng(3))) {
    const counts = new Map<number, number>();
    for (const i of batch) counts.set(classes[i], (counts.get(classes[i]) ?? 0) + 1);
    assert.equal(counts.size, 5);
    assert.ok([...counts.values()].every((c) => c === 4));
  }
});

it('hierarchical batches: every sample has a partner of the same finest class (a positive at every level)', () => {
  const batches = hierarchicalBatches(classes, 16, new Rng(4));
  assert.equal(batches.length, 200 / 8);
  for (const batch of batches) {
    for (let k = 0; k < batch.length; k += 2) assert.equal(classes[batch[k]], classes[batch[k + 1]]);
  }
  const anchors = new Set(batches.flatMap((b) => Array.from(b).filter((_, k) => k % 2 === 0)));
  assert.equal(anchors.size, 200);
});

forEachBackend('image augmentations', () => {
  it('keep shape and range, are reproducible per seed, and leak nothing', () => {
    const x = tf.tensor4d(
      Float32Array.from({ length: 4 * 28 * 28 }, (_, i) => (i % 29) / 29),
      [4, 28, 28, 1],
    );
    const before = tf.memory().numTensors;
    const a = augmentImages(x, new Rng(7));
    const b = augmentImages(x, new Rng(7));
    const c = augmentImages(x, new Rng(8));
    assert.deepEqual(a.shape, [4, 28, 28, 1]);
    assert.ok(a.dataSync().every((v) => v >= 0 && v <= 1));
    assert.deepEqual(Array.from(a.dataSync()), Array.from(b.dataSync()));
    assert.notDeepEqual(Array.from(a.dataSync()), Array.from(c.dataSync()));
    const identity = augmentImages(x, new Rng(7), {
      minScale: 1,
      maxAspect: 1,
      flip: false,
      brightness: 0,
      contrast: 0,
      noise: 0,
      cutout: 0,
    });
    const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(identity, x))).dataSync()[0]);
    assert.ok(diff < 1e-5, `zero-strength augmentation changed the image by ${diff}`);
    const v = views(x, 3, (t) => augmentImages(t, new Rng(1)));
    assert.deepEqual(v.shape, [4, 3, 28, 28, 1]);
    tf.dispose([a, b, c, identity, v, x]);
    assert.equal(tf.memory().numTensors, before - 1);
  });
});
