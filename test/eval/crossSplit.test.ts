import assert from 'node:assert/strict';
import { it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { evaluateEmbeddings } from '../../src/eval/evaluate.js';
import { Rng } from '../../src/random.js';
import { forEachBackend } from '../helpers/backends.js';
import { cosineMatrix, retrievalOracle } from '../oracles/retrieval.js';

forEachBackend('evaluateEmbeddings: cross-split retrieval', () => {
  it('retrieves each test query among the training items, equal to the oracle, beside test vs test', () => {
    const rng = new Rng(11);
    const points = (n: number) =>
      Array.from({ length: n }, (_, i) => {
        const c = i % 4;
        return Array.from({ length: 5 }, (_, k) => (k === c ? 2 : 0) + rng.normal());
      });
    const labelsOf = (n: number) => Array.from({ length: n }, (_, i) => [Math.floor((i % 4) / 2), i % 4]);
    const train = points(40);
    const test = points(17);
    const summary = evaluateEmbeddings(
      { embeddings: tf.tensor2d(train), labels: labelsOf(40) },
      { embeddings: tf.tensor2d(test), labels: labelsOf(17) },
      { knnK: 5, linearProbe: false, consistencyAnchors: 0, projectionPoints: 0 },
    );
    const cross = retrievalOracle(cosineMatrix(test, train), labelsOf(17), labelsOf(40), false, [1, 5, 10]);
    assert.ok(summary.crossRetrieval);
    summary.crossRetrieval.forEach((r, l) => {
      assert.equal(r.numQueries, 17);
      assert.ok(Math.abs(r.mapAtR - cross[l].map) < 1e-6, `level ${l}`);
      assert.ok(Math.abs(r.precisionAt1 - cross[l].p1) < 1e-6);
      assert.ok(Math.abs(r.rPrecision - cross[l].rp) < 1e-6);
    });
    const within = retrievalOracle(cosineMatrix(test, test), labelsOf(17), labelsOf(17), true, [1, 5, 10]);
    summary.retrieval.forEach((r, l) => {
      assert.ok(Math.abs(r.mapAtR - within[l].map) < 1e-6);
    });
    const skipped = evaluateEmbeddings(
      { embeddings: tf.tensor2d(train), labels: labelsOf(40) },
      { embeddings: tf.tensor2d(test), labels: labelsOf(17) },
      { knnK: 5, linearProbe: false, consistencyAnchors: 0, projectionPoints: 0, crossSplit: false },
    );
    assert.equal(skipped.crossRetrieval, undefined);
  });
});
