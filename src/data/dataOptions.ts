import { ContrastiveError } from '../errors.js';
import { kebab, type OptionSpec } from '../options.js';
import type { ChannelStats, ColorAugmentOptions } from './colorAugment.js';

/**
 * The data options of `loadTrainingData` (its `TrainingDataOptions` beyond `data`, the seed and
 * the limits), described once for the train command's table and config files. Each name is the
 * `TrainingDataOptions` field it sets.
 */
export const DATA_OPTIONS = [
  {
    name: 'dataKind',
    type: 'string',
    choices: ['auto', 'manifest', 'table'],
    default: 'auto',
    doc: 'a .csv/.jsonl --data: an image manifest or a feature table (auto: an image column makes a manifest, none a table; a file that reads either way is an error); see docs/data.md',
  },
  {
    name: 'imageSize',
    type: 'integer',
    default: 28,
    doc: 'image folders and manifests: images are resized to this many pixels per side',
  },
  {
    name: 'channels',
    type: 'integer',
    default: 1,
    doc: 'image folders and manifests: 1 (grey) or 3 (colour); every image is converted',
  },
  {
    name: 'background',
    type: 'string',
    default: 'white',
    doc: 'image folders and manifests: colour transparent pixels are composited on (white, black, #rrggbb, or none to drop the alpha channel as runs before this option did); recorded in the run and applied by every command and the web page',
  },
  {
    name: 'testData',
    type: 'string',
    doc: 'a separate test set (same kind as --data) instead of a split of --data',
  },
  {
    name: 'testFraction',
    type: 'number',
    default: 0.2,
    doc: 'share of --data held out for testing (stratified, seeded) when --test-data is not given',
  },
  {
    name: 'labelColumn',
    type: 'string',
    default: 'label',
    doc: 'the CSV column / JSONL key of the label path (e.g. Clothes/Tops/T-shirt)',
  },
  {
    name: 'levelColumns',
    type: 'list',
    doc: 'one column / key per level, coarsest first, instead of a label-path column',
  },
  {
    name: 'labelsPath',
    type: 'string',
    doc: '.npy tables: the labels file (one label path per line, or a CSV read with --label-column)',
  },
  {
    name: 'imageColumn',
    type: 'string',
    doc: "makes --data an image manifest with this image-path column (a CSV/JSONL with an 'image' column is one anyway); relative paths are resolved against the manifest's folder",
  },
  {
    name: 'separator',
    type: 'string',
    default: '/',
    doc: 'separator inside label paths',
  },
  {
    name: 'shortLabels',
    type: 'string',
    choices: ['repeat-leaf', 'unknown'],
    default: 'repeat-leaf',
    doc: 'label paths shorter than the deepest: pad with their last level, or keep them as partial labels (hierarchical methods use only the levels they know)',
  },
  {
    name: 'minImageSize',
    type: 'integer',
    default: 0,
    doc: 'images smaller than this on either side are an error instead of being upscaled (0: accept every size)',
  },
] as const satisfies readonly OptionSpec[];

/**
 * The colour-augmentation options (SimCLR's set, see `colorAugment`) as flat flags; defaults are
 * SimCLR's. {@link colorAugmentOptionsFrom} turns their values into `ColorAugmentOptions`.
 */
export const COLOR_AUGMENT_OPTIONS = [
  { name: 'cropScale', type: 'list', default: ['0.08', '1'], doc: 'random resized crop: area share min,max' },
  {
    name: 'cropRatio',
    type: 'list',
    default: ['0.75', '1.3333'],
    doc: 'random resized crop: aspect ratio min,max',
  },
  {
    name: 'cropSize',
    type: 'integer',
    default: 0,
    doc: 'side of the crop fed to the encoder (0: the image size)',
  },
  { name: 'flipProbability', type: 'number', default: 0.5, doc: 'horizontal flip probability' },
  { name: 'jitterBrightness', type: 'number', default: 0.4, doc: 'colour jitter: brightness strength' },
  { name: 'jitterContrast', type: 'number', default: 0.4, doc: 'colour jitter: contrast strength' },
  { name: 'jitterSaturation', type: 'number', default: 0.4, doc: 'colour jitter: saturation strength' },
  {
    name: 'jitterHue',
    type: 'number',
    default: 0.1,
    doc: 'colour jitter: hue strength (turns, at most 0.5)',
  },
  {
    name: 'jitterProbability',
    type: 'number',
    default: 0.8,
    doc: 'probability an image is colour-jittered (0: off)',
  },
  { name: 'greyscaleProbability', type: 'number', default: 0.2, doc: 'probability an image is turned grey' },
  { name: 'blurProbability', type: 'number', default: 0, doc: 'Gaussian blur probability (0: off)' },
  { name: 'blurSigma', type: 'list', default: ['0.1', '2'], doc: 'Gaussian blur sigma min,max in pixels' },
  {
    name: 'normalize',
    type: 'string',
    choices: ['none', 'measure', 'given'],
    default: 'none',
    doc: 'per-channel normalisation: none, measured on the training set, or --channel-mean/--channel-std',
  },
  { name: 'channelMean', type: 'list', doc: 'per-channel means for --normalize given' },
  { name: 'channelStd', type: 'list', doc: 'per-channel standard deviations for --normalize given' },
] as const satisfies readonly OptionSpec[];

/** Values of {@link COLOR_AUGMENT_OPTIONS}, as parsed by the options table (lists as strings). */
export type ColorAugmentOptionValues = Partial<
  Record<(typeof COLOR_AUGMENT_OPTIONS)[number]['name'], string | number | readonly string[]>
>;

/**
 * `ColorAugmentOptions` from flag values; `measured` gives the statistics for `normalize:
 * 'measure'` (e.g. `measureChannelStats(train.inputs, channels)`), `imageSize` the input side.
 */
export function colorAugmentOptionsFrom(
  values: ColorAugmentOptionValues,
  imageSize: number,
  measured?: ChannelStats,
): ColorAugmentOptions {
  const fn = 'colorAugmentOptionsFrom';
  const num = (name: keyof ColorAugmentOptionValues, fallback: number): number => {
    const v = values[name] ?? fallback;
    const x = typeof v === 'number' ? v : Number(v);
    if (!Number.isFinite(x))
      throw new ContrastiveError(`${fn}: --${kebab(name)} must be a number, but got ${JSON.stringify(v)}.`);
    return x;
  };
  const numbers = (
    name: keyof ColorAugmentOptionValues,
    fallback: readonly string[] | undefined,
  ): number[] => {
    const v = values[name] ?? fallback ?? [];
    const items = typeof v === 'string' ? v.split(',') : typeof v === 'number' ? [String(v)] : [...v];
    const out = items.map(Number);
    if (out.some((x) => !Number.isFinite(x)))
      throw new ContrastiveError(
        `${fn}: --${kebab(name)} must be a list of numbers, but got ${JSON.stringify(v)}.`,
      );
    return out;
  };
  const pair = (
    name: 'cropScale' | 'cropRatio' | 'blurSigma',
    fallback: readonly string[],
  ): [number, number] => {
    const p = numbers(name, fallback);
    if (p.length !== 2)
      throw new ContrastiveError(`${fn}: --${kebab(name)} must be two numbers min,max, but got ${p.length}.`);
    return [p[0], p[1]];
  };
  const cropSize = num('cropSize', 0) || imageSize;
  const jitterProbability = num('jitterProbability', 0.8);
  const blurProbability = num('blurProbability', 0);
  const mode = String(values.normalize ?? 'none');
  let normalize: ChannelStats | false = false;
  if (mode === 'measure') {
    if (!measured)
      throw new ContrastiveError(
        `${fn}: --normalize measure needs the training set's statistics, but got none.`,
      );
    normalize = measured;
  } else if (mode === 'given') {
    normalize = { mean: numbers('channelMean', undefined), std: numbers('channelStd', undefined) };
  } else if (mode !== 'none') {
    throw new ContrastiveError(
      `${fn}: --normalize must be none, measure or given, but got ${JSON.stringify(mode)}.`,
    );
  }
  return {
    outputSize: [cropSize, cropSize],
    scale: pair('cropScale', ['0.08', '1']),
    ratio: pair('cropRatio', ['0.75', '1.3333']),
    flip: num('flipProbability', 0.5),
    jitter:
      jitterProbability > 0
        ? {
            brightness: num('jitterBrightness', 0.4),
            contrast: num('jitterContrast', 0.4),
            saturation: num('jitterSaturation', 0.4),
            hue: num('jitterHue', 0.1),
            probability: jitterProbability,
          }
        : false,
    greyscale: num('greyscaleProbability', 0.2),
    blur:
      blurProbability > 0 ? { probability: blurProbability, sigma: pair('blurSigma', ['0.1', '2']) } : false,
    normalize,
  };
}
