/**
 * The trainer with the encoders of `models/backbones.ts`: a pretrained layers model fine-tuned
 * from a layer (frozen layers and their batch-norm statistics bit-identical, the rest trained),
 * a backbone learning rate of 0, and colour images through SimCLR's colour augmentations.
 */
import assert from 'node:assert/strict';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as tfl from '@tensorflow/tfjs-layers';
import sharp from 'sharp';
import { useBackend } from '../../src/engine/backend.js';
import { loadLayersModelFromDir, saveLayersModel } from '../../src/models/modelIO.js';
import { Rng } from '../../src/random.js';
import { train } from '../../src/run/train.js';
import { resolveTrainConfig } from '../../src/train/config.js';
import { writeCsvTable } from '../helpers/cli.js';
import { quietProgress, tempRuns } from '../helpers/train.js';

/** Every weight of a saved model folder, by layer name. */
async function weightsByLayer(dir: string): Promise<Map<string, number[][]>> {
  const model = await loadLayersModelFromDir(dir);
  const out = new Map(model.layers.map((l) => [l.name, l.getWeights().map((w) => Array.from(w.dataSync()))]));
  model.dispose();
  return out;
}

describe('trainer with pretrained backbones and colour images (wasm)', () => {
  let dir: string;
  let csv: string;
  let backbone: string;
  before(async () => {
    await useBackend('wasm');
    dir = await tempRuns();
    csv = join(dir, 'items.csv');
    await writeCsvTable(csv, 160);
    // a "pretrained" backbone: dense → batch norm → dense, saved in tfjs layers format
    const input = tfl.input({ shape: [6] });
    const d1 = tfl.layers.dense({
      units: 16,
      name: 'd1',
      kernelInitializer: tfl.initializers.glorotUniform({ seed: 1 }),
    });
    const bn = tfl.layers.batchNormalization({ name: 'bn' });
    const d2 = tfl.layers.dense({
      units: 8,
      name: 'd2',
      kernelInitializer: tfl.initializers.glorotUniform({ seed: 2 }),
    });
    const out = d2.apply(tfl.layers.reLU().apply(bn.apply(d1.apply(input)))) as tfl.SymbolicTensor;
    const model = tfl.model({ inputs: input, outputs: out });
    backbone = join(dir, 'pretrained');
    await saveLayersModel(model, backbone);
    model.dispose();
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const base = (out: string) => ({
    data: csv,
    out,
    method: 'supcon',
    epochs: 2,
    batchSize: 32,
    backend: 'wasm',
    warmupEpochs: 0,
    learningRate: 0.01,
    evalEvery: 0,
    seed: 3,
  });

  it('--trainable-from fine-tunes the later layers; frozen ones and their statistics stay bit-identical', async () => {
    const out = join(dir, 'fine-tune');
    const config = await resolveTrainConfig({ ...base(out), backbone, trainableFrom: 'd2' });
    await train(config, { progress: quietProgress() });
    const before = await weightsByLayer(backbone);
    const after = await weightsByLayer(join(out, 'model'));
    assert.deepEqual(after.get('d1'), before.get('d1'));
    assert.deepEqual(after.get('bn'), before.get('bn'), 'a frozen batch norm kept its moving statistics');
    assert.notDeepEqual(after.get('d2'), before.get('d2'));
  });

  it('--backbone-learning-rate 0 trains only the head', async () => {
    const out = join(dir, 'lr0');
    const config = await resolveTrainConfig({ ...base(out), backbone, backboneLearningRate: 0 });
    await train(config, { progress: quietProgress() });
    const before = await weightsByLayer(backbone);
    const after = await weightsByLayer(join(out, 'model'));
    // kernels and biases keep their values; batch-norm moving statistics still follow the data
    assert.deepEqual(after.get('d1'), before.get('d1'));
    assert.deepEqual(after.get('d2'), before.get('d2'));
    const head = await weightsByLayer(join(out, 'head'));
    assert.ok(head.size > 0);
  });

  it('a backbone whose input shape differs from the data is refused before any step, naming both', async () => {
    const input = tfl.input({ shape: [7] });
    const model = tfl.model({
      inputs: input,
      outputs: tfl.layers.dense({ units: 4 }).apply(input) as tfl.SymbolicTensor,
    });
    const wrong = join(dir, 'wrong-input');
    await saveLayersModel(model, wrong);
    model.dispose();
    const config = await resolveTrainConfig({ ...base(join(dir, 'wrong')), backbone: wrong });
    await assert.rejects(
      train(config, { progress: quietProgress() }),
      /takes inputs of shape \[7\], but the data gives \[6\]/,
    );
  });

  it('a backbone layer that does not exist is an error listing the layers', async () => {
    const config = await resolveTrainConfig({ ...base(join(dir, 'bad')), backbone, backboneLayer: 'd9' });
    await assert.rejects(train(config, { progress: quietProgress() }), /d9.*d1.*bn.*d2|d1.*bn.*d2.*d9/s);
  });

  it('trains on a folder of colour images with the colour augmentations', async () => {
    const folder = join(dir, 'photos');
    const rng = new Rng(9);
    const colours: Record<string, [number, number, number]> = {
      'Clothes/Tops': [220, 40, 40],
      'Clothes/Pants': [40, 40, 220],
      'Shoes/Boots': [40, 200, 40],
    };
    for (const [path, rgb] of Object.entries(colours)) {
      await mkdir(join(folder, path), { recursive: true });
      for (let i = 0; i < 20; i++) {
        const pixels = Buffer.alloc(16 * 16 * 3);
        for (let p = 0; p < pixels.length; p++)
          pixels[p] = Math.max(0, Math.min(255, rgb[p % 3] + 40 * rng.normal()));
        await sharp(pixels, { raw: { width: 16, height: 16, channels: 3 } })
          .png()
          .toFile(join(folder, path, `${i}.png`));
      }
    }
    const out = join(dir, 'colour');
    const config = await resolveTrainConfig({
      ...base(out),
      data: folder,
      channels: 3,
      imageSize: 16,
      encoder: 'conv',
      batchSize: 16,
      epochs: 1,
    });
    const result = await train(config, { progress: quietProgress() });
    assert.ok(Number.isFinite(result.finalLoss));
    const model = await loadLayersModelFromDir(join(out, 'model'));
    assert.deepEqual(model.inputs[0].shape, [null, 16, 16, 3]);
    model.dispose();
  });
});
