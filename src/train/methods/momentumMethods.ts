import * as tf from '@tensorflow/tfjs-core';
import { infoNCELoss } from '../../losses/moco.js';
import { saneLossDetails } from '../../losses/sane.js';
import { copyWeights, momentumUpdate } from '../../models/momentum.js';
import { MomentumQueue } from '../../models/momentumQueue.js';
import { Rng } from '../../random.js';
import { buildModelParts, learningRateScales } from '../buildModel.js';
import type { TrainConfig } from '../config.js';
import { linearRamp } from '../schedules.js';
import type { MethodModels, StepInputs, StepOutput, TrainingMethod } from './types.js';
import { scalarValue, variablesOf } from './viewMethods.js';

/**
 * The momentum methods: queries from the online encoder, keys from its exponential moving
 * average (the key encoder), negatives from a queue of past keys. After each step the key
 * encoder moves towards the online one and the batch's keys enter the queue.
 */
async function buildMomentum(
  config: TrainConfig,
  data: Parameters<TrainingMethod['build']>[1],
): Promise<MethodModels> {
  const built = await buildModelParts(config, data);
  const model = built.model;
  const keyModel = (await buildModelParts(config, data)).model;
  copyWeights(keyModel, model);
  const queue = new MomentumQueue(config.queueSize, config.projectionDim);
  queue.fillRandom(new Rng(config.seed + 3));
  const trainable = [...variablesOf(model.backbone), ...variablesOf(model.head)];
  return { model, keyModel, queue, trainable, learningRateScales: learningRateScales(trainable, built) };
}

type QueryLoss = (
  models: MethodModels,
  views: { xq: tf.Tensor; xk: tf.Tensor; keys: tf.Tensor2D; queue: tf.Tensor2D },
  inputs: StepInputs,
  config: TrainConfig,
) => { loss: () => tf.Scalar; extra: tf.Tensor[] };

function momentumMethod(summary: string, queryLoss: QueryLoss): TrainingMethod {
  return {
    summary,
    minViews: 1,
    // a query view and a key view
    viewsPerStep: () => 2,
    labels: 'none',
    build: buildMomentum,
    step(models, optimizer, inputs, config): StepOutput {
      const { model, keyModel, queue } = models as Required<MethodModels>;
      const xq = inputs.augment(inputs.x);
      const xk = inputs.augment(inputs.x);
      const keys = tf.tidy(() => keyModel.project(keyModel.embed(xk, true), true));
      const queueTensor = queue.tensor();
      const { loss, extra } = queryLoss(models, { xq, xk, keys, queue: queueTensor }, inputs, config);
      const result = optimizer.step(loss, inputs.learningRate);
      momentumUpdate(keyModel, model, config.keyMomentum);
      tf.tidy(() => queue.enqueue(tf.div(keys, tf.norm(keys, 2, 1, true))));
      tf.dispose([xq, xk, keys, queueTensor, ...extra]);
      return { loss: scalarValue(result.loss) };
    },
  };
}

export const moco = momentumMethod(
  'MoCo: InfoNCE against a queue of momentum keys',
  ({ model }, v, _, config) => ({
    loss: () =>
      infoNCELoss(model.project(model.embed(v.xq, true), true), v.keys, v.queue, {
        temperature: config.temperature,
      }),
    extra: [],
  }),
);

/** SANE: MoCo plus the self-labeling refinery's soft targets and momentum mixup of inputs. */
export const sane = momentumMethod(
  'SANE: MoCo with the self-labeling refinery and momentum mixup',
  ({ model }, v, inputs, config) => {
    const ramp = config.rampEpochs * inputs.stepsPerEpoch;
    const alpha = linearRamp(config.refinery ? config.alpha : 0, ramp)(inputs.step);
    const beta = linearRamp(config.refinery ? config.beta : 0, ramp)(inputs.step);
    const refineFrom =
      config.refineWith === 'online'
        ? tf.tidy(() => model.project(model.embed(v.xk, false), false))
        : undefined;
    let mixed: { inputs: tf.Tensor; theta: number; permutation: Int32Array } | undefined;
    if (config.mixup) {
      const theta = inputs.mixRng.beta(config.mixupBeta, config.mixupBeta);
      const permutation = inputs.mixRng.permutation(inputs.labels.length);
      const mixedInputs = tf.tidy(() =>
        tf.add(tf.mul(v.xq, theta), tf.mul(tf.gather(v.xk, tf.tensor1d(permutation, 'int32')), 1 - theta)),
      );
      mixed = { inputs: mixedInputs, theta, permutation };
    }
    return {
      loss: () => {
        const queries = model.project(model.embed(v.xq, true), true);
        const mixedQueries = mixed ? model.project(model.embed(mixed.inputs, true), true) : undefined;
        return saneLossDetails(queries, v.keys, v.queue, {
          temperature: config.temperature,
          tauPrime: config.tauPrime,
          alpha,
          beta,
          refineFrom,
          mixedQueries,
          mixup: mixed ? { theta: mixed.theta, permutation: mixed.permutation } : undefined,
          checkFinite: false,
        }).loss;
      },
      extra: [refineFrom, mixed?.inputs].filter((t): t is tf.Tensor => t !== undefined),
    };
  },
);
