import type { EvaluationSummary } from '../eval/evaluate.js';

/** One line of a run's `metrics.jsonl`, written by the trainer. */
export interface MetricRecord {
  kind: 'step' | 'epoch';
  epoch: number;
  /** Optimiser steps done so far. */
  step: number;
  /** Mean loss over the logging window (step) or the epoch. */
  loss: number;
  /** Per-level losses, coarsest first (hierarchical methods). */
  levelLosses?: number[];
  learningRate?: number;
  samplesPerSecond?: number;
  /** kNN top-1 accuracy on the test split, when the trainer evaluated at the end of an epoch. */
  knnAccuracy?: number;
  /** Seconds since the run started. */
  seconds?: number;
}

/** A nearest-neighbour strip of the report: a query image and its nearest test images. */
export interface NeighborStrip {
  /** Image as a data URI (PNG). */
  query: string;
  label: string;
  neighbors: {
    image: string;
    label: string /** label levels shared with the query (0..L) */;
    sharedLevels: number;
  }[];
}

/** Everything the report shows about one run. */
export interface ReportRun {
  name: string;
  method?: string;
  config?: Record<string, unknown>;
  history: MetricRecord[];
  evaluation?: EvaluationSummary;
  /** Name of each level, coarsest first (e.g. `['group', 'family', 'class']`). */
  levelNames?: string[];
  /** `classNames[l][v]`: the name of label value v in column l. */
  classNames?: string[][];
  strips?: NeighborStrip[];
}
