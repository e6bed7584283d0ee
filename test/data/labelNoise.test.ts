/** `--label-noise p`: exactly round(p·n) training labels flipped by the seed, the test split untouched. */
import assert from 'node:assert/strict';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadTrainingData } from '../../src/data/dataset.js';
import { flipLabels, withLabelNoise } from '../../src/data/labelNoise.js';
import { useBackend } from '../../src/engine/backend.js';
import { ContrastiveError } from '../../src/errors.js';
import { train } from '../../src/run/train.js';
import { resolveTrainConfig } from '../../src/train/config.js';
import { quietProgress, smallConfig, tempRuns } from '../helpers/train.js';

/** A 3-level tree's label rows: leaf k has path [k % 2, 10 + (k % 4), 100 + k] (leaves 0..5). */
function treeRows(n: number): Int32Array {
  const rows = new Int32Array(n * 3);
  for (let i = 0; i < n; i++) rows.set([(i % 6) % 2, 10 + ((i % 6) % 4), 100 + (i % 6)], i * 3);
  return rows;
}

const rowOf = (labels: Int32Array, i: number) => Array.from(labels.subarray(i * 3, i * 3 + 3));

describe('label noise', () => {
  it('flips exactly round(p·n) rows, each to another leaf with that leaf’s whole path', () => {
    const labels = treeRows(101);
    const paths = new Set(Array.from({ length: 101 }, (_, i) => rowOf(labels, i).join('/')));
    for (const p of [0.2, 0.4, 0.5, 0.95]) {
      const { labels: noisy, rows } = flipLabels(labels, 3, p, 7);
      assert.equal(rows.length, Math.round(p * 101));
      const flipped = new Set(rows);
      for (let i = 0; i < 101; i++) {
        const before = rowOf(labels, i);
        const now = rowOf(noisy, i);
        if (flipped.has(i)) {
          assert.notEqual(now[2], before[2], `row ${i} keeps its leaf`);
          assert.ok(paths.has(now.join('/')), `row ${i} got a path no leaf has: ${now.join('/')}`);
        } else assert.deepEqual(now, before);
      }
      // the input is not changed
      assert.deepEqual(labels, treeRows(101));
    }
  });

  it('draws new leaves across branches, not only among siblings', () => {
    const labels = treeRows(600);
    const { labels: noisy, rows } = flipLabels(labels, 3, 0.5, 1);
    const coarseChanged = [...rows].filter((i) => noisy[i * 3] !== labels[i * 3]).length;
    // 3 of the 5 other leaves are in the other top-level branch: about 60 % of 300 flips
    assert.ok(coarseChanged > 100 && coarseChanged < 260, `${coarseChanged} of ${rows.length}`);
  });

  it('the same seed gives the same flips, another seed others; p = 0 flips nothing', () => {
    const labels = treeRows(200);
    const a = flipLabels(labels, 3, 0.3, 11);
    const b = flipLabels(labels, 3, 0.3, 11);
    const c = flipLabels(labels, 3, 0.3, 12);
    assert.deepEqual(a, b);
    assert.notDeepEqual(a.rows, c.rows);
    assert.equal(flipLabels(labels, 3, 0, 11).rows.length, 0);
  });

  it('leaves rows with an unknown leaf alone and counts n over the fully labelled rows', () => {
    const labels = treeRows(40);
    for (let i = 0; i < 10; i++) labels[i * 3 + 2] = -1;
    const { labels: noisy, rows } = flipLabels(labels, 3, 0.5, 3);
    assert.equal(rows.length, 15);
    assert.ok([...rows].every((i) => i >= 10));
    assert.deepEqual(noisy.subarray(0, 30), labels.subarray(0, 30));
  });

  it('p outside [0, 1) is a one-line error naming --label-noise', async () => {
    assert.throws(() => flipLabels(treeRows(10), 3, 1, 0), /--label-noise must be in \[0, 1\)/);
    for (const labelNoise of [1, -0.1]) {
      await assert.rejects(
        resolveTrainConfig({ out: 'x', labelNoise }),
        (e: unknown) => e instanceof ContrastiveError && /--label-noise must be in \[0, 1\)/.test(e.message),
      );
    }
  });

  it('on Fashion-MNIST: the training labels are flipped, the test split is the same object and unchanged', async () => {
    const data = await loadTrainingData({ data: 'fashion-mnist', trainLimit: 300, testLimit: 100 });
    const testLabels = data.test.labels.slice();
    const noisy = withLabelNoise(data, 0.2, 5);
    const depth = data.tree.depth;
    let differ = 0;
    for (let i = 0; i < data.train.size; i++) {
      if (noisy.train.labels[i * depth + depth - 1] !== data.train.labels[i * depth + depth - 1]) differ++;
    }
    assert.equal(differ, 60);
    assert.equal(noisy.test, data.test);
    assert.deepEqual(data.test.labels, testLabels);
    assert.equal((noisy.train as typeof data.train).inputs, data.train.inputs);
    assert.equal(withLabelNoise(data, 0, 5), data);
  });

  describe('a run', () => {
    let dir: string;
    before(async () => {
      dir = await tempRuns();
      await useBackend('wasm');
    });
    after(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    it('records --label-noise in config.json and the true labels in data.json', async () => {
      const sizes = { epochs: 1, trainLimit: 192, testLimit: 64, method: 'supcon' as const, evalEvery: 0 };
      await train(await smallConfig(join(dir, 'noisy'), { ...sizes, labelNoise: 0.4 }), {
        progress: quietProgress(),
      });
      await train(await smallConfig(join(dir, 'clean'), sizes), { progress: quietProgress() });
      const config = JSON.parse(await readFile(join(dir, 'noisy', 'config.json'), 'utf8'));
      assert.equal(config.labelNoise, 0.4);
      assert.equal(JSON.parse(await readFile(join(dir, 'clean', 'config.json'), 'utf8')).labelNoise, 0);
      // the fingerprint is of the data as given, so `eval` (true labels) accepts the run
      const fingerprint = async (run: string) =>
        JSON.parse(await readFile(join(dir, run, 'data.json'), 'utf8')).train.sha256;
      assert.equal(await fingerprint('noisy'), await fingerprint('clean'));
    });
  });
});
