import * as tf from '@tensorflow/tfjs-core';
import { augmentFeatures, augmentImages } from '../data/augment.js';
import { colorAugment } from '../data/colorAugment.js';
import { colorAugmentOptionsFrom } from '../data/dataOptions.js';
import { withLabelNoise } from '../data/labelNoise.js';
import type { RunData } from '../data/runData.js';
import { ContrastiveError } from '../errors.js';
import { faultPoint } from '../io/faults.js';
import type { ContrastiveModel } from '../models/contrastiveModel.js';
import { Rng } from '../random.js';
import { batchSource, epochBatches } from './batches.js';
import type { Checkpoint } from './checkpoint.js';
import type { TrainConfig } from './config.js';
import { trainingMethod } from './methods/registry.js';
import type { StepOutput } from './methods/types.js';
import { Optimizer } from './optimizers.js';
import type { ProgressReporter } from './progress.js';
import { quickKnn } from './quickKnn.js';
import { constantWithWarmup, cosineWithWarmup, type Schedule } from './schedules.js';
import { fromCheckpoint, initialState, toCheckpoint } from './state.js';
import { StepMemory } from './stepMemory.js';
import { LoggingWindow, type TrainingRecord } from './window.js';

/** Where the loop's output goes; the run folder (`src/run/`) provides one backed by its files. */
export interface TrainLoopIO {
  progress: ProgressReporter;
  /** Appends a metrics record (a logging window or an epoch). */
  record(record: TrainingRecord): void;
  /** Persists a checkpoint; must be atomic. */
  saveCheckpoint(checkpoint: Checkpoint): Promise<void>;
  /** Saves the trained model once the last epoch is done. */
  saveModel(model: ContrastiveModel): Promise<void>;
  /** Aborting it stops the run after the current step, with a checkpoint. */
  signal?: AbortSignal;
  /** Aborting it leaves after the current step without a new checkpoint (the last one stays). */
  abort?: AbortSignal;
  /** Stop (with a checkpoint, as on abort) once this many steps are done in total. */
  stopAfterSteps?: number;
  /** Called after each end-of-epoch checkpoint is written. */
  onEpochEnd?(epoch: number): void;
}

/** How a loop ended. */
export interface LoopResult {
  /** Epochs completed. */
  epochs: number;
  steps: number;
  /** Mean loss of the last epoch (or of the steps run when interrupted; NaN when none ran). */
  finalLoss: number;
  /** The last quick kNN accuracy on the test split (finest level), when evaluated. */
  knnAccuracy?: number;
  /** True when the run stopped early (abort or `stopAfterSteps`) after writing a checkpoint. */
  interrupted: boolean;
  /** True when it left on `abort`, without writing a new checkpoint (`interrupted` is true too). */
  aborted?: boolean;
}

/**
 * Trains `config.method` on `data`: setup (models, optimiser, schedule, state — fresh or from
 * `resumeFrom`), then the loop over epochs and batches, a checkpoint at every epoch end and on
 * abort, and the model saved after the last epoch. The same seed on the same backend gives the
 * same run, interrupted or not.
 */
export async function trainLoop(
  config: TrainConfig,
  data: RunData,
  io: TrainLoopIO,
  resumeFrom?: Checkpoint,
): Promise<LoopResult> {
  // setup
  const method = trainingMethod(config.method);
  // --label-noise: the training labels as the method sees them; the quick kNN keeps the true ones
  const trainData = withLabelNoise(data, config.labelNoise ?? 0, config.seed);
  method.validate?.(config, trainData);
  const models = await method.build(config, trainData);
  const optimizer = new Optimizer(models.trainable, {
    learningRateScales: models.learningRateScales,
    kind: config.optimizer,
    momentum: config.momentum,
    nesterov: config.nesterov,
    weightDecay: config.weightDecay,
    gradClipNorm: config.gradClip,
  });
  const stepsPerEpoch = epochBatches(config, trainData, new Rng(0)).length;
  const totalSteps = stepsPerEpoch * config.epochs;
  const learningRate = learningRateSchedule(config, stepsPerEpoch);
  const state = resumeFrom ? fromCheckpoint(resumeFrom, models, optimizer) : initialState(config.seed);
  const window = new LoggingWindow(io.progress, io.record, config.logEvery, config.epochs, totalSteps);
  const batches = batchSource(trainData, config.batchSize);
  const augment = augmentation(config, trainData, state);
  const checkpoint = () => io.saveCheckpoint(toCheckpoint(state, models, optimizer, config));
  // tensor bytes when each step starts, for the message a heap exhaustion becomes
  const memory = new StepMemory({
    backend: tf.getBackend(),
    batchSize: Math.min(config.batchSize, trainData.train.size),
    batchBytes:
      Math.min(config.batchSize, trainData.train.size) * trainData.inputShape.reduce((a, b) => a * b, 4),
    views: method.viewsPerStep(config),
    gradCacheHint:
      method.gradCache && !(config.gradCacheChunk > 0)
        ? `--grad-cache-chunk ${Math.min(128, config.batchSize)}`
        : undefined,
  });
  let finalLoss = Number.NaN;
  let knnAccuracy: number | undefined;
  const stopRequested = () =>
    io.signal?.aborted === true || (io.stopAfterSteps !== undefined && state.step >= io.stopAfterSteps);
  const result = (interrupted: boolean): LoopResult => ({
    epochs: Math.min(state.epoch - (interrupted ? 0 : 1), config.epochs),
    steps: state.step,
    finalLoss,
    knnAccuracy,
    interrupted,
  });

  try {
    // the loop
    while (state.epoch <= config.epochs) {
      const samplerRng = new Rng(state.epochSamplerState);
      const epoch = epochBatches(config, trainData, samplerRng);
      const reader = batches.epoch(epoch, state.stepInEpoch);
      try {
        while (state.stepInEpoch < epoch.length) {
          const lr = learningRate(state.step);
          const where = `at epoch ${state.epoch}, step ${state.step + 1}`;
          memory.stepStarts(state.step + 1);
          const { x, labels, dataMs } = await reader.next().catch((error: unknown) => {
            throw memory.heapError(error, `reading the batch ${where}`);
          });
          let out: StepOutput;
          try {
            out = method.step(
              models,
              optimizer,
              { x, labels, augment, learningRate: lr, step: state.step, stepsPerEpoch, mixRng: state.mixRng },
              config,
            );
          } catch (error) {
            // the wasm backend aborts when its 4 GiB heap runs out: say what was measured and
            // what to do instead of a stack trace
            throw memory.heapError(error, where);
          }
          x.dispose();
          if (!Number.isFinite(out.loss)) {
            throw new ContrastiveError(
              `train: the loss became ${out.loss} at epoch ${state.epoch}, step ${state.step + 1} (learning rate ${lr.toExponential(2)}); lower --learning-rate or set --grad-clip. The last checkpoint is intact.`,
            );
          }
          state.step++;
          state.stepInEpoch++;
          state.epochLoss += out.loss;
          state.epochSteps++;
          window.add({
            epoch: state.epoch,
            step: state.step,
            stepInEpoch: state.stepInEpoch,
            stepsPerEpoch: epoch.length,
            batchSize: labels.length,
            loss: out.loss,
            levelLosses: out.levelLosses,
            clampBinds: out.clampBinds,
            learningRate: lr,
            dataMs,
          });
          faultPoint('step');
          if (io.abort?.aborted) return { ...result(true), aborted: true };
          if (stopRequested() && state.stepInEpoch < epoch.length) {
            finalLoss = state.epochLoss / state.epochSteps;
            await checkpoint();
            return result(true);
          }
        }
      } finally {
        await reader.close();
      }
      if (io.abort?.aborted) return { ...result(true), aborted: true };
      // end of epoch: next epoch's sampler state, a quick evaluation, a checkpoint
      const record: TrainingRecord = {
        kind: 'epoch',
        epoch: state.epoch,
        step: state.step,
        loss: state.epochLoss / Math.max(1, state.epochSteps),
        seconds: window.elapsed,
      };
      if (config.evalEvery > 0 && (state.epoch % config.evalEvery === 0 || state.epoch === config.epochs)) {
        knnAccuracy = await quickKnn(models.model, data);
        record.knnAccuracy = knnAccuracy;
      }
      io.record(record);
      io.progress.message(
        `epoch ${state.epoch}/${config.epochs}: loss ${record.loss.toFixed(4)}${record.knnAccuracy !== undefined ? `, kNN accuracy ${(100 * record.knnAccuracy).toFixed(2)}%` : ''}`,
      );
      finalLoss = record.loss;
      state.epochSamplerState = samplerRng.state();
      state.epoch++;
      state.stepInEpoch = 0;
      state.epochLoss = 0;
      state.epochSteps = 0;
      await checkpoint();
      io.onEpochEnd?.(state.epoch - 1);
      if (stopRequested() && state.epoch <= config.epochs) return result(true);
    }
    await io.saveModel(models.model);
    return result(false);
  } finally {
    optimizer.dispose();
    models.model.dispose();
    models.keyModel?.dispose();
  }
}

/**
 * How a batch becomes a view: SimCLR's colour set for colour images, the grey-image set (crop,
 * flip, noise) for one channel, feature noise and dropout for tables.
 */
function augmentation(config: TrainConfig, data: RunData, state: { augmentRng: Rng }) {
  const views = 'views' in data.train ? data.train.views : undefined;
  if (views) return (batch: tf.Tensor) => pickView(batch as tf.Tensor3D, state.augmentRng);
  if (data.kind === 'image' && data.inputShape[2] === 3) {
    const options = colorAugmentOptionsFrom(config, data.inputShape[0]);
    return (batch: tf.Tensor) => colorAugment(batch as tf.Tensor4D, state.augmentRng, options);
  }
  return (batch: tf.Tensor) =>
    data.kind === 'image'
      ? augmentImages(batch as tf.Tensor4D, state.augmentRng)
      : augmentFeatures(batch as tf.Tensor2D, state.augmentRng);
}

/** One of the cached views `[n, K, D]` per sample, drawn by `rng`: `[n, D]`. */
function pickView(batch: tf.Tensor3D, rng: Rng): tf.Tensor2D {
  const [n, k, d] = batch.shape;
  const rows = Int32Array.from({ length: n }, (_, i) => i * k + Math.floor(rng.next() * k));
  return tf.tidy(() => tf.gather(tf.reshape(batch, [n * k, d]), tf.tensor1d(rows, 'int32')));
}

function learningRateSchedule(config: TrainConfig, stepsPerEpoch: number): Schedule {
  const warmup = Math.round(config.warmupEpochs * stepsPerEpoch);
  return config.schedule === 'cosine'
    ? cosineWithWarmup(config.learningRate, stepsPerEpoch * config.epochs, warmup)
    : constantWithWarmup(config.learningRate, warmup);
}
