import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { EMBEDDED_FASHION_MNIST_DIR } from '../../src/data/fashionMnist.js';
import { useBackend } from '../../src/engine/backend.js';
import { aggregate, runStudy } from '../../src/study/study.js';
import { quietProgress, tempRuns } from '../helpers/train.js';

describe('study', () => {
  let dir: string;
  before(async () => {
    dir = await tempRuns();
    await useBackend('wasm');
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('aggregates mean and sample standard deviation', () => {
    assert.deepEqual(aggregate([1, 2, 3]), { mean: 2, std: 1, n: 3 });
    assert.deepEqual(aggregate([5]), { mean: 5, std: 0, n: 1 });
  });

  it('runs arms x seeds, writes results.md with mean ± std and a report, and resumes without retraining', async () => {
    const options = {
      out: join(dir, 'study'),
      seeds: [0, 1],
      shared: {
        encoder: 'mlp',
        epochs: 1,
        trainLimit: 128,
        testLimit: 100,
        batchSize: 32,
        queueSize: 64,
        evalEvery: 0,
        backend: 'wasm',
        dataDir: EMBEDDED_FASHION_MNIST_DIR,
      } as never,
      arms: [
        { name: 'supcon', options: { method: 'supcon' } },
        { name: 'himulcone-unseen', options: { method: 'himulcone', holdoutClasses: ['Shirt'] } },
        { name: 'sane', options: { method: 'sane' } },
      ] as never,
      progress: quietProgress(),
    };
    const table = await runStudy(options);
    assert.deepEqual([...table.keys()], ['supcon', 'himulcone-unseen', 'sane']);
    assert.equal(table.get('supcon')?.get('knnFine')?.n, 2);
    assert.ok(table.get('himulcone-unseen')?.has('unseenCoarse'));
    assert.ok(!table.get('supcon')?.has('unseenCoarse'));
    const md = await readFile(join(dir, 'study', 'results.md'), 'utf8');
    assert.match(md, /\| supcon \| \d+\.\d\d ± \d+\.\d\d \|/);
    assert.ok(existsSync(join(dir, 'study', 'report.html')));
    // a second call finds every run evaluated and only re-aggregates
    const again = await runStudy(options);
    assert.deepEqual(again.get('sane')?.get('knnFine'), table.get('sane')?.get('knnFine'));
  });
});
