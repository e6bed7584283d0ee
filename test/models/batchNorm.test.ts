/** The fused batch-norm layer trains exactly like tfjs-layers' stock one, in less memory. */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { batchNormalization, FusedBatchNormalization } from '../../src/models/batchNorm.js';
import { Rng } from '../../src/random.js';
import { expectClose, forEachBackend } from '../helpers/backends.js';

const rng = new Rng(3);
const data = (shape: number[], shift = 0, scale = 1) =>
  Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => shift + scale * rng.normal());

/** Output, gradients w.r.t. input, γ and β, and the moving statistics after one training call. */
function trainingCall(layer: tfl.layers.Layer, x: tf.Tensor, weight: tf.Tensor) {
  return tf.tidy(() => {
    const input = tf.variable(x);
    const [gamma, beta] = layer.trainableWeights.map((w) => w.read() as tf.Variable);
    const { value, grads } = tf.variableGrads(
      () => tf.sum(tf.mul(layer.apply(input, { training: true }) as tf.Tensor, weight)) as tf.Scalar,
      [input, gamma, beta],
    );
    const moving = layer.getWeights().slice(2);
    const out = [
      value.dataSync(),
      grads[input.name].dataSync(),
      grads[gamma.name].dataSync(),
      grads[beta.name].dataSync(),
      ...moving.map((m) => m.dataSync()),
    ];
    input.dispose();
    return out;
  });
}

/** Frees a layer used imperatively (`Layer.dispose` only accepts layers of a symbolic graph). */
const release = (layer: tfl.layers.Layer) => {
  for (const w of layer.weights) w.dispose();
};

forEachBackend('FusedBatchNormalization', () => {
  for (const shape of [
    [6, 5],
    [3, 4, 5, 7],
  ]) {
    it(`matches the stock layer on ${JSON.stringify(shape)}: output, gradients, moving statistics`, () => {
      const channels = shape[shape.length - 1];
      const x = tf.tensor(data(shape, 3, 2), shape);
      const weight = tf.tensor(data(shape), shape);
      const weights = [
        data([channels], 1, 0.3),
        data([channels]),
        data([channels]),
        data([channels], 2, 0.1),
      ];
      const make = (fused: boolean) => {
        const args = { momentum: 0.9, epsilon: 1e-3 };
        const layer = fused ? batchNormalization(args) : tfl.layers.batchNormalization(args);
        layer.build(shape);
        // non-trivial γ, β and moving statistics, the same in both
        layer.setWeights(weights.map((w) => tf.tensor(w)));
        return layer;
      };
      const stock = make(false);
      const fused = make(true);
      const before = tf.memory().numTensors;
      const actual = trainingCall(fused, x, weight);
      assert.equal(tf.memory().numTensors, before, 'the fused layer leaked tensors');
      const expected = trainingCall(stock, x, weight);
      ['loss', 'dx', 'dγ', 'dβ', 'moving mean', 'moving variance'].forEach((label, i) => {
        expectClose(actual[i], expected[i], { rtol: 1e-4, atol: 1e-5 }, label);
      });
      // inference uses the moving statistics, as the stock layer does
      expectClose(
        (fused.apply(x, { training: false }) as tf.Tensor).dataSync(),
        (stock.apply(x, { training: false }) as tf.Tensor).dataSync(),
        { rtol: 1e-5, atol: 1e-5 },
        'inference',
      );
      tf.dispose([x, weight]);
      release(stock);
      release(fused);
    });
  }

  it('a training step uses the two kernels, not the composed ops', async () => {
    const layer = batchNormalization();
    layer.build([8, 3, 3, 4]);
    const x = tf.tensor(data([8, 3, 3, 4]), [8, 3, 3, 4]);
    const profile = await tf.profile(() => {
      trainingCall(layer, x, tf.onesLike(x));
    });
    const names = new Set(profile.kernels.map((k) => k.name));
    assert.ok(
      names.has('ContrastiveBatchNorm') && names.has('ContrastiveBatchNormGrad'),
      [...names].join(', '),
    );
    assert.ok(!names.has('FusedBatchNorm'), 'the stock kernel ran');
    tf.dispose(x);
    release(layer);
  });
});

it('saves as a stock BatchNormalization and loads back as the fused layer', async () => {
  const input = tfl.input({ shape: [4] });
  const model = tfl.model({
    inputs: input,
    outputs: batchNormalization().apply(input) as tfl.SymbolicTensor,
  });
  const topology = model.toJSON(null, false) as tf.io.ModelJSON['modelTopology'] & {
    config: { layers: { class_name: string }[] };
  };
  assert.equal(topology.config.layers[1].class_name, 'BatchNormalization');
  const restored = await tfl.models.modelFromJSON({ modelTopology: topology });
  assert.ok(restored.layers[1] instanceof FusedBatchNormalization);
  model.dispose();
  restored.dispose();
});
