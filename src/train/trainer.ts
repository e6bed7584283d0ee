import { appendFileSync, existsSync, statfsSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { augmentFeatures, augmentImages } from '../data/augment.js';
import { loadTrainingData, type TrainingData } from '../data/dataset.js';
import { balancedBatches, hierarchicalBatches, randomBatches } from '../data/samplers.js';
import { type BackendName, useBackend } from '../engine/backend.js';
import { activeEngineLine } from '../engine/describe.js';
import { ContrastiveError } from '../errors.js';
import { embedSplit } from '../eval/embed.js';
import { knnClassify } from '../eval/knn.js';
import { writeFileAtomic } from '../io/atomic.js';
import { infoNCELoss } from '../losses/moco.js';
import { saneLossDetails } from '../losses/sane.js';
import { ContrastiveModel } from '../models/contrastiveModel.js';
import { mlpEncoder, projectionHead, smallConvEncoder } from '../models/encoders.js';
import { saveLayersModel } from '../models/modelIO.js';
import { copyWeights, momentumUpdate } from '../models/momentum.js';
import { MomentumQueue } from '../models/momentumQueue.js';
import { Rng } from '../random.js';
import type { MetricRecord } from '../report/runRecords.js';
import { type Checkpoint, readCheckpoint, type TensorRecord, writeCheckpoint } from './checkpoint.js';
import type { TrainConfig } from './config.js';
import { Optimizer } from './optimizers.js';
import { ProgressReporter } from './progress.js';
import { constantWithWarmup, cosineWithWarmup, linearRamp } from './schedules.js';
import { isViewMethod, viewMethodLoss } from './viewMethods.js';

/** What {@link train} returns. */
export interface TrainResult {
  runDir: string;
  epochs: number;
  steps: number;
  /** Mean loss of the last epoch (or of the steps run when interrupted). */
  finalLoss: number;
  /** The last quick kNN accuracy on the test split (finest level), when evaluated. */
  knnAccuracy?: number;
  /** True when the run stopped early (SIGINT/SIGTERM or `stopAfterSteps`) after writing a checkpoint. */
  interrupted: boolean;
}

/** Knobs for tests and embedding applications. */
export interface TrainHooks {
  /** Where progress goes (default: stderr). */
  progress?: ProgressReporter;
  /** Stop (with a checkpoint, as on SIGINT) once this many steps are done in total. */
  stopAfterSteps?: number;
  /** Called after each end-of-epoch checkpoint is written (tests use it to simulate a crash). */
  onEpochEnd?: (epoch: number) => void;
}

const CHECKPOINT = 'checkpoint.bin';

/**
 * Trains a model end to end as `config` says, writing everything to the run folder `config.out`:
 * `config.json`, `labelTree.json`, `metrics.jsonl`, `checkpoint.bin` (every epoch and on SIGINT /
 * SIGTERM, atomically) and, at the end, the backbone and head in tfjs format (`model/`, `head/`).
 * With `config.resume` it continues from the checkpoint; the same seed on the same backend gives
 * the same run, interrupted or not.
 */
export async function train(config: TrainConfig, hooks: TrainHooks = {}): Promise<TrainResult> {
  const progress = hooks.progress ?? new ProgressReporter();
  const runDir = config.out!;
  await prepareRunFolder(runDir, config.resume);
  await useBackend(config.backend as BackendName | 'auto');
  progress.message(`engine: ${activeEngineLine()}`);

  const data = await loadTrainingData(config);
  progress.message(
    `data: ${data.source}; ${data.train.size} train / ${data.test.size} test, ${data.tree.depth} levels`,
  );
  const numLevels = data.tree.depth;
  if (
    ['himulcon', 'hicone', 'himulcone'].includes(config.method) &&
    numLevels < 2 &&
    config.hierarchyMode === 'reference'
  ) {
    throw new ContrastiveError(
      `train: --hierarchy-mode reference needs at least 2 label levels, the data has ${numLevels}.`,
    );
  }

  const model = buildModel(config, data);
  const isMomentum = config.method === 'moco' || config.method === 'sane';
  const keyModel = isMomentum ? buildModel(config, data) : null;
  if (keyModel) copyWeights(keyModel, model);
  let queue = isMomentum ? new MomentumQueue(config.queueSize, config.projectionDim) : null;

  const variables = (
    config.method === 'ce' ? [model.backbone, model.classifier!] : [model.backbone, model.head]
  ).flatMap((m) => m.trainableWeights.map((w) => w.read() as tf.Variable));
  const optimizer = new Optimizer(variables, {
    kind: config.optimizer,
    momentum: config.momentum,
    nesterov: config.nesterov,
    weightDecay: config.weightDecay,
    gradClipNorm: config.gradClip,
  });

  const batches = (rng: Rng) => epochBatches(config, data, rng);
  const stepsPerEpoch = batches(new Rng(0)).length;
  const totalSteps = stepsPerEpoch * config.epochs;
  const warmup = Math.round(config.warmupEpochs * stepsPerEpoch);
  const learningRate =
    config.schedule === 'cosine'
      ? cosineWithWarmup(config.learningRate, totalSteps, warmup)
      : constantWithWarmup(config.learningRate, warmup);
  const alphaAt = linearRamp(config.refinery ? config.alpha : 0, config.rampEpochs * stepsPerEpoch);
  const betaAt = linearRamp(config.refinery ? config.beta : 0, config.rampEpochs * stepsPerEpoch);

  // state: what a checkpoint holds
  let epoch = 1;
  let stepInEpoch = 0;
  let step = 0;
  let epochSamplerState = new Rng(config.seed).state();
  let augmentRng = new Rng(config.seed + 1);
  let mixRng = new Rng(config.seed + 2);
  let epochLoss = 0;
  let epochSteps = 0;
  if (isMomentum) queue!.fillRandom(new Rng(config.seed + 3));

  if (config.resume) {
    const checkpoint = await readCheckpoint(join(runDir, CHECKPOINT));
    const meta = checkpoint.meta as unknown as CheckpointMeta;
    restoreWeights(model, checkpoint.tensors, 'model');
    if (keyModel) restoreWeights(keyModel, checkpoint.tensors, 'key');
    optimizer.setState({
      iterations: meta.optimizerIterations,
      slots: checkpoint.tensors.filter((t) => t.name.startsWith('slot/')),
    });
    if (queue && meta.queue) {
      const queueData = checkpoint.tensors.find((t) => t.name === 'queue')!.data;
      queue = MomentumQueue.fromState({ ...meta.queue, data: queueData });
    }
    ({ epoch, stepInEpoch, step, epochLoss, epochSteps } = meta);
    epochSamplerState = meta.epochSamplerState;
    augmentRng = new Rng(meta.augmentRngState);
    mixRng = new Rng(meta.mixRngState);
    progress.message(`resumed from ${join(runDir, CHECKPOINT)} at epoch ${epoch}, step ${step}`);
  } else {
    await writeFileAtomic(join(runDir, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);
    await writeFileAtomic(join(runDir, 'labelTree.json'), `${JSON.stringify(data.tree.toJSON())}\n`);
    await writeFile(join(runDir, 'metrics.jsonl'), '');
  }

  let stop = false;
  const onSignal = () => {
    stop = true;
    progress.message('stopping: writing a checkpoint after this step (press Ctrl-C again to abort)');
    process.once('SIGINT', () => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  /** `atEpochEnd`: the checkpoint resumes at the start of the next epoch. */
  const saveCheckpoint = async (atEpochEnd = false) => {
    const tensors: TensorRecord[] = [
      ...weightRecords(model, 'model'),
      ...(keyModel ? weightRecords(keyModel, 'key') : []),
    ];
    const optimizerState = optimizer.state();
    tensors.push(...optimizerState.slots);
    const meta: CheckpointMeta = {
      epoch: atEpochEnd ? epoch + 1 : epoch,
      stepInEpoch: atEpochEnd ? 0 : stepInEpoch,
      step,
      epochSamplerState,
      augmentRngState: augmentRng.state(),
      mixRngState: mixRng.state(),
      optimizerIterations: optimizerState.iterations,
      epochLoss,
      epochSteps,
      config: config as unknown as Record<string, unknown>,
    };
    if (queue) {
      const { data: queueData, ...rest } = queue.state();
      meta.queue = rest;
      tensors.push({ name: 'queue', shape: [queue.size, queue.dim], data: queueData });
    }
    const checkpoint: Checkpoint = { meta: meta as unknown as Record<string, unknown>, tensors };
    await writeCheckpoint(join(runDir, CHECKPOINT), checkpoint);
  };

  const log = (record: MetricRecord) =>
    appendFileSync(join(runDir, 'metrics.jsonl'), `${JSON.stringify(record)}\n`);
  const started = performance.now();
  let windowLoss = 0;
  let windowLevels: number[] | null = null;
  let windowSteps = 0;
  let windowStart = performance.now();
  let lastKnn: number | undefined;
  let interrupted = false;
  const inputSize = data.inputShape.reduce((a, b) => a * b, 1);
  const batchInputs = new Float32Array(config.batchSize * 2 * inputSize);

  try {
    for (; epoch <= config.epochs; epoch++) {
      const samplerRng = new Rng(epochSamplerState);
      const epochBatchList = batches(samplerRng);
      for (; stepInEpoch < epochBatchList.length; stepInEpoch++) {
        const indices = epochBatchList[stepInEpoch];
        const lr = learningRate(step);
        const { loss, levelLosses } = guardHeap(config, () =>
          trainStep({
            config,
            data,
            model,
            keyModel,
            queue,
            optimizer,
            indices,
            lr,
            augmentRng,
            mixRng,
            alpha: alphaAt(step),
            beta: betaAt(step),
            buffer: batchInputs,
          }),
        );
        if (!Number.isFinite(loss)) {
          throw new ContrastiveError(
            `train: the loss became ${loss} at epoch ${epoch}, step ${step + 1} (learning rate ${lr.toExponential(2)}); lower --learning-rate or set --grad-clip. The last checkpoint is intact.`,
          );
        }
        step++;
        windowLoss += loss;
        windowSteps++;
        epochLoss += loss;
        epochSteps++;
        if (levelLosses)
          windowLevels = (windowLevels ?? levelLosses.map(() => 0)).map((v, l) => v + levelLosses[l]);
        const logNow = step % config.logEvery === 0 || stepInEpoch + 1 === epochBatchList.length;
        const seconds = (performance.now() - windowStart) / 1000;
        const samplesPerSecond = (windowSteps * indices.length) / Math.max(seconds, 1e-9);
        progress.update(
          {
            epoch,
            epochs: config.epochs,
            step,
            stepsPerEpoch: epochBatchList.length,
            stepInEpoch: stepInEpoch + 1,
            loss: windowLoss / windowSteps,
            levelLosses: windowLevels?.map((v) => v / windowSteps),
            samplesPerSecond,
            etaSeconds: ((totalSteps - step) * seconds) / windowSteps,
          },
          logNow,
        );
        if (logNow) {
          log({
            kind: 'step',
            epoch,
            step,
            loss: windowLoss / windowSteps,
            levelLosses: windowLevels?.map((v) => v / windowSteps),
            learningRate: lr,
            samplesPerSecond,
            seconds: (performance.now() - started) / 1000,
          });
          windowLoss = 0;
          windowLevels = null;
          windowSteps = 0;
          windowStart = performance.now();
        }
        if (stop || (hooks.stopAfterSteps !== undefined && step >= hooks.stopAfterSteps)) {
          stepInEpoch++;
          await saveCheckpoint();
          progress.message(
            `checkpoint written at step ${step}; continue with: contrastive train --out ${runDir} --resume`,
          );
          interrupted = true;
          return {
            runDir,
            epochs: epoch,
            steps: step,
            finalLoss: epochLoss / Math.max(1, epochSteps),
            knnAccuracy: lastKnn,
            interrupted,
          };
        }
      }
      // end of epoch: next epoch's sampler state, a quick evaluation, a checkpoint
      epochSamplerState = samplerRng.state();
      stepInEpoch = 0;
      const record: MetricRecord = {
        kind: 'epoch',
        epoch,
        step,
        loss: epochLoss / Math.max(1, epochSteps),
        seconds: (performance.now() - started) / 1000,
      };
      if (config.evalEvery > 0 && (epoch % config.evalEvery === 0 || epoch === config.epochs)) {
        lastKnn = quickKnn(model, data);
        record.knnAccuracy = lastKnn;
      }
      log(record);
      progress.message(
        `epoch ${epoch}/${config.epochs}: loss ${record.loss.toFixed(4)}${record.knnAccuracy !== undefined ? `, kNN accuracy ${(100 * record.knnAccuracy).toFixed(2)}%` : ''}`,
      );
      const finalLoss = record.loss;
      epochLoss = 0;
      epochSteps = 0;
      await saveCheckpoint(true);
      hooks.onEpochEnd?.(epoch);
      if (epoch === config.epochs) {
        await saveLayersModel(model.backbone, join(runDir, 'model'));
        await saveLayersModel(model.head, join(runDir, 'head'));
        progress.message(
          `done: model saved to ${join(runDir, 'model')}; evaluate with: contrastive eval ${runDir}`,
        );
        return { runDir, epochs: config.epochs, steps: step, finalLoss, knnAccuracy: lastKnn, interrupted };
      }
    }
    return {
      runDir,
      epochs: config.epochs,
      steps: step,
      finalLoss: Number.NaN,
      knnAccuracy: lastKnn,
      interrupted,
    };
  } finally {
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
    optimizer.dispose();
    model.dispose();
    keyModel?.dispose();
  }
}

/** The wasm backend aborts when its 4 GiB heap runs out; say so, and what to do, instead of a stack trace. */
function guardHeap<T>(config: TrainConfig, step: () => T): T {
  try {
    return step();
  } catch (error) {
    if (error instanceof Error && /Aborted|out of memory|memory access out of bounds/i.test(error.message)) {
      throw new ContrastiveError(
        `train: the ${config.backend === 'auto' ? 'active' : config.backend} backend ran out of memory at batch size ${config.batchSize} × ${config.views} views (the wasm heap is at most 4 GiB); lower --batch-size. The last checkpoint is intact.`,
      );
    }
    throw error;
  }
}

interface CheckpointMeta {
  epoch: number;
  stepInEpoch: number;
  step: number;
  epochSamplerState: number[];
  augmentRngState: number[];
  mixRngState: number[];
  optimizerIterations: number;
  /** Running sums of the current epoch, so a resumed epoch reports the same mean loss. */
  epochLoss: number;
  epochSteps: number;
  queue?: { size: number; dim: number; filled: number; position: number };
  config: Record<string, unknown>;
}

/** Refuses to overwrite a finished or running run; checks the folder is writable and has space. */
async function prepareRunFolder(runDir: string, resume: boolean): Promise<void> {
  const checkpoint = join(runDir, CHECKPOINT);
  if (resume && !existsSync(checkpoint)) {
    throw new ContrastiveError(`train: --resume: ${checkpoint} does not exist; nothing to resume.`);
  }
  if (!resume && (existsSync(checkpoint) || existsSync(join(runDir, 'metrics.jsonl')))) {
    throw new ContrastiveError(
      `train: ${runDir} already holds a run; pass --resume to continue it, or choose another --out (nothing was overwritten).`,
    );
  }
  try {
    await mkdir(runDir, { recursive: true });
    const probe = join(runDir, '.write-test');
    await writeFile(probe, 'ok');
    await rm(probe);
  } catch (error) {
    throw new ContrastiveError(`train: cannot write to --out ${runDir}: ${(error as Error).message}`);
  }
  const fs = statfsSync(runDir);
  const free = fs.bavail * fs.bsize;
  if (free < 200 * 2 ** 20) {
    throw new ContrastiveError(
      `train: only ${(free / 2 ** 20).toFixed(0)} MiB free under ${runDir}; checkpoints need at least 200 MiB.`,
    );
  }
}

/** The model a run of `config` trains on `data` (deterministic in `config.seed`). */
export function buildModel(config: TrainConfig, data: TrainingData): ContrastiveModel {
  const encoder = config.encoder === 'auto' ? (data.kind === 'image' ? 'conv' : 'mlp') : config.encoder;
  const backbone =
    encoder === 'conv'
      ? smallConvEncoder({
          inputShape: data.inputShape as [number, number, number],
          embeddingDim: config.embeddingDim,
          seed: config.seed,
        })
      : mlpEncoder({
          inputDim: data.inputShape.reduce((a, b) => a * b, 1),
          inputShape: data.inputShape,
          embeddingDim: config.embeddingDim,
          seed: config.seed,
        });
  const embeddingDim = backbone.outputs[0].shape[1] as number;
  const head = projectionHead({ inputDim: embeddingDim, outputDim: config.projectionDim, seed: config.seed });
  let classifier: tfl.LayersModel | undefined;
  if (config.method === 'ce') {
    const numClasses = data.tree.levelSizes[data.tree.depth - 1];
    const input = tfl.input({ shape: [embeddingDim] });
    const out = tfl.layers
      .dense({
        units: numClasses,
        kernelInitializer: tfl.initializers.glorotUniform({ seed: config.seed + 11 }),
      })
      .apply(input) as tfl.SymbolicTensor;
    classifier = tfl.model({ inputs: input, outputs: out, name: 'classifier' });
  }
  return new ContrastiveModel(backbone, head, classifier);
}

function epochBatches(config: TrainConfig, data: TrainingData, rng: Rng): Int32Array[] {
  const depth = data.tree.depth;
  const fine = Int32Array.from(
    { length: data.train.size },
    (_, i) => data.train.labels[i * depth + depth - 1],
  );
  const batchSize = Math.min(config.batchSize, data.train.size);
  if (config.sampler === 'balanced') {
    const perClass = 4;
    const usable = Math.max(perClass, batchSize - (batchSize % perClass));
    return balancedBatches(fine, Math.min(usable, perClass * data.tree.levelSizes[depth - 1]), perClass, rng);
  }
  if (config.sampler === 'hierarchical') return hierarchicalBatches(fine, batchSize - (batchSize % 2), rng);
  return randomBatches(data.train.size, batchSize, rng);
}

interface StepArgs {
  config: TrainConfig;
  data: TrainingData;
  model: ContrastiveModel;
  keyModel: ContrastiveModel | null;
  queue: MomentumQueue | null;
  optimizer: Optimizer;
  indices: Int32Array;
  lr: number;
  augmentRng: Rng;
  mixRng: Rng;
  alpha: number;
  beta: number;
  buffer: Float32Array;
}

/** One optimiser step of the configured method; returns the loss and per-level losses as numbers. */
function trainStep(a: StepArgs): { loss: number; levelLosses?: number[] } {
  const { config, data, model } = a;
  const depth = data.tree.depth;
  const inputSize = data.inputShape.reduce((x, y) => x * y, 1);
  const n = a.indices.length;
  // gather the batch into a reused buffer
  for (let r = 0; r < n; r++) {
    const i = a.indices[r];
    a.buffer.set(data.train.inputs.subarray(i * inputSize, (i + 1) * inputSize), r * inputSize);
  }
  const labels = Array.from(a.indices, (i) =>
    Array.from(data.train.labels.subarray(i * depth, (i + 1) * depth)),
  );
  const x = tf.tensor(a.buffer.subarray(0, n * inputSize), [n, ...data.inputShape]);
  const augment = (t: tf.Tensor) =>
    data.kind === 'image'
      ? augmentImages(t as tf.Tensor4D, a.augmentRng)
      : augmentFeatures(t as tf.Tensor2D, a.augmentRng);
  try {
    if (isViewMethod(config.method)) {
      const method = config.method;
      const views = tf.concat(
        Array.from({ length: config.views }, () => augment(x)),
        0,
      );
      let levelTensors: tf.Scalar[] | undefined;
      const { loss } = a.optimizer.step(() => {
        const projections = model.project(model.embed(views, true), true);
        const p3 = tf.transpose(tf.reshape(projections, [config.views, n, -1]), [1, 0, 2]) as tf.Tensor3D;
        const result = viewMethodLoss(method, p3, labels, config);
        levelTensors = result.levelLosses?.map((t) => tf.keep(t));
        return result.loss;
      }, a.lr);
      views.dispose();
      const levelLosses = levelTensors?.map((t) => t.dataSync()[0]);
      tf.dispose(levelTensors ?? []);
      return { loss: scalarValue(loss), levelLosses };
    }
    if (config.method === 'ce') {
      const view = augment(x);
      const fine = tf.tidy(() =>
        tf.oneHot(
          tf.tensor1d(
            Int32Array.from(labels, (r) => r[depth - 1]),
            'int32',
          ),
          data.tree.levelSizes[depth - 1],
        ),
      );
      const { loss } = a.optimizer.step(
        () =>
          tf.losses.softmaxCrossEntropy(
            fine,
            model.classifier!.apply(model.embed(view, true), { training: true }) as tf.Tensor,
          ) as tf.Scalar,
        a.lr,
      );
      tf.dispose([view, fine]);
      return { loss: scalarValue(loss) };
    }
    return momentumStep(a, x, augment);
  } finally {
    x.dispose();
  }
}

/** MoCo / SANE: queries from the online encoder, keys from the EMA encoder, then EMA and enqueue. */
function momentumStep(a: StepArgs, x: tf.Tensor, augment: (t: tf.Tensor) => tf.Tensor): { loss: number } {
  const { config, model } = a;
  const keyModel = a.keyModel!;
  const queue = a.queue!;
  const n = a.indices.length;
  const xq = augment(x);
  const xk = augment(x);
  const keys = tf.tidy(() => keyModel.project(keyModel.embed(xk, true), true));
  const queueTensor = queue.tensor();
  const temperature = config.temperature;
  let extra: tf.Tensor[] = [];
  let loss: tf.Scalar;
  if (config.method === 'moco') {
    ({ loss } = a.optimizer.step(
      () => infoNCELoss(model.project(model.embed(xq, true), true), keys, queueTensor, { temperature }),
      a.lr,
    ));
  } else {
    const refineFrom =
      config.refineWith === 'online'
        ? tf.tidy(() => model.project(model.embed(xk, false), false))
        : undefined;
    let mixed: { inputs: tf.Tensor; theta: number; permutation: Int32Array } | undefined;
    if (config.mixup) {
      const theta = a.mixRng.beta(config.mixupBeta, config.mixupBeta);
      const permutation = a.mixRng.permutation(n);
      const inputs = tf.tidy(() =>
        tf.add(tf.mul(xq, theta), tf.mul(tf.gather(xk, tf.tensor1d(permutation, 'int32')), 1 - theta)),
      );
      mixed = { inputs, theta, permutation };
    }
    extra = [refineFrom, mixed?.inputs].filter((t): t is tf.Tensor => t !== undefined);
    ({ loss } = a.optimizer.step(() => {
      const queries = model.project(model.embed(xq, true), true);
      const mixedQueries = mixed ? model.project(model.embed(mixed.inputs, true), true) : undefined;
      return saneLossDetails(queries, keys, queueTensor, {
        temperature,
        tauPrime: config.tauPrime,
        alpha: a.alpha,
        beta: a.beta,
        refineFrom,
        mixedQueries,
        mixup: mixed ? { theta: mixed.theta, permutation: mixed.permutation } : undefined,
      }).loss;
    }, a.lr));
  }
  momentumUpdate(keyModel, model, config.keyMomentum);
  tf.tidy(() => queue.enqueue(tf.div(keys, tf.norm(keys, 2, 1, true))));
  tf.dispose([xq, xk, keys, queueTensor, ...extra]);
  return { loss: scalarValue(loss) };
}

function scalarValue(t: tf.Scalar): number {
  const v = t.dataSync()[0];
  t.dispose();
  return v;
}

/** kNN accuracy (finest level, k = 20) of backbone embeddings, test against train, on at most 5,000 / 1,000 samples. */
export function quickKnn(model: ContrastiveModel, data: TrainingData): number {
  const depth = data.tree.depth;
  const size = data.inputShape.reduce((a, b) => a * b, 1);
  const take = (split: TrainingData['train'], limit: number) => {
    const n = Math.min(split.size, limit);
    const first = {
      inputs: split.inputs.subarray(0, n * size),
      labels: split.labels.subarray(0, n * depth),
      size: n,
    };
    const rows = Array.from({ length: n }, (_, i) =>
      Array.from(split.labels.subarray(i * depth, (i + 1) * depth)),
    );
    return { embeddings: embedSplit(model.backbone, first, data.inputShape), rows };
  };
  const train = take(data.train, 5000);
  const test = take(data.test, 1000);
  try {
    return knnClassify(test.embeddings, test.rows, train.embeddings, train.rows, { k: 20 }).accuracy;
  } finally {
    tf.dispose([train.embeddings, test.embeddings]);
  }
}

function weightRecords(model: ContrastiveModel, prefix: string): TensorRecord[] {
  return model.namedWeights().map(({ name, variable }) => ({
    name: `${prefix}/${name}`,
    shape: variable.shape,
    data: variable.dataSync() as Float32Array,
  }));
}

function restoreWeights(model: ContrastiveModel, records: TensorRecord[], prefix: string): void {
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
