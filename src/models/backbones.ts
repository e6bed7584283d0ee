import { readFile, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { ContrastiveError, check, shapeString } from '../errors.js';
import { stopGradient } from '../losses/parts/features.js';
import { batchNormalization } from './batchNorm.js';
import { mlpEncoder, smallConvEncoder } from './encoders.js';
import { checkWeightPath, loadLayersModelFromDir } from './modelIO.js';

/** Built-in encoders: `mlp` and `conv` (small ResNet) as before, and two colour-image encoders. */
export type EncoderName = 'mlp' | 'conv' | 'mobilenet-v2' | 'resnet-18';

/** The part of a tfjs `GraphModel` (from `@tensorflow/tfjs-converter`) a frozen backbone needs. */
export interface GraphModelLike {
  /** Runs the graph: `[batch, ...inputShape]` in, one tensor (or the named outputs) out. */
  execute(inputs: tf.Tensor, outputs?: string | string[]): tf.Tensor | tf.Tensor[];
}

/** Options of {@link buildEncoder}. */
export interface BackboneOptions {
  /** A built-in encoder (default `'conv'` for images, `'mlp'` for vectors), ignored with `backbone`. */
  encoder?: EncoderName;
  /**
   * A pretrained backbone: a folder holding `model.json` (tfjs layers or graph model, e.g. from
   * `tensorflowjs_converter`), the `model.json` itself, a loaded `tfl.LayersModel`, or a loaded
   * `GraphModel` (used frozen, as a feature extractor with a trainable head).
   */
  backbone?: string | tfl.LayersModel | GraphModelLike;
  /** Take the features from this inner layer (layers models) or graph output node (graph models). */
  backboneLayer?: string;
  /** Pool `[batch, h, w, c]` features to `[batch, c]`: `'avg'`, `'max'`, or `'none'` (default: they must be 2-D). */
  backbonePooling?: 'none' | 'avg' | 'max';
  /** Freeze the whole backbone (a layers model; a graph model is always frozen). Default false. */
  freeze?: boolean;
  /** Freeze every layer before this one (in the model's layer order) and train it and the later ones. */
  trainableFrom?: string;
  /**
   * Dense layers (ReLU between) added on top of the backbone's features, trained; the last width
   * is the embedding size. Default: none for layers models and built-ins, `[embeddingDim ?? features]`
   * for a graph model (something must be trainable).
   */
  headDims?: readonly number[];
  /** Embedding size of a built-in encoder (a linear layer at the end when it differs). */
  embeddingDim?: number;
  /** Width multiplier of `mobilenet-v2` / `resnet-18` (default 0.5: sized for 64×64 on a CPU). */
  widthMultiplier?: number;
  /** Seed of the random initial weights (built-ins and added layers). Default 0. */
  seed?: number;
}

/** {@link buildEncoder}'s result. */
export interface Encoder {
  /** Input `[batch, ...inputShape]` → features `[batch, featureDim]`: what the trainer uses as its backbone. */
  model: tfl.LayersModel;
  featureDim: number;
  /** Where it came from: a built-in name, a path, `'layers model'` or `'graph model'`. */
  source: string;
  /** Names of the frozen layers (their weights and batch-norm statistics never change). */
  frozenLayers: string[];
  /** The trainable variables of the backbone itself (scale their learning rate with `backboneLearningRate`). */
  backboneVariables: tf.Variable[];
  /** The trainable variables of layers added on top (`headDims`, or the graph model's head). */
  addedVariables: tf.Variable[];
  /** True when a graph model is inside: {@link model} then cannot be saved for stock tfjs as a whole. */
  containsGraphModel: boolean;
}

/**
 * The encoder a run trains: a built-in architecture (random init), or a pretrained tfjs model,
 * optionally cut at an inner layer, pooled, partly or wholly frozen, with trainable layers on top.
 * Frozen batch-norm layers run in inference mode (their moving statistics stay as loaded) even
 * when the encoder is applied with `training: true`. A backbone whose features are not
 * `[batch, features]` is an error with its shape.
 *
 * @param inputShape Shape of one input, e.g. `[64, 64, 3]` or `[D]`.
 * @example
 * ```ts
 * const enc = await buildEncoder({ backbone: 'mobilenet/', backboneLayer: 'block_13_expand_relu',
 *   backbonePooling: 'avg', trainableFrom: 'block_14_expand' }, [96, 96, 3]);
 * const features = enc.model.apply(images, { training: true }) as tf.Tensor2D;
 * ```
 */
export async function buildEncoder(
  options: BackboneOptions,
  inputShape: readonly number[],
): Promise<Encoder> {
  const fn = 'buildEncoder';
  check(
    inputShape.length > 0 && inputShape.every((d) => Number.isInteger(d) && d > 0),
    () => `${fn}: inputShape must be positive integers like [64, 64, 3], but got ${shapeString(inputShape)}.`,
  );
  const seed = options.seed ?? 0;
  if (options.backbone === undefined) {
    const name = options.encoder ?? (inputShape.length === 3 ? 'conv' : 'mlp');
    const model = builtInEncoder(name, inputShape, options);
    return finish(fn, model, `${name} (random init)`, options, false, seed);
  }
  const loaded =
    typeof options.backbone === 'string' ? await loadBackbone(fn, options.backbone) : options.backbone;
  if (loaded instanceof tfl.LayersModel) {
    // a fixed input size or channel count that differs from the data fails now, not after an epoch
    const wants = (loaded.inputs[0].shape as (number | null)[]).slice(1);
    const clash =
      wants.length !== inputShape.length || wants.some((d, i) => d !== null && d !== inputShape[i]);
    check(
      !clash,
      () =>
        `${fn}: the backbone ${typeof options.backbone === 'string' ? options.backbone : ''} takes inputs of shape ${shapeString(wants.map((d) => d ?? -1))}, but the data gives ${shapeString(inputShape)}${wants.length === 3 && inputShape.length === 3 ? `; pass --image-size ${wants[0]} and --channels ${wants[2]}` : ''}.`,
    );
    return finish(
      fn,
      loaded,
      typeof options.backbone === 'string' ? options.backbone : 'layers model',
      options,
      false,
      seed,
    );
  }
  check(
    loaded !== null && typeof loaded === 'object' && typeof (loaded as GraphModelLike).execute === 'function',
    () => `${fn}: backbone must be a path, a tfl.LayersModel or a GraphModel, but got ${typeof loaded}.`,
  );
  check(
    options.trainableFrom === undefined,
    () =>
      `${fn}: a graph model backbone is always frozen (tfjs cannot train it), so trainableFrom cannot apply; train the head (headDims) instead.`,
  );
  const graph = loaded as GraphModelLike;
  const input = tfl.input({ shape: [...inputShape] });
  const probe = tf.tidy(() => {
    const out = graph.execute(tf.zeros([1, ...inputShape]), options.backboneLayer);
    const first = Array.isArray(out) ? out[0] : out;
    return first.shape.slice(1);
  });
  const features = new GraphFeatures(graph, probe, options.backboneLayer).apply(input) as tfl.SymbolicTensor;
  const model = tfl.model({ inputs: input, outputs: features, name: 'graph_backbone' });
  const headDims = options.headDims ?? [options.embeddingDim ?? (probe[probe.length - 1] as number)];
  return finish(
    fn,
    model,
    typeof options.backbone === 'string' ? options.backbone : 'graph model',
    { ...options, headDims, backboneLayer: undefined },
    true,
    seed,
  );
}

/** A built-in encoder with random weights. */
export function builtInEncoder(
  name: EncoderName,
  inputShape: readonly number[],
  options: Pick<BackboneOptions, 'embeddingDim' | 'widthMultiplier' | 'seed'> = {},
): tfl.LayersModel {
  const fn = 'buildEncoder';
  const seed = options.seed ?? 0;
  if (name === 'mlp')
    return mlpEncoder({
      inputDim: inputShape.reduce((a, b) => a * b, 1),
      inputShape,
      embeddingDim: options.embeddingDim,
      seed,
    });
  check(
    inputShape.length === 3,
    () =>
      `${fn}: encoder '${name}' needs image inputs [H, W, C], but got inputShape ${shapeString(inputShape)}.`,
  );
  const shape = inputShape as unknown as [number, number, number];
  if (name === 'conv')
    return smallConvEncoder({ inputShape: shape, embeddingDim: options.embeddingDim, seed });
  if (name === 'mobilenet-v2') return mobileNetV2Encoder({ ...options, inputShape: shape });
  if (name === 'resnet-18') return resNet18Encoder({ ...options, inputShape: shape });
  throw new ContrastiveError(
    `${fn}: encoder must be 'mlp', 'conv', 'mobilenet-v2' or 'resnet-18', but got ${JSON.stringify(name)}.`,
  );
}

/** Options of {@link mobileNetV2Encoder} and {@link resNet18Encoder}. */
export interface ColourEncoderOptions {
  inputShape: readonly [number, number, number];
  /** Channel multiplier (default 0.5). */
  widthMultiplier?: number;
  /** A linear layer maps the pooled features to this size when given. */
  embeddingDim?: number;
  /**
   * `resnet-18`: stride of the 3×3 stem. Default 2 for inputs of 64 pixels or more (so a 64×64
   * image runs at 32×32 in the first stage, affordable on a CPU), 1 below (the CIFAR variant).
   */
  stemStride?: 1 | 2;
  seed?: number;
}

/**
 * A MobileNetV2-style encoder (Sandler et al. 2018) sized for 64×64 colour images on a CPU
 * (training needs the depthwise-convolution gradients: the cpu and tensorflow backends have them,
 * and on wasm the engine adds them, `engine/kernels/depthwise.ts`):
 * a stride-2 3×3 stem, inverted residual blocks (1×1 expand → BN → ReLU6 → 3×3 depthwise → BN →
 * ReLU6 → 1×1 project → BN, identity shortcut when the shape allows) with the paper's
 * (expansion, channels, repeats, stride) table cut after the 96-channel stage, a 1×1 conv to
 * `640 × widthMultiplier` channels, global average pooling. Random init, seeded.
 */
export function mobileNetV2Encoder(options: ColourEncoderOptions): tfl.LayersModel {
  const alpha = checkWidth(options.widthMultiplier ?? 0.5);
  const seeds = seedStream(options.seed ?? 0);
  const ch = (c: number) => Math.max(8, Math.round((c * alpha) / 8) * 8);
  const init = () => tfl.initializers.heNormal({ seed: seeds() });
  const conv = (filters: number, kernelSize: number, strides: number, name: string) =>
    tfl.layers.conv2d({
      filters,
      kernelSize,
      strides,
      padding: 'same',
      useBias: false,
      kernelInitializer: init(),
      name,
    });
  const bnRelu6 = (x: tfl.SymbolicTensor, name: string, relu = true) => {
    const y = batchNormalization({ name: `${name}_bn` }).apply(x) as tfl.SymbolicTensor;
    return relu ? (tfl.layers.reLU({ maxValue: 6, name: `${name}_relu` }).apply(y) as tfl.SymbolicTensor) : y;
  };
  const input = tfl.input({ shape: [...options.inputShape] });
  let x = bnRelu6(conv(ch(32), 3, 2, 'stem_conv').apply(input) as tfl.SymbolicTensor, 'stem');
  let channels = ch(32);
  const table: [number, number, number, number][] = [
    [1, 16, 1, 1],
    [6, 24, 2, 2],
    [6, 32, 3, 2],
    [6, 64, 2, 2],
    [6, 96, 2, 1],
  ];
  let block = 0;
  for (const [t, c, n, s] of table) {
    const out = ch(c);
    for (let r = 0; r < n; r++) {
      const name = `block${++block}`;
      const stride = r === 0 ? s : 1;
      let y = x;
      if (t !== 1)
        y = bnRelu6(
          conv(channels * t, 1, 1, `${name}_expand`).apply(y) as tfl.SymbolicTensor,
          `${name}_expand`,
        );
      y = tfl.layers
        .depthwiseConv2d({
          kernelSize: 3,
          strides: stride,
          padding: 'same',
          useBias: false,
          depthwiseInitializer: init(),
          name: `${name}_depthwise`,
        })
        .apply(y) as tfl.SymbolicTensor;
      y = bnRelu6(y, `${name}_depthwise`);
      y = bnRelu6(
        conv(out, 1, 1, `${name}_project`).apply(y) as tfl.SymbolicTensor,
        `${name}_project`,
        false,
      );
      x =
        stride === 1 && channels === out
          ? (tfl.layers.add({ name: `${name}_add` }).apply([x, y]) as tfl.SymbolicTensor)
          : y;
      channels = out;
    }
  }
  x = bnRelu6(conv(ch(640), 1, 1, 'top_conv').apply(x) as tfl.SymbolicTensor, 'top');
  return poolAndEmbed(x, input, options.embeddingDim, seeds, 'mobilenet_v2_encoder');
}

/**
 * A ResNet-18-style encoder (He et al. 2016) for small colour images: a 3×3 stem (stride 1 as in
 * the CIFAR variant below 64 pixels, 2 from 64 up; no max pool), four stages of two basic blocks (3×3 conv → BN → ReLU → 3×3 conv
 * → BN, 1×1 projection shortcut when the shape changes) with `[64, 128, 256, 512] ×
 * widthMultiplier` channels, stride 2 from the second stage, global average pooling.
 */
export function resNet18Encoder(options: ColourEncoderOptions): tfl.LayersModel {
  const alpha = checkWidth(options.widthMultiplier ?? 0.5);
  const seeds = seedStream(options.seed ?? 0);
  const widths = [64, 128, 256, 512].map((w) => Math.max(8, Math.round(w * alpha)));
  const conv = (filters: number, kernelSize: number, strides: number, name: string) =>
    tfl.layers.conv2d({
      filters,
      kernelSize,
      strides,
      padding: 'same',
      useBias: false,
      kernelInitializer: tfl.initializers.heNormal({ seed: seeds() }),
      name,
    });
  const bn = (name: string) => batchNormalization({ name });
  const relu = (name: string) => tfl.layers.reLU({ name });
  const input = tfl.input({ shape: [...options.inputShape] });
  const stemStride =
    options.stemStride ?? (Math.min(options.inputShape[0], options.inputShape[1]) >= 64 ? 2 : 1);
  let x = conv(widths[0], 3, stemStride, 'stem_conv').apply(input) as tfl.SymbolicTensor;
  x = relu('stem_relu').apply(bn('stem_bn').apply(x)) as tfl.SymbolicTensor;
  let channels = widths[0];
  widths.forEach((width, stage) => {
    for (let b = 0; b < 2; b++) {
      const name = `stage${stage + 1}_block${b + 1}`;
      const stride = stage > 0 && b === 0 ? 2 : 1;
      let y = conv(width, 3, stride, `${name}_conv1`).apply(x) as tfl.SymbolicTensor;
      y = relu(`${name}_relu1`).apply(bn(`${name}_bn1`).apply(y)) as tfl.SymbolicTensor;
      y = bn(`${name}_bn2`).apply(conv(width, 3, 1, `${name}_conv2`).apply(y)) as tfl.SymbolicTensor;
      const shortcut =
        stride !== 1 || width !== channels
          ? (bn(`${name}_shortcut_bn`).apply(
              conv(width, 1, stride, `${name}_shortcut`).apply(x),
            ) as tfl.SymbolicTensor)
          : x;
      x = relu(`${name}_relu2`).apply(
        tfl.layers.add({ name: `${name}_add` }).apply([y, shortcut]),
      ) as tfl.SymbolicTensor;
      channels = width;
    }
  });
  return poolAndEmbed(x, input, options.embeddingDim, seeds, 'resnet18_encoder');
}

function poolAndEmbed(
  x: tfl.SymbolicTensor,
  input: tfl.SymbolicTensor,
  embeddingDim: number | undefined,
  seeds: () => number,
  name: string,
): tfl.LayersModel {
  let out = tfl.layers.globalAveragePooling2d({ name: 'pool' }).apply(x) as tfl.SymbolicTensor;
  const channels = out.shape[1] as number;
  if (embeddingDim !== undefined && embeddingDim !== channels) {
    out = tfl.layers
      .dense({
        units: embeddingDim,
        kernelInitializer: tfl.initializers.glorotUniform({ seed: seeds() }),
        name: 'embedding',
      })
      .apply(out) as tfl.SymbolicTensor;
  }
  return tfl.model({ inputs: input, outputs: out, name });
}

/**
 * Loads a backbone from a folder or its `model.json`: a layers model as a `tfl.LayersModel`, a
 * graph model through `@tensorflow/tfjs-converter` (an optional dependency: install it to load
 * graph models from disk, or pass the loaded `GraphModel`).
 */
export async function loadBackbone(fn: string, path: string): Promise<tfl.LayersModel | GraphModelLike> {
  const info = await stat(path).catch(() => null);
  check(
    info !== null,
    () =>
      `${fn}: backbone ${path}: no such file or folder (expected a folder with model.json, or the model.json).`,
  );
  const dir = info.isDirectory() ? path : dirname(path);
  const jsonPath = info.isDirectory() ? join(path, 'model.json') : path;
  let json: { format?: string; modelTopology?: unknown };
  try {
    json = JSON.parse(await readFile(jsonPath, 'utf8')) as typeof json;
  } catch (error) {
    throw new ContrastiveError(
      `${fn}: backbone ${jsonPath} must be a tfjs model.json, but reading it failed: ${(error as Error).message}.`,
    );
  }
  if (json.format === 'graph-model') {
    const converterName = '@tensorflow/tfjs-converter';
    let converter: { loadGraphModel(handler: tf.io.IOHandler): Promise<GraphModelLike> };
    try {
      converter = (await import(converterName)) as typeof converter;
    } catch {
      throw new ContrastiveError(
        `${fn}: backbone ${jsonPath} is a graph model; loading one from disk needs @tensorflow/tfjs-converter (npm install @tensorflow/tfjs-converter), or load it yourself and pass the GraphModel as backbone.`,
      );
    }
    return converter.loadGraphModel(await memoryHandler(dir, jsonPath));
  }
  check(
    json.modelTopology !== undefined,
    () =>
      `${fn}: backbone ${jsonPath} must be a tfjs layers or graph model (format 'layers-model' or 'graph-model'), but has format ${JSON.stringify(json.format)} and no modelTopology.`,
  );
  if (basename(jsonPath) !== 'model.json') {
    // loadLayersModelFromDir reads dir/model.json; any other name goes through the same reader
    return tfl.loadLayersModel(await memoryHandler(dir, jsonPath));
  }
  return loadLayersModelFromDir(dir);
}

async function memoryHandler(dir: string, jsonPath: string): Promise<tf.io.IOHandler> {
  const json = JSON.parse(await readFile(jsonPath, 'utf8')) as {
    modelTopology: object;
    weightsManifest: { paths: string[]; weights: tf.io.WeightsManifestEntry[] }[];
  };
  const buffers: Uint8Array[] = [];
  const specs: tf.io.WeightsManifestEntry[] = [];
  for (const group of json.weightsManifest ?? []) {
    for (const p of group.paths) {
      checkWeightPath(jsonPath, p);
      buffers.push(await readFile(join(dir, p)));
    }
    specs.push(...group.weights);
  }
  const weightData = new Uint8Array(buffers.reduce((s, b) => s + b.length, 0));
  let offset = 0;
  for (const b of buffers) {
    weightData.set(b, offset);
    offset += b.length;
  }
  return tf.io.fromMemory({
    modelTopology: json.modelTopology,
    weightSpecs: specs,
    weightData: weightData.buffer,
  });
}

/** Cuts, pools, freezes and tops a backbone; checks its output is `[batch, features]`. */
function finish(
  fn: string,
  backbone: tfl.LayersModel,
  source: string,
  options: BackboneOptions,
  isGraph: boolean,
  seed: number,
): Encoder {
  let model = backbone;
  if (options.backboneLayer !== undefined) {
    const layer = findLayer(fn, backbone, options.backboneLayer, 'backboneLayer');
    let output: tfl.SymbolicTensor;
    try {
      output = layer.output as tfl.SymbolicTensor;
    } catch {
      throw new ContrastiveError(
        `${fn}: backboneLayer ${JSON.stringify(options.backboneLayer)} is used more than once in the model, so it has no single output to take features from.`,
      );
    }
    model = tfl.model({
      inputs: backbone.inputs,
      outputs: output,
      name: `${backbone.name}_to_${layer.name}`,
    });
  }
  const pooling = options.backbonePooling ?? 'none';
  check(
    pooling === 'none' || pooling === 'avg' || pooling === 'max',
    () => `${fn}: backbonePooling must be 'none', 'avg' or 'max', but got ${JSON.stringify(pooling)}.`,
  );
  check(
    model.outputs.length === 1,
    () => `${fn}: the backbone must have one output, but has ${model.outputs.length}.`,
  );
  let features = model.outputs[0];
  if (pooling !== 'none') {
    check(
      features.shape.length === 4,
      () =>
        `${fn}: backbonePooling '${pooling}' needs [batch, h, w, c] features, but the backbone gives ${shapeString(features.shape.map((d) => d ?? -1))}.`,
    );
    features = (
      pooling === 'avg' ? tfl.layers.globalAveragePooling2d({}) : tfl.layers.globalMaxPooling2d({})
    ).apply(features) as tfl.SymbolicTensor;
  }
  check(
    features.shape.length === 2,
    () =>
      `${fn}: the backbone must output [batch, features], but ${source}${options.backboneLayer ? ` at layer ${JSON.stringify(options.backboneLayer)}` : ''} gives ${shapeString(features.shape.map((d) => d ?? -1))}${features.shape.length === 4 ? "; pass backbonePooling: 'avg' (or 'max') to pool it" : '; pick another backboneLayer'}.`,
  );

  // freezing, on the backbone's own layers (before anything is added on top)
  const backboneLayers = layersOf(model);
  const frozen = new Set<tfl.layers.Layer>();
  if (isGraph || options.freeze) for (const l of backboneLayers) frozen.add(l);
  else if (options.trainableFrom !== undefined) {
    const from = findLayer(fn, model, options.trainableFrom, 'trainableFrom');
    const at = backboneLayers.indexOf(from);
    for (const l of backboneLayers.slice(0, at)) frozen.add(l);
  }
  for (const l of frozen) freezeLayer(l);
  const backboneVariables = model.trainableWeights.map((w) => w.read() as tf.Variable);

  const headDims = options.headDims ?? [];
  const seeds = seedStream(seed + 104729);
  let top = features;
  headDims.forEach((units, k) => {
    check(
      Number.isInteger(units) && units > 0,
      () => `${fn}: headDims[${k}] must be a positive integer, but got ${units}.`,
    );
    top = tfl.layers
      .dense({
        units,
        activation: k < headDims.length - 1 ? 'relu' : 'linear',
        kernelInitializer: tfl.initializers.glorotUniform({ seed: seeds() }),
        name: `added_dense${k + 1}`,
      })
      .apply(top) as tfl.SymbolicTensor;
  });
  const whole =
    top === model.outputs[0]
      ? model
      : tfl.model({ inputs: model.inputs, outputs: top, name: `${model.name}_encoder` });
  const backboneSet = new Set(backboneVariables);
  return {
    model: whole,
    featureDim: top.shape[1] as number,
    source,
    frozenLayers: [...frozen].map((l) => l.name),
    backboneVariables,
    addedVariables: whole.trainableWeights
      .map((w) => w.read() as tf.Variable)
      .filter((v) => !backboneSet.has(v)),
    containsGraphModel: isGraph,
  };
}

/** Every layer of a model, nested models flattened, in order, inputs left out. */
function layersOf(model: tfl.LayersModel): tfl.layers.Layer[] {
  const out: tfl.layers.Layer[] = [];
  for (const l of model.layers) {
    if (l instanceof tfl.LayersModel) out.push(...layersOf(l));
    else if (l.getClassName() !== 'InputLayer') out.push(l);
  }
  return out;
}

function findLayer(fn: string, model: tfl.LayersModel, name: string, option: string): tfl.layers.Layer {
  const layer = layersOf(model).find((l) => l.name === name);
  if (layer) return layer;
  const names = layersOf(model).map((l) => l.name);
  throw new ContrastiveError(
    `${fn}: ${option} ${JSON.stringify(name)} is not a layer of the backbone; its layers are: ${names.join(', ')}.`,
  );
}

const FROZEN = Symbol('contrastive.frozenBatchNorm');

/**
 * Makes a layer non-trainable; a batch-norm layer also runs in inference mode from now on (its
 * moving mean and variance are used and never updated), whatever `training` says.
 */
export function freezeLayer(layer: tfl.layers.Layer): void {
  layer.trainable = false;
  if (layer.getClassName() !== 'BatchNormalization') return;
  const marked = layer as tfl.layers.Layer & { [FROZEN]?: true };
  if (marked[FROZEN]) return;
  marked[FROZEN] = true;
  const call = layer.call.bind(layer);
  layer.call = (inputs, kwargs) => call(inputs, { ...kwargs, training: false });
}

/** A frozen graph model as a layer: no weights, no gradient, its output shape probed once. */
class GraphFeatures extends tfl.layers.Layer {
  static className = 'GraphFeatures';

  constructor(
    private readonly graph: GraphModelLike,
    private readonly featureShape: number[],
    private readonly outputName: string | undefined,
  ) {
    super({ trainable: false, name: 'graph_model' });
  }

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tfl.Shape;
    return [shape[0], ...this.featureShape];
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    const x = Array.isArray(inputs) ? inputs[0] : inputs;
    return tf.tidy(() => {
      const out = this.graph.execute(x, this.outputName);
      return stopGradient(Array.isArray(out) ? out[0] : out);
    });
  }
}

function checkWidth(alpha: number): number {
  check(
    typeof alpha === 'number' && Number.isFinite(alpha) && alpha > 0 && alpha <= 4,
    () => `buildEncoder: widthMultiplier must be a number in (0, 4], but got ${String(alpha)}.`,
  );
  return alpha;
}

function seedStream(seed: number): () => number {
  let k = 0;
  return () => ((seed * 1000003 + ++k * 7919) >>> 0) % 2147483647;
}
