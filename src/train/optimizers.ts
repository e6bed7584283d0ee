import * as tf from '@tensorflow/tfjs-core';
import { FUSED_ADAM, fusedAdamAvailable } from '../engine/kernels/optimizer.js';
import { check, checkInRange } from '../errors.js';
import type { TensorRecord } from './checkpoint.js';

/** Options of {@link Optimizer}. */
export interface OptimizerOptions {
  kind: 'sgd' | 'adam' | 'adamw';
  /** SGD momentum (0: plain SGD). Default 0.9. */
  momentum?: number;
  nesterov?: boolean;
  /** Adam β1, β2, ε. Defaults 0.9, 0.999, 1e-8. */
  beta1?: number;
  beta2?: number;
  epsilon?: number;
  /**
   * Weight decay, on weight matrices and kernels only (rank ≥ 2; biases and batch-norm
   * parameters are not decayed): decoupled for `adamw` (`w -= lr·wd·w`), an L2 gradient term for
   * `sgd` and `adam`.
   */
  weightDecay?: number;
  /** Clip the global gradient norm to this value (0: off). */
  gradClipNorm?: number;
  /** A learning-rate scale per variable (fine-tuning a backbone slower than its head); default all 1. */
  learningRateScales?: readonly number[];
}

/** What one {@link Optimizer.step} did. */
export interface StepResult {
  loss: tf.Scalar;
  /** Global gradient norm before clipping; computed (a host read) only when clipping is on. */
  gradNorm?: number;
}

/**
 * SGD (momentum, Nesterov), Adam and AdamW as PyTorch defines them, over a fixed list of
 * variables, with the learning rate given per step (for schedules) and a state that round-trips
 * exactly through checkpoints (bias corrections are computed from the step count in float64).
 */
export class Optimizer {
  private t = 0;
  private slots: tf.Variable[][] | null = null;

  constructor(
    private readonly variables: tf.Variable[],
    readonly options: OptimizerOptions,
  ) {
    check(
      ['sgd', 'adam', 'adamw'].includes(options.kind),
      () => `Optimizer: kind must be sgd, adam or adamw, but got ${options.kind}.`,
    );
  }

  /** Steps taken. */
  get iterations(): number {
    return this.t;
  }

  /** Computes `loss()` and its gradients, and updates the variables with learning rate `lr`. */
  step(loss: () => tf.Scalar, learningRate: number): StepResult {
    checkInRange('Optimizer.step', 'learningRate', learningRate, 0, Number.MAX_VALUE);
    const { value, grads } = tf.variableGrads(loss, this.variables);
    try {
      const { gradNorm } = this.applyGradients(
        this.variables.map((v) => grads[v.name]),
        learningRate,
      );
      return { loss: value, gradNorm };
    } finally {
      tf.dispose(Object.values(grads));
    }
  }

  /**
   * Updates the variables with gradients computed elsewhere (one per variable, in the order the
   * optimiser was given them; GradCache accumulates them chunk by chunk), exactly as
   * {@link step} does with its own: clipping, weight decay, learning-rate scales, the update.
   * The gradients stay the caller's.
   */
  applyGradients(gradients: readonly tf.Tensor[], learningRate: number): { gradNorm?: number } {
    checkInRange('Optimizer.applyGradients', 'learningRate', learningRate, 0, Number.MAX_VALUE);
    check(
      gradients.length === this.variables.length && gradients.every((g) => g !== undefined),
      () => `Optimizer: ${gradients.length} gradients for ${this.variables.length} variables.`,
    );
    const o = this.options;
    const wd = o.weightDecay ?? 0;
    let gradNorm: number | undefined;
    tf.tidy(() => {
      let g = [...gradients];
      if (o.gradClipNorm && o.gradClipNorm > 0) {
        gradNorm = Math.sqrt(tf.addN(g.map((x) => tf.sum(tf.square(x)))).dataSync()[0]);
        if (gradNorm > o.gradClipNorm) {
          const scale = o.gradClipNorm / (gradNorm + 1e-6);
          g = g.map((x) => tf.mul(x, scale));
        }
      }
      if (wd > 0 && o.kind !== 'adamw') {
        g = g.map((x, i) => (this.variables[i].rank >= 2 ? tf.add(x, tf.mul(this.variables[i], wd)) : x));
      }
      this.t++;
      const rates = this.variables.map((_, i) => learningRate * (o.learningRateScales?.[i] ?? 1));
      if (o.kind === 'sgd') this.sgd(g, rates);
      else this.adam(g, rates, o.kind === 'adamw' ? wd : 0);
    });
    return { gradNorm };
  }

  private ensureSlots(count: number): tf.Variable[][] {
    if (!this.slots) {
      this.slots = this.variables.map((v) =>
        Array.from({ length: count }, () => tf.variable(tf.zerosLike(v), false)),
      );
    }
    return this.slots;
  }

  private sgd(grads: tf.Tensor[], rates: number[]): void {
    const momentum = this.options.momentum ?? 0.9;
    if (momentum === 0) {
      grads.forEach((g, i) => {
        this.variables[i].assign(tf.sub(this.variables[i], tf.mul(g, rates[i])));
      });
      return;
    }
    const slots = this.ensureSlots(1);
    grads.forEach((g, i) => {
      const buf = slots[i][0];
      // PyTorch: the buffer starts as the first gradient
      const next = this.t === 1 ? g : tf.add(tf.mul(buf, momentum), g);
      buf.assign(next);
      const direction = this.options.nesterov ? tf.add(g, tf.mul(next, momentum)) : next;
      this.variables[i].assign(tf.sub(this.variables[i], tf.mul(direction, rates[i])));
    });
  }

  private adam(grads: tf.Tensor[], rates: number[], decoupledDecay: number): void {
    const b1 = this.options.beta1 ?? 0.9;
    const b2 = this.options.beta2 ?? 0.999;
    const eps = this.options.epsilon ?? 1e-8;
    const slots = this.ensureSlots(2);
    const c1 = 1 - b1 ** this.t;
    const c2 = 1 - b2 ** this.t;
    const fused = fusedAdamAvailable();
    grads.forEach((g, i) => {
      const [m, v] = slots[i];
      const w = this.variables[i];
      const lr = rates[i];
      const decays = decoupledDecay > 0 && w.rank >= 2;
      if (fused && w.dtype === 'float32' && g.dtype === 'float32') {
        // one native pass, bit-equal to the ops below (src/engine/kernels/optimizer.ts)
        const scalars = [b1, 1 - b1, b2, 1 - b2, c1, c2, eps, lr, decays ? 1 - lr * decoupledDecay : 1];
        const [wNext, mNext, vNext] = tf
          .engine()
          .runKernel(FUSED_ADAM, { w, m, v, g }, { scalars }) as tf.Tensor[];
        m.assign(mNext);
        v.assign(vNext);
        w.assign(wNext);
        return;
      }
      m.assign(tf.add(tf.mul(m, b1), tf.mul(g, 1 - b1)));
      v.assign(tf.add(tf.mul(v, b2), tf.mul(tf.square(g), 1 - b2)));
      let base: tf.Tensor = w;
      if (decays) base = tf.mul(w, 1 - lr * decoupledDecay);
      // w -= lr · (m / c1) / (sqrt(v / c2) + ε)
      const update = tf.div(tf.div(m, c1), tf.add(tf.sqrt(tf.div(v, c2)), eps));
      w.assign(tf.sub(base, tf.mul(update, lr)));
    });
  }

  /** The state (step count and slots) for a checkpoint. */
  state(): { iterations: number; slots: TensorRecord[] } {
    const slots: TensorRecord[] = [];
    this.slots?.forEach((list, i) => {
      list.forEach((s, k) => {
        slots.push({ name: `slot/${i}/${k}`, shape: s.shape, data: s.dataSync() as Float32Array });
      });
    });
    return { iterations: this.t, slots };
  }

  /** Restores a {@link state}. */
  setState(state: { iterations: number; slots: TensorRecord[] }): void {
    this.t = state.iterations;
    if (state.slots.length === 0) return;
    const perVariable = state.slots.length / this.variables.length;
    check(
      Number.isInteger(perVariable),
      () => `Optimizer.setState: ${state.slots.length} slots for ${this.variables.length} variables.`,
    );
    const slots = this.ensureSlots(perVariable);
    for (const record of state.slots) {
      const [, i, k] = record.name.split('/').map(Number);
      slots[i][k].assign(tf.tensor(record.data, record.shape));
    }
  }

  dispose(): void {
    this.slots?.flat().forEach((s) => {
      s.dispose();
    });
    this.slots = null;
  }
}
