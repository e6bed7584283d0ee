import * as tfl from '@tensorflow/tfjs-layers';
import { check } from '../errors.js';
import { batchNormalization } from './batchNorm.js';

/** Options of {@link mlpEncoder}. */
export interface MlpEncoderOptions {
  inputDim: number;
  /** Shape of one input when it is not a flat vector (e.g. `[28, 28, 1]`): a flatten layer comes first. */
  inputShape?: readonly number[];
  /** Hidden layer widths. Default `[512]`. */
  hiddenDims?: readonly number[];
  /** Output (embedding) size. Default 128. */
  embeddingDim?: number;
  /** Seed of the initial weights: the same seed gives the same model. Default 0. */
  seed?: number;
}

/** An MLP backbone for feature tables: dense → batch norm → ReLU per hidden layer, then a linear embedding. */
export function mlpEncoder(options: MlpEncoderOptions): tfl.LayersModel {
  const hidden = options.hiddenDims ?? [512];
  const seeds = seedStream(options.seed ?? 0);
  check(options.inputDim > 0, () => `mlpEncoder: inputDim must be > 0, but got ${options.inputDim}.`);
  const shape = options.inputShape ?? [options.inputDim];
  const input = tfl.input({ shape: [...shape] });
  let x = (shape.length > 1 ? tfl.layers.flatten().apply(input) : input) as tfl.SymbolicTensor;
  for (const units of hidden) {
    x = tfl.layers
      .dense({ units, useBias: false, kernelInitializer: tfl.initializers.heNormal({ seed: seeds() }) })
      .apply(x) as tfl.SymbolicTensor;
    x = batchNormalization().apply(x) as tfl.SymbolicTensor;
    x = tfl.layers.reLU().apply(x) as tfl.SymbolicTensor;
  }
  const out = tfl.layers
    .dense({
      units: options.embeddingDim ?? 128,
      kernelInitializer: tfl.initializers.glorotUniform({ seed: seeds() }),
    })
    .apply(x) as tfl.SymbolicTensor;
  return tfl.model({ inputs: input, outputs: out, name: 'mlp_encoder' });
}

/** Options of {@link smallConvEncoder}. */
export interface SmallConvEncoderOptions {
  /** `[H, W, C]`, e.g. `[28, 28, 1]` or `[32, 32, 3]`. */
  inputShape: readonly [number, number, number];
  /** Channels of the stem and of each residual stage (each stage after the first halves H and W). Default `[32, 64, 128]`. */
  widths?: readonly number[];
  /** Embedding size; a linear layer maps the pooled features to it when it differs from the last width. */
  embeddingDim?: number;
  seed?: number;
}

/**
 * A compact ResNet-style backbone for 28×28 / 32×32 images: a 3×3 conv stem, one residual block
 * per stage (3×3 conv → BN → ReLU → 3×3 conv → BN, plus a 1×1 projection shortcut when the
 * shape changes), stride 2 between stages, global average pooling. The pooled features are the
 * embedding, as in the SupCon and HiMulCon papers.
 */
export function smallConvEncoder(options: SmallConvEncoderOptions): tfl.LayersModel {
  const widths = options.widths ?? [32, 64, 128];
  check(widths.length > 0, () => 'smallConvEncoder: widths must not be empty.');
  const seeds = seedStream(options.seed ?? 0);
  const conv = (filters: number, kernelSize: number, strides: number) =>
    tfl.layers.conv2d({
      filters,
      kernelSize,
      strides,
      padding: 'same',
      useBias: false,
      kernelInitializer: tfl.initializers.heNormal({ seed: seeds() }),
    });
  const bn = () => batchNormalization();
  const input = tfl.input({ shape: [...options.inputShape] });
  let x = conv(widths[0], 3, 1).apply(input) as tfl.SymbolicTensor;
  x = tfl.layers.reLU().apply(bn().apply(x)) as tfl.SymbolicTensor;
  let channels = widths[0];
  widths.forEach((width, stage) => {
    const stride = stage === 0 ? 1 : 2;
    let y = conv(width, 3, stride).apply(x) as tfl.SymbolicTensor;
    y = tfl.layers.reLU().apply(bn().apply(y)) as tfl.SymbolicTensor;
    y = bn().apply(conv(width, 3, 1).apply(y)) as tfl.SymbolicTensor;
    const shortcut =
      stride !== 1 || width !== channels
        ? (bn().apply(conv(width, 1, stride).apply(x)) as tfl.SymbolicTensor)
        : x;
    x = tfl.layers.reLU().apply(tfl.layers.add().apply([y, shortcut])) as tfl.SymbolicTensor;
    channels = width;
  });
  let out = tfl.layers.globalAveragePooling2d({}).apply(x) as tfl.SymbolicTensor;
  if (options.embeddingDim !== undefined && options.embeddingDim !== channels) {
    out = tfl.layers
      .dense({
        units: options.embeddingDim,
        kernelInitializer: tfl.initializers.glorotUniform({ seed: seeds() }),
      })
      .apply(out) as tfl.SymbolicTensor;
  }
  return tfl.model({ inputs: input, outputs: out, name: 'conv_encoder' });
}

/** Options of {@link projectionHead}. */
export interface ProjectionHeadOptions {
  inputDim: number;
  /** Default: `inputDim`. */
  hiddenDim?: number;
  /** Default 128. */
  outputDim?: number;
  seed?: number;
}

/** The 2-layer MLP head (dense → ReLU → dense) mapping embeddings to the contrastive space. */
export function projectionHead(options: ProjectionHeadOptions): tfl.LayersModel {
  const seeds = seedStream((options.seed ?? 0) + 7919);
  const input = tfl.input({ shape: [options.inputDim] });
  const hidden = tfl.layers
    .dense({
      units: options.hiddenDim ?? options.inputDim,
      activation: 'relu',
      kernelInitializer: tfl.initializers.heNormal({ seed: seeds() }),
    })
    .apply(input);
  const out = tfl.layers
    .dense({
      units: options.outputDim ?? 128,
      kernelInitializer: tfl.initializers.glorotUniform({ seed: seeds() }),
    })
    .apply(hidden) as tfl.SymbolicTensor;
  return tfl.model({ inputs: input, outputs: out, name: 'projection_head' });
}

/** Distinct per-layer seeds derived from one seed, so a model's initial weights depend on one number. */
function seedStream(seed: number): () => number {
  let k = 0;
  return () => ((seed * 1000003 + ++k * 7919) >>> 0) % 2147483647;
}
