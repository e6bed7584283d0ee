import { loadFashionMnist } from '../data/fashionMnist.js';
import { ContrastiveError } from '../errors.js';
import type { LabelTree } from '../hierarchy/labelTree.js';

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
  dataDir?: string;
  trainLimit?: number;
  testLimit?: number;
  holdoutClasses?: readonly string[];
}

/** Loads the dataset named by `options.data`, applies the size limits and holds out fine classes. */
export async function loadTrainingData(options: TrainingDataOptions): Promise<TrainingData> {
  if (options.data !== 'fashion-mnist') {
    throw new ContrastiveError(
      `train: --data ${JSON.stringify(options.data)} is not supported yet; use 'fashion-mnist'.`,
    );
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
  const held = new Set(heldOut.map((r) => r[depth - 1]));
  const keep: number[] = [];
  for (let i = 0; i < split.size; i++) if (!held.has(split.labels[i * depth + depth - 1])) keep.push(i);
  const inputs = new Float32Array(keep.length * inputSize);
  const labels = new Int32Array(keep.length * depth);
  keep.forEach((i, r) => {
    inputs.set(split.inputs.subarray(i * inputSize, (i + 1) * inputSize), r * inputSize);
    labels.set(split.labels.subarray(i * depth, (i + 1) * depth), r * depth);
  });
  return { inputs, labels, size: keep.length };
}
