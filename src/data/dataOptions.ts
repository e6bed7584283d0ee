import type { OptionSpec } from '../options.js';

/**
 * The data options of `loadTrainingData` (its `TrainingDataOptions` beyond `data`, the seed and
 * the limits), described once for the train command's table and config files. Each name is the
 * `TrainingDataOptions` field it sets.
 */
export const DATA_OPTIONS = [
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
