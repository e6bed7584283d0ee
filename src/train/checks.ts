import type { RunData } from '../data/runData.js';
import { ContrastiveError } from '../errors.js';
import { checkGradCache, type TrainConfig } from './config.js';
import { trainingMethod } from './methods/registry.js';
import { flatLabelLevel } from './methods/viewMethods.js';

/** What one run may allocate before we say it does not fit (the wasm heap is 4 GiB). */
const MEMORY_BUDGET_BYTES = 4 * 2 ** 30;

/**
 * Checks, before any step, that the data and options can train: both splits non-empty, enough
 * classes for a method that uses labels, a batch that fits the training split and has
 * negatives, and models and queues that fit in memory. Each failure names the flag to change.
 */
export function checkTrainable(config: TrainConfig, data: RunData): string[] {
  const notes: string[] = [];
  const method = trainingMethod(config.method);
  checkGradCache(config);
  if (data.train.size === 0) {
    throw new ContrastiveError(
      `train: the training split of ${data.source} is empty; there is nothing to train on.`,
    );
  }
  if (data.test.size === 0) {
    throw new ContrastiveError(
      `train: the ${config.validationFraction > 0 ? 'validation' : 'test'} split of ${data.source} is empty (${data.train.size} training rows); use more data, a larger --${config.validationFraction > 0 ? 'validation-fraction' : 'test-fraction'}, or --test-data.`,
    );
  }
  if (config.batchSize > data.train.size) {
    throw new ContrastiveError(
      `train: --batch-size ${config.batchSize} is larger than the ${data.train.size} training rows; pass --batch-size ${data.train.size} or less.`,
    );
  }
  if (config.method !== 'ce' && config.batchSize < 2) {
    throw new ContrastiveError(
      `train: --batch-size ${config.batchSize}: ${config.method} contrasts each sample with the others in its batch, so a batch needs at least 2 samples (with 1 the loss is always 0).`,
    );
  }
  if (method.labels !== 'none') {
    const depth = data.tree.depth;
    const level = method.labels === 'finest' ? flatLabelLevel(data) : depth - 1;
    if (level < depth - 1) {
      notes.push(
        `${config.method} learns one label per row, and some label paths stop above the finest level: it uses level ${level} (${data.tree.levelNames[level] ?? level}), the finest every training row knows; hierarchical methods (himulcone) use every level each row knows.`,
      );
    }
    const seen = new Set<number>();
    for (let i = 0; i < data.train.size; i++) {
      const id = data.train.labels[i * depth + level];
      if (id >= 0) seen.add(id);
    }
    if (seen.size < 2) {
      throw new ContrastiveError(
        `train: ${config.method} learns from labels, but the training split has ${seen.size} class${seen.size === 1 ? '' : 'es'}; it needs at least 2.`,
      );
    }
  }
  checkMemory(config, data);
  return notes;
}

function checkMemory(config: TrainConfig, data: RunData): void {
  const gib = (bytes: number) => `${(bytes / 2 ** 30).toFixed(bytes < 2 ** 30 ? 2 : 0)} GiB`;
  const queueBytes =
    (config.method === 'moco' || config.method === 'sane' ? config.queueSize : 0) * config.projectionDim * 4;
  if (queueBytes > MEMORY_BUDGET_BYTES / 4) {
    const fits = Math.floor(MEMORY_BUDGET_BYTES / 4 / 4 / config.projectionDim);
    throw new ContrastiveError(
      `train: --queue-size ${config.queueSize} × --projection-dim ${config.projectionDim} needs ${gib(queueBytes)} for the queue alone; at most about ${fits.toLocaleString('en-US')} keys fit.`,
    );
  }
  // the parameters that grow with the options: the first layer, the embedding and the projection head
  const inputSize = data.inputShape.reduce((a, b) => a * b, 1);
  const e = config.embeddingDim;
  const p = config.projectionDim;
  const parameters = 512 * Math.max(inputSize, 512) + 512 * e + e * e + e * p;
  // weights, gradients, two Adam slots, and a checkpoint copy
  const bytes = parameters * 4 * 5;
  if (bytes > MEMORY_BUDGET_BYTES) {
    const fits = Math.floor(Math.sqrt(MEMORY_BUDGET_BYTES / 20));
    throw new ContrastiveError(
      `train: --embedding-dim ${e} with --projection-dim ${p} makes a model of about ${parameters.toExponential(1)} parameters (${gib(bytes)} with gradients and optimiser state); it does not fit in ${gib(MEMORY_BUDGET_BYTES)}. An embedding of up to about ${fits.toLocaleString('en-US')} fits.`,
    );
  }
}
