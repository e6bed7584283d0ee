import assert from 'node:assert/strict';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { loadTrainingData } from '../../src/data/dataset.js';
import { useBackend } from '../../src/engine/backend.js';
import { ContrastiveError } from '../../src/errors.js';
import { loadLayersModelFromDir } from '../../src/models/modelIO.js';
import { loadRun } from '../../src/report/index.js';
import { train } from '../../src/run/train.js';
import { buildModel } from '../../src/train/buildModel.js';
import { quickKnn } from '../../src/train/quickKnn.js';
import { quietProgress, smallConfig, tempRuns } from '../helpers/train.js';

describe('trainer (embedded Fashion-MNIST subset, wasm)', () => {
  let dir: string;
  before(async () => {
    dir = await tempRuns();
    await useBackend('wasm');
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('himulcone: the loss and every level loss go down; the model, tree and metrics are saved', async () => {
    const config = await smallConfig(join(dir, 'hmce'), { method: 'himulcone', epochs: 3, trainLimit: 1024 });
    const result = await train(config, { progress: quietProgress() });
    assert.equal(result.interrupted, false);
    const run = await loadRun(join(dir, 'hmce'));
    const steps = run.history.filter((h) => h.kind === 'step');
    assert.ok(steps.length >= 8);
    const [first, last] = [steps[0], steps[steps.length - 1]];
    assert.ok(last.loss < first.loss - 0.5, `loss ${first.loss} -> ${last.loss}`);
    first.levelLosses!.forEach((l, level) => {
      assert.ok(last.levelLosses![level] < l, `level ${level}: ${l} -> ${last.levelLosses![level]}`);
    });
    assert.equal(run.history.filter((h) => h.kind === 'epoch').length, 3);
    // the saved backbone loads with stock tfjs-layers and embeds
    const model = await loadLayersModelFromDir(join(dir, 'hmce', 'model'));
    const out = model.predict(tf.zeros([2, 28, 28, 1])) as tf.Tensor;
    assert.deepEqual(out.shape, [2, 64]);
    tf.dispose([out]);
    model.dispose();
    const tree = JSON.parse(await readFile(join(dir, 'hmce', 'labelTree.json'), 'utf8'));
    assert.deepEqual(tree.levelNames, ['group', 'family', 'class']);
  });

  it('supcon: kNN accuracy of the trained encoder beats the untrained one clearly', async () => {
    // raw-pixel kNN is already strong on Fashion-MNIST (about 76% here), so the margin is measured on
    // 1,000 test images: trained 80.7% against 76.0% untrained at these settings (deterministic)
    const config = await smallConfig(join(dir, 'supcon'), {
      method: 'supcon',
      epochs: 6,
      trainLimit: 2048,
      testLimit: 1000,
      learningRate: 0.003,
    });
    const data = await loadTrainingData(config);
    const untrained = await buildModel(config, data);
    const before = await quickKnn(untrained, data);
    untrained.dispose();
    const result = await train(config, { progress: quietProgress() });
    assert.ok((result.knnAccuracy ?? 0) > before + 0.03, `kNN accuracy ${before} -> ${result.knnAccuracy}`);
  });

  it('an interrupted and resumed run ends with the same weights and losses as an uninterrupted one', async () => {
    const straight = await smallConfig(join(dir, 'straight'), { method: 'supcon' });
    await train(straight, { progress: quietProgress() });
    const cut = await smallConfig(join(dir, 'cut'), { method: 'supcon' });
    const first = await train(cut, { progress: quietProgress(), stopAfterSteps: 4 });
    assert.equal(first.interrupted, true);
    assert.equal(first.steps, 4);
    await train({ ...cut, resume: true }, { progress: quietProgress() });
    const weights = (name: string) => readFile(join(dir, name, 'model', 'weights.bin'));
    assert.ok((await weights('straight')).equals(await weights('cut')), 'final weights differ');
    const losses = async (name: string) =>
      (await loadRun(join(dir, name))).history.map((h) => [h.kind, h.step, h.loss]);
    assert.deepEqual(await losses('cut'), await losses('straight'));
  });

  it('moco, sane (with both ablation switches) and ce train without error and give finite losses', async () => {
    for (const [name, overrides] of [
      ['moco', { method: 'moco' }],
      ['sane', { method: 'sane', refineWith: 'online' }],
      ['sane-refinery-only', { method: 'sane', mixup: false }],
      ['sane-mixup-only', { method: 'sane', refinery: false }],
      ['ce', { method: 'ce' }],
    ] as const) {
      const config = await smallConfig(join(dir, name), {
        ...overrides,
        epochs: 1,
        trainLimit: 256,
        evalEvery: 0,
      });
      const tensorsBefore = tf.memory().numTensors;
      const result = await train(config, { progress: quietProgress() });
      assert.ok(Number.isFinite(result.finalLoss), `${name}: loss ${result.finalLoss}`);
      // every step's tensors, the models, the optimiser slots and the queue are released
      assert.equal(
        tf.memory().numTensors,
        tensorsBefore,
        `${name} leaked ${tf.memory().numTensors - tensorsBefore} tensors`,
      );
    }
  });

  it('refuses to overwrite a run, and an unwritable --out fails before training', async () => {
    const config = await smallConfig(join(dir, 'hmce'));
    await assert.rejects(
      train(config, { progress: quietProgress() }),
      (e: unknown) => e instanceof ContrastiveError && /already holds a run; pass --resume/.test(e.message),
    );
    await writeFile(join(dir, 'a-file'), 'x');
    const blocked = await smallConfig(join(dir, 'a-file', 'run'));
    await assert.rejects(train(blocked, { progress: quietProgress() }), /cannot write to --out/);
    const missing = await smallConfig(join(dir, 'nothing-here'), { resume: true });
    await assert.rejects(train(missing, { progress: quietProgress() }), /nothing to resume/);
  });
});
