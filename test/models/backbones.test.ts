import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { ContrastiveError } from '../../src/errors.js';
import { buildEncoder, builtInEncoder, type GraphModelLike } from '../../src/models/backbones.js';
import { loadLayersModelFromDir, saveLayersModel } from '../../src/models/modelIO.js';
import { Rng } from '../../src/random.js';
import { expectClose, forEachBackend } from '../helpers/backends.js';

let root: string;
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'contrastive-backbones-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

/** A small "pretrained" CNN with stock batch norm, saved the standard tfjs way. */
async function savedCnn(name: string): Promise<string> {
  const input = tfl.input({ shape: [8, 8, 3] });
  let x = tfl.layers
    .conv2d({ filters: 4, kernelSize: 3, padding: 'same', name: 'conv1', kernelInitializer: 'glorotUniform' })
    .apply(input) as tfl.SymbolicTensor;
  x = tfl.layers.batchNormalization({ name: 'bn1' }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.reLU({ name: 'relu1' }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers
    .conv2d({ filters: 6, kernelSize: 3, strides: 2, padding: 'same', name: 'conv2' })
    .apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.batchNormalization({ name: 'bn2' }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.globalAveragePooling2d({ name: 'gap' }).apply(x) as tfl.SymbolicTensor;
  const out = tfl.layers.dense({ units: 5, name: 'fc' }).apply(x) as tfl.SymbolicTensor;
  const model = tfl.model({ inputs: input, outputs: out });
  const dir = join(root, name);
  await saveLayersModel(model, dir);
  model.dispose();
  return dir;
}

const batch = (seed: number, n = 6) => {
  const rng = new Rng(seed);
  return tf.tensor4d(
    Float32Array.from({ length: n * 8 * 8 * 3 }, () => rng.normal()),
    [n, 8, 8, 3],
  );
};

/** A few SGD steps of a toy loss through `model.apply(x, { training: true })`. */
function train(model: tfl.LayersModel, steps = 3): void {
  const optimizer = tf.train.sgd(0.1);
  const variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
  for (let s = 0; s < steps; s++) {
    const x = batch(100 + s);
    optimizer.minimize(
      () => tf.mean(tf.square(tf.sub(model.apply(x, { training: true }) as tf.Tensor, 1))) as tf.Scalar,
      false,
      variables,
    );
    x.dispose();
  }
  optimizer.dispose();
}

const snapshot = (model: tfl.LayersModel) =>
  new Map(model.weights.map((w) => [w.originalName, Array.from(w.read().dataSync())]));

forEachBackend('backbones', () => {
  it('built-in colour encoders map 64×64×3 images to [batch, features], seeded', async () => {
    for (const encoder of ['mobilenet-v2', 'resnet-18'] as const) {
      const a = await buildEncoder({ encoder, seed: 3 }, [64, 64, 3]);
      const b = builtInEncoder(encoder, [64, 64, 3], { seed: 3 });
      const x = tf.randomUniform([2, 64, 64, 3]);
      const y = a.model.predict(x) as tf.Tensor;
      assert.deepEqual(y.shape, [2, a.featureDim]);
      assert.ok(a.featureDim >= 128, `${encoder}: ${a.featureDim} features`);
      assert.ok(a.model.countParams() < 3_000_000, `${encoder}: ${a.model.countParams()} parameters`);
      assert.deepEqual(
        Array.from((b.predict(x) as tf.Tensor).dataSync()),
        Array.from(y.dataSync()),
        `${encoder} seeded`,
      );
      assert.deepEqual(a.frozenLayers, []);
      const emb = builtInEncoder(encoder, [64, 64, 3], { embeddingDim: 32 });
      assert.deepEqual(emb.outputs[0].shape, [null, 32]);
      tf.dispose([x, y]);
      a.model.dispose();
      b.dispose();
      emb.dispose();
    }
    await assert.rejects(
      buildEncoder({ encoder: 'resnet-18' }, [12]),
      /encoder 'resnet-18' needs image inputs \[H, W, C\], but got inputShape \[12\]/,
    );
  });

  it('fine-tunes a loaded model from a layer on: frozen weights and batch-norm statistics stay bit-identical', async () => {
    const dir = await savedCnn('cnn');
    const encoder = await buildEncoder({ backbone: dir, trainableFrom: 'conv2' }, [8, 8, 3]);
    assert.deepEqual(encoder.frozenLayers, ['conv1', 'bn1', 'relu1']);
    assert.equal(encoder.featureDim, 5);
    const before = snapshot(encoder.model);
    train(encoder.model);
    const afterTraining = snapshot(encoder.model);
    for (const [name, values] of before) {
      const frozen = name.startsWith('conv1') || name.startsWith('bn1');
      if (frozen) assert.deepEqual(afterTraining.get(name), values, `${name} must not change`);
      else assert.notDeepEqual(afterTraining.get(name), values, `${name} must train`);
    }
    // the fine-tuned encoder saves and loads with stock tfjs; frozen layers stay frozen
    await saveLayersModel(encoder.model, join(root, 'tuned'));
    const json = JSON.parse(await readFile(join(root, 'tuned', 'model.json'), 'utf8'));
    const bn1 = json.modelTopology.config.layers.find((l: { name: string }) => l.name === 'bn1');
    assert.equal(bn1.config.trainable, false);
    const reloaded = await loadLayersModelFromDir(join(root, 'tuned'));
    const x = batch(9);
    assert.deepEqual(
      Array.from((reloaded.predict(x) as tf.Tensor).dataSync()),
      Array.from((encoder.model.predict(x) as tf.Tensor).dataSync()),
    );
    const reloadedBefore = snapshot(reloaded);
    train(reloaded, 1);
    assert.deepEqual(snapshot(reloaded).get('bn1/moving_mean'), reloadedBefore.get('bn1/moving_mean'));
    x.dispose();
  });

  it('takes features from an inner layer, pools them, freezes all, and tops them with trained layers', async () => {
    const dir = await savedCnn('cnn2');
    const frozen = await buildEncoder(
      {
        backbone: join(dir, 'model.json'),
        backboneLayer: 'bn2',
        backbonePooling: 'avg',
        freeze: true,
        headDims: [7, 3],
      },
      [8, 8, 3],
    );
    assert.equal(frozen.featureDim, 3);
    assert.deepEqual(frozen.backboneVariables, []);
    assert.equal(frozen.addedVariables.length, 4);
    const before = snapshot(frozen.model);
    train(frozen.model);
    const afterTraining = snapshot(frozen.model);
    for (const [name, values] of before) {
      if (name.startsWith('added_dense')) assert.notDeepEqual(afterTraining.get(name), values, name);
      else assert.deepEqual(afterTraining.get(name), values, name);
    }
  });

  it('says which layers exist, and what shape a backbone that is not [batch, features] gives', async () => {
    const dir = await savedCnn('cnn3');
    const fails = (options: Parameters<typeof buildEncoder>[0], pattern: RegExp) =>
      assert.rejects(
        buildEncoder(options, [8, 8, 3]),
        (e: unknown) => e instanceof ContrastiveError && pattern.test(e.message),
      );
    await fails(
      { backbone: dir, backboneLayer: 'block_13' },
      /backboneLayer "block_13" is not a layer of the backbone; its layers are: conv1, bn1, relu1, conv2, bn2, gap, fc\./,
    );
    await fails(
      { backbone: dir, trainableFrom: 'nope' },
      /trainableFrom "nope" is not a layer of the backbone; its layers are: conv1,/,
    );
    await fails(
      { backbone: dir, backboneLayer: 'conv2' },
      /the backbone must output \[batch, features\], but .* at layer "conv2" gives \[-1,4,4,6\]; pass backbonePooling: 'avg'/,
    );
    await fails({ backbone: join(root, 'missing') }, /backbone .*missing: no such file or folder/);
  });

  it('accepts a GraphModel as a frozen feature extractor with a trained head', async () => {
    const dir = await savedCnn('graph-source');
    const inner = await loadLayersModelFromDir(dir);
    const graph: GraphModelLike = { execute: (x) => inner.predict(x) as tf.Tensor };
    const innerBefore = snapshot(inner);
    const encoder = await buildEncoder({ backbone: graph, headDims: [4] }, [8, 8, 3]);
    assert.equal(encoder.containsGraphModel, true);
    assert.equal(encoder.featureDim, 4);
    assert.equal(encoder.backboneVariables.length, 0);
    const headBefore = snapshot(encoder.model);
    train(encoder.model);
    const headAfter = snapshot(encoder.model);
    for (const [name, values] of headBefore)
      assert.notDeepEqual(headAfter.get(name), values, `${name} trains`);
    assert.deepEqual(snapshot(inner), innerBefore, 'the graph stays as it was');
    await assert.rejects(
      buildEncoder({ backbone: graph, trainableFrom: 'conv2' }, [8, 8, 3]),
      /a graph model backbone is always frozen/,
    );
  });
});

it('the backbone flags turn into buildEncoder options', async () => {
  const { BACKBONE_OPTIONS, backboneOptionsFrom } = await import('../../src/models/backboneOptions.js');
  assert.deepEqual(BACKBONE_OPTIONS[0].choices, ['auto', 'conv', 'mlp', 'mobilenet-v2', 'resnet-18']);
  const { options, backboneLearningRate } = backboneOptionsFrom(
    {
      encoder: 'resnet-18',
      trainableFrom: 'stage4_block1_conv1',
      backboneLearningRate: 0.1,
      headDims: '64,32',
      freeze: 'true',
    },
    { seed: 4, embeddingDim: 128 },
  );
  assert.equal(options.encoder, 'resnet-18');
  assert.equal(options.trainableFrom, 'stage4_block1_conv1');
  assert.deepEqual(options.headDims, [64, 32]);
  assert.equal(options.freeze, true);
  assert.equal(backboneLearningRate, 0.1);
  assert.equal(backboneOptionsFrom({ encoder: 'auto' }).options.encoder, undefined);
  assert.throws(
    () => backboneOptionsFrom({ encoder: 'vgg' }),
    /--encoder must be one of auto, conv, mlp, mobilenet-v2, resnet-18, but got "vgg"/,
  );
  assert.throws(
    () => backboneOptionsFrom({ headDims: '8,x' }),
    /--head-dims must be positive integers, but got "x"/,
  );
});

it("mobilenet-v2 trains on wasm (the engine's depthwise gradients) with the gradients cpu computes", async () => {
  const { useBackend } = await import('../../src/engine/backend.js');
  const x = new Rng(5);
  const pixels = Float32Array.from({ length: 3 * 16 * 16 * 3 }, () => x.next());
  const gradients = async (backend: 'cpu' | 'wasm') => {
    await useBackend(backend);
    const encoder = await buildEncoder(
      { encoder: 'mobilenet-v2', widthMultiplier: 0.35, seed: 4 },
      [16, 16, 3],
    );
    const batch = tf.tensor4d(pixels, [3, 16, 16, 3]);
    const { value, grads } = tf.variableGrads(
      () => tf.mean(tf.square(encoder.model.apply(batch, { training: true }) as tf.Tensor)) as tf.Scalar,
      encoder.backboneVariables,
    );
    const result = new Map(
      encoder.backboneVariables.map((v) => [v.name.replace(/_\d+$/, ''), grads[v.name].dataSync()]),
    );
    const loss = value.dataSync()[0];
    tf.dispose([batch, value, ...Object.values(grads)]);
    encoder.model.dispose();
    return { loss, result };
  };
  const cpu = await gradients('cpu');
  const wasm = await gradients('wasm');
  assert.ok(Number.isFinite(wasm.loss) && wasm.loss > 0);
  expectClose(wasm.loss, cpu.loss, { rtol: 1e-4 }, 'loss');
  const depthwise = [...cpu.result.keys()].filter((k) => k.includes('depthwise_kernel'));
  assert.ok(depthwise.length >= 5, `${depthwise.length} depthwise kernels`);
  // tensors whose gradient is ~0 (a batch norm's β before a residual sum) are compared on the
  // scale of the largest gradient
  const largest = Math.max(...[...cpu.result.values()].map((g) => Math.max(...Array.from(g, Math.abs))));
  for (const [name, expected] of cpu.result) {
    const scale = Math.max(...Array.from(expected, Math.abs), 1e-3 * largest);
    expectClose(wasm.result.get(name)!, expected, { rtol: 1e-3, atol: 1e-3 * scale }, name);
  }
});

it('mobilenet-v2 trains on a backend with depthwise gradients (cpu); batch norm statistics move', async () => {
  const { useBackend } = await import('../../src/engine/backend.js');
  await useBackend('cpu');
  const encoder = await buildEncoder(
    { encoder: 'mobilenet-v2', widthMultiplier: 0.35, seed: 2 },
    [16, 16, 3],
  );
  const before = snapshot(encoder.model);
  const optimizer = tf.train.sgd(0.05);
  const x = tf.randomUniform([2, 16, 16, 3], 0, 1, 'float32', 3);
  optimizer.minimize(
    () => tf.mean(tf.square(encoder.model.apply(x, { training: true }) as tf.Tensor)) as tf.Scalar,
    false,
    encoder.backboneVariables,
  );
  const afterStep = snapshot(encoder.model);
  assert.notDeepEqual(
    afterStep.get('block2_depthwise/depthwise_kernel'),
    before.get('block2_depthwise/depthwise_kernel'),
  );
  assert.notDeepEqual(afterStep.get('stem_bn/moving_mean'), before.get('stem_bn/moving_mean'));
  tf.dispose([x]);
  optimizer.dispose();
  encoder.model.dispose();
});
