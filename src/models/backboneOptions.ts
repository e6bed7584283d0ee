import { ContrastiveError } from '../errors.js';
import type { OptionSpec } from '../options.js';
import type { BackboneOptions, EncoderName } from './backbones.js';

/**
 * The encoder/backbone options of the train command, described once (same shape as
 * `TRAIN_OPTIONS`). `encoder` replaces the table's current one (it adds two choices);
 * {@link backboneOptionsFrom} turns the values into `buildEncoder` options.
 */
export const BACKBONE_OPTIONS = [
  {
    name: 'encoder',
    type: 'string',
    choices: ['auto', 'conv', 'mlp', 'mobilenet-v2', 'resnet-18'],
    default: 'auto',
    doc: 'built-in backbone (random init): conv (small ResNet) for images, mlp for tables, mobilenet-v2 or resnet-18 for colour images; ignored with --backbone',
  },
  {
    name: 'backbone',
    type: 'string',
    doc: 'a pretrained image model: a folder with model.json (tfjs layers or graph model), the model.json, or an .onnx file (needs onnxruntime-node); graph and ONNX models, and layers models with --freeze, run frozen: their features are computed once and cached, and a head trains on them',
  },
  {
    name: 'backboneLayer',
    type: 'string',
    doc: 'take the features from this inner layer (graph models: output node; ONNX: output name)',
  },
  {
    name: 'backbonePooling',
    type: 'string',
    choices: ['none', 'avg', 'max', 'cls'],
    default: 'none',
    doc: 'pool [batch, h, w, c] backbone features to [batch, c] (cls: the first token of [batch, tokens, d]); frozen backbones pool 4-D features with avg and 3-D with cls unless told',
  },
  {
    name: 'backboneInputSize',
    type: 'integer',
    doc: 'frozen backbones: input size in pixels when the model does not fix it (a fixed one that differs is an error naming both)',
  },
  {
    name: 'backboneResize',
    type: 'string',
    choices: ['stretch', 'crop', 'pad'],
    default: 'stretch',
    doc: 'frozen backbones: fit images to the input size by stretching, centre cropping, or padding with --background',
  },
  {
    name: 'backboneScale',
    type: 'string',
    choices: ['auto', 'unit', 'symmetric', 'byte', 'imagenet'],
    default: 'auto',
    doc: 'frozen backbones: pixel scaling: unit [0,1], symmetric [-1,1], byte [0,255], imagenet (x - mean) / std; auto: imagenet for ONNX, unit for tfjs',
  },
  { name: 'backboneMean', type: 'numbers', doc: 'frozen backbones: per-channel mean (r,g,b) after scaling' },
  { name: 'backboneStd', type: 'numbers', doc: 'frozen backbones: per-channel std (r,g,b) after the mean' },
  {
    name: 'backboneChannelOrder',
    type: 'string',
    choices: ['rgb', 'bgr'],
    default: 'rgb',
    doc: 'frozen backbones: channel order the model expects',
  },
  {
    name: 'featureViews',
    type: 'integer',
    default: 0,
    doc: 'frozen backbones: augmented views per training image whose features are cached besides the clean one (SimCLR-style methods need >= 2)',
  },
  {
    name: 'featureCache',
    type: 'string',
    choices: ['auto', 'off'],
    default: 'auto',
    doc: 'auto: a frozen backbone (graph, ONNX, or layers with --freeze) runs once per image into a feature cache; off: a frozen layers model runs on every step (graph and ONNX models always use the cache)',
  },
  {
    name: 'copyBackbone',
    type: 'boolean',
    default: false,
    doc: "copy a frozen backbone's files into the run folder (default: the run refers to them by path and SHA-256 and refuses a changed file)",
  },
  {
    name: 'trainableFrom',
    type: 'string',
    doc: 'freeze every backbone layer before this one; fine-tune it and the rest',
  },
  {
    name: 'freeze',
    type: 'boolean',
    default: false,
    doc: 'freeze the whole backbone (train only what is on top)',
  },
  {
    name: 'backboneLearningRate',
    type: 'number',
    default: 1,
    doc: "scale of the backbone's learning rate relative to --learning-rate (layers added on top and the head use the full rate)",
  },
  {
    name: 'headDims',
    type: 'list',
    doc: 'widths of dense layers added on top of the backbone features (a graph model gets one by default)',
  },
  {
    name: 'widthMultiplier',
    type: 'number',
    default: 0.5,
    doc: 'channel multiplier of mobilenet-v2 and resnet-18',
  },
] as const satisfies readonly OptionSpec[];

/** Values of {@link BACKBONE_OPTIONS} as the options table parses them. */
export type BackboneOptionValues = Partial<
  Record<
    (typeof BACKBONE_OPTIONS)[number]['name'],
    string | number | boolean | readonly string[] | readonly number[]
  >
>;

/**
 * `buildEncoder` options from flag values (plus the run's seed and embedding size), and the
 * backbone learning-rate scale the trainer applies to `Encoder.backboneVariables`.
 */
export function backboneOptionsFrom(
  values: BackboneOptionValues,
  extra: { seed?: number; embeddingDim?: number } = {},
): { options: BackboneOptions; backboneLearningRate: number } {
  const fn = 'backboneOptionsFrom';
  const text = (name: keyof BackboneOptionValues) =>
    values[name] === undefined || values[name] === '' ? undefined : String(values[name]);
  const encoder = text('encoder');
  const choices = BACKBONE_OPTIONS[0].choices as readonly string[];
  if (encoder !== undefined && !choices.includes(encoder))
    throw new ContrastiveError(
      `${fn}: --encoder must be one of ${choices.join(', ')}, but got ${JSON.stringify(encoder)}.`,
    );
  const headValue = values.headDims;
  const headDims =
    headValue === undefined
      ? undefined
      : (typeof headValue === 'string'
          ? headValue.split(',')
          : Array.isArray(headValue)
            ? headValue
            : [String(headValue)]
        ).map((v) => {
          const n = Number(v);
          if (!(Number.isInteger(n) && n > 0))
            throw new ContrastiveError(
              `${fn}: --head-dims must be positive integers, but got ${JSON.stringify(v)}.`,
            );
          return n;
        });
  const scale = values.backboneLearningRate === undefined ? 1 : Number(values.backboneLearningRate);
  if (!(Number.isFinite(scale) && scale >= 0))
    throw new ContrastiveError(
      `${fn}: --backbone-learning-rate must be a number >= 0, but got ${JSON.stringify(values.backboneLearningRate)}.`,
    );
  const pooling = text('backbonePooling') ?? 'none';
  const width = values.widthMultiplier === undefined ? undefined : Number(values.widthMultiplier);
  return {
    options: {
      encoder: encoder === undefined || encoder === 'auto' ? undefined : (encoder as EncoderName),
      backbone: text('backbone'),
      backboneLayer: text('backboneLayer'),
      backbonePooling: pooling as BackboneOptions['backbonePooling'],
      trainableFrom: text('trainableFrom'),
      freeze: values.freeze === true || values.freeze === 'true',
      headDims,
      widthMultiplier: width,
      embeddingDim: extra.embeddingDim,
      seed: extra.seed,
    },
    backboneLearningRate: scale,
  };
}
