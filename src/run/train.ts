import { stat } from 'node:fs/promises';
import { closeRunData, type RunData, type StreamMode } from '../data/runData.js';
import { type BackendName, useBackend } from '../engine/backend.js';
import { activeEngineLine } from '../engine/describe.js';
import { ContrastiveError } from '../errors.js';
import type { FeatureExtractor, FrozenBackboneRecord } from '../models/featureExtractor.js';
import type { Checkpoint } from '../train/checkpoint.js';
import { checkTrainable } from '../train/checks.js';
import type { TrainConfig } from '../train/config.js';
import { type LoopResult, trainLoop } from '../train/loop.js';
import { ProgressReporter } from '../train/progress.js';
import { checkpointMeta } from '../train/state.js';
import { checkSameData, dataFingerprint } from './fingerprint.js';
import { RunFolder } from './folder.js';
import {
  backboneRecord,
  copyBackboneInto,
  loadRunInputs,
  openConfiguredBackbone,
  openRecordedBackbone,
  usesFrozenFeatures,
} from './frozenBackbone.js';

/** What {@link train} returns. */
export interface TrainResult extends LoopResult {
  runDir: string;
}

/** Knobs for the CLI, tests and embedding applications. */
export interface TrainHooks {
  /** Where progress goes (default: stderr). */
  progress?: ProgressReporter;
  /** Aborting it stops the run after the current step, with a checkpoint (the CLI wires SIGINT/SIGTERM/SIGHUP to it). */
  signal?: AbortSignal;
  /**
   * Aborting it (a second Ctrl-C) leaves at the next safe point — after the step in flight —
   * without writing a new checkpoint: the last one written stays intact.
   */
  abort?: AbortSignal;
  /** Stop (with a checkpoint, as on abort) once this many steps are done in total. */
  stopAfterSteps?: number;
  /** Called after each end-of-epoch checkpoint is written. */
  onEpochEnd?: (epoch: number) => void;
}

/**
 * Options a resumed run may take from the command line: where things are and how much to log.
 * `epochs` extends (or, not below the epochs done, shortens) the run. Anything else would make
 * the resumed run a different run than its checkpoint, so it is refused.
 */
const RESUMABLE_OVERRIDES = new Set<string>([
  'out',
  'resume',
  'resumeFrom',
  'epochs',
  'logEvery',
  'evalEvery',
  'backend',
  'data',
  'dataDir',
  'testData',
  'labelsPath',
  'config',
  // how the data is read, not what it is: the same rows either way (the fingerprint checks it)
  'stream',
  'cacheDir',
]);

/**
 * Trains a model end to end as `config` says, writing everything to the run folder `out`
 * (see `RUN_FILES`): options, label tree and data fingerprint first, metrics as it goes, a
 * checkpoint every epoch and on abort (atomically, keeping the previous one), and the backbone
 * and head at the end. With `config.resume` it continues from the checkpoint, taking every
 * option from it except those in `overrides` that may change (locations, logging, `epochs`);
 * a run stopped before its first checkpoint is restarted in place; a finished run whose model
 * save was cut off gets its model saved. Never overwrites a folder that is not a run.
 */
export async function train(config: TrainConfig, hooks: TrainHooks = {}): Promise<TrainResult> {
  const progress = hooks.progress ?? new ProgressReporter();
  const out = config.out;
  if (!out) throw new ContrastiveError('train: --out is required: the run folder to write.');
  const folder = new RunFolder(out);
  const state = await folder.state();
  let resumeFrom: { checkpoint: Checkpoint; path: string } | undefined;
  if (state === 'foreign') {
    const info = await stat(out).catch(() => null);
    if (info && !info.isDirectory())
      throw new ContrastiveError(
        `train: --out ${out} is a file, not a folder; name a new or empty folder for the run (nothing was changed).`,
      );
    const entries = await folder.entries();
    throw new ContrastiveError(
      `train: --out ${out} is not empty and is not a run folder (it holds ${entries.slice(0, 5).join(', ')}${entries.length > 5 ? ', …' : ''}); choose an empty or new folder (nothing was changed).`,
    );
  }
  if (config.resume || config.resumeFrom) {
    if (state === 'empty') {
      throw new ContrastiveError(
        `train: --resume: ${folder.path('checkpoint')} does not exist; nothing to resume.`,
      );
    }
    if (state === 'started') {
      // nothing to resume from: start over with the options it was started with
      progress.message(`${out} stopped before its first checkpoint; starting it over.`);
      config = {
        ...resumedConfig(config, await folder.readConfig('train --resume'), 0, progress),
        resume: false,
      };
    } else {
      resumeFrom = await folder.readCheckpoint(config.resumeFrom);
      const meta = checkpointMeta(resumeFrom.checkpoint);
      config = resumedConfig(config, meta.config as unknown as TrainConfig, meta.epoch - 1, progress);
    }
  } else if (state === 'checkpointed' || state === 'finished') {
    throw new ContrastiveError(
      `train: ${out} already holds a run; pass --resume to continue it, or choose another --out (nothing was overwritten).`,
    );
  } else if (state === 'started') {
    progress.message(`${out} holds a run stopped before its first checkpoint; starting it over.`);
  }
  await folder.checkWritable();
  const stale = await folder.removeStaleTemps();
  if (stale > 0) progress.message(`removed ${stale} temporary file(s) left by an interrupted write`);

  await useBackend(config.backend as BackendName | 'auto');
  progress.message(`engine: ${activeEngineLine()}`);
  // a frozen pretrained backbone: opened (a resumed run's from its record, checksum verified) to
  // compute the features once, then closed; what trains is a head on them
  let backbone: FrozenBackboneRecord | null = null;
  let extractor: FeatureExtractor | null = null;
  if (await usesFrozenFeatures(config)) {
    const saved = state === 'empty' ? null : await folder.readBackbone('train');
    extractor = saved
      ? await openRecordedBackbone(out, saved, 'train')
      : await openConfiguredBackbone(config);
    backbone = saved ?? backboneRecord(extractor, config.featureViews ?? 0);
    const p = extractor.preprocessing;
    progress.message(
      `backbone: ${extractor.kind} model ${extractor.path} (frozen, SHA-256 ${extractor.sha256.slice(0, 12)}…), ${p.size[0]}×${p.size[1]} ${p.fit}, ${p.scale} scaling, ${extractor.featureDim} features (${extractor.pooling} pooling)`,
    );
  }
  let data: RunData;
  try {
    const started = performance.now();
    data = await loadRunInputs(
      config,
      {
        ...config,
        stream: (config.stream ?? 'auto') as StreamMode,
        cacheDir: config.cacheDir ?? folder.path('cache'),
        onDecodeProgress: decodeProgress(progress),
        signal: hooks.signal,
      },
      extractor,
      featureProgress(progress),
    );
    if (extractor)
      progress.message(
        `features ready in ${((performance.now() - started) / 1000).toFixed(1)} s (computed once; reused from the cache while the backbone, preprocessing and images are unchanged)`,
      );
  } finally {
    extractor?.dispose();
  }
  try {
    return await trainOn(config, data, folder, progress, hooks, resumeFrom, backbone);
  } finally {
    await closeRunData(data);
  }
}

/** Decoding an image cache: a line at each tenth (the library never prints; the reporter does). */
function decodeProgress(progress: ProgressReporter) {
  let shown = -1;
  return (split: 'train' | 'test', done: number, total: number) => {
    const tenth = Math.floor((10 * done) / total);
    if (tenth === shown && done !== total) return;
    shown = done === total ? -1 : tenth;
    progress.message(`decoding the ${split} images into the cache: ${done}/${total}`);
  };
}

/** Computing frozen-backbone features: a line at each tenth. */
function featureProgress(progress: ProgressReporter) {
  let shown = -1;
  const started = performance.now();
  return (split: 'train' | 'test', done: number, total: number) => {
    const tenth = Math.floor((10 * done) / total);
    if (tenth === shown && done !== total) return;
    shown = done === total ? -1 : tenth;
    const rate = done / Math.max(1e-3, (performance.now() - started) / 1000);
    progress.message(
      `backbone features, ${split} split: ${done}/${total} images (${rate.toFixed(1)} images/s)`,
    );
  };
}

/** The part of {@link train} after the data is loaded: start or resume the run, then the loop. */
async function trainOn(
  config: TrainConfig,
  data: RunData,
  folder: RunFolder,
  progress: ProgressReporter,
  hooks: TrainHooks,
  resumeFrom: { checkpoint: Checkpoint; path: string } | undefined,
  backbone: FrozenBackboneRecord | null,
): Promise<TrainResult> {
  const out = folder.dir;
  progress.message(
    `data: ${data.source}; ${data.train.size} train / ${data.test.size} test, ${data.tree.depth} levels`,
  );
  for (const warning of data.warnings ?? []) progress.message(`warning: ${warning}`);
  for (const note of checkTrainable(config, data)) progress.message(`note: ${note}`);

  if (resumeFrom) {
    await checkSameData(
      'train --resume',
      out,
      { tree: await folder.readLabelTree('train'), fingerprint: await folder.readFingerprint('train') },
      data,
    );
    const meta = checkpointMeta(resumeFrom.checkpoint);
    if (meta.epoch > config.epochs && folder.hasModel()) {
      throw new ContrastiveError(
        `train: ${out} is finished (${config.epochs} epochs); pass --epochs with more to extend it, or evaluate it with: contrastive eval ${out}`,
      );
    }
    const dropped = await folder.truncateMetricsAfter(meta.step);
    if (dropped > 0) progress.message(`dropped ${dropped} metrics record(s) written after the checkpoint`);
    await folder.writeConfig(config);
    progress.message(
      meta.epoch > config.epochs
        ? `${out}: training was done but the model was not saved; saving it from ${resumeFrom.path}`
        : `resumed from ${resumeFrom.path} at epoch ${meta.epoch}, step ${meta.step}`,
    );
  } else {
    await folder.start({ ...config, resume: false }, data.tree, await dataFingerprint(data));
    if (backbone)
      await folder.writeBackbone(config.copyBackbone ? await copyBackboneInto(folder, backbone) : backbone);
  }

  const result = await trainLoop(
    config,
    data,
    {
      progress,
      record: (record) => folder.appendMetric(record),
      saveCheckpoint: (checkpoint) => folder.saveCheckpoint(checkpoint),
      saveModel: (model) => folder.saveModel(model),
      signal: hooks.signal,
      abort: hooks.abort,
      stopAfterSteps: hooks.stopAfterSteps,
      onEpochEnd: hooks.onEpochEnd,
    },
    resumeFrom?.checkpoint,
  );
  progress.message(
    result.aborted
      ? `left without a new checkpoint at step ${result.steps}; the last checkpoint written is intact; continue with: contrastive train --out ${out} --resume`
      : result.interrupted
        ? `checkpoint written at step ${result.steps}; continue with: contrastive train --out ${out} --resume`
        : `done: model saved to ${folder.path('model')}; evaluate with: contrastive eval ${out}`,
  );
  return { ...result, runDir: out };
}

/**
 * The options a resumed run uses: the saved ones (the checkpoint's), with the allowed overrides
 * from `requested`. A requested option that would change the run is an error listing each
 * conflict; `epochs` may not go below the `done` epochs.
 */
function resumedConfig(
  requested: TrainConfig,
  saved: TrainConfig,
  done: number,
  progress: ProgressReporter,
): TrainConfig {
  const savedValues = saved as Record<string, unknown>;
  const conflicts = Object.entries(requested)
    .filter(([key, value]) => !RESUMABLE_OVERRIDES.has(key) && value !== undefined)
    .filter(([key, value]) => JSON.stringify(value) !== JSON.stringify(savedValues[key]))
    .map(
      ([key, value]) => `--${key} ${JSON.stringify(value)} (the run has ${JSON.stringify(savedValues[key])})`,
    );
  if (conflicts.length > 0) {
    throw new ContrastiveError(
      `train --resume: ${conflicts.join(', ')} would change the run; a resumed run keeps its options. Start a new run in another --out to change them.`,
    );
  }
  const config: TrainConfig = { ...saved, resume: true };
  for (const key of RESUMABLE_OVERRIDES) {
    const value = (requested as Record<string, unknown>)[key];
    if (value !== undefined) (config as Record<string, unknown>)[key] = value;
  }
  if (config.epochs !== saved.epochs) {
    if (config.epochs < done) {
      throw new ContrastiveError(
        `train --resume: --epochs ${config.epochs} is below the ${done} epochs already done.`,
      );
    }
    progress.message(
      `--epochs ${config.epochs}: the run goes on to ${config.epochs} epochs instead of ${saved.epochs} (the learning-rate schedule is recomputed for ${config.epochs}).`,
    );
  }
  return config;
}
