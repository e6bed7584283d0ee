import { ContrastiveError } from '../errors.js';
import type { LevelCalibration, PathCalibration } from '../search/predictPath.js';

/**
 * A {@link PathCalibration} as JSON can hold it: a level that is never answered has threshold
 * `Infinity`, which JSON cannot write, so it is stored as `null`.
 */
export interface PathCalibrationJSON extends Omit<PathCalibration, 'levels' | 'methods'> {
  levels: (Omit<LevelCalibration, 'threshold'> & { threshold: number | null })[];
  methods: (Omit<PathCalibration['methods'][number], 'levels'> & {
    levels: (Omit<LevelCalibration, 'threshold'> & { threshold: number | null })[];
  })[];
}

const levelsToJSON = (levels: readonly LevelCalibration[]) =>
  levels.map((l) => ({ ...l, threshold: Number.isFinite(l.threshold) ? l.threshold : null }));
const levelsFromJSON = (levels: PathCalibrationJSON['levels']): LevelCalibration[] =>
  levels.map((l) => ({ ...l, threshold: l.threshold ?? Number.POSITIVE_INFINITY }));

/** {@link PathCalibration} → JSON-safe form (see {@link PathCalibrationJSON}). */
export function calibrationToJSON(calibration: PathCalibration): PathCalibrationJSON {
  return {
    ...calibration,
    levels: levelsToJSON(calibration.levels),
    methods: calibration.methods.map((m) => ({ ...m, levels: levelsToJSON(m.levels) })),
  };
}

/** The inverse of {@link calibrationToJSON}; a value that is not one is a {@link ContrastiveError}. */
export function calibrationFromJSON(json: PathCalibrationJSON): PathCalibration {
  if (!json || !Array.isArray(json.levels) || !Array.isArray(json.methods) || typeof json.method !== 'string')
    throw new ContrastiveError(
      'calibrationFromJSON: calibration must be the JSON of a PathCalibration (method, levels, methods), but it is not.',
    );
  return {
    ...json,
    levels: levelsFromJSON(json.levels),
    methods: json.methods.map((m) => ({ ...m, levels: levelsFromJSON(m.levels) })),
  };
}
