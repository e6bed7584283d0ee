/**
 * The run folder: its layout and records, creating, training into, resuming, loading and
 * evaluating a run. The CLI and the report reach runs only through here.
 */
export { type EvaluateRunOptions, evaluateRun } from './evaluateRun.js';
export { checkSameData, dataFingerprint } from './fingerprint.js';
export { RunFolder, type RunFolderState } from './folder.js';
export { RUN_FILES, RUN_FORMAT_VERSION } from './layout.js';
export type { DataFingerprint, EvalFile, MetricRecord, NeighborStrip, SplitFingerprint } from './records.js';
export { type TrainHooks, type TrainResult, train } from './train.js';
export { loadTrainedRun, type TrainedRun, type TrainedRunOptions } from './trainedRun.js';
