/**
 * tfjs-contrastive: contrastive representation learning that uses all the labels a dataset has.
 * Every loss is a pure function over tfjs tensors and works on any tfjs backend.
 */
export { BACKEND_PREFERENCE, type BackendName, useBackend } from './engine/backend.js';
export { ContrastiveError } from './errors.js';
export * from './eval/index.js';
export {
  type HiMulConDetails,
  type HiMulConLevel,
  type HiMulConOptions,
  type HiMulConVariant,
  hiMulConLoss,
  hiMulConLossDetails,
  type LevelWeights,
  resolveLevelWeights,
} from './losses/hiMulCon.js';
export { type InfoNCEOptions, infoNCELoss } from './losses/moco.js';
export { type NtXentOptions, ntXentLoss } from './losses/ntXent.js';
export { l2NormalizeRows, stopGradient } from './losses/parts/features.js';
export type { LabelsLike } from './losses/parts/labels.js';
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
export { Rng } from './random.js';
