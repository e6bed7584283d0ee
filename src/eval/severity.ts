import { check } from '../errors.js';
import { type LabelsLike, readLabelMatrix } from '../losses/parts/labels.js';
import { sharedPrefixLength } from './labels.js';

/** {@link mistakeSeverity}'s result. */
export interface MistakeSeverity {
  /** Mean height of the lowest common ancestor of predicted and true class over the mistakes (1..L). */
  meanLcaHeight: number;
  /** Wrong predictions (the full label path differs). */
  numMistakes: number;
  /** `histogram[h]`: mistakes whose LCA is h levels above the leaves (index 0 unused). */
  histogram: number[];
}

/**
 * How bad the mistakes are in the tree (Bertinetto et al. 2020): for each prediction whose path
 * differs from the truth, the height of their lowest common ancestor — 1 for a sibling class, L
 * when even the coarsest level is wrong.
 *
 * @param predicted `[N, L]` predicted label paths (e.g. `knnClassify(...).predicted` or top-1 neighbours' rows).
 * @param truth `[N, L]` true label paths.
 */
export function mistakeSeverity(predicted: LabelsLike, truth: LabelsLike): MistakeSeverity {
  const fn = 'mistakeSeverity';
  const p = readLabelMatrix(fn, 'predicted', predicted);
  const t = readLabelMatrix(fn, 'truth', truth);
  check(
    p.rows === t.rows && p.cols === t.cols,
    () =>
      `${fn}: predicted and truth must have the same shape, but got [${p.rows},${p.cols}] and [${t.rows},${t.cols}].`,
  );
  const histogram = new Array<number>(t.cols + 1).fill(0);
  let total = 0;
  let mistakes = 0;
  for (let i = 0; i < t.rows; i++) {
    const shared = sharedPrefixLength(p, i, t, i);
    if (shared === t.cols) continue;
    const height = t.cols - shared;
    histogram[height]++;
    total += height;
    mistakes++;
  }
  return { meanLcaHeight: mistakes > 0 ? total / mistakes : 0, numMistakes: mistakes, histogram };
}
