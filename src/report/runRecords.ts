import type { EvaluationSummary } from '../eval/evaluate.js';
import type { BaselineScores, MetricRecord, NeighborStrip } from '../run/records.js';

/** Everything the report shows about one run (read from its folder by {@link loadRun}). */
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
  /** The raw input and the untrained encoder, scored like the run. */
  baselines?: BaselineScores[];
}
