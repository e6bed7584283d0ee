import { stat } from 'node:fs/promises';
import { ContrastiveError } from '../errors.js';
import { LabelTree } from '../hierarchy/labelTree.js';
import { loadFashionMnist } from './fashionMnist.js';
import { type FeatureTable, readFeatureTable } from './featureTable.js';
import { readImageFolder } from './imageFolder.js';
import { holdOutClasses, trainTestSplit } from './splits.js';

/** Inputs and label rows of one split, row-major. */
export interface TrainingSplit {
  /** `[N, ...inputShape]` float32. */
  inputs: Float32Array;
  /** `[N, L]` label rows, coarsest first. */
  labels: Int32Array;
  size: number;
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
}

/** Options that decide the data of a run (a subset of the training config). */
export interface TrainingDataOptions {
  data: string;
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
  seed?: number;
  dataDir?: string;
  trainLimit?: number;
  testLimit?: number;
  holdoutClasses?: readonly string[];
  /** Hold out this fraction of the training split as the evaluation split (the test split is not used). */
  validationFraction?: number;
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
  const split = trainTestSplit(data.train.labels, depth, { testFraction: fraction, seed: options.seed });
  return {
    ...data,
    train: subset(data.train, dim, depth, split.train),
    test: subset(data.train, dim, depth, split.test),
    source: `${data.source}; ${Math.round(100 * fraction)}% of the training split held out for validation (test split unused)`,
  };
}

async function loadDataset(options: TrainingDataOptions): Promise<TrainingData> {
  if (options.data !== 'fashion-mnist') {
    const info = await stat(options.data).catch(() => null);
    if (!info)
      throw new ContrastiveError(
        `train: --data ${options.data}: no such file or folder (or use 'fashion-mnist').`,
      );
    return info.isDirectory() ? loadImageFolderData(options) : loadTableData(options);
  }
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

/** An image folder (the folder tree is the label tree), split stratified into train and test. */
async function loadImageFolderData(options: TrainingDataOptions): Promise<TrainingData> {
  const size = options.imageSize ?? 28;
  const channels = options.channels === 3 ? 3 : 1;
  const read = async (root: string): Promise<FeatureTable> => {
    const folder = await readImageFolder(root, {
      size: [size, size],
      channels,
      pad: 'repeat-leaf',
      skipUnreadable: options.skipUnreadable,
    });
    return {
      features: folder.images,
      numRows: folder.shape[0],
      dim: size * size * channels,
      paths: folder.paths,
    };
  };
  const table = await read(options.data);
  const test = options.testData ? await read(options.testData) : null;
  return splitLabelled(table, test, [size, size, channels], 'image', options, `image folder ${options.data}`);
}

/** Builds the tree from every path, encodes, splits (or takes the given test set) and holds out classes. */
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
  const tree = LabelTree.fromPaths([...table.paths, ...(test?.paths ?? [])], {
    pad: 'repeat-leaf',
    allowSharedNames: options.allowSharedNames,
  });
  const encode = (t: FeatureTable): TrainingSplit => ({
    inputs: t.features,
    labels: tree.encode(padded(t.paths, tree.depth)),
    size: t.numRows,
  });
  let trainSplit: TrainingSplit;
  let testSplit: TrainingSplit;
  if (test) {
    trainSplit = encode(table);
    testSplit = encode(test);
  } else {
    const all = encode(table);
    const fraction = options.testFraction ?? 0.2;
    if (!(fraction > 0 && fraction < 1))
      throw new ContrastiveError(`train: --test-fraction must be in (0, 1), but got ${fraction}.`);
    const split = trainTestSplit(all.labels, tree.depth, { testFraction: fraction, seed: options.seed });
    [trainSplit, testSplit] = [split.train, split.test].map((rows) =>
      subset(all, table.dim, tree.depth, rows),
    );
  }
  const heldOut = resolveHeldOut(tree, options.holdoutClasses ?? []);
  return {
    kind,
    inputShape,
    train: dropClasses(trainSplit, heldOut, table.dim),
    test: testSplit,
    tree,
    source: `${source}${test ? '' : ` (${Math.round(100 * (options.testFraction ?? 0.2))}% held out for testing)`}`,
    heldOut,
  };
}

function padded(paths: string[][], depth: number): string[][] {
  return paths.map((p) =>
    p.length < depth ? [...p, ...new Array(depth - p.length).fill(p[p.length - 1])] : p,
  );
}

/** The given rows of a split, copied. */
function subset(split: TrainingSplit, dim: number, depth: number, rows: Int32Array): TrainingSplit {
  const inputs = new Float32Array(rows.length * dim);
  const labels = new Int32Array(rows.length * depth);
  rows.forEach((i, r) => {
    inputs.set(split.inputs.subarray(i * dim, (i + 1) * dim), r * dim);
    labels.set(split.labels.subarray(i * depth, (i + 1) * depth), r * depth);
  });
  return { inputs, labels, size: rows.length };
}
