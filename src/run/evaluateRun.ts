import * as tf from '@tensorflow/tfjs-core';
import { closeRunData, type DataSplit, isCachedSplit, type RunData, readSplitRows } from '../data/runData.js';
import { type BackendName, useBackend } from '../engine/backend.js';
import { embedDataSplit } from '../eval/embed.js';
import { checkEvaluateOptions, type EvaluateOptions, evaluateEmbeddings } from '../eval/evaluate.js';
import { nearestNeighbors } from '../eval/neighbors.js';
import { Rng } from '../random.js';
import { buildModel } from '../train/buildModel.js';
import type { TrainConfig } from '../train/config.js';
import { RunFolder } from './folder.js';
import type { BaselineScores, EvalFile, NeighborStrip } from './records.js';
import { loadTrainedRun } from './trainedRun.js';

/** Options of {@link evaluateRun}. */
export interface EvaluateRunOptions extends EvaluateOptions {
  /** The run's `--data`, moved (its contents must still match the run's fingerprint). */
  data?: string;
  /** Override the run's data folder (e.g. the full set where the run used the embedded subset). */
  dataDir?: string;
  /** Use at most this many training images as the kNN / probe database (0: all). */
  trainLimit?: number;
  /** Nearest-neighbour strips for the report (image data). Default 8; 0 skips them. */
  strips?: number;
  /** Also score the raw input and the untrained encoder the same way (default true). */
  baselines?: boolean;
  backend?: BackendName | 'auto';
  /**
   * Called with a short line at each stage (loading, embedding each split at every tenth,
   * metrics, baselines): the CLI prints them on stderr; the library never prints.
   */
  onProgress?: (message: string) => void;
  /**
   * Most rows of a streamed split the raw-input baseline reads (a seeded sample; the trained
   * model is then also scored on the same rows). Default 5,000 train / 2,000 test.
   */
  rawBaselineRows?: { train: number; test: number };
}

/**
 * `contrastive eval`: embeds the run's training and test data with its backbone, computes every
 * metric of {@link evaluateEmbeddings} (unseen classes from the run's `holdoutClasses`), adds
 * nearest-neighbour strips for image data, and writes `<run>/eval.json`.
 */
export async function evaluateRun(runDir: string, options: EvaluateRunOptions = {}): Promise<EvalFile> {
  // everything that can fail cheaply fails before the embeddings are computed
  checkEvaluateOptions('eval', options);
  await new RunFolder(runDir).requireFolder('eval');
  await new RunFolder(runDir).checkWritable('eval');
  await useBackend(options.backend ?? 'auto');
  const say = options.onProgress ?? (() => undefined);
  say(`loading the run ${runDir} and its data`);
  const { folder, config, model, data } = await loadTrainedRun(runDir, { ...options, command: 'eval' });
  const depth = data.tree.depth;
  const embedding = (what: string) => {
    let shown = -1;
    return (done: number, total: number) => {
      const tenth = Math.floor((10 * done) / total);
      if (tenth === shown) return;
      shown = tenth;
      say(`embedding the ${what}: ${done}/${total}`);
    };
  };
  const rows = (s: DataSplit) =>
    Array.from({ length: s.size }, (_, i) => Array.from(s.labels.subarray(i * depth, (i + 1) * depth)));
  const embedded: tf.Tensor[] = [];
  try {
    const train = {
      embeddings: await embedDataSplit(
        model,
        data.train,
        data.inputShape,
        undefined,
        embedding('train split'),
      ),
      labels: rows(data.train),
    };
    embedded.push(train.embeddings);
    const test = {
      embeddings: await embedDataSplit(model, data.test, data.inputShape, undefined, embedding('test split')),
      labels: rows(data.test),
    };
    embedded.push(test.embeddings);
    say(
      `metrics: kNN, retrieval (test vs test and test vs train), ${options.linearProbe === false ? '' : 'linear probe, '}severity, consistency`,
    );
    const summary = evaluateEmbeddings(train, test, { heldOutClasses: data.heldOut, ...options });
    if (data.kind === 'image' && (options.strips ?? 8) > 0) say('nearest-neighbour strips');
    const result: EvalFile = {
      ...summary,
      levelNames: data.tree.levelNames,
      classNames: data.tree.levelSizes.map((_, l) => data.tree.classes(l)),
      strips:
        data.kind === 'image'
          ? await neighborStrips(test.embeddings, data, options.strips ?? 8, options.seed ?? 0)
          : undefined,
    };
    if (options.baselines !== false)
      result.baselines = await baselineScores(config, data, options, { train, test }, say, embedding);
    await folder.writeEvaluation(result);
    return result;
  } finally {
    tf.dispose(embedded);
    model.dispose();
    await closeRunData(data);
  }
}

/**
 * The raw-input baseline's rows of a streamed (cached) split: a seeded sample of at most this
 * many, ascending, so the baseline's pixels fit in memory (5,000 + 2,000 images of 64 × 64 × 3
 * are 344 MiB of floats). Splits in memory are used whole.
 */
const RAW_BASELINE_ROWS = { train: 5000, test: 2000 } as const;

/** The rows of `split` the raw-input baseline uses, their pixels as `[n, D]` and their label rows. */
async function rawInputRows(
  split: DataSplit,
  which: 'train' | 'test',
  dim: number,
  depth: number,
  seed: number,
  limits: { train: number; test: number } = RAW_BASELINE_ROWS,
): Promise<{ inputs: tf.Tensor2D; labels: number[][]; rows: Int32Array | null }> {
  const labelsOf = (indices: ArrayLike<number>) =>
    Array.from(indices, (i) => Array.from(split.labels.subarray(i * depth, (i + 1) * depth)));
  if (!isCachedSplit(split) || split.size <= limits[which]) {
    const all = Int32Array.from({ length: split.size }, (_, i) => i);
    if (!isCachedSplit(split))
      return { inputs: tf.tensor2d(split.inputs, [split.size, dim]), labels: labelsOf(all), rows: null };
    const pixels = new Float32Array(split.size * dim);
    await readSplitRows(split, dim, all, pixels);
    return { inputs: tf.tensor2d(pixels, [split.size, dim]), labels: labelsOf(all), rows: null };
  }
  const sample = new Rng(seed).permutation(split.size).subarray(0, limits[which]).sort();
  const pixels = new Float32Array(sample.length * dim);
  await readSplitRows(split, dim, sample, pixels);
  return { inputs: tf.tensor2d(pixels, [sample.length, dim]), labels: labelsOf(sample), rows: sample };
}

/** {@link BaselineScores} of the raw input and of the encoder before training. */
async function baselineScores(
  config: TrainConfig,
  data: RunData,
  options: EvaluateRunOptions,
  trained: { train: { embeddings: tf.Tensor2D }; test: { embeddings: tf.Tensor2D } },
  say: (message: string) => void,
  embedding: (what: string) => (done: number, total: number) => void,
): Promise<BaselineScores[]> {
  const dim = data.inputShape.reduce((a, b) => a * b, 1);
  const depth = data.tree.depth;
  const rows = (s: DataSplit) =>
    Array.from({ length: s.size }, (_, i) => Array.from(s.labels.subarray(i * depth, (i + 1) * depth)));
  const score = (
    name: BaselineScores['name'],
    train: { embeddings: tf.Tensor2D; labels: number[][] },
    test: { embeddings: tf.Tensor2D; labels: number[][] },
  ): BaselineScores => {
    const e = evaluateEmbeddings(train, test, {
      ...options,
      linearProbe: false,
      consistencyAnchors: 0,
      projectionPoints: 0,
      heldOutClasses: undefined,
    });
    tf.dispose([train.embeddings, test.embeddings]);
    return {
      name,
      knnAccuracyByLevel: e.knn.accuracyByLevel,
      mapAtR: e.retrieval.map((r) => r.mapAtR),
      precisionAt1: e.retrieval.map((r) => r.precisionAt1),
      crossMapAtR: e.crossRetrieval?.map((r) => r.mapAtR),
    };
  };
  const seed = options.seed ?? 0;
  say('baseline: the raw input');
  const rawTrain = await rawInputRows(data.train, 'train', dim, depth, seed, options.rawBaselineRows);
  const rawTest = await rawInputRows(data.test, 'test', dim, depth, seed + 1, options.rawBaselineRows).catch(
    (error: unknown) => {
      rawTrain.inputs.dispose();
      throw error;
    },
  );
  // a run on a frozen backbone's features: its "raw input" is those features, the head untrained
  const frozen = data.frozenBackbone !== undefined;
  const raw = score(
    frozen ? 'frozen backbone features' : 'raw input',
    { embeddings: rawTrain.inputs, labels: rawTrain.labels },
    { embeddings: rawTest.inputs, labels: rawTest.labels },
  );
  if (rawTrain.rows !== null || rawTest.rows !== null) {
    raw.sampledRows = { train: rawTrain.labels.length, test: rawTest.labels.length };
    // the trained model on the very same rows: a like-for-like comparison
    const pick = (x: tf.Tensor2D, indices: Int32Array | null) =>
      indices === null ? x.clone() : tf.tidy(() => tf.gather(x, tf.tensor1d(indices, 'int32')));
    const same = score(
      'raw input',
      { embeddings: pick(trained.train.embeddings, rawTrain.rows), labels: rawTrain.labels },
      { embeddings: pick(trained.test.embeddings, rawTest.rows), labels: rawTest.labels },
    );
    raw.trainedOnSameRows = {
      knnAccuracyByLevel: same.knnAccuracyByLevel,
      mapAtR: same.mapAtR,
      crossMapAtR: same.crossMapAtR,
    };
  }
  say(
    `baseline: the ${frozen ? 'untrained head' : config.backbone ? 'pretrained backbone' : 'untrained encoder'}`,
  );
  // the run's own starting point: same architecture, same seed, no training
  const untrained = await buildModel(config, data);
  try {
    const train = await embedDataSplit(
      untrained.backbone,
      data.train,
      data.inputShape,
      undefined,
      embedding('train split (baseline)'),
    );
    const test = await embedDataSplit(
      untrained.backbone,
      data.test,
      data.inputShape,
      undefined,
      embedding('test split (baseline)'),
    ).catch((error: unknown) => {
      train.dispose();
      throw error;
    });
    const initial = score(
      frozen ? 'untrained head on them' : config.backbone ? 'pretrained backbone' : 'untrained encoder',
      { embeddings: train, labels: rows(data.train) },
      { embeddings: test, labels: rows(data.test) },
    );
    return [raw, initial];
  } finally {
    untrained.dispose();
  }
}

async function neighborStrips(
  test: tf.Tensor2D,
  data: RunData,
  count: number,
  seed: number,
): Promise<NeighborStrip[]> {
  if (count <= 0) return [];
  const { default: sharp } = await import('sharp');
  const [h, w, c] = data.inputShape;
  const size = h * w * c;
  const depth = data.tree.depth;
  const png = async (i: number) => {
    const values = new Float32Array(size);
    await readSplitRows(data.test, size, [i], values);
    const pixels = Buffer.from(Array.from(values, (v) => Math.round(255 * Math.min(1, Math.max(0, v)))));
    const image = await sharp(pixels, { raw: { width: w, height: h, channels: c as 1 | 3 | 4 } })
      .png()
      .toBuffer();
    return `data:image/png;base64,${image.toString('base64')}`;
  };
  const label = (i: number) => data.tree.path(depth - 1, data.test.labels[i * depth + depth - 1]).join(' / ');
  const queries = Array.from(
    new Rng(seed).permutation(data.test.size).subarray(0, Math.min(count, data.test.size)),
  );
  const neighbours = nearestNeighbors(test, test, 8, { excludeSelf: true });
  return Promise.all(
    queries.map(async (q) => ({
      query: await png(q),
      label: label(q),
      neighbors: await Promise.all(
        Array.from(neighbours.indices.subarray(q * neighbours.k, (q + 1) * neighbours.k), async (j) => {
          let shared = 0;
          while (
            shared < depth &&
            data.test.labels[q * depth + shared] === data.test.labels[j * depth + shared]
          )
            shared++;
          return { image: await png(j), label: label(j), sharedLevels: shared };
        }),
      ),
    })),
  );
}
