import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import type { ImageFit, ImageResampler } from '../data/imageDecode.js';
import { ContrastiveError, check, shapeString } from '../errors.js';
import { type GraphModelLike, loadBackbone } from './backbones.js';
import { modelInput, pool } from './featurePipeline.js';
import { checkWeightPath } from './modelIO.js';

export { modelInput } from './featurePipeline.js';

/** The three forms a pretrained image model comes in: tfjs layers, tfjs graph, ONNX. */
export type BackboneKind = 'layers' | 'graph' | 'onnx';

/**
 * How decoded pixels in [0, 1] are scaled for the model: `unit` keeps [0, 1], `symmetric` maps to
 * [-1, 1] (Keras MobileNet, Inception), `byte` to [0, 255], `imagenet` to (x − mean) / std with
 * ImageNet's statistics (torchvision, CLIP-like ONNX exports; override with `mean` / `std`).
 */
export type PixelScale = 'unit' | 'symmetric' | 'byte' | 'imagenet';

/** Pooling of a backbone's spatial or token features to one vector per image. */
export type FeaturePooling = 'none' | 'avg' | 'max' | 'cls';

/**
 * Every step from an image file to the backbone's input, recorded in the run so that training,
 * `embed`, `index`, `search`, `predict` and `serve` apply exactly the same ones.
 */
export interface Preprocessing {
  /** The model's input `[height, width]`. */
  size: [number, number];
  /** How an image of another aspect is fitted (see `ImageDecodeOptions.fit`). */
  fit: ImageFit;
  /** Colour transparent pixels are composited on, `[r, g, b]`, or null (alpha dropped). */
  background: [number, number, number] | null;
  scale: PixelScale;
  /** Per-channel mean subtracted after scaling (in the scaled range). */
  mean: [number, number, number] | null;
  /** Per-channel standard deviation divided by after the mean. */
  std: [number, number, number] | null;
  /** Channel order the model expects. */
  channelOrder: 'rgb' | 'bgr';
  /** Tensor layout the model expects (ONNX exports from PyTorch are NCHW). */
  layout: 'nhwc' | 'nchw';
  /**
   * `'portable'`: images are decoded, composited and resized by `data/portableImage.ts`, the code
   * the exported web page runs too. Absent in runs made before it (sharp's libvips resize).
   */
  resampler?: 'portable';
}

/** What a run records about its frozen backbone (`backbone.json`): enough to rebuild it exactly. */
export interface FrozenBackboneRecord {
  kind: BackboneKind;
  /** The model file or folder: absolute, or relative to the run folder when copied into it. */
  path: string;
  /** True when the files were copied into the run folder (`--copy-backbone`). */
  copied: boolean;
  /** SHA-256 of the model's files (model.json and its weight files, or the .onnx file). */
  sha256: string;
  /** The feature layer, graph node or ONNX output; null for the model's own (first) output. */
  output: string | null;
  pooling: FeaturePooling;
  preprocessing: Preprocessing;
  /** Length of one feature vector. */
  featureDim: number;
  /** Augmented views per training image whose features are cached (0: the clean image only). */
  featureViews: number;
}

/** Options of {@link openFeatureExtractor}. */
export interface FeatureExtractorOptions {
  /** A `.onnx` file, a folder holding `model.json` or `model.onnx`, or a tfjs `model.json`. */
  path: string;
  /** Take the features from this layer (layers model), node (graph model) or output (ONNX). */
  output?: string | null;
  /** Default: `avg` for 4-D features, `cls` (the first token) for 3-D ones, else `none`. */
  pooling?: FeaturePooling;
  /** Input `[height, width]`, needed when the model does not fix it. */
  size?: readonly [number, number];
  fit?: ImageFit;
  background?: readonly [number, number, number] | null;
  /** Default: `imagenet` for ONNX, `unit` for tfjs models. */
  scale?: PixelScale;
  mean?: readonly number[] | null;
  std?: readonly number[] | null;
  channelOrder?: 'rgb' | 'bgr';
  /** Who resizes images (see `Preprocessing.resampler`). Default `'portable'`. */
  resampler?: ImageResampler;
  /** Refuse the model unless its files hash to this (a run's recorded checksum). */
  expectSha256?: string;
}

/**
 * A frozen pretrained image model as a feature function: images in, one vector per image out.
 * Nothing in it trains; its features can be computed once and cached.
 */
export interface FeatureExtractor {
  kind: BackboneKind;
  /** The path it was opened from. */
  path: string;
  sha256: string;
  output: string | null;
  pooling: FeaturePooling;
  preprocessing: Preprocessing;
  featureDim: number;
  /**
   * `[n, height, width, 3]` RGB pixels in [0, 1], decoded at `preprocessing.size` (composited and
   * fitted) → `[n, featureDim]` features. The input is not disposed.
   */
  extract(images: tf.Tensor4D): Promise<tf.Tensor2D>;
  dispose(): void;
}

const IMAGENET_MEAN: [number, number, number] = [0.485, 0.456, 0.406];
const IMAGENET_STD: [number, number, number] = [0.229, 0.224, 0.225];

/** Which form of model `path` holds (by its extension, or the file a folder holds). */
export async function backboneKind(path: string): Promise<BackboneKind> {
  const fn = 'backboneKind';
  const info = await stat(path).catch(() => null);
  if (!info)
    throw new ContrastiveError(
      `${fn}: backbone ${path}: no such file or folder (expected a .onnx file, a folder with model.json or model.onnx, or a model.json).`,
    );
  if (info.isFile() && path.toLowerCase().endsWith('.onnx')) return 'onnx';
  const jsonPath = info.isDirectory() ? join(path, 'model.json') : path;
  if (info.isDirectory() && !(await stat(jsonPath).catch(() => null))) {
    if (await stat(join(path, 'model.onnx')).catch(() => null)) return 'onnx';
    throw new ContrastiveError(`${fn}: backbone folder ${path} holds neither model.json nor model.onnx.`);
  }
  let json: { format?: string };
  try {
    json = JSON.parse(await readFile(jsonPath, 'utf8')) as typeof json;
  } catch (error) {
    throw new ContrastiveError(
      `${fn}: backbone ${jsonPath} must be a tfjs model.json or an .onnx file, but reading it failed: ${(error as Error).message}.`,
    );
  }
  return json.format === 'graph-model' ? 'graph' : 'layers';
}

/** The files that make up a model, in a fixed order: what its checksum covers and a copy takes. */
export async function backboneFiles(path: string, kind: BackboneKind): Promise<string[]> {
  const info = await stat(path);
  if (kind === 'onnx') return [info.isDirectory() ? join(path, 'model.onnx') : path];
  const jsonPath = info.isDirectory() ? join(path, 'model.json') : path;
  const json = JSON.parse(await readFile(jsonPath, 'utf8')) as { weightsManifest?: { paths: string[] }[] };
  const files = [jsonPath];
  for (const group of json.weightsManifest ?? [])
    for (const p of group.paths) {
      checkWeightPath(jsonPath, p);
      files.push(join(dirname(jsonPath), p));
    }
  return files;
}

/** SHA-256 over a model's files (names and bytes), as recorded in a run. */
export async function backboneSha256(path: string, kind: BackboneKind): Promise<string> {
  const hash = createHash('sha256');
  for (const file of await backboneFiles(path, kind)) {
    const bytes = await readFile(file).catch(() => {
      throw new ContrastiveError(`backboneSha256: backbone file ${file} is missing.`);
    });
    hash.update(`${basename(file)}\u0000${bytes.length}\u0000`);
    hash.update(bytes);
  }
  return hash.digest('hex');
}

/**
 * Opens a pretrained image model of any form as a frozen {@link FeatureExtractor}: a tfjs layers
 * model (cut at `output`, pooled), a tfjs graph model (through `@tensorflow/tfjs-converter`) or an
 * ONNX model (through `onnxruntime-node`, an optional dependency: a clear error says to install it).
 * The preprocessing is resolved from the options and what the model declares (its input size and
 * layout); a size the model fixes and the options contradict is an error naming both.
 *
 * @example
 * ```ts
 * const clip = await openFeatureExtractor({ path: 'clip-vit-b32/vision_model.onnx', output: 'image_embeds' });
 * const features = await clip.extract(images); // [n, 512]
 * ```
 */
export async function openFeatureExtractor(options: FeatureExtractorOptions): Promise<FeatureExtractor> {
  const fn = 'openFeatureExtractor';
  const kind = await backboneKind(options.path);
  const sha256 = await backboneSha256(options.path, kind);
  if (options.expectSha256 !== undefined && options.expectSha256 !== sha256)
    throw new ContrastiveError(
      `${fn}: backbone ${options.path} has changed since the run recorded it (SHA-256 ${sha256.slice(0, 12)}…, the run has ${options.expectSha256.slice(0, 12)}…); restore the original file, or train a new run (or pass --copy-backbone when training, so the run keeps its own copy).`,
    );
  const model = kind === 'onnx' ? await openOnnx(fn, options) : await openTfjs(fn, options, kind);
  const declared = model.inputSize;
  const size = (options.size ?? declared) as [number, number] | null;
  if (!size)
    throw new ContrastiveError(
      `${fn}: backbone ${options.path} does not fix its input size; pass it (--backbone-input-size, e.g. 224).`,
    );
  if (declared && (declared[0] !== size[0] || declared[1] !== size[1]))
    throw new ContrastiveError(
      `${fn}: backbone ${options.path} takes ${declared[0]}×${declared[1]} images, but the input size asked for is ${size[0]}×${size[1]}; drop --backbone-input-size or pass ${declared[0]}.`,
    );
  const scale = options.scale ?? (kind === 'onnx' ? 'imagenet' : 'unit');
  const triple = (v: readonly number[] | null | undefined, name: string): [number, number, number] | null => {
    if (v === null || v === undefined) return null;
    check(
      v.length === 3 && v.every((x) => Number.isFinite(x)),
      () => `${fn}: ${name} must be three numbers (r, g, b), but got ${JSON.stringify(v)}.`,
    );
    return [v[0], v[1], v[2]];
  };
  const preprocessing: Preprocessing = {
    size: [size[0], size[1]],
    fit: options.fit ?? 'stretch',
    background: options.background ? ([...options.background] as [number, number, number]) : null,
    scale,
    mean: triple(options.mean, 'mean') ?? (scale === 'imagenet' ? IMAGENET_MEAN : null),
    std: triple(options.std, 'std') ?? (scale === 'imagenet' ? IMAGENET_STD : null),
    channelOrder: options.channelOrder ?? 'rgb',
    layout: model.layout,
    ...((options.resampler ?? 'portable') === 'portable' ? { resampler: 'portable' as const } : {}),
  };
  // probe the feature shape with one blank image, so a wrong output or pooling fails now, not mid-epoch
  const requested = options.pooling;
  const blank = tf.zeros([1, size[0], size[1], 3]) as tf.Tensor4D;
  const probe = await model.run(modelInput(blank, preprocessing));
  blank.dispose();
  const rawShape = probe.shape;
  probe.dispose();
  const pooling: FeaturePooling =
    requested ?? (rawShape.length === 4 ? 'avg' : rawShape.length === 3 ? 'cls' : 'none');
  const featureShape = pooledShape(fn, rawShape, pooling, model.layout, options.path);
  return {
    kind,
    path: options.path,
    sha256,
    output: options.output ?? null,
    pooling,
    preprocessing,
    featureDim: featureShape,
    async extract(images) {
      check(
        images.rank === 4 &&
          images.shape[1] === size[0] &&
          images.shape[2] === size[1] &&
          images.shape[3] === 3,
        () =>
          `${fn}: ${options.path} takes [n, ${size[0]}, ${size[1]}, 3] images, but got ${shapeString(images.shape)}.`,
      );
      const input = modelInput(images, preprocessing);
      const raw = await model.run(input);
      return tf.tidy(() => pool(raw, pooling, model.layout)) as tf.Tensor2D;
    },
    dispose: () => model.dispose(),
  };
}

/** A loaded model of any kind: input size and layout it declares, and one forward pass. */
interface LoadedModel {
  inputSize: [number, number] | null;
  layout: 'nhwc' | 'nchw';
  /** Runs the model on a prepared input, disposing it; returns the raw (unpooled) output. */
  run(input: tf.Tensor): Promise<tf.Tensor>;
  dispose(): void;
}

function pooledShape(
  fn: string,
  shape: number[],
  pooling: FeaturePooling,
  layout: 'nhwc' | 'nchw',
  path: string,
): number {
  const where = `backbone ${path} gives features of shape ${shapeString(shape)}`;
  if (pooling === 'none') {
    check(
      shape.length === 2,
      () =>
        `${fn}: ${where}; pass a pooling (--backbone-pooling avg, max or cls) or another --backbone-layer.`,
    );
    return shape[1];
  }
  if (pooling === 'cls') {
    check(
      shape.length === 3,
      () => `${fn}: ${where}; pooling 'cls' takes the first token of [n, tokens, d].`,
    );
    return shape[2];
  }
  check(
    shape.length === 3 || shape.length === 4,
    () => `${fn}: ${where}; pooling '${pooling}' needs [n, h, w, c] (or [n, tokens, d]) features.`,
  );
  return shape.length === 4 ? (layout === 'nchw' ? shape[1] : shape[3]) : shape[2];
}

async function openTfjs(
  fn: string,
  options: FeatureExtractorOptions,
  kind: BackboneKind,
): Promise<LoadedModel> {
  const loaded = await loadBackbone(fn, options.path);
  if (loaded instanceof tfl.LayersModel) {
    // cut at the feature layer; predict() runs in inference mode, so nothing updates
    let features = loaded.outputs[0];
    if (options.output) {
      const layer = loaded.layers.find((l) => l.name === options.output);
      if (!layer)
        throw new ContrastiveError(
          `${fn}: --backbone-layer ${JSON.stringify(options.output)} is not a layer of ${options.path}; its layers are: ${loaded.layers.map((l) => l.name).join(', ')}.`,
        );
      features = layer.output as tfl.SymbolicTensor;
    }
    const model =
      features === loaded.outputs[0] ? loaded : tfl.model({ inputs: loaded.inputs, outputs: features });
    const shape = loaded.inputs[0].shape;
    check(
      shape.length === 4 && (shape[3] === 3 || shape[3] === null),
      () =>
        `${fn}: backbone ${options.path} must take [n, h, w, 3] images, but its input is ${shapeString(shape.map((d) => d ?? -1))}.`,
    );
    return {
      inputSize: shape[1] && shape[2] ? [shape[1], shape[2]] : null,
      layout: 'nhwc',
      run: async (input) => {
        try {
          return model.predict(input) as tf.Tensor;
        } finally {
          input.dispose();
        }
      },
      dispose: () => loaded.dispose(),
    };
  }
  const graph = loaded as GraphModelLike & {
    inputs?: { shape?: number[] }[];
    dispose?: () => void;
  };
  check(kind === 'graph', () => `${fn}: ${options.path} is not a tfjs layers model.`);
  const shape = graph.inputs?.[0]?.shape ?? [];
  const nchw = shape.length === 4 && shape[1] === 3 && shape[3] !== 3;
  const [h, w] = nchw ? [shape[2], shape[3]] : [shape[1], shape[2]];
  return {
    inputSize: h > 0 && w > 0 ? [h, w] : null,
    layout: nchw ? 'nchw' : 'nhwc',
    run: async (input) => {
      try {
        const out = graph.execute(input, options.output ?? undefined);
        const first = Array.isArray(out) ? out[0] : out;
        if (Array.isArray(out)) tf.dispose(out.slice(1));
        return first;
      } catch (error) {
        throw new ContrastiveError(
          `${fn}: graph model ${options.path}${options.output ? ` (output ${JSON.stringify(options.output)})` : ''} failed on a ${shapeString(input.shape)} input: ${(error as Error).message}`,
        );
      } finally {
        input.dispose();
      }
    },
    dispose: () => graph.dispose?.(),
  };
}

/** The parts of `onnxruntime-node` used here. */
interface OnnxRuntime {
  InferenceSession: {
    create(path: string, options?: object): Promise<OnnxSession>;
  };
  Tensor: new (type: 'float32', data: Float32Array, dims: readonly number[]) => OnnxTensor;
}
interface OnnxTensor {
  data: unknown;
  dims: readonly number[];
  type: string;
  dispose?(): void;
}
interface OnnxSession {
  inputNames: readonly string[];
  outputNames: readonly string[];
  inputMetadata?: readonly { name: string; isTensor: boolean; shape?: readonly (number | string)[] }[];
  run(feeds: Record<string, OnnxTensor>, fetches?: readonly string[]): Promise<Record<string, OnnxTensor>>;
  release(): Promise<void>;
}

let onnxRuntime: Promise<OnnxRuntime> | null = null;

/** `onnxruntime-node`, loaded once; a missing package is an error saying what to install. */
export function loadOnnxRuntime(fn = 'openFeatureExtractor'): Promise<OnnxRuntime> {
  const name = 'onnxruntime-node';
  onnxRuntime ??= (import(name) as Promise<OnnxRuntime & { default?: OnnxRuntime }>).then(
    (m) => (m.InferenceSession ? m : (m.default as OnnxRuntime)),
    () => {
      onnxRuntime = null;
      throw new ContrastiveError(
        `${fn}: ONNX backbones run on onnxruntime-node, which is not installed; install it with: npm install onnxruntime-node`,
      );
    },
  );
  return onnxRuntime;
}

async function openOnnx(fn: string, options: FeatureExtractorOptions): Promise<LoadedModel> {
  const ort = await loadOnnxRuntime(fn);
  const info = await stat(options.path);
  const file = info.isDirectory() ? join(options.path, 'model.onnx') : options.path;
  let session: OnnxSession;
  try {
    session = await ort.InferenceSession.create(file, {
      intraOpNumThreads: 0,
      graphOptimizationLevel: 'all',
    });
  } catch (error) {
    throw new ContrastiveError(`${fn}: ONNX model ${file} could not be loaded: ${(error as Error).message}`);
  }
  check(
    session.inputNames.length === 1,
    () =>
      `${fn}: ONNX model ${file} takes ${session.inputNames.length} inputs (${session.inputNames.join(', ')}); an image backbone takes one, the pixel tensor.`,
  );
  const output = options.output ?? session.outputNames[0];
  check(
    session.outputNames.includes(output),
    () =>
      `${fn}: ONNX model ${file} has no output ${JSON.stringify(output)}; its outputs are: ${session.outputNames.join(', ')}.`,
  );
  const dims = session.inputMetadata?.[0]?.shape ?? [];
  const fixed = (d: number | string | undefined) => (typeof d === 'number' && d > 0 ? d : 0);
  const nhwc = dims.length === 4 && fixed(dims[3]) === 3 && fixed(dims[1]) !== 3;
  const [h, w] = nhwc ? [fixed(dims[1]), fixed(dims[2])] : [fixed(dims[2]), fixed(dims[3])];
  const inputName = session.inputNames[0];
  return {
    inputSize: h > 0 && w > 0 ? [h, w] : null,
    layout: nhwc ? 'nhwc' : 'nchw',
    run: async (input) => {
      const data = (await input.data()) as Float32Array;
      const shape = input.shape;
      input.dispose();
      let result: Record<string, OnnxTensor>;
      try {
        result = await session.run({ [inputName]: new ort.Tensor('float32', data, shape) }, [output]);
      } catch (error) {
        throw new ContrastiveError(
          `${fn}: ONNX model ${file} failed on a ${shapeString(shape)} input: ${(error as Error).message}`,
        );
      }
      const out = result[output];
      const values =
        out.data instanceof Float32Array ? out.data : Float32Array.from(out.data as ArrayLike<number>);
      const tensor = tf.tensor(values, [...out.dims]);
      out.dispose?.();
      return tensor;
    },
    dispose: () => void session.release(),
  };
}
