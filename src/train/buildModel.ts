import type { TrainingData } from '../data/dataset.js';
import { ContrastiveModel } from '../models/contrastiveModel.js';
import { mlpEncoder, projectionHead, smallConvEncoder } from '../models/encoders.js';
import type { TrainConfig } from './config.js';

/** The backbone and projection head a run of `config` trains on `data` (deterministic in `config.seed`). */
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
  return new ContrastiveModel(backbone, head);
}
