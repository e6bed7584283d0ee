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
    doc: 'a pretrained tfjs model as the encoder: a folder with model.json (layers or graph model) or the model.json',
  },
  {
    name: 'backboneLayer',
    type: 'string',
    doc: 'take the features from this inner layer (graph models: output node)',
  },
  {
    name: 'backbonePooling',
    type: 'string',
    choices: ['none', 'avg', 'max'],
    default: 'none',
    doc: 'pool [batch, h, w, c] backbone features to [batch, c]',
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
  Record<(typeof BACKBONE_OPTIONS)[number]['name'], string | number | boolean | readonly string[]>
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
