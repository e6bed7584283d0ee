import * as tf from '@tensorflow/tfjs-core';
import { check, checkInRange, shapeString } from '../errors.js';
import type { ContrastiveModel } from './contrastiveModel.js';

/**
 * Exponential moving average of weights, the MoCo key-encoder update:
 * `θ_k ← m·θ_k + (1 − m)·θ_q` for every weight (batch-norm statistics included). No gradient.
 *
 * @example
 * ```ts
 * momentumUpdate(keyModel, model, 0.99);
 * ```
 */
export function momentumUpdate(target: ContrastiveModel, source: ContrastiveModel, momentum: number): void {
  checkInRange('momentumUpdate', 'momentum', momentum, 0, 1);
  const t = target.namedWeights();
  const s = source.namedWeights();
  check(
    t.length === s.length,
    () => `momentumUpdate: the models differ (${t.length} and ${s.length} weights).`,
  );
  tf.tidy(() => {
    t.forEach(({ variable }, i) => {
      const from = s[i].variable;
      check(
        variable.shape.join() === from.shape.join(),
        () =>
          `momentumUpdate: weight ${t[i].name} has shape ${shapeString(variable.shape)} in the target but ${shapeString(from.shape)} in the source.`,
      );
      variable.assign(tf.add(tf.mul(variable, momentum), tf.mul(from, 1 - momentum)));
    });
  });
}

/** Copies every weight of `source` into `target` (same architecture). */
export function copyWeights(target: ContrastiveModel, source: ContrastiveModel): void {
  momentumUpdate(target, source, 0);
}
