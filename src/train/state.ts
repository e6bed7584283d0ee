import * as tf from '@tensorflow/tfjs-core';
import { ContrastiveError } from '../errors.js';
import type { ContrastiveModel } from '../models/contrastiveModel.js';
import { MomentumQueue } from '../models/momentumQueue.js';
import { Rng } from '../random.js';
import type { Checkpoint, TensorRecord } from './checkpoint.js';
import type { TrainConfig } from './config.js';
import type { MethodModels } from './methods/types.js';
import type { Optimizer } from './optimizers.js';

/**
 * Where a run is, besides its weights: the position in the epoch, the RNG streams, and the
 * running sums of the current epoch (so a resumed epoch reports the same mean loss).
 */
export interface TrainingState {
  /** 1-based epoch being run. */
  epoch: number;
  /** Steps of this epoch already done. */
  stepInEpoch: number;
  /** Optimiser steps done in total. */
  step: number;
  /** The sampler RNG's state at the start of this epoch (the epoch's batches are redrawn from it). */
  epochSamplerState: number[];
  augmentRng: Rng;
  mixRng: Rng;
  epochLoss: number;
  epochSteps: number;
}

/** What a checkpoint's JSON header holds besides the tensors. */
export interface CheckpointMeta {
  epoch: number;
  stepInEpoch: number;
  step: number;
  epochSamplerState: number[];
  augmentRngState: number[];
  mixRngState: number[];
  optimizerIterations: number;
  epochLoss: number;
  epochSteps: number;
  queue?: { size: number; dim: number; filled: number; position: number };
  /** The run's resolved options: a resumed run takes its architecture from here. */
  config: Record<string, unknown>;
}

/** The state of a run that has not taken a step yet. */
export function initialState(seed: number): TrainingState {
  return {
    epoch: 1,
    stepInEpoch: 0,
    step: 0,
    epochSamplerState: new Rng(seed).state(),
    augmentRng: new Rng(seed + 1),
    mixRng: new Rng(seed + 2),
    epochLoss: 0,
    epochSteps: 0,
  };
}

/** Everything needed to continue exactly here: weights, optimiser slots, queue, RNGs, position. */
export function toCheckpoint(
  state: TrainingState,
  models: MethodModels,
  optimizer: Optimizer,
  config: TrainConfig,
): Checkpoint {
  const tensors: TensorRecord[] = [
    ...weightRecords(models.model, 'model'),
    ...(models.keyModel ? weightRecords(models.keyModel, 'key') : []),
  ];
  const optimizerState = optimizer.state();
  tensors.push(...optimizerState.slots);
  const meta: CheckpointMeta = {
    epoch: state.epoch,
    stepInEpoch: state.stepInEpoch,
    step: state.step,
    epochSamplerState: state.epochSamplerState,
    augmentRngState: state.augmentRng.state(),
    mixRngState: state.mixRng.state(),
    optimizerIterations: optimizerState.iterations,
    epochLoss: state.epochLoss,
    epochSteps: state.epochSteps,
    config: { ...config },
  };
  if (models.queue) {
    const { data, ...rest } = models.queue.state();
    meta.queue = rest;
    tensors.push({ name: 'queue', shape: [models.queue.size, models.queue.dim], data });
  }
  return { meta: meta as unknown as Record<string, unknown>, tensors };
}

/** Restores weights, optimiser and queue from `checkpoint` into `models`; returns the state. */
export function fromCheckpoint(
  checkpoint: Checkpoint,
  models: MethodModels,
  optimizer: Optimizer,
): TrainingState {
  const meta = checkpointMeta(checkpoint);
  restoreWeights(models.model, checkpoint.tensors, 'model');
  if (models.keyModel) restoreWeights(models.keyModel, checkpoint.tensors, 'key');
  optimizer.setState({
    iterations: meta.optimizerIterations,
    slots: checkpoint.tensors.filter((t) => t.name.startsWith('slot/')),
  });
  if (models.queue && meta.queue) {
    const data = checkpoint.tensors.find((t) => t.name === 'queue')?.data;
    if (!data)
      throw new ContrastiveError('train: --resume: the checkpoint has a queue state but no queue tensor.');
    const restored = MomentumQueue.fromState({ ...meta.queue, data });
    models.queue = restored;
  }
  return {
    epoch: meta.epoch,
    stepInEpoch: meta.stepInEpoch,
    step: meta.step,
    epochSamplerState: meta.epochSamplerState,
    augmentRng: new Rng(meta.augmentRngState),
    mixRng: new Rng(meta.mixRngState),
    epochLoss: meta.epochLoss,
    epochSteps: meta.epochSteps,
  };
}

/** The checkpoint's header, checked for the fields a resume needs. */
export function checkpointMeta(checkpoint: Checkpoint): CheckpointMeta {
  const meta = checkpoint.meta as Partial<CheckpointMeta>;
  for (const key of [
    'epoch',
    'stepInEpoch',
    'step',
    'optimizerIterations',
    'epochLoss',
    'epochSteps',
  ] as const) {
    if (typeof meta[key] !== 'number') {
      throw new ContrastiveError(`train: --resume: the checkpoint's header has no number "${key}".`);
    }
  }
  if (!meta.config || typeof meta.config !== 'object') {
    throw new ContrastiveError('train: --resume: the checkpoint has no config.');
  }
  return meta as CheckpointMeta;
}

/** Loads the weights of `prefix` ('model' or 'key') from checkpoint records into `model`. */
export function restoreWeights(model: ContrastiveModel, records: TensorRecord[], prefix: string): void {
  const byName = new Map(records.map((r) => [r.name, r]));
  for (const { name, variable } of model.namedWeights()) {
    const record = byName.get(`${prefix}/${name}`);
    if (!record || record.shape.join() !== variable.shape.join()) {
      throw new ContrastiveError(
        `train: --resume: the checkpoint has no weight ${prefix}/${name} of shape [${variable.shape}]; was the run made with other options?`,
      );
    }
    tf.tidy(() => variable.assign(tf.tensor(record.data, record.shape)));
  }
}

function weightRecords(model: ContrastiveModel, prefix: string): TensorRecord[] {
  return model.namedWeights().map(({ name, variable }) => ({
    name: `${prefix}/${name}`,
    shape: variable.shape,
    data: variable.dataSync() as Float32Array,
  }));
}
