/**
 * tfjs-contrastive: contrastive representation learning that uses all the labels a dataset has.
 * Every loss is a pure function over tfjs tensors and works on any tfjs backend.
 */

export * from './catalogue/index.js';
export {
  augmentFeatures,
  augmentImages,
  DEFAULT_IMAGE_AUGMENT,
  type FeatureAugmentOptions,
  type ImageAugmentOptions,
  views,
} from './data/augment.js';
export { type ImageFolder, type ImageFolderOptions, readImageFolder } from './data/imageFolder.js';
export * from './data/index.js';
export { balancedBatches, hierarchicalBatches, randomBatches } from './data/samplers.js';
export { BACKEND_PREFERENCE, type BackendName, useBackend } from './engine/backend.js';
export { setConvScratchLimit } from './engine/kernels/conv.js';
export { nativeStatus } from './engine/native.js';
export { ContrastiveError } from './errors.js';
export * from './eval/index.js';
export * from './hierarchy/index.js';
export {
  type HiMulConDetails,
  type HiMulConLevel,
  type HiMulConOptions,
  type HiMulConVariant,
  hiConEClampBinds,
  hiMulConLoss,
  hiMulConLossDetails,
  type LevelWeights,
  resolveLevelWeights,
} from './losses/hiMulCon.js';
export { type InfoNCEOptions, infoNCELoss } from './losses/moco.js';
export { type NtXentOptions, ntXentLoss } from './losses/ntXent.js';
export { l2NormalizeRows, stopGradient } from './losses/parts/features.js';
export { finestCommonLevel, type LabelsLike, UNKNOWN_LABEL } from './losses/parts/labels.js';
export { tiledLogSumExpExcludingSelf } from './losses/parts/tiledLogSumExp.js';
export {
  type MomentumMixupOptions,
  type MomentumMixupResult,
  momentumMixup,
  type RefinedLabels,
  type RefineLabelsOptions,
  refineLabels,
  type SaneLossDetails,
  type SaneLossOptions,
  type SoftLabelCrossEntropyOptions,
  saneLoss,
  saneLossDetails,
  softLabelCrossEntropy,
} from './losses/sane.js';
export { type SupConDetails, type SupConOptions, supConLoss, supConLossDetails } from './losses/supCon.js';
export {
  type BatchNormTrainingResult,
  batchNormalization,
  batchNormTraining,
  FusedBatchNormalization,
} from './models/batchNorm.js';
export { ContrastiveModel } from './models/contrastiveModel.js';
export { mlpEncoder, projectionHead, smallConvEncoder } from './models/encoders.js';
export * from './models/index.js';
export { loadLayersModelFromDir, saveLayersModel } from './models/modelIO.js';
export { copyWeights, momentumUpdate } from './models/momentum.js';
export { MomentumQueue, type MomentumQueueState } from './models/momentumQueue.js';
export { Rng } from './random.js';
export * from './report/index.js';
export * from './run/index.js';
export * from './search/index.js';
export * from './serve/index.js';
export * from './store/index.js';
export { buildModel } from './train/buildModel.js';
export { type Checkpoint, readCheckpoint, writeCheckpoint } from './train/checkpoint.js';
export { METHODS, type Method, resolveTrainConfig, TRAIN_OPTIONS, type TrainConfig } from './train/config.js';
export { type LoopResult, type TrainLoopIO, trainLoop } from './train/loop.js';
export { METHOD_REGISTRY, trainingMethod } from './train/methods/registry.js';
export type { MethodModels, StepInputs, StepOutput, TrainingMethod } from './train/methods/types.js';
export { Optimizer, type OptimizerOptions } from './train/optimizers.js';
export { constantWithWarmup, cosineWithWarmup, linearRamp, type Schedule } from './train/schedules.js';
export type { TrainingRecord } from './train/window.js';
export { type WebSiteOptions, type WebSiteSummary, writeWebSite } from './web/site.js';
