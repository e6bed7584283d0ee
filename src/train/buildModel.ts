import type * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import type { RunData } from '../data/runData.js';
import { ContrastiveError } from '../errors.js';
import { backboneOptionsFrom } from '../models/backboneOptions.js';
import { buildEncoder } from '../models/backbones.js';
import { ContrastiveModel } from '../models/contrastiveModel.js';
import { mlpEncoder, projectionHead } from '../models/encoders.js';
import type { TrainConfig } from './config.js';

/** A run's model, and which of its variables belong to the backbone (for `--backbone-learning-rate`). */
export interface BuiltModel {
  model: ContrastiveModel;
  /** Trainable variables of the (pretrained or built-in) backbone itself. */
  backboneVariables: ReadonlySet<tf.Variable>;
  /** The backbone's `--backbone-learning-rate` scale. */
  backboneLearningRate: number;
  /** Names of the frozen backbone layers. */
  frozenLayers: string[];
}

/**
 * The backbone (built-in, or a pretrained tfjs layers model with `--backbone`, frozen or
 * fine-tuned from a layer) and projection head a run of `config` trains on `data`
 * (deterministic in `config.seed`).
 */
export async function buildModelParts(config: TrainConfig, data: RunData): Promise<BuiltModel> {
  const { options, backboneLearningRate } = backboneOptionsFrom(config, {
    seed: config.seed,
    embeddingDim: config.embeddingDim,
  });
  if (data.frozenBackbone) {
    // the backbone ran once over the data; what trains is a head on its features
    const model = mlpEncoder({
      inputDim: data.frozenBackbone.featureDim,
      hiddenDims: options.headDims ?? [512],
      embeddingDim: config.embeddingDim,
      seed: config.seed,
    });
    return withHead(config, model, new Set(), 1, []);
  }
  if (options.encoder === undefined && options.backbone === undefined) {
    options.encoder = data.kind === 'image' ? 'conv' : 'mlp';
  }
  const encoder = await buildEncoder(options, data.inputShape);
  if (encoder.containsGraphModel) {
    encoder.model.dispose();
    throw new ContrastiveError(
      `train: --backbone ${config.backbone} is a tfjs graph model: it can be used frozen through the library's buildEncoder, but a run folder saves its backbone in tfjs layers format, which a graph model cannot be written as. Convert it with tensorflowjs_converter --output_format tfjs_layers_model.`,
    );
  }
  return withHead(
    config,
    encoder.model,
    new Set(encoder.backboneVariables),
    backboneLearningRate,
    encoder.frozenLayers,
  );
}

function withHead(
  config: TrainConfig,
  encoder: tfl.LayersModel,
  backboneVariables: ReadonlySet<tf.Variable>,
  backboneLearningRate: number,
  frozenLayers: string[],
): BuiltModel {
  const head = projectionHead({
    inputDim: encoder.outputs[0].shape[1] as number,
    outputDim: config.projectionDim,
    seed: config.seed,
  });
  return {
    model: new ContrastiveModel(encoder, head),
    backboneVariables,
    backboneLearningRate,
    frozenLayers,
  };
}

/** The backbone and projection head a run of `config` trains on `data`. */
export async function buildModel(config: TrainConfig, data: RunData): Promise<ContrastiveModel> {
  return (await buildModelParts(config, data)).model;
}

/** Per-variable learning-rate scales: `--backbone-learning-rate` for backbone variables, 1 for the rest. */
export function learningRateScales(
  variables: readonly tf.Variable[],
  built: BuiltModel,
): number[] | undefined {
  if (built.backboneLearningRate === 1) return undefined;
  return variables.map((v) => (built.backboneVariables.has(v) ? built.backboneLearningRate : 1));
}
