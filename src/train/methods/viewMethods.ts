import * as tf from '@tensorflow/tfjs-core';
import type { RunData } from '../../data/runData.js';
import { ContrastiveError } from '../../errors.js';
import { hiConEClampBinds, hiMulConLossDetails } from '../../losses/hiMulCon.js';
import { ntXentLoss } from '../../losses/ntXent.js';
import { finestCommonLevel } from '../../losses/parts/labels.js';
import { supConLoss } from '../../losses/supCon.js';
import { buildModelParts, learningRateScales } from '../buildModel.js';
import type { TrainConfig } from '../config.js';
import { forwardState, gradCacheGradients } from '../gradCache.js';
import type { MethodModels, StepOutput, TrainingMethod } from './types.js';

/**
 * The view methods: V augmented views of each sample through one encoder, and a loss over the
 * projections `[N, V, P]`. SimCLR ignores the labels, SupCon uses the finest level, the
 * hierarchical methods use every level.
 */
type ViewLoss = (
  projections: tf.Tensor3D,
  labels: number[][],
  config: TrainConfig,
  models: MethodModels,
) => {
  loss: tf.Scalar;
  levelLosses?: tf.Scalar[];
  /** The loss clamps its levels as HiConE does (hicone, himulcone): the step reports where it binds. */
  clamped?: boolean;
};

function viewMethod(
  summary: string,
  labels: TrainingMethod['labels'],
  viewLoss: ViewLoss,
  validate?: TrainingMethod['validate'],
): TrainingMethod {
  return {
    summary,
    minViews: 2,
    viewsPerStep: (config) => config.views,
    labels,
    validate,
    async build(config, data): Promise<MethodModels> {
      const built = await buildModelParts(config, data);
      const { model } = built;
      const trainable = [...variablesOf(model.backbone), ...variablesOf(model.head)];
      return {
        model,
        trainable,
        learningRateScales: learningRateScales(trainable, built),
        labelLevel: labels === 'finest' ? flatLabelLevel(data) : undefined,
      };
    },
    gradCache: true,
    step(models, optimizer, inputs, config): StepOutput {
      const { model } = models;
      const n = inputs.labels.length;
      // drawn once, so both passes of --grad-cache-chunk see the same rows; tidy: each augmented
      // view goes once it is concatenated
      const views = tf.tidy(() =>
        tf.concat(
          Array.from({ length: config.views }, () => inputs.augment(inputs.x)),
          0,
        ),
      );
      let levelTensors: tf.Scalar[] | undefined;
      let clamped = false;
      const lossOf = (projections: tf.Tensor2D): tf.Scalar => {
        const perSample = tf.transpose(tf.reshape(projections, [config.views, n, -1]), [1, 0, 2]);
        const result = viewLoss(perSample as tf.Tensor3D, inputs.labels, config, models);
        levelTensors = result.levelLosses?.map((t) => tf.keep(t));
        clamped = result.clamped === true;
        return result.loss;
      };
      const forward = (rows: tf.Tensor) => model.project(model.embed(rows, true), true);
      let loss: tf.Scalar;
      try {
        if (config.gradCacheChunk > 0) {
          const cached = gradCacheGradients(
            forward,
            views,
            config.gradCacheChunk,
            lossOf,
            models.trainable,
            forwardState(model),
          );
          loss = cached.loss;
          try {
            optimizer.applyGradients(cached.gradients, inputs.learningRate);
          } finally {
            tf.dispose(cached.gradients);
          }
        } else {
          loss = optimizer.step(() => lossOf(forward(views)), inputs.learningRate).loss;
        }
      } finally {
        views.dispose();
      }
      const levelLosses = levelTensors?.map((t) => t.dataSync()[0]);
      tf.dispose(levelTensors ?? []);
      const clampBinds = clamped && levelLosses ? hiConEClampBinds(levelLosses) : undefined;
      return { loss: scalarValue(loss), levelLosses, clampBinds };
    },
  };
}

const hierarchical = (variant: 'hmc' | 'hce' | 'hmce'): ViewLoss => {
  return (projections, labels, config) => {
    const details = hiMulConLossDetails(projections, labels, {
      temperature: config.temperature,
      baseTemperature: config.baseTemperature,
      variant,
      levelWeights: config.levelWeights,
      mode: config.hierarchyMode,
      // the loop checks every step's loss; a second host read inside the loss buys nothing
      checkFinite: false,
    });
    return {
      loss: details.loss,
      levelLosses: details.levels.map((l) => l.rawLoss),
      clamped: variant !== 'hmc',
    };
  };
};

const referenceModeNeedsLevels: TrainingMethod['validate'] = (config, data) => {
  if (config.hierarchyMode === 'reference' && data.tree.depth < 2) {
    throw new ContrastiveError(
      `train: --hierarchy-mode reference needs at least 2 label levels, the data has ${data.tree.depth}.`,
    );
  }
};

export const simclr = viewMethod('SimCLR: NT-Xent over augmented views, no labels', 'none', (p, _, c) => ({
  loss: ntXentLoss(p, { temperature: c.temperature, checkFinite: false }),
}));

export const supcon = viewMethod(
  'SupCon: positives share the finest label every row knows',
  'finest',
  (p, labels, c, models) => ({
    loss: supConLoss(
      p,
      labels.map((row) => row[models.labelLevel ?? row.length - 1]),
      { temperature: c.temperature, baseTemperature: c.baseTemperature ?? c.temperature, checkFinite: false },
    ),
  }),
);

export const himulcon = viewMethod(
  'HiMulCon: a SupCon term per level, weighted by level',
  'all',
  hierarchical('hmc'),
  referenceModeNeedsLevels,
);
export const hicone = viewMethod(
  'HiConE: per-level terms with the hierarchy-constraint clamp',
  'all',
  hierarchical('hce'),
  referenceModeNeedsLevels,
);
export const himulcone = viewMethod(
  'HiMulConE: HiMulCon and HiConE combined',
  'all',
  hierarchical('hmce'),
  referenceModeNeedsLevels,
);

/**
 * The label column a flat method learns: the finest level every training row knows (partial
 * label paths hold -1 below their known prefix); an error when some row knows none.
 */
export function flatLabelLevel(data: Pick<RunData, 'train' | 'tree'>): number {
  const labels = tf.tensor2d(data.train.labels, [data.train.size, data.tree.depth], 'int32');
  try {
    return finestCommonLevel('train', labels).level;
  } finally {
    labels.dispose();
  }
}

export function variablesOf(part: { trainableWeights: { read(): tf.Tensor }[] }): tf.Variable[] {
  return part.trainableWeights.map((w) => w.read() as tf.Variable);
}

/** Reads a scalar loss to the host and frees it. */
export function scalarValue(t: tf.Scalar): number {
  const v = t.dataSync()[0];
  t.dispose();
  return v;
}
