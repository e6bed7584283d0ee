import { ContrastiveError } from '../errors.js';
import { LabelTree } from '../hierarchy/labelTree.js';
import { loadFashionMnist } from './fashionMnist.js';
import { type FeatureTable, readFeatureTable } from './featureTable.js';
import { parseBackground } from './imageDecode.js';
import { listImageFolder, readImageFolder } from './imageFolder.js';
import { readImageManifest, readManifest } from './manifest.js';
import { type DataKindChoice, resolveDataSource } from './sources.js';
import { holdOutClasses, takeRows, trainTestSplit } from './splits.js';

/** Inputs and label rows of one split, row-major. */
export interface TrainingSplit {
  /** `[N, ...inputShape]` float32. */
  inputs: Float32Array;
  /** `[N, L]` label rows, coarsest first. */
  labels: Int32Array;
  size: number;
  /**
   * Precomputed augmented views of each row (frozen-backbone features of augmented images):
   * `inputs` is `[N, count, ...inputShape]`. The trainer draws one per sample and view.
   */
  views?: { count: number; inputs: Float32Array };
}

/** A dataset ready for training. */
export interface TrainingData {
  kind: 'image' | 'table';
  /** Shape of one input, e.g. `[28, 28, 1]` or `[D]`. */
  inputShape: number[];
  train: TrainingSplit;
  test: TrainingSplit;
  tree: LabelTree;
  /** Where the data came from, for the log. */
  source: string;
  /** Label rows of the fine classes left out of training. */
  heldOut: number[][];
  /**
   * What loading noticed but did not fail on (short label paths padded, a last line without a
   * newline whose label is new, ...), one line each; the library never prints them.
   */
  warnings: string[];
}

/** Options that decide the data of a run (a subset of the training config). */
export interface TrainingDataOptions {
  data: string;
  /** A CSV/JSONL `data`: an image manifest or a feature table, or `auto` (by content; see `resolveDataSource`). */
  dataKind?: DataKindChoice;
  testData?: string;
  testFraction?: number;
  labelColumn?: string;
  labelsPath?: string;
  /** CSV field delimiter. */
  delimiter?: string;
  /** Image folders: skip files that cannot be decoded instead of failing. */
  skipUnreadable?: boolean;
  /** Let one node name sit under two parents in the label tree. */
  allowSharedNames?: boolean;
  imageSize?: number;
  channels?: number;
  /** Colour transparent pixels are composited on: `white` (default), `black`, `#rrggbb`, or `none` (alpha dropped). */
  background?: string;
  seed?: number;
  dataDir?: string;
  trainLimit?: number;
  testLimit?: number;
  holdoutClasses?: readonly string[];
  /** Hold out this fraction of the training split as the evaluation split (the test split is not used). */
  validationFraction?: number;
  /**
   * A manifest's image column (CSV) or key (JSONL). A `.csv`/`.jsonl` (or `.gz`) `data` whose
   * header (first record) has a column `image` is read as an image manifest anyway; naming the
   * column makes `data` a manifest whatever its header says (a missing column is an error).
   */
  imageColumn?: string;
  /** A manifest's (or table's) one column per level, coarsest first, instead of a label-path column. */
  levelColumns?: readonly string[];
  /** Separator inside label paths. Default `/`. */
  separator?: string;
  /**
   * Label paths shorter than the deepest: `'repeat-leaf'` (default) pads them with their last
   * segment; `'unknown'` keeps them as partial labels (-1 below, for the hierarchical losses).
   * Either way the result's `warnings` says how many there were, once.
   */
  shortLabels?: 'repeat-leaf' | 'unknown';
  /** Images smaller than this on either side are an error (they would be upscaled). Default 0. */
  minImageSize?: number;
}

/**
 * Loads the dataset named by `options.data`, applies the size limits and holds out fine classes;
 * with `validationFraction`, a stratified, seeded part of the training split replaces the test
 * split, so hyper-parameters can be chosen without looking at test data.
 */
export async function loadTrainingData(options: TrainingDataOptions): Promise<TrainingData> {
  const data = await loadDataset(options);
  const fraction = options.validationFraction ?? 0;
  if (!(fraction > 0)) return data;
  const depth = data.tree.depth;
  const dim = data.inputShape.reduce((a, b) => a * b, 1);
  const split = data.train.labels.includes(-1)
    ? trainTestSplit(deepestKnownNode(data.train.labels, depth), 1, {
        testFraction: fraction,
        seed: options.seed,
      })
    : trainTestSplit(data.train.labels, depth, { testFraction: fraction, seed: options.seed });
  return {
    ...data,
    train: subset(data.train, dim, depth, split.train),
    test: subset(data.train, dim, depth, split.test),
    source: `${data.source}; ${Math.round(100 * fraction)}% of the training split held out for validation (test split unused)`,
  };
}

/** What `--data` names: Fashion-MNIST, an image folder, an image manifest or a feature table. */
export type DataKind = 'fashion-mnist' | 'image-folder' | 'image-manifest' | 'table';

/**
 * Which kind of data `options.data` is, as {@link resolveDataSource} (the one parser of `--data`,
 * shared with every use command) resolves it; a missing path, an ambiguous CSV/JSONL, a folder
 * without class sub-folders and `fashion-mnist:<split>` (training reads both splits) are errors.
 */
export async function dataKind(options: TrainingDataOptions): Promise<DataKind> {
  const source = await resolveDataSource(options.data, { ...options, command: 'train' });
  if (source.kind === 'images')
    throw new ContrastiveError(
      `train: --data ${options.data} is ${source.files.length === 1 && source.files[0] === options.data ? 'one image' : 'a folder of images without class sub-folders'}; training needs labels: put each class in a sub-folder, or list the images in a manifest (image,label).`,
    );
  if (source.kind === 'fashion-mnist' && options.data !== 'fashion-mnist')
    throw new ContrastiveError(
      `train: --data ${options.data}: training reads both Fashion-MNIST splits; pass fashion-mnist.`,
    );
  return source.kind;
}

async function loadDataset(options: TrainingDataOptions): Promise<TrainingData> {
  const kind = await dataKind(options);
  if (kind === 'image-folder') return loadImageFolderData(options);
  if (kind === 'image-manifest') return loadImageManifestData(options);
  if (kind === 'table') return loadTableData(options);
  const limit = (n: number | undefined) => (n && n > 0 ? n : undefined);
  const [train, test] = await Promise.all([
    loadFashionMnist({ split: 'train', dataDir: options.dataDir, limit: limit(options.trainLimit) }),
    loadFashionMnist({ split: 'test', dataDir: options.dataDir, limit: limit(options.testLimit) }),
  ]);
  const tree = train.tree;
  const heldOut = resolveHeldOut(tree, options.holdoutClasses ?? []);
  const trainSplit = dropClasses(
    { inputs: train.images, labels: train.labels, size: train.shape[0] },
    heldOut,
    784,
  );
  return {
    kind: 'image',
    inputShape: [28, 28, 1],
    train: trainSplit,
    test: { inputs: test.images, labels: test.labels, size: test.shape[0] },
    tree,
    source: `Fashion-MNIST (${train.source.kind}: ${train.source.dir})`,
    heldOut,
    warnings: [],
  };
}

/** Label rows of the named fine classes; an unknown name is an error listing the known ones. */
function resolveHeldOut(tree: LabelTree, names: readonly string[]): number[][] {
  const leaves = tree.classes(tree.depth - 1);
  return names.map((name) => {
    const id = leaves.indexOf(name);
    if (id < 0) {
      throw new ContrastiveError(
        `train: --holdout-classes: unknown class ${JSON.stringify(name)}; known: ${leaves.join(', ')}.`,
      );
    }
    return tree.row(id);
  });
}

function dropClasses(split: TrainingSplit, heldOut: number[][], inputSize: number): TrainingSplit {
  if (heldOut.length === 0) return split;
  const depth = heldOut[0].length;
  const { kept } = holdOutClasses(
    split.labels,
    depth,
    heldOut.map((r) => r[depth - 1]),
  );
  return subset(split, inputSize, depth, kept);
}

/** A CSV / JSONL / .npy feature table (label paths per row), split into train and test. */
async function loadTableData(options: TrainingDataOptions): Promise<TrainingData> {
  const read = (path: string) =>
    readFeatureTable(path, {
      labelColumn: options.labelColumn,
      delimiter: options.delimiter,
      levelColumns: options.levelColumns,
      separator: options.separator,
      labelsPath: path === options.data ? options.labelsPath : undefined,
    });
  const table = await read(options.data);
  const test = options.testData ? await read(options.testData) : null;
  if (test && test.dim !== table.dim) {
    throw new ContrastiveError(
      `train: --test-data has ${test.dim} features per row but --data has ${table.dim}.`,
    );
  }
  return splitLabelled(
    table,
    test,
    [table.dim],
    'table',
    options,
    `${options.data}${options.testData ? ` + ${options.testData}` : ''}`,
  );
}

/** The image size, channels and background of a run's image data, checked. */
export function imageShape(options: TrainingDataOptions): {
  size: number;
  channels: 1 | 3;
  background: [number, number, number] | null;
} {
  const size = options.imageSize ?? 28;
  const channels = options.channels ?? 1;
  if (!(Number.isInteger(size) && size >= 1 && size <= 4096))
    throw new ContrastiveError(`train: --image-size must be an integer in [1, 4096], but got ${size}.`);
  if (channels !== 1 && channels !== 3)
    throw new ContrastiveError(`train: --channels must be 1 or 3, but got ${channels}.`);
  return { size, channels, background: parseBackground(options.background ?? 'white') };
}

/**
 * Whether `path` (`--data`, or `--test-data`: the same kind) is an image folder or a manifest, as
 * {@link resolveDataSource} resolves it when it is known to hold images (a file is a manifest);
 * anything else is an error.
 */
async function imageSourceKind(
  path: string,
  options: TrainingDataOptions,
): Promise<'image-folder' | 'image-manifest'> {
  const flag = path === options.data ? 'data' : 'testData';
  const source = await resolveDataSource(path, { ...options, command: 'train', flag, dataKind: 'manifest' });
  if (source.kind !== 'image-folder' && source.kind !== 'image-manifest')
    throw new ContrastiveError(
      `train: --${flag === 'data' ? 'data' : 'test-data'} ${path} must be an image folder or manifest like --data, but is ${source.kind === 'images' ? 'images without labels' : `a ${source.kind}`}.`,
    );
  return source.kind;
}

/** Reads an image folder or a manifest as a table of pixels (the `--test-data` may be either). */
async function readImages(path: string, options: TrainingDataOptions): Promise<FeatureTable> {
  const { size, channels, background } = imageShape(options);
  const decode = {
    size: [size, size] as const,
    channels,
    background,
    minSourceSize: options.minImageSize,
    skipUnreadable: options.skipUnreadable,
  };
  if ((await imageSourceKind(path, options)) === 'image-folder') {
    const folder = await readImageFolder(path, { ...decode, pad: 'keep' });
    return {
      features: folder.images,
      numRows: folder.shape[0],
      dim: size * size * channels,
      paths: folder.paths,
    };
  }
  const manifest = await readImageManifest(path, {
    ...decode,
    imageColumn: options.imageColumn,
    labelColumn: options.labelColumn,
    levelColumns: options.levelColumns,
    separator: options.separator,
  });
  return {
    features: manifest.images,
    numRows: manifest.shape[0],
    dim: size * size * channels,
    paths: manifest.paths,
    warnings: manifest.warnings,
  };
}

/** An image folder (the folder tree is the label tree), split stratified into train and test. */
async function loadImageFolderData(options: TrainingDataOptions): Promise<TrainingData> {
  const { size, channels } = imageShape(options);
  const table = await readImages(options.data, options);
  const test = options.testData ? await readImages(options.testData, options) : null;
  return splitLabelled(table, test, [size, size, channels], 'image', options, `image folder ${options.data}`);
}

/**
 * An image manifest (CSV/JSONL: image path and label path per row), split stratified into train
 * and test; the same images as a folder tree give the same dataset.
 */
async function loadImageManifestData(options: TrainingDataOptions): Promise<TrainingData> {
  const { size, channels } = imageShape(options);
  const table = await readImages(options.data, options);
  const test = options.testData ? await readImages(options.testData, options) : null;
  return splitLabelled(
    table,
    test,
    [size, size, channels],
    'image',
    options,
    `image manifest ${options.data}`,
  );
}

/**
 * Makes label paths one depth: pads short ones by repeating their leaf (`'repeat-leaf'`) or leaves
 * them short for partial encoding (`'unknown'`), and returns one warning with the count.
 */
export function evenLabelPaths(
  paths: readonly (readonly string[])[],
  mode: 'repeat-leaf' | 'unknown',
  source: string,
): { paths: string[][]; depth: number; warning: string | null } {
  let depth = 0;
  for (const p of paths) depth = Math.max(depth, p.length);
  let short = 0;
  let example: readonly string[] | null = null;
  const out = paths.map((p) => {
    if (p.length === depth) return p as string[];
    short++;
    example ??= p;
    return mode === 'repeat-leaf'
      ? [...p, ...new Array<string>(depth - p.length).fill(p[p.length - 1])]
      : [...p];
  });
  const warning =
    short === 0 || example === null
      ? null
      : `${source}: ${short} of ${paths.length} label paths are shorter than the deepest (${depth} levels), e.g. ${JSON.stringify((example as readonly string[]).join('/'))}; ${mode === 'repeat-leaf' ? 'padded by repeating their last level' : 'kept as partial labels (-1 below their known levels)'}.`;
  return { paths: out, depth, warning };
}

/** Which rows of a labelled table (and of a separate test table) form each split, with the tree. */
interface SplitPlan {
  tree: LabelTree;
  warnings: string[];
  /** `[rows, L]` labels of every row of the table, and of the separate test table. */
  labels: Int32Array;
  testLabels: Int32Array | null;
  /** Rows of the table in the training split (held-out classes dropped), ascending. */
  trainRows: Int32Array;
  /** Rows of the table (or, with a separate test table, of that table) in the test split. */
  testRows: Int32Array;
  heldOut: number[][];
  sourceNote: string;
}

/** Builds the tree from every path, encodes, splits (or takes the given test set) and holds out classes. */
function planSplit(
  paths: readonly (readonly string[])[],
  testPaths: readonly (readonly string[])[] | null,
  inheritedWarnings: readonly string[],
  options: TrainingDataOptions,
  source: string,
): SplitPlan {
  const mode = options.shortLabels ?? 'repeat-leaf';
  if (mode !== 'repeat-leaf' && mode !== 'unknown')
    throw new ContrastiveError(
      `train: --short-labels must be 'repeat-leaf' or 'unknown', but got ${JSON.stringify(mode)}.`,
    );
  const warnings = [...inheritedWarnings];
  const even = evenLabelPaths([...paths, ...(testPaths ?? [])], mode, source);
  if (even.warning) warnings.push(even.warning);
  const padToDepth = mode === 'unknown' ? 'unknown' : 'error';
  const tree = LabelTree.fromPaths(even.paths, { padToDepth, allowSharedNames: options.allowSharedNames });
  const depth = tree.depth;
  const labels = tree.encode(even.paths.slice(0, paths.length), { padToDepth });
  const testLabels = testPaths ? tree.encode(even.paths.slice(paths.length), { padToDepth }) : null;
  let trainRows: Int32Array;
  let testRows: Int32Array;
  if (testLabels) {
    trainRows = Int32Array.from({ length: paths.length }, (_, i) => i);
    testRows = Int32Array.from({ length: testLabels.length / depth }, (_, i) => i);
  } else {
    const fraction = options.testFraction ?? 0.2;
    if (!(fraction > 0 && fraction < 1))
      throw new ContrastiveError(`train: --test-fraction must be in (0, 1), but got ${fraction}.`);
    const split =
      mode === 'unknown'
        ? trainTestSplit(deepestKnownNode(labels, depth), 1, { testFraction: fraction, seed: options.seed })
        : trainTestSplit(labels, depth, { testFraction: fraction, seed: options.seed });
    trainRows = split.train;
    testRows = split.test;
  }
  const heldOut = resolveHeldOut(tree, options.holdoutClasses ?? []);
  if (heldOut.length > 0) {
    const { kept } = holdOutClasses(
      takeRows(labels, depth, trainRows),
      depth,
      heldOut.map((r) => r[depth - 1]),
    );
    trainRows = Int32Array.from(kept, (k) => trainRows[k]);
  }
  return {
    tree,
    warnings,
    labels,
    testLabels,
    trainRows,
    testRows,
    heldOut,
    sourceNote: testPaths
      ? ''
      : ` (${Math.round(100 * (options.testFraction ?? 0.2))}% held out for testing)`,
  };
}

/** The given rows of a table with their labels; the table itself when every row is kept in order. */
function tableSplit(table: FeatureTable, labels: Int32Array, depth: number, rows: Int32Array): TrainingSplit {
  if (rows.length === table.numRows && rows.every((r, i) => r === i))
    return { inputs: table.features, labels, size: table.numRows };
  return subset({ inputs: table.features, labels, size: table.numRows }, table.dim, depth, rows);
}

/** Splits a labelled table (pixels or features) by {@link planSplit}. */
function splitLabelled(
  table: FeatureTable,
  test: FeatureTable | null,
  inputShape: number[],
  kind: TrainingData['kind'],
  options: TrainingDataOptions,
  source: string,
): TrainingData {
  if (test && test.dim !== table.dim) {
    throw new ContrastiveError(
      `train: --test-data has ${test.dim} features per row but --data has ${table.dim}.`,
    );
  }
  const plan = planSplit(
    table.paths,
    test?.paths ?? null,
    [...(table.warnings ?? []), ...(test?.warnings ?? [])],
    options,
    source,
  );
  const depth = plan.tree.depth;
  return {
    kind,
    inputShape,
    train: tableSplit(table, plan.labels, depth, plan.trainRows),
    test:
      test && plan.testLabels
        ? tableSplit(test, plan.testLabels, depth, plan.testRows)
        : tableSplit(table, plan.labels, depth, plan.testRows),
    tree: plan.tree,
    source: `${source}${plan.sourceNote}`,
    heldOut: plan.heldOut,
    warnings: plan.warnings,
  };
}

/** One split of an {@link ImageListing}: files and label rows, nothing decoded. */
export interface ImageListingSplit {
  files: string[];
  /** `[N, L]` label rows, coarsest first (-1 below a partial path with `shortLabels: 'unknown'`). */
  labels: Int32Array;
  size: number;
}

/** {@link listTrainingImages}'s result: a dataset's images as file lists, for streaming through `ImageCache`. */
export interface ImageListing {
  inputShape: [number, number, number];
  train: ImageListingSplit;
  test: ImageListingSplit;
  tree: LabelTree;
  source: string;
  heldOut: number[][];
  warnings: string[];
}

/**
 * The same dataset as {@link loadTrainingData} for an image folder or manifest — the same tree,
 * split, held-out classes and validation split, row for row — as file lists instead of decoded
 * pixels, so a trainer can stream it through `ImageCache` (decode once, read per batch) and never
 * hold the images in memory. `ImageCache.open(listing.train.files, { size, channels })` rows then
 * equal `loadTrainingData(options).train.inputs` exactly.
 */
export async function listTrainingImages(options: TrainingDataOptions): Promise<ImageListing> {
  const { size, channels } = imageShape(options);
  const list = async (path: string) => {
    if ((await imageSourceKind(path, options)) === 'image-folder')
      return { ...(await listImageFolder(path, { pad: 'keep' })), warnings: [] as string[] };
    return readManifest(path, {
      imageColumn: options.imageColumn,
      labelColumn: options.labelColumn,
      levelColumns: options.levelColumns,
      separator: options.separator,
    });
  };
  const data = await list(options.data);
  const test = options.testData ? await list(options.testData) : null;
  const source = `${(await imageSourceKind(options.data, options)) === 'image-folder' ? 'image folder' : 'image manifest'} ${options.data}`;
  const plan = planSplit(
    data.paths,
    test?.paths ?? null,
    [...data.warnings, ...(test?.warnings ?? [])],
    options,
    source,
  );
  const depth = plan.tree.depth;
  const pick = (files: string[], labels: Int32Array, rows: Int32Array): ImageListingSplit => ({
    files: Array.from(rows, (i) => files[i]),
    labels: takeRows(labels, depth, rows),
    size: rows.length,
  });
  let train = pick(data.files, plan.labels, plan.trainRows);
  let testSplit =
    test && plan.testLabels
      ? pick(test.files, plan.testLabels, plan.testRows)
      : pick(data.files, plan.labels, plan.testRows);
  let note = plan.sourceNote;
  const fraction = options.validationFraction ?? 0;
  if (fraction > 0) {
    const split = train.labels.includes(-1)
      ? trainTestSplit(deepestKnownNode(train.labels, depth), 1, {
          testFraction: fraction,
          seed: options.seed,
        })
      : trainTestSplit(train.labels, depth, { testFraction: fraction, seed: options.seed });
    const all = train;
    train = pick(all.files, all.labels, split.train);
    testSplit = pick(all.files, all.labels, split.test);
    note = `${note}; ${Math.round(100 * fraction)}% of the training split held out for validation (test split unused)`;
  }
  return {
    inputShape: [size, size, channels],
    train,
    test: testSplit,
    tree: plan.tree,
    source: `${source}${note}`,
    heldOut: plan.heldOut,
    warnings: plan.warnings,
  };
}

/** One dense class per row: its deepest known node (partial rows stratify with their parent). */
function deepestKnownNode(labels: Int32Array, depth: number): Int32Array {
  const ids = new Map<string, number>();
  const out = new Int32Array(labels.length / depth);
  for (let i = 0; i < out.length; i++) {
    let known = depth;
    while (known > 1 && labels[i * depth + known - 1] === -1) known--;
    const key = `${known}/${labels[i * depth + known - 1]}`;
    let id = ids.get(key);
    if (id === undefined) {
      id = ids.size;
      ids.set(key, id);
    }
    out[i] = id;
  }
  return out;
}

/** The given rows of a split, copied. */
function subset(split: TrainingSplit, dim: number, depth: number, rows: Int32Array): TrainingSplit {
  return {
    inputs: takeRows(split.inputs, dim, rows),
    labels: takeRows(split.labels, depth, rows),
    size: rows.length,
  };
}
