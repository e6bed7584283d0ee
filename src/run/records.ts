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

/**
 * The same kNN and retrieval metrics for a reference embedding: the raw input (pixels or table
 * features; retrieval is cosine, so they are compared L2-normalised) or the encoder before
 * training (the run's own initial weights, or the pretrained backbone before fine-tuning).
 * Beside the trained model's numbers they say what training bought.
 */
export interface BaselineScores {
  name:
    | 'raw input'
    | 'untrained encoder'
    | 'pretrained backbone'
    | 'frozen backbone features'
    | 'untrained head on them';
  /** kNN accuracy of the predicted path at each level, coarsest first. */
  knnAccuracyByLevel: number[];
  /** mAP@R and precision@1 per level (leave-one-out within the test split). */
  mapAtR: number[];
  precisionAt1: number[];
  /** mAP@R per level of test queries among the training items (cross-split), when measured. */
  crossMapAtR?: number[];
  /**
   * Rows the baseline used when they were a sample (the raw-input baseline of streamed data: a
   * seeded sample, so its pixels fit in memory); absent when it used both splits whole.
   */
  sampledRows?: { train: number; test: number };
  /**
   * With `sampledRows`: the trained model's numbers on exactly those rows, so the two compare
   * like for like (its numbers on the whole splits are in the `EvalFile` itself).
   */
  trainedOnSameRows?: { knnAccuracyByLevel: number[]; mapAtR: number[]; crossMapAtR?: number[] };
}

/** What `contrastive eval` writes to `<run>/eval.json`. */
export interface EvalFile extends EvaluationSummary {
  /** Raw input and untrained encoder, evaluated the same way (absent with `--no-baselines`). */
  baselines?: BaselineScores[];
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
