import * as tf from '@tensorflow/tfjs-core';
import { check, checkPositive } from '../errors.js';
import { anchorTerms, buildContrast, meanOverCounted } from './parts/contrast.js';
import { checkFinite, flattenFeatures, l2NormalizeRows } from './parts/features.js';
import { singletonGrouping } from './parts/labels.js';

/** Options of {@link ntXentLoss}. */
export interface NtXentOptions {
  /** τ in `s_ij = f_i·f_j / τ`. Default 0.5 (SimCLR). */
  temperature?: number;
  /** L2-normalise rows inside the loss (default true); the gradient flows through it. */
  normalize?: boolean;
  /** Throw a clear error when the features hold NaN or ±Infinity (default true). */
  checkFinite?: boolean;
}

/**
 * SimCLR's NT-Xent loss (`L^self`):
 * `L = -(1/|A|) Σ_i log( exp(s_ij) / Σ_{a ≠ i} exp(s_ia) )`, j = the other view of i, over all
 * `2N` rows. With V > 2 views every other view of i is a positive (averaged), as in SupCon
 * without labels.
 *
 * @param features `[N, V, D]`, or flat `[2N, D]` where rows i and i+N are the two views of sample i.
 * @example
 * ```ts
 * const loss = ntXentLoss(tf.stack([z1, z2], 1), { temperature: 0.5 });
 * ```
 */
export function ntXentLoss(features: tf.Tensor, options: NtXentOptions = {}): tf.Scalar {
  const fn = 'ntXentLoss';
  const temperature = options.temperature ?? 0.5;
  checkPositive(fn, 'temperature', temperature);
  return tf.tidy(() => {
    const hint = features instanceof tf.Tensor && features.rank === 2 ? { numViews: 2 } : {};
    const batch = flattenFeatures(fn, 'features', features, hint);
    check(
      batch.numSamples >= 2,
      () =>
        `${fn}: features [${features.shape}] hold 1 sample; NT-Xent needs at least 2 (the other samples are the negatives: with none the loss is always 0).`,
    );
    if (options.checkFinite ?? true) checkFinite(fn, 'features', features);
    const flat = (options.normalize ?? true) ? l2NormalizeRows(batch.flat) : batch.flat;
    const contrast = buildContrast(flat, batch.numSamples, batch.numViews, batch.numViews, temperature);
    return meanOverCounted(
      anchorTerms(contrast, { kind: 'groups', grouping: singletonGrouping(batch.numSamples) }),
    );
  });
}
