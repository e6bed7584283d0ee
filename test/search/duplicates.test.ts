/** findDuplicates on planted near-duplicates: shifted, noised, JPEG re-encoded copies of Fashion-MNIST test images. */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { EMBEDDED_FASHION_MNIST_DIR, loadFashionMnist } from '../../src/data/fashionMnist.js';
import { useBackend } from '../../src/engine/backend.js';
import { ContrastiveError } from '../../src/errors.js';
import { Rng } from '../../src/random.js';
import { EmbeddingIndex, findDuplicates } from '../../src/search/index.js';
import { plantedCopy } from './fixtures.js';

describe('findDuplicates', () => {
  let index: EmbeddingIndex;
  const planted: [string, string][] = [];
  const shifted: [string, string][] = [];
  // copies of other items, not in the index: what the threshold is calibrated on
  let calibrationCopies: { ids: string[]; embeddings: Float32Array; transformation: string };
  before(async () => {
    await useBackend('wasm');
    const test = await loadFashionMnist({ split: 'test', dataDir: EMBEDDED_FASHION_MNIST_DIR });
    const n = test.shape[0];
    const rng = new Rng(11);
    const copies: Float32Array[] = [];
    const order = rng.permutation(n);
    const originals = Array.from(order.subarray(0, 200));
    const calibrationItems = Array.from(order.subarray(200, 500));
    // even copies: noise + JPEG re-encoding; odd copies: also shifted one pixel to the right
    for (const [c, i] of originals.entries()) {
      copies.push(await plantedCopy(test.images.subarray(i * 784, (i + 1) * 784), c % 2, 0, rng));
      (c % 2 ? shifted : planted).push([String(i), `copy-${i}`]);
    }
    // embedding: centred pixels through a seeded random projection (as in the other search tests)
    const dim = 64;
    const projection = Float32Array.from({ length: 784 * dim }, () => rng.normal());
    for (const i of calibrationItems)
      copies.push(await plantedCopy(test.images.subarray(i * 784, (i + 1) * 784), 0, 0, rng));
    const all = new Float32Array((n + copies.length) * 784);
    all.set(test.images);
    copies.forEach((c, j) => {
      all.set(c, (n + j) * 784);
    });
    const vectors = tf.tidy(() => {
      const x = tf.tensor2d(all, [n + copies.length, 784]);
      const centred = tf.sub(x, tf.mean(tf.slice(x, [0, 0], [n, 784]), 0, true));
      return tf.matMul(centred, tf.tensor2d(projection, [784, dim])).dataSync() as Float32Array;
    });
    const plantedCount = originals.length;
    calibrationCopies = {
      ids: calibrationItems.map(String),
      embeddings: Float32Array.from(vectors.subarray((n + plantedCount) * dim)),
      transformation: 'noise + JPEG',
    };
    index = EmbeddingIndex.create({ tree: test.tree, dim });
    const label = (i: number) => test.tree.path(2, test.classIds[i]);
    index.add(
      [
        ...Array.from({ length: n }, (_, i) => ({ id: i, label: label(i) })),
        ...originals.map((i) => ({ id: `copy-${i}`, label: label(i) })),
      ],
      Float32Array.from(vectors.subarray(0, (n + plantedCount) * dim)),
    );
  });

  it('finds re-encoded, noised copies with high precision and recall (threshold calibrated on half of them)', () => {
    const known = planted.slice(0, 50);
    const heldOut = new Set(planted.slice(50).map(([a, b]) => `${a}|${b}`));
    const report = findDuplicates(index, { targetPrecision: 0.99, knownPairs: known });
    assert.equal(report.calibration?.from, 'known-pairs');
    assert.ok(report.calibration!.reached);
    const isHeldOut = (p: { a: string; b: string }) =>
      heldOut.has(`${p.a}|${p.b}`) || heldOut.has(`${p.b}|${p.a}`);
    const knownIds = new Set(known.flat());
    // evaluate on the held-out half only: pairs touching a calibration item are not judged here
    const shiftedIds = new Set(shifted.flat());
    const judged = report.pairs.filter(
      (p) => !knownIds.has(p.a) && !knownIds.has(p.b) && !shiftedIds.has(p.a) && !shiftedIds.has(p.b),
    );
    const found = judged.filter(isHeldOut).length;
    const precision = found / judged.length;
    const recall = found / heldOut.size;
    const shiftedFound = report.pairs.filter((p) => shifted.some(([a, b]) => a === p.a && b === p.b)).length;
    console.log(
      `planted duplicates (pixel projection): threshold ${report.threshold.toFixed(4)}; re-encoded+noised copies: precision ${precision.toFixed(3)}, recall ${recall.toFixed(3)} (${found}/${heldOut.size}); also shifted 1 px: recall ${(shiftedFound / shifted.length).toFixed(3)} (pixels are not shift-invariant); ${report.clusters.length} clusters`,
    );
    assert.ok(precision >= 0.9, `precision ${precision}`);
    assert.ok(recall >= 0.9, `recall ${recall}`);
    for (const cluster of report.clusters) assert.ok(cluster.length >= 2);
    for (let i = 1; i < report.pairs.length; i++)
      assert.ok(report.pairs[i - 1].score >= report.pairs[i].score);
  });

  it('calibrated on copies of other items, the printed precision holds on planted copies', () => {
    const report = findDuplicates(index, { targetPrecision: 0.99, copies: calibrationCopies });
    assert.equal(report.calibration?.from, 'copies');
    const truth = new Set([...planted, ...shifted].map(([a, b]) => [a, b].sort().join('|')));
    const right = report.pairs.filter((p) => truth.has([p.a, p.b].sort().join('|'))).length;
    const precision = right / report.pairs.length;
    const recall = (list: [string, string][]) =>
      list.filter(([a, b]) =>
        report.pairs.some((p) => [p.a, p.b].sort().join('|') === [a, b].sort().join('|')),
      ).length / list.length;
    console.log(
      `planted duplicates, calibrated on 300 noise+JPEG copies of other items: threshold ${report.threshold.toFixed(4)}, printed precision ${report.calibration!.precision.toFixed(3)}; measured on the index: precision ${precision.toFixed(3)} (${right}/${report.pairs.length}), recall noise+JPEG ${recall(planted).toFixed(3)}, shifted 1 px + noise + JPEG ${recall(shifted).toFixed(3)}`,
    );
    assert.ok(precision >= 0.99 - 0.03, `measured precision ${precision}`);
    assert.ok(recall(planted) >= 0.8, `recall ${recall(planted)}`);
  });

  it('no threshold and no target: target 0.99 calibrated on feature-noise copies, also without labels', () => {
    const report = findDuplicates(index);
    assert.equal(report.calibration?.from, 'copies');
    assert.equal(report.calibration?.targetPrecision, 0.99);
    assert.match(report.calibration!.transformation!, /feature noise/);
    assert.ok(report.threshold < 1 && report.calibration!.recall! > 0);
    const bare = EmbeddingIndex.create({ tree: index.tree, dim: index.dim });
    const items = index.items().slice(0, 2000);
    bare.add(
      items.map((it) => ({ id: it.id })),
      items.map((it) => index.embedding(it.id)),
    );
    const unlabelled = findDuplicates(bare, { targetPrecision: 0.99 });
    assert.equal(unlabelled.calibration?.from, 'copies');
    assert.ok(unlabelled.threshold < 1, `threshold ${unlabelled.threshold}`);
    assert.ok(unlabelled.calibration!.negatives! > 0);
    const given = findDuplicates(index, { threshold: 0.99 });
    assert.equal(given.calibration, undefined);
    assert.ok(given.pairs.every((p) => p.score >= 0.99));
  });

  it('with an HNSW graph the candidates come from it and the planted pairs are still found', async () => {
    const exact = findDuplicates(index, { threshold: 0.99 });
    await index.buildApproximate({ connectivity: 16, expansionAdd: 64, expansionSearch: 64 });
    try {
      const approx = findDuplicates(index, { threshold: 0.99 });
      const key = (p: { a: string; b: string }) => [p.a, p.b].sort().join('|');
      const exactKeys = new Set(exact.pairs.map(key));
      const found = approx.pairs.filter((p) => exactKeys.has(key(p))).length;
      assert.ok(found >= 0.95 * exact.pairs.length, `${found} of ${exact.pairs.length}`);
      for (const p of approx.pairs) assert.ok(p.score >= 0.99);
    } finally {
      index.dropApproximate();
    }
  });

  it('bad options are ContrastiveErrors naming the field', () => {
    const throwsNaming = (f: () => unknown, pattern: RegExp) =>
      assert.throws(f, (e: unknown) => e instanceof ContrastiveError && pattern.test(e.message));
    throwsNaming(
      () => findDuplicates(index, { threshold: 0.9, targetPrecision: 0.9 }),
      /give one of threshold and targetPrecision, but got both/,
    );
    throwsNaming(
      () => findDuplicates(index, { threshold: 2 }),
      /threshold must be a cosine similarity in \[-1, 1\], but got 2/,
    );
    throwsNaming(
      () => findDuplicates(index, { threshold: 0.9, neighbors: 0 }),
      /neighbors must be an integer >= 1/,
    );
    throwsNaming(
      () => findDuplicates(index, { targetPrecision: 0.9, knownPairs: [['0', 'nope']] }),
      /knownPairs\[0\] must name two items of the index, but "nope" is not one/,
    );
  });
});
