/** predictPath / calibrate on Fashion-MNIST projections: kNN-level accuracy, parent answers, calibrated precision, unseen classes. */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { useBackend } from '../../src/engine/backend.js';
import { ContrastiveError } from '../../src/errors.js';
import { knnClassify } from '../../src/eval/knn.js';
import { LabelTree } from '../../src/hierarchy/labelTree.js';
import { calibrate, EmbeddingIndex, type PathPrediction, predictPath } from '../../src/search/index.js';
import { type ProjectedFashionMnist, projectedFashionMnist } from './fixtures.js';

/** Fraction of predictions right down to level l, among those answered at level l or deeper (all with `full`). */
function accuracyAt(predictions: PathPrediction[], truth: Int32Array, level: number, full: boolean): number {
  let answered = 0;
  let right = 0;
  predictions.forEach((p, q) => {
    if (!full && p.depth <= level) return;
    answered++;
    if (p.levels.slice(0, level + 1).every((x, j) => x.id === truth[q * 3 + j])) right++;
  });
  return answered ? right / answered : Number.NaN;
}

describe('predictPath and calibrate', () => {
  let data: ProjectedFashionMnist;
  let index: EmbeddingIndex;
  let validation: { embeddings: Float32Array; labels: string[][] };
  let test: { embeddings: Float32Array; labels: string[][]; truth: Int32Array };
  before(async () => {
    await useBackend('wasm');
    data = await projectedFashionMnist(64, 7, 12_000);
    const { dim, trainCount } = data;
    index = EmbeddingIndex.create({ tree: data.tree, dim });
    index.add(
      Array.from({ length: trainCount }, (_, i) => ({ id: i, label: data.paths[i] })),
      data.vectors.subarray(0, trainCount * dim),
    );
    const half = trainCount + Math.floor((data.count - trainCount) / 2);
    validation = {
      embeddings: data.vectors.slice(trainCount * dim, half * dim),
      labels: data.paths.slice(trainCount, half),
    };
    const labels = data.paths.slice(half);
    test = { embeddings: data.vectors.slice(half * dim), labels, truth: data.tree.encode(labels) };
  });

  it('at full coverage, the kNN vote is at least as accurate as knnClassify at every level', () => {
    const predictions = predictPath(index, test.embeddings, { method: 'knn' });
    assert.ok(predictions.every((p) => p.depth === 3 && p.method === 'knn'));
    const rows = (paths: string[][]) => paths.map((p) => data.tree.row(data.tree.encode([p])[2]));
    const queries = tf.tensor2d(test.embeddings, [test.labels.length, data.dim]);
    const database = tf.tensor2d(data.vectors.subarray(0, data.trainCount * data.dim), [
      data.trainCount,
      data.dim,
    ]);
    const knn = knnClassify(queries, rows(test.labels), database, rows(data.paths.slice(0, data.trainCount)));
    tf.dispose([queries, database]);
    for (let l = 0; l < 3; l++) {
      const ours = accuracyAt(predictions, test.truth, l, true);
      assert.ok(ours >= knn.accuracyByLevel[l], `level ${l}: ${ours} < kNN ${knn.accuracyByLevel[l]}`);
    }
    // the confidences of a path never grow from a node to its child
    for (const p of predictions.slice(0, 200))
      for (let l = 1; l < 3; l++)
        assert.ok(p.levels[l].rawConfidence <= p.levels[l - 1].rawConfidence + 1e-12);
  });

  it('with a high threshold many answers stop at a parent node, and those answers are more accurate', () => {
    const strict = predictPath(index, test.embeddings, { method: 'knn', minConfidence: 0.995 });
    const full = predictPath(index, test.embeddings, { method: 'knn' });
    const parents = strict.filter((p) => p.depth > 0 && p.depth < 3).length;
    assert.ok(parents > strict.length * 0.1, `only ${parents} of ${strict.length} answered at a parent`);
    for (const p of strict)
      assert.deepEqual(
        p.path,
        p.levels.slice(0, p.depth).map((l) => l.name),
      );
    for (let l = 0; l < 3; l++) {
      const answered = accuracyAt(strict, test.truth, l, false);
      assert.ok(answered >= accuracyAt(full, test.truth, l, true), `level ${l}`);
    }
  });

  it('calibration reaches the target precision on held-out data, and names the method it chose', () => {
    const calibration = calibrate(index, validation, { targetPrecision: 0.95 });
    assert.deepEqual(
      calibration.methods.map((m) => m.method),
      ['knn', 'prototype'],
    );
    const chosen = calibration.methods.find((m) => m.method === calibration.method)!;
    for (const m of calibration.methods) assert.ok(chosen.meanCoverage >= m.meanCoverage);
    for (const level of calibration.levels) {
      if (level.coverage > 0) assert.ok(level.precision >= 0.95, `validation precision ${level.precision}`);
      assert.ok(
        level.calibrated.every((c, i) => i === 0 || c >= level.calibrated[i - 1]),
        'isotonic',
      );
    }
    const predictions = predictPath(index, test.embeddings, { calibration });
    assert.ok(predictions.every((p) => p.method === calibration.method));
    for (let l = 0; l < 3; l++) {
      const coverage = predictions.filter((p) => p.depth > l).length / predictions.length;
      if (coverage < 0.05) continue;
      const precision = accuracyAt(predictions, test.truth, l, false);
      // stated tolerance: 0.03 below the target on a test split of ~1,000 queries
      assert.ok(precision >= 0.95 - 0.03, `level ${l}: precision ${precision} at coverage ${coverage}`);
    }
  });

  it('items of a class the index has never seen land at their parent more often than seen ones', () => {
    const unseen = 'Shirt';
    const seenIndex = EmbeddingIndex.create({ tree: data.tree, dim: data.dim });
    const keep = Array.from({ length: data.trainCount }, (_, i) => i).filter(
      (i) => data.paths[i][2] !== unseen,
    );
    seenIndex.add(
      keep.map((i) => ({ id: i, label: data.paths[i] })),
      keep.map((i) => data.vectors.subarray(i * data.dim, (i + 1) * data.dim)),
    );
    const seenRows = validation.labels.map((_, i) => i).filter((i) => validation.labels[i][2] !== unseen);
    const calibration = calibrate(
      seenIndex,
      {
        embeddings: Float32Array.from(
          seenRows.flatMap((i) =>
            Array.from(validation.embeddings.subarray(i * data.dim, (i + 1) * data.dim)),
          ),
        ),
        labels: seenRows.map((i) => validation.labels[i]),
      },
      { targetPrecision: 0.9, methods: ['knn'] },
    );
    const predictions = predictPath(seenIndex, test.embeddings, { calibration });
    const leafRate = (isUnseen: boolean) => {
      const group = predictions.filter((_, q) => (test.labels[q][2] === unseen) === isUnseen);
      return group.filter((p) => p.depth === 3).length / group.length;
    };
    const parentRate = () => {
      const group = predictions.filter((_, q) => test.labels[q][2] === unseen);
      return group.filter((p) => p.depth === 2 && p.path[1] === 'Tops').length / group.length;
    };
    assert.ok(
      leafRate(true) < leafRate(false) - 0.15,
      `unseen answered at the leaf ${leafRate(true)} vs seen ${leafRate(false)}`,
    );
    assert.ok(parentRate() > 0.3, `unseen answered at Clothes/Tops: ${parentRate()}`);
  });

  it('unseen classes: a class missing from the index rarely names a class; every level states its guarantee', () => {
    // the index and the calibration lack Sandal; its test items should stop at Goods/Shoes
    const unseen = 'Sandal';
    const without = (paths: string[][]) => paths.map((_, i) => i).filter((i) => paths[i][2] !== unseen);
    const seenIndex = EmbeddingIndex.create({ tree: data.tree, dim: data.dim });
    const keep = without(data.paths.slice(0, data.trainCount));
    seenIndex.add(
      keep.map((i) => ({ id: i, label: data.paths[i] })),
      keep.map((i) => data.vectors.subarray(i * data.dim, (i + 1) * data.dim)),
    );
    const rows = without(validation.labels);
    const options = { targetPrecision: 0.95, methods: ['knn'] as const };
    const embeddings = rows.map((i) => validation.embeddings.subarray(i * data.dim, (i + 1) * data.dim));
    const labels = rows.map((i) => validation.labels[i]);
    const honest = calibrate(seenIndex, { embeddings, labels }, options);
    const naive = calibrate(seenIndex, { embeddings, labels }, { ...options, unseen: 'none' });
    assert.match(
      honest.guarantee!,
      /with 90\.0 % confidence .* names a class with probability <= [0-5]\.\d %/,
    );
    assert.match(naive.guarantee!, /unseen classes were not simulated/);
    for (const level of honest.levels)
      if (level.guarantee!.met) assert.ok(level.guarantee!.precisionLowerBound >= 0.95, level.levelName);
    const wrongClass = (calibration: typeof honest) => {
      const group = test.labels.map((_, q) => q).filter((q) => test.labels[q][2] === unseen);
      const predictions = predictPath(
        seenIndex,
        group.map((q) => test.embeddings.subarray(q * data.dim, (q + 1) * data.dim)),
        { calibration },
      );
      return predictions.filter((p) => p.depth === 3).length / group.length;
    };
    const [h, n] = [wrongClass(honest), wrongClass(naive)];
    assert.ok(h < n && h <= 0.25, `unseen items named a class: ${h} (naive ${n})`);
  });

  it('selfIds leave a query that is an index item out of its own neighbours and prototypes', () => {
    const tree = LabelTree.fromPaths(['A/x', 'A/y', 'B/z']);
    const small = EmbeddingIndex.create({ tree, dim: 3 });
    small.add(
      [
        { id: 'only-x', label: 'A/x' },
        { id: 'y1', label: 'A/y' },
        { id: 'y2', label: 'A/y' },
        { id: 'z1', label: 'B/z' },
      ],
      [
        [1, 0, 0],
        [0.6, 0.8, 0],
        [0.5, 0.85, 0.1],
        [0, 0, 1],
      ],
    );
    for (const method of ['knn', 'prototype'] as const) {
      const [withSelf] = predictPath(small, [[1, 0, 0]], { method, k: 3 });
      assert.deepEqual(withSelf.path, ['A', 'x'], method);
      const [leftOut] = predictPath(small, [[1, 0, 0]], { method, k: 3, selfIds: ['only-x'] });
      assert.deepEqual(leftOut.path, ['A', 'y'], method);
    }
    assert.throws(
      () => predictPath(small, [[1, 0, 0]], { selfIds: [] }),
      /selfIds must have one entry per row \(1\), but got 0/,
    );
  });

  it('bad options are ContrastiveErrors naming the field', () => {
    const throwsNaming = (f: () => unknown, pattern: RegExp) =>
      assert.throws(f, (e: unknown) => e instanceof ContrastiveError && pattern.test(e.message));
    const one = test.embeddings.subarray(0, data.dim);
    throwsNaming(
      () => predictPath(index, one, { minConfidence: [0.5, 0.5] }),
      /minConfidence must be a number or 3 numbers/,
    );
    throwsNaming(
      () => predictPath(index, one, { method: 'vote' as 'knn' }),
      /method must be 'knn', 'prototype' or 'auto'/,
    );
    throwsNaming(
      () => predictPath(index, one, { k: 0 }),
      /predictPath: k must be an integer >= 1, but got 0/,
    );
    throwsNaming(() => predictPath(index, one.subarray(0, 3)), /embeddings must hold N x 64 values/);
    throwsNaming(
      () => calibrate(index, { embeddings: one, labels: [] }),
      /validation\.labels must have one path per row \(1\)/,
    );
    throwsNaming(
      () =>
        calibrate(index, { embeddings: one, labels: [['Clothes', 'Tops', 'Shirt']] }, { targetPrecision: 2 }),
      /targetPrecision must be in \(0, 1\]/,
    );
  });
});
