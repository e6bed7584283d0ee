import * as tf from '@tensorflow/tfjs-core';
import type { TrainingData, TrainingSplit } from '../data/dataset.js';
import { type BackendName, useBackend } from '../engine/backend.js';
import { embedSplit } from '../eval/embed.js';
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
}

/**
 * `contrastive eval`: embeds the run's training and test data with its backbone, computes every
 * metric of {@link evaluateEmbeddings} (unseen classes from the run's `holdoutClasses`), adds
 * nearest-neighbour strips for image data, and writes `<run>/eval.json`.
 */
export async function evaluateRun(runDir: string, options: EvaluateRunOptions = {}): Promise<EvalFile> {
  // everything that can fail cheaply fails before the embeddings are computed
  checkEvaluateOptions('eval', options);
  await new RunFolder(runDir).checkWritable('eval');
  await useBackend(options.backend ?? 'auto');
  const { folder, config, model, data } = await loadTrainedRun(runDir, { ...options, command: 'eval' });
  const depth = data.tree.depth;
  const rows = (s: TrainingSplit) =>
    Array.from({ length: s.size }, (_, i) => Array.from(s.labels.subarray(i * depth, (i + 1) * depth)));
  const train = { embeddings: embedSplit(model, data.train, data.inputShape), labels: rows(data.train) };
  const test = { embeddings: embedSplit(model, data.test, data.inputShape), labels: rows(data.test) };
  try {
    const summary = evaluateEmbeddings(train, test, { heldOutClasses: data.heldOut, ...options });
    const result: EvalFile = {
      ...summary,
      levelNames: data.tree.levelNames,
      classNames: data.tree.levelSizes.map((_, l) => data.tree.classes(l)),
      strips:
        data.kind === 'image'
          ? await neighborStrips(test.embeddings, data, options.strips ?? 8, options.seed ?? 0)
          : undefined,
    };
    if (options.baselines !== false) result.baselines = await baselineScores(config, data, options);
    await folder.writeEvaluation(result);
    return result;
  } finally {
    tf.dispose([train.embeddings, test.embeddings]);
    model.dispose();
  }
}

/** {@link BaselineScores} of the raw input and of the encoder before training. */
async function baselineScores(
  config: TrainConfig,
  data: TrainingData,
  options: EvaluateOptions,
): Promise<BaselineScores[]> {
  const dim = data.inputShape.reduce((a, b) => a * b, 1);
  const depth = data.tree.depth;
  const rows = (s: TrainingSplit) =>
    Array.from({ length: s.size }, (_, i) => Array.from(s.labels.subarray(i * depth, (i + 1) * depth)));
  const score = (name: BaselineScores['name'], train: tf.Tensor2D, test: tf.Tensor2D): BaselineScores => {
    const e = evaluateEmbeddings(
      { embeddings: train, labels: rows(data.train) },
      { embeddings: test, labels: rows(data.test) },
      {
        ...options,
        linearProbe: false,
        consistencyAnchors: 0,
        projectionPoints: 0,
        heldOutClasses: undefined,
      },
    );
    tf.dispose([train, test]);
    return {
      name,
      knnAccuracyByLevel: e.knn.accuracyByLevel,
      mapAtR: e.retrieval.map((r) => r.mapAtR),
      precisionAt1: e.retrieval.map((r) => r.precisionAt1),
    };
  };
  const raw = score(
    'raw input',
    tf.tensor2d(data.train.inputs, [data.train.size, dim]),
    tf.tensor2d(data.test.inputs, [data.test.size, dim]),
  );
  // the run's own starting point: same architecture, same seed, no training
  const untrained = await buildModel(config, data);
  try {
    const initial = score(
      config.backbone ? 'pretrained backbone' : 'untrained encoder',
      embedSplit(untrained.backbone, data.train, data.inputShape),
      embedSplit(untrained.backbone, data.test, data.inputShape),
    );
    return [raw, initial];
  } finally {
    untrained.dispose();
  }
}

async function neighborStrips(
  test: tf.Tensor2D,
  data: TrainingData,
  count: number,
  seed: number,
): Promise<NeighborStrip[]> {
  if (count <= 0) return [];
  const { default: sharp } = await import('sharp');
  const [h, w, c] = data.inputShape;
  const size = h * w * c;
  const depth = data.tree.depth;
  const png = async (i: number) => {
    const pixels = Buffer.from(
      Array.from(data.test.inputs.subarray(i * size, (i + 1) * size), (v) =>
        Math.round(255 * Math.min(1, Math.max(0, v))),
      ),
    );
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
