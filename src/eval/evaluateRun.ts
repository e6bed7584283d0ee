import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { loadTrainingData, type TrainingData, type TrainingSplit } from '../data/dataset.js';
import { type BackendName, useBackend } from '../engine/backend.js';
import { ContrastiveError } from '../errors.js';
import { writeFileAtomic } from '../io/atomic.js';
import { loadLayersModelFromDir } from '../models/modelIO.js';
import { Rng } from '../random.js';
import type { EvalFile } from '../report/loadRun.js';
import type { NeighborStrip } from '../report/runRecords.js';
import type { TrainConfig } from '../train/config.js';
import { embedSplit } from './embed.js';
import { type EvaluateOptions, evaluateEmbeddings } from './evaluate.js';
import { nearestNeighbors } from './neighbors.js';

export { embedSplit };

/** Options of {@link evaluateRun}. */
export interface EvaluateRunOptions extends EvaluateOptions {
  /** Override the run's data folder (e.g. the full set where the run used the embedded subset). */
  dataDir?: string;
  /** Use at most this many training images as the kNN / probe database (0: all). */
  trainLimit?: number;
  /** Nearest-neighbour strips for the report (image data). Default 8; 0 skips them. */
  strips?: number;
  backend?: BackendName | 'auto';
}

/** A run's trained backbone and the data it was trained on. */
export async function loadRunModel(runDir: string, options: { dataDir?: string; trainLimit?: number } = {}) {
  const configPath = join(runDir, 'config.json');
  const config = JSON.parse(
    await readFile(configPath, 'utf8').catch(() => {
      throw new ContrastiveError(`eval: ${configPath} not found; is ${runDir} a run folder?`);
    }),
  ) as TrainConfig;
  const model = await loadLayersModelFromDir(join(runDir, 'model')).catch((error: Error) => {
    throw new ContrastiveError(
      `eval: ${runDir} has no trained model yet (${error.message}); train it to the end first.`,
    );
  });
  const data = await loadTrainingData({
    ...config,
    dataDir: options.dataDir ?? config.dataDir,
    trainLimit: options.trainLimit ?? config.trainLimit,
  });
  return { config, model, data };
}

/**
 * `contrastive eval`: embeds the run's training and test data with its backbone, computes every
 * metric of {@link evaluateEmbeddings} (unseen classes from the run's `holdoutClasses`), adds
 * nearest-neighbour strips for image data, and writes `<run>/eval.json`.
 */
export async function evaluateRun(runDir: string, options: EvaluateRunOptions = {}): Promise<EvalFile> {
  await useBackend(options.backend ?? 'auto');
  const { model, data } = await loadRunModel(runDir, options);
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
    await writeFileAtomic(join(runDir, 'eval.json'), `${JSON.stringify(result)}\n`);
    return result;
  } finally {
    tf.dispose([train.embeddings, test.embeddings]);
    model.dispose();
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
