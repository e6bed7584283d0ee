import assert from 'node:assert/strict';
import { it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { evaluateEmbeddings, pca2d } from '../../src/eval/index.js';
import { Rng } from '../../src/random.js';
import { expectClose, forEachBackend } from '../helpers/backends.js';

/** Points around the leaves of a 2 › 4 tree: coarse centre + fine offset + noise. */
function treeSet(rng: Rng, n: number, noise: number) {
  const coarse = [
    [5, 0, 0, 0],
    [-5, 0, 0, 0],
  ];
  const labels: number[][] = [];
  const x: number[][] = [];
  for (let i = 0; i < n; i++) {
    const fine = rng.int(4);
    const c = fine % 2;
    labels.push([c, fine]);
    const offset = [0, fine === 0 || fine === 1 ? 2 : -2, fine < 2 ? 2 : -2, 1];
    x.push(coarse[c].map((v, k) => v + offset[k] + noise * rng.normal()));
  }
  return { embeddings: tf.tensor2d(x), labels };
}

forEachBackend('evaluateEmbeddings', () => {
  it('reports every metric; a clean tree scores near perfect, noise scores lower', () => {
    const rng = new Rng(9);
    const clean = evaluateEmbeddings(treeSet(rng, 200, 0.1), treeSet(rng, 100, 0.1), {
      knnK: 20,
      linearProbe: { epochs: 100 },
      heldOutClasses: [[1, 3]],
      projectionPoints: 50,
    });
    assert.equal(clean.numLevels, 2);
    assert.deepEqual(clean.knn.accuracyByLevel, [1, 1]);
    assert.equal(clean.retrieval[1].precisionAt1, 1);
    assert.equal(clean.severity.knn.numMistakes, 0);
    assert.ok(clean.linearProbe && clean.linearProbe.testAccuracy > 0.95);
    assert.equal(clean.consistency?.violationRate, 0);
    assert.ok(clean.unseen && clean.unseen.numQueries > 0);
    assert.equal(clean.projection?.indices.length, 50);
    assert.equal(clean.projection?.points.length, 100);

    const noisy = evaluateEmbeddings(treeSet(rng, 200, 6), treeSet(rng, 100, 6), {
      knnK: 20,
      linearProbe: false,
    });
    assert.ok(noisy.retrieval[1].mapAtR < clean.retrieval[1].mapAtR);
    assert.ok((noisy.consistency?.violationRate ?? 0) > 0);
    assert.equal(noisy.linearProbe, undefined);
  });

  it('pca2d finds the two directions of largest variance', () => {
    const rng = new Rng(2);
    tf.tidy(() => {
      // rows on a tilted plane: large spread on axis 0, smaller on axis 1, none elsewhere, offset on axis 2
      const x = tf.tensor2d(Array.from({ length: 300 }, () => [3 * rng.normal(), rng.normal(), 10, 0]));
      const p = pca2d(x);
      const col = (c: number) => Array.from({ length: 300 }, (_, i) => p[i * 2 + c]);
      const variance = (v: number[]) => v.reduce((s, a) => s + a * a, 0) / v.length;
      assert.ok(variance(col(0)) > variance(col(1)));
      assert.ok(variance(col(1)) > 0);
      expectClose(Array.from(pca2d(x)), Array.from(p), { rtol: 0, atol: 0 }, 'deterministic');
    });
  });
});
