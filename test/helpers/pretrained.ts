import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import * as tfl from '@tensorflow/tfjs-layers';
import sharp from 'sharp';
import { saveLayersModel } from '../../src/models/modelIO.js';
import { Rng } from '../../src/random.js';
import { REPO_ROOT } from './fixtures.js';

/** A tiny CNN exported from PyTorch to ONNX (`scripts/make-onnx-fixture.py`): 16×16 NCHW in, `pooled` [n, 12] out. */
export const TINY_ONNX = resolve(REPO_ROOT, 'test/fixtures/tiny-cnn.onnx');
/** PyTorch's `pooled` output for the fixed image of {@link fixedImage}. */
export const TINY_ONNX_EXPECTED = resolve(REPO_ROOT, 'test/fixtures/tiny-cnn.expected.json');

/** The fixed 16×16 RGB image the ONNX fixture's expected output was computed on, HWC in [0, 1]. */
export function fixedImage(): Float32Array {
  return Float32Array.from({ length: 16 * 16 * 3 }, (_, i) => (i % 255) / 254);
}

const b64 = (s: string) => Buffer.from(s).toString('base64');
const dims = (...sizes: number[]) => ({ dim: sizes.map((size) => ({ size: String(size) })) });

/**
 * Writes a tfjs graph model (the format of TF Hub / Kaggle models after tensorflowjs_converter):
 * a 3×3 stride-2 convolution, ReLU and a spatial mean, 16×16×3 in, 6 features out.
 */
export async function writeGraphModel(dir: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  const modelTopology = {
    node: [
      {
        name: 'x',
        op: 'Placeholder',
        attr: { dtype: { type: 'DT_FLOAT' }, shape: { shape: dims(-1, 16, 16, 3) } },
      },
      {
        name: 'w',
        op: 'Const',
        attr: {
          dtype: { type: 'DT_FLOAT' },
          value: { tensor: { dtype: 'DT_FLOAT', tensorShape: dims(3, 3, 3, 6) } },
        },
      },
      {
        name: 'axes',
        op: 'Const',
        attr: { dtype: { type: 'DT_INT32' }, value: { tensor: { dtype: 'DT_INT32', tensorShape: dims(2) } } },
      },
      {
        name: 'conv',
        op: 'Conv2D',
        input: ['x', 'w'],
        attr: {
          T: { type: 'DT_FLOAT' },
          strides: { list: { i: ['1', '2', '2', '1'] } },
          padding: { s: b64('SAME') },
          data_format: { s: b64('NHWC') },
          dilations: { list: { i: ['1', '1', '1', '1'] } },
        },
      },
      { name: 'relu', op: 'Relu', input: ['conv'], attr: { T: { type: 'DT_FLOAT' } } },
      {
        name: 'features',
        op: 'Mean',
        input: ['relu', 'axes'],
        attr: { T: { type: 'DT_FLOAT' }, Tidx: { type: 'DT_INT32' }, keep_dims: { b: false } },
      },
    ],
    library: {},
    versions: { producer: 1 },
  };
  const w = Float32Array.from({ length: 162 }, (_, i) => Math.sin(i * 0.7) * 0.5);
  const bytes = new Uint8Array(162 * 4 + 8);
  bytes.set(new Uint8Array(w.buffer), 0);
  bytes.set(new Uint8Array(Int32Array.from([1, 2]).buffer), 648);
  await writeFile(join(dir, 'group1-shard1of1.bin'), bytes);
  await writeFile(
    join(dir, 'model.json'),
    JSON.stringify({
      format: 'graph-model',
      generatedBy: 'test',
      convertedBy: 'test',
      modelTopology,
      weightsManifest: [
        {
          paths: ['group1-shard1of1.bin'],
          weights: [
            { name: 'w', shape: [3, 3, 3, 6], dtype: 'float32' },
            { name: 'axes', shape: [2], dtype: 'int32' },
          ],
        },
      ],
    }),
  );
  return dir;
}

/** Writes a tfjs layers model: 16×16×3 → conv 3×3 (8) → ReLU → conv 3×3 stride 2 (10), [n, 8, 8, 10] features. */
export async function writeLayersModel(dir: string): Promise<string> {
  const input = tfl.input({ shape: [16, 16, 3] });
  const c1 = tfl.layers.conv2d({
    filters: 8,
    kernelSize: 3,
    padding: 'same',
    activation: 'relu',
    name: 'c1',
    kernelInitializer: tfl.initializers.glorotUniform({ seed: 3 }),
  });
  const c2 = tfl.layers.conv2d({
    filters: 10,
    kernelSize: 3,
    strides: 2,
    padding: 'same',
    name: 'c2',
    kernelInitializer: tfl.initializers.glorotUniform({ seed: 4 }),
  });
  const model = tfl.model({ inputs: input, outputs: c2.apply(c1.apply(input)) as tfl.SymbolicTensor });
  await saveLayersModel(model, dir);
  model.dispose();
  return dir;
}

/**
 * A colour catalogue of RGBA PNGs, 20×24 px, two parents and four classes (`count` images each):
 * each class a colour, a transparent border whose hidden colour is random noise (as real
 * catalogue files leave it).
 */
export async function writeTransparentCatalogue(dir: string, count = 10): Promise<string> {
  const classes: [string, string, [number, number, number]][] = [
    ['warm', 'red', [220, 40, 30]],
    ['warm', 'orange', [240, 150, 20]],
    ['cool', 'blue', [30, 60, 220]],
    ['cool', 'green', [40, 190, 60]],
  ];
  const rng = new Rng(11);
  const [w, h] = [20, 24];
  for (const [parent, name, colour] of classes) {
    await mkdir(join(dir, parent, name), { recursive: true });
    for (let k = 0; k < count; k++) {
      const px = Buffer.alloc(w * h * 4);
      for (let y = 0; y < h; y++)
        for (let x = 0; x < w; x++) {
          const o = (y * w + x) * 4;
          const inside = x >= 4 && x < 16 && y >= 4 && y < 20;
          for (let c = 0; c < 3; c++)
            px[o + c] = inside
              ? Math.max(0, Math.min(255, colour[c] + Math.round((rng.next() - 0.5) * 40)))
              : Math.floor(rng.next() * 256);
          px[o + 3] = inside ? 255 : 0;
        }
      await sharp(px, { raw: { width: w, height: h, channels: 4 } })
        .png()
        .toFile(join(dir, parent, name, `${k}.png`));
    }
  }
  return dir;
}
