import { ContrastiveError } from '../errors.js';
import { Rng } from '../random.js';
import type { EmbeddingIndex } from '../search/embeddingIndex.js';
import { type CalibrateOptions, calibrate, type PathCalibration } from '../search/predictPath.js';

/** Options of {@link calibrateLeaveOneOut}. */
export interface LeaveOneOutOptions extends CalibrateOptions {
  /** Labelled index items used (a seeded sample). Default 2000. */
  limit?: number;
}

/** A calibration and what it was measured on, in words. */
export interface CatalogueCalibration {
  calibration: PathCalibration;
  /** E.g. `'2000 labelled items of the index, each left out of its own neighbours'`. */
  on: string;
}

/**
 * Calibrates placement on the index's own labelled items, each left out of its own neighbours
 * (a seeded sample of at most `limit`): the one leave-one-out calibration that `predict`, `serve`
 * and `export-web` share. Null when the index has fewer than 2 labelled items.
 */
export function calibrateLeaveOneOut(
  index: EmbeddingIndex,
  options: LeaveOneOutOptions = {},
): CatalogueCalibration | null {
  const { limit = 2000, ...settings } = options;
  if (!(Number.isInteger(limit) && limit >= 0))
    throw new ContrastiveError(`calibrateLeaveOneOut: limit must be an integer >= 0, but got ${limit}.`);
  const labelled = limit > 0 ? index.items().filter((it) => it.label !== null) : [];
  if (labelled.length < 2) return null;
  const order = new Rng(0).permutation(labelled.length);
  const sample = Array.from(order.subarray(0, Math.min(labelled.length, limit)), (i) => labelled[i]);
  const calibration = calibrate(
    index,
    {
      embeddings: sample.map((it) => index.embedding(it.id)),
      labels: sample.map((it) => it.label!),
      selfIds: sample.map((it) => it.id),
    },
    settings,
  );
  return {
    calibration,
    on: `${sample.length} labelled items of the index, each left out of its own neighbours`,
  };
}

/** A key that two embeddings of the same item share: the unit vector at 4 decimals. */
export function vectorKey(v: ArrayLike<number>): string {
  let norm = 0;
  for (let j = 0; j < v.length; j++) norm += v[j] * v[j];
  const scale = norm > 0 ? 1 / Math.sqrt(norm) : 0;
  return Array.from(v, (x) => (x * scale).toFixed(4)).join(',');
}
