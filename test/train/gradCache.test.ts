import assert from 'node:assert/strict';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { useBackend } from '../../src/engine/backend.js';
import { batchNormalization } from '../../src/models/batchNorm.js';
import { ContrastiveModel } from '../../src/models/contrastiveModel.js';
import { Rng } from '../../src/random.js';
import { loadRun } from '../../src/report/index.js';
import { train } from '../../src/run/train.js';
import { resolveTrainConfig, type TrainConfig } from '../../src/train/config.js';
import { forwardState, gradCacheGradients } from '../../src/train/gradCache.js';
import { METHOD_REGISTRY } from '../../src/train/methods/registry.js';
import type { MethodModels } from '../../src/train/methods/types.js';
import { variablesOf } from '../../src/train/methods/viewMethods.js';
import { Optimizer } from '../../src/train/optimizers.js';
import { expectClose, forEachBackend } from '../helpers/backends.js';
import { quietProgress, smallConfig, tempRuns } from '../helpers/train.js';

const FEATURES = 6;
/** 10 samples × 2 views = 20 rows: chunks of 3 and 8 leave a short last chunk. */
const N = 10;

/** An MLP encoder and head, seeded; with `batchNorm`, a batch norm after the first layer. */
function smallModel(batchNorm = false): MethodModels {
  const init = (seed: number) => tfl.initializers.glorotUniform({ seed });
  const input = tfl.input({ shape: [FEATURES] });
  let x = tfl.layers.dense({ units: 16, kernelInitializer: init(1) }).apply(input) as tfl.SymbolicTensor;
  if (batchNorm) x = batchNormalization({ momentum: 0.9 }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.reLU().apply(x) as tfl.SymbolicTensor;
  const embedding = tfl.layers.dense({ units: 8, kernelInitializer: init(2) }).apply(x) as tfl.SymbolicTensor;
  const backbone = tfl.model({ inputs: input, outputs: embedding });
  const head = tfl.sequential({
    layers: [
      tfl.layers.dense({ inputShape: [8], units: 8, activation: 'relu', kernelInitializer: init(3) }),
      tfl.layers.dense({ units: 4, kernelInitializer: init(4) }),
    ],
  });
  const model = new ContrastiveModel(backbone, head);
  return { model, trainable: [...variablesOf(backbone), ...variablesOf(head)], labelLevel: 2 };
}

/** Records the gradients each update is given (both the plain step and GradCache go through it). */
class RecordingOptimizer extends Optimizer {
  gradients: Float32Array[] = [];
  override applyGradients(gradients: readonly tf.Tensor[], learningRate: number) {
    this.gradients = gradients.map((g) => g.dataSync() as Float32Array);
    return super.applyGradients(gradients, learningRate);
  }
}

/** 3-level labels: 2 › 4 › 8 classes, every class twice or more. */
const LABELS = Array.from({ length: N }, (_, i) => [i % 2, i % 4, i % 8]);

/** One step of `method` from the same seeded weights, batch and augmentation. */
function oneStep(method: 'supcon' | 'himulcone', config: TrainConfig, batchNorm = false) {
  const models = smallModel(batchNorm);
  const optimizer = new RecordingOptimizer(models.trainable, {
    kind: 'adamw',
    weightDecay: 0.01,
    gradClipNorm: 100,
  });
  const rng = new Rng(7);
  const x = tf.tensor2d(
    Float32Array.from({ length: N * FEATURES }, () => rng.normal()),
    [N, FEATURES],
  );
  let augmentations = 0;
  const augment = (batch: tf.Tensor) => {
    augmentations++;
    return tf.tidy(() =>
      tf.add(
        batch,
        tf.tensor(
          Float32Array.from({ length: batch.size }, () => 0.1 * rng.normal()),
          batch.shape,
        ),
      ),
    );
  };
  const tensorsBefore = tf.memory().numTensors;
  const out = METHOD_REGISTRY[method].step(
    models,
    optimizer,
    { x, labels: LABELS, augment, learningRate: 0.01, step: 0, stepsPerEpoch: 1, mixRng: new Rng(1) },
    config,
  );
  assert.equal(augmentations, config.views, 'each view is drawn once per step');
  const weights = models.trainable.map((v) => Float32Array.from(v.dataSync()));
  const moving = forwardState(models.model).map((v) => Float32Array.from(v.dataSync()));
  const gradients = optimizer.gradients;
  x.dispose();
  optimizer.dispose();
  assert.equal(tf.memory().numTensors, tensorsBefore - 1, `${method}: the step leaked tensors`);
  models.model.dispose();
  return { ...out, weights, moving, gradients };
}

const viewConfig = (overrides: Partial<TrainConfig> = {}) =>
  resolveTrainConfig({ out: 'unused', temperature: 0.5, ...overrides });

/** `actual` within 1e-5 of `expected`, relative to each element and to the tensor's largest. */
function expectSame(actual: Float32Array[], expected: Float32Array[], label: string): void {
  assert.equal(actual.length, expected.length);
  expected.forEach((e, i) => {
    const scale = e.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    expectClose(actual[i], e, { rtol: 1e-5, atol: 1e-5 * scale }, `${label} ${i}`);
  });
}

forEachBackend('GradCache', () => {
  for (const method of ['supcon', 'himulcone'] as const) {
    it(`${method}: a GradCache step (chunks of 3 and 8 of 20 rows) is the full-batch step, within 1e-5`, async () => {
      const plain = oneStep(method, await viewConfig());
      assert.ok(Number.isFinite(plain.loss));
      for (const chunk of [3, 8]) {
        const cached = oneStep(method, await viewConfig({ gradCacheChunk: chunk }));
        expectClose(cached.loss, plain.loss, { rtol: 1e-6 }, `chunk ${chunk}: loss`);
        if (plain.levelLosses)
          expectClose(cached.levelLosses!, plain.levelLosses, { rtol: 1e-6 }, 'level losses');
        expectSame(cached.gradients, plain.gradients, `chunk ${chunk}: gradient of variable`);
        expectSame(cached.weights, plain.weights, `chunk ${chunk}: updated variable`);
      }
    });
  }

  it('batch norm: statistics per chunk (a different gradient), moving averages moved once per chunk, loss finite', async () => {
    const plain = oneStep('supcon', await viewConfig(), true);
    const cached = oneStep('supcon', await viewConfig({ gradCacheChunk: 8 }), true);
    assert.ok(Number.isFinite(cached.loss));
    // the documented caveat: each chunk of 8 rows is normalised by its own statistics
    assert.ok(Math.abs(cached.loss - plain.loss) > 1e-4, `losses ${cached.loss} and ${plain.loss}`);
    // the moving averages: one update per chunk of the taped pass (the first pass leaves them)
    const models = smallModel(true);
    const rng = new Rng(7);
    const x = tf.tensor2d(
      Float32Array.from({ length: N * FEATURES }, () => rng.normal()),
      [N, FEATURES],
    );
    const noise = () =>
      tf.tensor2d(
        Float32Array.from({ length: N * FEATURES }, () => 0.1 * rng.normal()),
        [N, FEATURES],
      );
    const rows = tf.concat([tf.add(x, noise()), tf.add(x, noise())], 0);
    for (const [start, size] of [
      [0, 8],
      [8, 8],
      [16, 4],
    ]) {
      tf.tidy(() => models.model.embed(tf.slice(rows, start, size), true));
    }
    const expected = forwardState(models.model).map((v) => Float32Array.from(v.dataSync()));
    assert.equal(expected.length, 2);
    expected.forEach((e, i) => {
      expectClose(cached.moving[i], e, { rtol: 1e-6, atol: 1e-7 }, `moving statistic ${i}`);
    });
    tf.dispose([x, rows]);
    models.model.dispose();
    // one chunk holding every row is the plain step, batch norm or not
    const whole = oneStep('supcon', await viewConfig({ gradCacheChunk: 2 * N }), true);
    expectSame(whole.gradients, plain.gradients, 'one chunk: gradient of variable');
    expectSame(whole.moving, plain.moving, 'one chunk: moving statistic');
  });

  it('gradCacheGradients: a chunk larger than the rows, and an empty restore list', () => {
    const w = tf.variable(tf.tensor2d([[1, 2]]));
    const rows = tf.tensor2d([[1], [2], [3]]);
    const forward = (r: tf.Tensor) => tf.matMul(r, w) as tf.Tensor2D;
    const loss = (f: tf.Tensor2D) => tf.sum(tf.square(f)) as tf.Scalar;
    for (const chunk of [1, 2, 5]) {
      const { loss: value, gradients } = gradCacheGradients(forward, rows, chunk, loss, [w]);
      // loss = Σ_r (x_r w)² → grad w = 2 Σ_r x_r² w = 28 w
      expectClose(value.dataSync()[0], 14 * 5, { rtol: 1e-6 });
      expectClose(gradients[0].dataSync(), [28, 56], { rtol: 1e-6 });
      tf.dispose([value, ...gradients]);
    }
    assert.throws(() => gradCacheGradients(forward, rows, 0, loss, [w]), /chunk must be a positive integer/);
    tf.dispose([w, rows]);
  });
});

describe('GradCache in training runs (wasm)', () => {
  let dir: string;
  before(async () => {
    dir = await tempRuns();
    await useBackend('wasm');
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('is refused, naming the methods that have it, for moco, sane and ce', async () => {
    for (const method of ['moco', 'sane', 'ce'] as const) {
      await assert.rejects(
        smallConfig(join(dir, method), { method, gradCacheChunk: 32 }),
        /--grad-cache-chunk is implemented for simclr, supcon, himulcon, hicone, himulcone, not for/,
      );
    }
    await assert.rejects(smallConfig(join(dir, 'neg'), { gradCacheChunk: -1 }), /must be an integer >= 0/);
  });

  it('resumes bit for bit, is recorded in config.json, and may not change on --resume (batch-norm MLP)', async () => {
    const options = { method: 'himulcone', gradCacheChunk: 24 } as const;
    const straight = await smallConfig(join(dir, 'straight'), options);
    const done = await train(straight, { progress: quietProgress() });
    assert.ok(Number.isFinite(done.finalLoss));
    const recorded = JSON.parse(await readFile(join(dir, 'straight', 'config.json'), 'utf8'));
    assert.equal(recorded.gradCacheChunk, 24);
    const cut = await smallConfig(join(dir, 'cut'), options);
    const first = await train(cut, { progress: quietProgress(), stopAfterSteps: 4 });
    assert.equal(first.interrupted, true);
    await assert.rejects(
      train({ ...cut, gradCacheChunk: 32, resume: true }, { progress: quietProgress() }),
      /--gradCacheChunk 32 \(the run has 24\) would change the run/,
    );
    await train({ ...cut, resume: true }, { progress: quietProgress() });
    const weights = (name: string) => readFile(join(dir, name, 'model', 'weights.bin'));
    assert.ok((await weights('straight')).equals(await weights('cut')), 'final weights differ');
    const losses = async (name: string) =>
      (await loadRun(join(dir, name))).history.map((h) => [h.kind, h.step, h.loss, h.levelLosses]);
    assert.deepEqual(await losses('cut'), await losses('straight'));
  });
});
