import assert from 'node:assert/strict';
import { it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import {
  hierarchyConsistency,
  knnClassify,
  linearProbe,
  mistakeSeverity,
  nearestNeighbors,
  retrievalMetrics,
  topK,
} from '../../src/eval/index.js';
import { Rng } from '../../src/random.js';
import { expectClose, forEachBackend } from '../helpers/backends.js';
import { consistencyOracle, cosineMatrix, retrievalOracle } from '../oracles/retrieval.js';

const angles = (degrees: number[]) =>
  tf.tensor2d(
    degrees.flatMap((d) => [Math.cos((d * Math.PI) / 180), Math.sin((d * Math.PI) / 180)]),
    [degrees.length, 2],
  );

function randomSet(rng: Rng, n: number, d: number, numLevels: number) {
  const x = Array.from({ length: n }, () => Array.from({ length: d }, () => rng.normal()));
  const labels = Array.from({ length: n }, () => {
    const row: number[] = [];
    for (let l = 0; l < numLevels; l++) row.push(rng.int(2 + l));
    return row;
  });
  return { x, labels };
}

forEachBackend('evaluation metrics', () => {
  it('topK returns the k largest, descending, lower index first on ties', () => {
    const row = Float32Array.from([0.1, 0.9, -1, 0.9, 0.5, Number.NEGATIVE_INFINITY, 0.7]);
    const idx = new Int32Array(4);
    const sim = new Float32Array(4);
    topK(row, 4, idx, sim);
    assert.deepEqual(Array.from(idx), [1, 3, 6, 4]);
    assert.deepEqual(Array.from(sim), [0.9, 0.9, 0.7, 0.5].map(Math.fround));
  });

  it('nearestNeighbors: exact, leave-one-out, independent of the block size', () => {
    tf.tidy(() => {
      const x = angles([0, 10, 30, 90, 200]);
      const a = nearestNeighbors(x, x, 2, { excludeSelf: true });
      assert.deepEqual(Array.from(a.indices), [1, 2, 0, 2, 1, 0, 2, 1, 3, 0]);
      const b = nearestNeighbors(x, x, 2, { excludeSelf: true, blockSize: 2 });
      assert.deepEqual(Array.from(b.indices), Array.from(a.indices));
    });
  });

  it('retrieval metrics match a hand computation', () => {
    tf.tidy(() => {
      const x = angles([0, 10, 30, 90]);
      const [coarse, fine] = retrievalMetrics(
        x,
        [
          [0, 0],
          [0, 1],
          [0, 0],
          [1, 2],
        ],
        { recallAt: [1, 5] },
      );
      assert.deepEqual(coarse, {
        level: 0,
        precisionAt1: 1,
        recallAt: { 1: 1, 5: 1 },
        rPrecision: 1,
        mapAtR: 1,
        numQueries: 3,
      });
      assert.deepEqual(fine, {
        level: 1,
        precisionAt1: 0,
        recallAt: { 1: 0, 5: 1 },
        rPrecision: 0,
        mapAtR: 0,
        numQueries: 2,
      });
    });
  });

  it('retrieval metrics match the brute-force oracle (leave-one-out and with a database)', () => {
    const rng = new Rng(11);
    for (let trial = 0; trial < 4; trial++) {
      const q = randomSet(rng, 30, 5, 3);
      const db = randomSet(rng, 25, 5, 3);
      tf.tidy(() => {
        const qx = tf.tensor2d(q.x);
        const ks = [1, 3, 10];
        const own = retrievalMetrics(qx, q.labels, { recallAt: ks, blockSize: 7 });
        const ownOracle = retrievalOracle(cosineMatrix(q.x, q.x), q.labels, q.labels, true, ks);
        const cross = retrievalMetrics(qx, q.labels, {
          recallAt: ks,
          database: { embeddings: tf.tensor2d(db.x), labels: db.labels },
        });
        const crossOracle = retrievalOracle(cosineMatrix(q.x, db.x), q.labels, db.labels, false, ks);
        for (const [ours, oracle] of [
          [own, ownOracle],
          [cross, crossOracle],
        ] as const) {
          ours.forEach((level, l) => {
            assert.equal(level.numQueries, oracle[l].n);
            expectClose(level.precisionAt1, oracle[l].p1, { atol: 1e-12 }, `p@1 level ${l}`);
            expectClose(level.rPrecision, oracle[l].rp, { atol: 1e-12 }, `R-precision level ${l}`);
            expectClose(level.mapAtR, oracle[l].map, { atol: 1e-12 }, `mAP@R level ${l}`);
            expectClose(
              ks.map((k) => level.recallAt[k]),
              oracle[l].recall,
              { atol: 1e-12 },
              `recall level ${l}`,
            );
          });
        }
      });
    }
  });

  it('a collapsed embedding (all ties) scores low, not perfectly', () => {
    tf.tidy(() => {
      const [level] = retrievalMetrics(tf.ones([6, 3]), [0, 0, 0, 1, 1, 1]);
      assert.equal(level.precisionAt1, 0);
      assert.equal(level.mapAtR, 0); // both relevant items rank 5th of 5 (pessimistic ties), outside the top R = 2
    });
  });

  it('queryIndices restricts the queries (unseen-class protocol)', () => {
    tf.tidy(() => {
      const x = angles([0, 10, 30, 90]);
      const [coarse] = retrievalMetrics(
        x,
        [
          [0, 0],
          [0, 1],
          [0, 0],
          [1, 2],
        ],
        { queryIndices: [0, 3] },
      );
      assert.equal(coarse.numQueries, 1);
    });
  });

  it('weighted kNN votes with exp(sim / τ) and reports accuracy per level', () => {
    tf.tidy(() => {
      // query at 0°; neighbours: 5° (class [0,0]), 20° and 25° (class [0,1]); k = 3
      const db = angles([5, 20, 25, 180]);
      const dbLabels = [
        [0, 0],
        [0, 1],
        [0, 1],
        [1, 2],
      ];
      const sharp = knnClassify(angles([0]), [[0, 1]], db, dbLabels, { k: 3, temperature: 0.01 });
      assert.deepEqual(Array.from(sharp.predicted.values), [0, 0]); // the closest dominates at small τ
      assert.deepEqual(sharp.accuracyByLevel, [1, 0]);
      const flat = knnClassify(angles([0]), [[0, 1]], db, dbLabels, { k: 3, temperature: 10 });
      assert.deepEqual(Array.from(flat.predicted.values), [0, 1]); // two votes beat one at large τ
      assert.equal(flat.accuracy, 1);
    });
  });

  it('mistake severity is the mean LCA height of wrong predictions', () => {
    const truth = [
      [0, 0, 0],
      [0, 0, 1],
      [0, 1, 2],
      [1, 2, 3],
    ];
    const predicted = [
      [0, 0, 0],
      [0, 0, 0],
      [0, 0, 0],
      [0, 0, 0],
    ];
    const s = mistakeSeverity(predicted, truth);
    assert.equal(s.numMistakes, 3);
    assert.deepEqual(s.histogram, [0, 1, 1, 1]);
    assert.equal(s.meanLcaHeight, 2);
    assert.equal(mistakeSeverity(truth, truth).meanLcaHeight, 0);
  });

  it('hierarchy consistency counts triples exactly, as the oracle does', () => {
    const rng = new Rng(5);
    const set = randomSet(rng, 40, 4, 3);
    tf.tidy(() => {
      const ours = hierarchyConsistency(tf.tensor2d(set.x), set.labels, { blockSize: 9 });
      const oracle = consistencyOracle(cosineMatrix(set.x, set.x), set.labels);
      ours.byLevel.forEach((level, l) => {
        assert.equal(level.triples, oracle[l].total);
        expectClose(level.violationRate, oracle[l].wrong / oracle[l].total, { atol: 1e-12 }, `level ${l}`);
      });
      const perfect = hierarchyConsistency(angles([0, 1, 20, 21, 90, 91]), [
        [0, 0],
        [0, 0],
        [0, 1],
        [0, 1],
        [1, 2],
        [1, 2],
      ]);
      assert.equal(perfect.violationRate, 0);
    });
  });

  it('linear probe separates linearly separable classes; no leaked tensors', () => {
    const rng = new Rng(3);
    const make = (n: number) => {
      const labels = Array.from({ length: n }, () => rng.int(4));
      const x = labels.map((c) =>
        [c === 0 ? 3 : 0, c === 1 ? 3 : 0, c === 2 ? 3 : 0].map((v) => v + 0.5 * rng.normal()),
      );
      return { x: tf.tensor2d(x), labels };
    };
    const train = make(400);
    const test = make(200);
    const before = tf.memory().numTensors;
    const result = linearProbe(train.x, train.labels, test.x, test.labels, { epochs: 20 });
    assert.equal(tf.memory().numTensors, before);
    assert.equal(result.numClasses, 4);
    assert.ok(result.testAccuracy > 0.95, `test accuracy ${result.testAccuracy}`);
    tf.dispose([train.x, test.x]);
  });
});
