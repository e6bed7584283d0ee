/** The whole command-line workflow on the embedded data: train → eval → embed → compare → report. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { EMBEDDED_FASHION_MNIST_DIR } from '../../src/data/fashionMnist.js';
import { readNpy } from '../../src/data/npy.js';
import { REPO_ROOT } from '../helpers/fixtures.js';
import { tempRuns } from '../helpers/train.js';

describe('contrastive train / eval / embed / compare / report', () => {
  const bin = resolve(REPO_ROOT, 'dist/src/cli/bin.js');
  const run = (...args: string[]) =>
    spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 300_000 });
  let dir: string;
  before(async () => {
    dir = await tempRuns();
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('trains from a config file plus flags, evaluates, embeds and reports', async () => {
    const config = join(dir, 'config.json');
    await writeFile(
      config,
      JSON.stringify({
        method: 'hicone',
        encoder: 'mlp',
        'train-limit': 256,
        testLimit: 200,
        batchSize: 64,
        epochs: 1,
        backend: 'wasm',
        holdoutClasses: ['Shirt'],
      }),
    );
    const out = join(dir, 'hc');
    const t = run(
      'train',
      '--config',
      config,
      '--data-dir',
      EMBEDDED_FASHION_MNIST_DIR,
      '--out',
      out,
      '--seed',
      '3',
    );
    assert.equal(t.status, 0, t.stderr);
    assert.match(t.stderr, /engine: wasm/);
    assert.match(t.stderr, /epoch 1\/1: loss \d/);
    const saved = JSON.parse(await readFile(join(out, 'config.json'), 'utf8'));
    assert.equal(saved.method, 'hicone');
    assert.equal(saved.seed, 3);
    assert.deepEqual(saved.holdoutClasses, ['Shirt']);

    const e = run('eval', out, '--knn-k', '10', '--probe-epochs', '2', '--strips', '2');
    assert.equal(e.status, 0, e.stderr);
    assert.match(e.stdout, /^level\s+kNN acc\s+P@1/m);
    assert.match(e.stdout, /held-out classes: \d+ queries/);
    const evaluation = JSON.parse(await readFile(join(out, 'eval.json'), 'utf8'));
    assert.equal(evaluation.retrieval.length, 3);
    assert.equal(evaluation.strips.length, 2);
    // baselines beside the result: raw pixels and the run's own untrained encoder, scored alike
    assert.deepEqual(
      evaluation.baselines.map((b: { name: string }) => b.name),
      ['raw input', 'untrained encoder'],
    );
    for (const b of evaluation.baselines) {
      assert.equal(b.knnAccuracyByLevel.length, 3);
      assert.ok(b.mapAtR.every((v: number) => v > 0 && v <= 1));
    }
    assert.match(e.stdout, /^trained\s+[\d.]+/m);
    assert.match(e.stdout, /^raw input\s+[\d.]+/m);
    assert.match(e.stdout, /^untrained encoder\s+[\d.]+/m);

    const m = run('embed', out, '--out', join(dir, 'emb.npy'));
    assert.equal(m.status, 0, m.stderr);
    const emb = await readNpy(join(dir, 'emb.npy'));
    assert.deepEqual(emb.shape, [200, 128]);
    const labels = (await readFile(join(dir, 'emb.npy.labels.txt'), 'utf8')).trim().split('\n');
    assert.equal(labels.length, 200);
    assert.match(labels[0], /^(Clothes|Goods)\/\w+\/.+/);

    const c = run('compare', out, out);
    assert.equal(c.status, 0, c.stderr);
    assert.match(c.stdout, /raw input: mAP@R class %\s+[\d.]+/);
    assert.match(c.stdout, /untrained encoder: kNN acc class %\s+[\d.]+/);
    const r = run('report', out);
    assert.equal(r.status, 0, r.stderr);
    assert.ok(existsSync(join(out, 'report.html')));
    assert.match(await readFile(join(out, 'report.html'), 'utf8'), /hc · raw input/);
  });

  it('a config file with an unknown key or a bad value is an error naming it', async () => {
    const bad = join(dir, 'bad.json');
    await writeFile(bad, JSON.stringify({ method: 'supcon', lr: 0.1 }));
    const r = run('train', '--config', bad, '--out', join(dir, 'x'));
    assert.equal(r.status, 1);
    assert.match(r.stderr, /config file .*bad\.json: unknown key "lr"/);
    await writeFile(bad, JSON.stringify({ epochs: 'many' }));
    assert.match(
      run('train', '--config', bad, '--out', join(dir, 'x')).stderr,
      /--epochs must be a number, but got "many"/,
    );
    assert.match(run('train', '--method', 'simclr').stderr, /--out is required/);
    assert.match(
      run('train', '--out', join(dir, 'y'), '--holdout-classes', 'Sock', '--epochs', '1').stderr,
      /unknown class "Sock"; known: T-shirt\/top/,
    );
  });
});
