import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { EMBEDDED_FASHION_MNIST_DIR } from '../../src/data/fashionMnist.js';
import { useBackend } from '../../src/engine/backend.js';
import {
  aggregate,
  clampBindsOf,
  labelNoiseArms,
  runStudy,
  STUDY_ARMS,
  selectArms,
} from '../../src/experiments/study.js';
import { quietProgress, tempRuns } from '../helpers/train.js';

/** Shared options of a study small enough for a test: 1-epoch MLP runs on the embedded subset. */
const tinyRuns = (sizes: { trainLimit: number; testLimit: number; queueSize?: number }) =>
  ({
    encoder: 'mlp',
    epochs: 1,
    batchSize: 32,
    evalEvery: 0,
    backend: 'wasm',
    dataDir: EMBEDDED_FASHION_MNIST_DIR,
    ...sizes,
  }) as never;

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
      shared: tinyRuns({ trainLimit: 128, testLimit: 100, queueSize: 64 }),
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

  it('tunes τ and learning rate per method on a validation split, and the runs use the choice', async () => {
    const out = join(dir, 'tuned');
    await runStudy({
      out,
      seeds: [3],
      shared: tinyRuns({ trainLimit: 160, testLimit: 60 }),
      arms: [
        { name: 'supcon', options: { method: 'supcon' } },
        {
          name: 'supcon-unseen',
          options: { method: 'supcon', holdoutClasses: ['Shirt'] },
          tuneWith: 'supcon',
        },
        { name: 'ce', options: { method: 'ce' } },
      ] as never,
      tune: { temperatures: [0.1, 0.5], learningRates: [0.002], epochs: 1, validationFraction: 0.25 },
      progress: quietProgress(),
    });
    const tuning = JSON.parse(await readFile(join(out, 'tuning.json'), 'utf8')) as Record<
      string,
      { temperature: number; learningRate: number; score: number; grid: { score: number }[] }
    >;
    assert.deepEqual(Object.keys(tuning), ['supcon', 'ce']);
    assert.equal(tuning.supcon.grid.length, 2);
    assert.equal(tuning.ce.grid.length, 1, 'ce has no temperature to search');
    assert.equal(tuning.supcon.score, Math.max(...tuning.supcon.grid.map((g) => g.score)));
    const config = async (run: string) =>
      JSON.parse(await readFile(join(out, run, 'config.json'), 'utf8')) as {
        temperature: number;
        learningRate: number;
        validationFraction: number;
        trainLimit: number;
      };
    for (const run of ['supcon-s3', 'supcon-unseen-s3']) {
      const c = await config(run);
      assert.equal(c.temperature, tuning.supcon.temperature);
      assert.equal(c.learningRate, 0.002);
      assert.equal(c.validationFraction, 0, 'the final runs evaluate on the test split');
    }
    const tuningRun = await config(join('tuning', 'supcon-t0.5-lr0.002'));
    assert.equal(tuningRun.validationFraction, 0.25);
    // 25% of the 160 training rows are the validation split it was scored on
    const scored = JSON.parse(
      await readFile(join(out, 'tuning', 'supcon-t0.5-lr0.002', 'eval.json'), 'utf8'),
    ) as { numTrain: number; numTest: number };
    assert.deepEqual([scored.numTrain, scored.numTest], [120, 40]);
    assert.match(
      await readFile(join(out, 'results.md'), 'utf8'),
      /## Tuning[\s\S]*\| supcon \| (0\.1|0\.5) \| 0\.002 \|/,
    );
  });

  it('starts again a run stopped before its first checkpoint instead of refusing its folder', async () => {
    const out = join(dir, 'early');
    // what a run killed during its first epoch leaves: a config and logged steps, no checkpoint
    await mkdir(join(out, 'supcon-s0'), { recursive: true });
    await writeFile(join(out, 'supcon-s0', 'config.json'), '{}');
    await writeFile(join(out, 'supcon-s0', 'metrics.jsonl'), '{"step":10,"loss":5}\n');
    await runStudy({
      out,
      seeds: [0],
      shared: tinyRuns({ trainLimit: 64, testLimit: 40 }),
      arms: [{ name: 'supcon', options: { method: 'supcon' } }] as never,
      progress: quietProgress(),
    });
    assert.ok(existsSync(join(out, 'supcon-s0', 'eval.json')));
  });
  it('label-noise arms copy their parent with --label-noise and its tuning; --arms selects by name', () => {
    const arms = labelNoiseArms([0.2, 0.4]);
    assert.deepEqual(
      arms.map((a) => a.name),
      [
        'supcon-noise20',
        'himulcone-noise20',
        'moco-noise20',
        'sane-noise20',
        'supcon-noise40',
        'himulcone-noise40',
        'moco-noise40',
        'sane-noise40',
      ],
    );
    assert.deepEqual(arms[3], {
      name: 'sane-noise20',
      options: { method: 'sane', labelNoise: 0.2 },
      tuneWith: 'sane',
    });
    assert.throws(() => labelNoiseArms([1]), /--label-noise-levels must be in \(0, 1\)/);
    const all = [...STUDY_ARMS, ...arms];
    assert.deepEqual(
      selectArms(all, ['sane-noise40', 'hicone']).map((a) => a.name),
      ['hicone', 'sane-noise40'],
    );
    assert.equal(selectArms(all, []).length, all.length);
    assert.throws(
      () => selectArms(all, ['hicone', 'nope']),
      /--arms: unknown arm nope; known arms: ce, simclr, supcon,/,
    );
  });

  it('averages the logged clamp activity per level over a run’s step records', () => {
    assert.deepEqual(
      clampBindsOf([
        { kind: 'step', epoch: 1, step: 2, loss: 1, hiconeClampBinds: [1, 0.5, 0] },
        { kind: 'step', epoch: 1, step: 4, loss: 1, hiconeClampBinds: [0, 0, 0] },
        { kind: 'epoch', epoch: 1, step: 4, loss: 1 },
      ]),
      [0.5, 0.25, 0],
    );
    assert.equal(clampBindsOf([{ kind: 'step', epoch: 1, step: 2, loss: 1 }]), undefined);
  });

  it('a noise arm alone is tuned as its parent; the table has the clamp column, – for arms without the clamp', async () => {
    const out = join(dir, 'noise');
    await runStudy({
      out,
      seeds: [0],
      shared: tinyRuns({ trainLimit: 96, testLimit: 40 }),
      arms: [
        { name: 'hicone', options: { method: 'hicone' } },
        ...labelNoiseArms([0.2]).filter((a) => a.name === 'supcon-noise20'),
      ],
      tune: { temperatures: [0.1], learningRates: [0.002], epochs: 1, validationFraction: 0.25 },
      progress: quietProgress(),
    });
    const tuning = JSON.parse(await readFile(join(out, 'tuning.json'), 'utf8')) as Record<string, unknown>;
    assert.deepEqual(Object.keys(tuning), ['hicone', 'supcon']);
    assert.ok(existsSync(join(out, 'tuning', 'supcon-t0.1-lr0.002', 'eval.json')));
    const config = JSON.parse(await readFile(join(out, 'supcon-noise20-s0', 'config.json'), 'utf8'));
    assert.equal(config.labelNoise, 0.2);
    const md = await readFile(join(out, 'results.md'), 'utf8');
    assert.match(md, /\| clamp binds \(per level, %\) \|/);
    assert.match(md, /\| hicone \|.* \| \d+\.\d \/ \d+\.\d \/ 0\.0 \|/);
    assert.match(md, /\| supcon-noise20 \|.* \| – \|\n/);
  });
});
