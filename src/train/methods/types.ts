import type * as tf from '@tensorflow/tfjs-core';
import type { RunData } from '../../data/runData.js';
import type { ContrastiveModel } from '../../models/contrastiveModel.js';
import type { MomentumQueue } from '../../models/momentumQueue.js';
import type { Rng } from '../../random.js';
import type { TrainConfig } from '../config.js';
import type { Optimizer } from '../optimizers.js';

/**
 * What a method trains. `model` is what the run saves (backbone + head); momentum methods add a
 * key encoder and a queue, which checkpoints save and restore with the rest.
 */
export interface MethodModels {
  model: ContrastiveModel;
  /** The variables the optimiser updates. */
  trainable: tf.Variable[];
  /** A learning-rate scale per trainable variable (`--backbone-learning-rate`); absent: all 1. */
  learningRateScales?: number[];
  /**
   * Flat methods (SupCon, ce): the label column they learn, the finest level every training row
   * knows (the finest level unless some label paths are partial).
   */
  labelLevel?: number;
  keyModel?: ContrastiveModel;
  queue?: MomentumQueue;
}

/** One batch, as the loop hands it to a method's step. */
export interface StepInputs {
  /** The batch's raw inputs `[n, ...inputShape]`; the method draws its own augmented views. */
  x: tf.Tensor;
  /** Label rows `[n][L]`, coarsest level first. */
  labels: number[][];
  /** Draws one augmented view of a batch (seeded by the run's augmentation RNG). */
  augment(batch: tf.Tensor): tf.Tensor;
  learningRate: number;
  /** Steps done before this one, and per epoch: for schedules inside a method (SANE's α_t, β_t ramp). */
  step: number;
  stepsPerEpoch: number;
  /** The run's second RNG stream (SANE's mixup coefficients and permutations). */
  mixRng: Rng;
}

/** A step's loss, and per-level losses for hierarchical methods (coarsest first). */
export interface StepOutput {
  loss: number;
  levelLosses?: number[];
  /** HiConE and HiMulConE: per level (coarsest first), whether the clamp took a finer level's loss (`hiConEClampBinds`). */
  clampBinds?: boolean[];
}

/**
 * Everything the trainer knows about one method. Adding a method is one entry in
 * `methods/registry.ts` that implements this.
 */
export interface TrainingMethod {
  /** One line for `--help` and docs. */
  summary: string;
  /** Views per sample the method needs at least (`--views`). */
  minViews: number;
  /** Augmented views of each sample one step draws (for what a step holds in memory). */
  viewsPerStep(config: TrainConfig): number;
  /** Which labels the loss uses: none (self-supervised), the finest level, or every level. */
  labels: 'none' | 'finest' | 'all';
  /**
   * Whether `step` implements `--grad-cache-chunk` (GradCache: the loss is a function of the
   * whole batch's projections, so the network can run in chunks around it).
   */
  gradCache?: boolean;
  /** Throws a `ContrastiveError` when the options or the data do not suit the method. */
  validate?(config: TrainConfig, data: RunData): void;
  /** Builds the models (deterministic in `config.seed`). */
  build(config: TrainConfig, data: RunData): Promise<MethodModels>;
  /** One optimiser step on a batch. */
  step(models: MethodModels, optimizer: Optimizer, inputs: StepInputs, config: TrainConfig): StepOutput;
}
