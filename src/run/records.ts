import type { EvaluationSummary } from '../eval/evaluate.js';
import type { TrainingRecord } from '../train/window.js';

/** One line of a run's `metrics.jsonl`, written by the trainer: a logging window of steps or an epoch. */
export type MetricRecord = TrainingRecord;

/** A nearest-neighbour strip of the report: a query image and its nearest test images. */
export interface NeighborStrip {
  /** Image as a data URI (PNG). */
  query: string;
  label: string;
  neighbors: {
    image: string;
    label: string;
    /** Label levels shared with the query (0..L). */
    sharedLevels: number;
  }[];
}

/** What `contrastive eval` writes to `<run>/eval.json`. */
export interface EvalFile extends EvaluationSummary {
  /** Name of each level, coarsest first (e.g. `['group', 'family', 'class']`). */
  levelNames?: string[];
  /** `classNames[l][v]`: the name of label value v in column l. */
  classNames?: string[][];
  strips?: NeighborStrip[];
}

/** Sizes and checksums of a run's data (`data.json`): `eval` refuses data that does not match. */
export interface DataFingerprint {
  source: string;
  train: SplitFingerprint;
  test: SplitFingerprint;
}

export interface SplitFingerprint {
  rows: number;
  /** SHA-256 of the inputs (float32) and the label rows (int32). */
  sha256: string;
  /** Rows per finest-level class id. */
  classCounts: number[];
}
