/**
 * The files of a run folder, named once. A run folder is what `contrastive train --out` makes
 * and every other command reads:
 *
 * | file | written by | holds |
 * | --- | --- | --- |
 * | `.contrastive-run` | train, first | marks the folder as a run (format version) |
 * | `config.json` | train | the resolved options ({@link TrainConfig}) |
 * | `labelTree.json` | train | the label tree the labels are encoded with |
 * | `data.json` | train | a fingerprint of the data (sizes and checksums per split) |
 * | `metrics.jsonl` | train | one {@link MetricRecord} per line |
 * | `checkpoint.bin`, `checkpoint.prev.bin` | train | the latest and the previous checkpoint |
 * | `head/`, then `model/` | train, at the end | projection head and backbone, tfjs layers format |
 * | `eval.json` | eval | an {@link EvalFile} |
 * | `backbone.json` | train, frozen backbones | the pretrained model's kind, path, SHA-256, output and preprocessing |
 * | `backbone/` | train `--copy-backbone` | the pretrained model's own files |
 * | `cache/` | train, eval (`--stream`, no `--cache-dir`) | decoded images, `images-<key>.u8` + `.json` |
 */
export const RUN_FILES = {
  marker: '.contrastive-run',
  config: 'config.json',
  labelTree: 'labelTree.json',
  dataFingerprint: 'data.json',
  metrics: 'metrics.jsonl',
  checkpoint: 'checkpoint.bin',
  previousCheckpoint: 'checkpoint.prev.bin',
  model: 'model',
  head: 'head',
  evaluation: 'eval.json',
  cache: 'cache',
  backbone: 'backbone.json',
  backboneCopy: 'backbone',
} as const;

/** The run folder format this version writes (in the marker file). */
export const RUN_FORMAT_VERSION = 1;
