import { appendFileSync, existsSync, statfsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ContrastiveError } from '../errors.js';
import { LabelTree } from '../hierarchy/labelTree.js';
import { writeFileAtomic } from '../io/atomic.js';
import { faultPoint } from '../io/faults.js';
import { describeFsError } from '../io/fsErrors.js';
import type { ContrastiveModel } from '../models/contrastiveModel.js';
import type { FrozenBackboneRecord } from '../models/featureExtractor.js';
import { loadLayersModelFromDir, saveLayersModel } from '../models/modelIO.js';
import { type Checkpoint, encodeCheckpoint, readCheckpoint } from '../train/checkpoint.js';
import type { TrainConfig } from '../train/config.js';
import { RUN_FILES, RUN_FORMAT_VERSION } from './layout.js';
import type { DataFingerprint, EvalFile, MetricRecord } from './records.js';

/**
 * What a folder holds, as `train` sees it: nothing yet; a run stopped before its first checkpoint
 * (restartable in place); a run with a checkpoint (resumable); a finished run (model saved); or
 * something that is not a run (never touched).
 */
export type RunFolderState = 'empty' | 'started' | 'checkpointed' | 'finished' | 'foreign';

/** Free space a run needs before it starts (checkpoints and models). */
const MIN_FREE_BYTES = 200 * 2 ** 20;

/**
 * The owner of a run folder: its layout ({@link RUN_FILES}), creating and validating it, and
 * reading and writing each of its files with errors that name the file. Every command that
 * touches a run goes through here.
 */
export class RunFolder {
  constructor(readonly dir: string) {}

  /** Path of one of the run's files. */
  path(file: keyof typeof RUN_FILES): string {
    return join(this.dir, RUN_FILES[file]);
  }

  /** What the folder holds (see {@link RunFolderState}). */
  async state(): Promise<RunFolderState> {
    const info = await stat(this.dir).catch(() => null);
    if (!info) return 'empty';
    if (!info.isDirectory()) return 'foreign';
    const entries = (await readdir(this.dir)).filter((e) => !isTemp(e));
    // a run killed while decoding its image cache, before its first file: still empty
    if (entries.length === 0 || (entries.length === 1 && (await this.holdsOnlyCache()))) return 'empty';
    const has = (file: keyof typeof RUN_FILES) => entries.includes(RUN_FILES[file]);
    // runs made before the marker existed: a checkpoint or metrics beside a config
    const isRun = has('marker') || (has('config') && (has('checkpoint') || has('metrics')));
    if (!isRun) return 'foreign';
    if (has('checkpoint') || has('previousCheckpoint')) {
      return existsSync(join(this.path('model'), 'model.json')) ? 'finished' : 'checkpointed';
    }
    return 'started';
  }

  /** True when the folder's `cache/` holds image cache files only (see `ImageCache`). */
  private async holdsOnlyCache(): Promise<boolean> {
    const info = await stat(this.path('cache')).catch(() => null);
    if (!info?.isDirectory()) return false;
    const files = await readdir(this.path('cache'));
    return files.every(
      (f) =>
        /^(images-[0-9a-f]+\.(u8|json)|features-[0-9a-f]+\.(f32|json|f32\.partial))$/.test(f) || isTemp(f),
    );
  }

  /**
   * Refuses, in one line, a path that is no folder at all — missing, or a file — before a
   * command that reads a run (eval, embed, index, …) looks inside it.
   */
  async requireFolder(command: string): Promise<void> {
    const info = await stat(this.dir).catch(() => null);
    if (!info)
      throw new ContrastiveError(
        `${command}: ${this.dir} does not exist; pass the run folder that contrastive train --out wrote.`,
      );
    if (!info.isDirectory())
      throw new ContrastiveError(
        `${command}: ${this.dir} is a file, not a run folder; pass the folder that contrastive train --out wrote.`,
      );
  }

  /** The entries that make a folder foreign, for the refusal message. */
  async entries(): Promise<string[]> {
    return (await readdir(this.dir).catch(() => [])).filter((e) => !isTemp(e));
  }

  /**
   * Creates the folder if needed and checks it can be written and has room for checkpoints,
   * before any data is loaded or a step is taken.
   */
  async checkWritable(command = 'train'): Promise<void> {
    try {
      await mkdir(this.dir, { recursive: true });
      const probe = join(this.dir, `.write-test-${process.pid}.tmp`);
      await writeFile(probe, 'ok');
      await rm(probe);
    } catch (error) {
      throw new ContrastiveError(
        `${command}: cannot write to ${command === 'train' ? '--out ' : ''}${this.dir}: ${describeFsError(error)}.`,
      );
    }
    const fs = statfsSync(this.dir);
    const free = fs.bavail * fs.bsize;
    if (command === 'train' && free < MIN_FREE_BYTES) {
      throw new ContrastiveError(
        `train: only ${(free / 2 ** 20).toFixed(0)} MiB free under ${this.dir}; checkpoints need at least ${MIN_FREE_BYTES / 2 ** 20} MiB.`,
      );
    }
  }

  /** Removes temporary files a killed write left behind (`.…tmp` beside the run's files). */
  async removeStaleTemps(): Promise<number> {
    let removed = 0;
    for (const dir of [this.dir, this.path('model'), this.path('head'), this.path('cache')]) {
      for (const entry of await readdir(dir).catch(() => [] as string[])) {
        if (isTemp(entry)) {
          await rm(join(dir, entry), { force: true });
          removed++;
        }
      }
    }
    return removed;
  }

  /**
   * Starts a new run: removes what an earlier attempt that never checkpointed left (only the
   * run's own files), then writes the marker, `config.json`, `labelTree.json`, `data.json` and an
   * empty `metrics.jsonl`.
   */
  async start(config: TrainConfig, tree: LabelTree, fingerprint: DataFingerprint): Promise<void> {
    for (const file of ['metrics', 'evaluation', 'dataFingerprint', 'labelTree', 'config'] as const) {
      await rm(this.path(file), { force: true });
    }
    await this.write(
      'marker',
      `${JSON.stringify({ format: RUN_FORMAT_VERSION, createdBy: 'tfjs-contrastive' })}\n`,
    );
    await this.writeConfig(config);
    await this.write('labelTree', `${JSON.stringify(tree.toJSON())}\n`);
    await this.write('dataFingerprint', `${JSON.stringify(fingerprint, null, 2)}\n`);
    await this.write('metrics', '');
  }

  /** Writes `config.json` (atomically). */
  async writeConfig(config: TrainConfig): Promise<void> {
    await this.write('config', `${JSON.stringify(config, null, 2)}\n`);
  }

  /** The run's resolved options; a missing or damaged `config.json` is an error naming it. */
  async readConfig(command: string): Promise<TrainConfig> {
    const config = await this.readJson<TrainConfig>('config', command);
    if (!config) {
      throw new ContrastiveError(
        `${command}: ${this.path('config')} does not exist; is ${this.dir} a run folder?`,
      );
    }
    if (typeof config !== 'object' || Array.isArray(config) || typeof config.method !== 'string') {
      throw new ContrastiveError(`${command}: ${this.path('config')} is not a run's config (no "method").`);
    }
    // runs made before --background dropped the alpha channel: keep decoding their images that way
    if (!('background' in config)) (config as TrainConfig).background = 'none';
    return config;
  }

  /** The label tree the run was trained with, or null for runs made before it was saved. */
  async readLabelTree(command: string): Promise<LabelTree | null> {
    const json = await this.readJson<Parameters<typeof LabelTree.fromJSON>[0]>('labelTree', command);
    if (!json) return null;
    try {
      return LabelTree.fromJSON(json);
    } catch (error) {
      throw new ContrastiveError(
        `${command}: ${this.path('labelTree')} is damaged: ${(error as Error).message}`,
      );
    }
  }

  /** The data fingerprint written at the start, or null for runs made before it existed. */
  readFingerprint(command: string): Promise<DataFingerprint | null> {
    return this.readJson<DataFingerprint>('dataFingerprint', command);
  }

  /** Appends one record to `metrics.jsonl`. */
  appendMetric(record: MetricRecord): void {
    try {
      appendFileSync(this.path('metrics'), `${JSON.stringify(record)}\n`);
    } catch (error) {
      throw new ContrastiveError(
        `train: cannot append to ${this.path('metrics')}: ${describeFsError(error)}. The last checkpoint is intact; free space and resume with --resume.`,
      );
    }
  }

  /** Every record of `metrics.jsonl`; a torn last line (a run killed mid-write) is skipped. */
  async readMetrics(): Promise<MetricRecord[]> {
    const text = await readFile(this.path('metrics'), 'utf8').catch(() => '');
    const out: MetricRecord[] = [];
    const lines = text.split('\n');
    lines.forEach((line, i) => {
      if (line.trim() === '') return;
      try {
        out.push(JSON.parse(line) as MetricRecord);
      } catch {
        if (i < lines.length - 2) {
          throw new ContrastiveError(
            `${this.path('metrics')} line ${i + 1} is not valid JSON: ${line.slice(0, 80)}`,
          );
        }
      }
    });
    return out;
  }

  /**
   * Drops the records written after the checkpoint being resumed (a run that died after its last
   * checkpoint would otherwise log those steps twice), and any torn last line.
   */
  async truncateMetricsAfter(step: number): Promise<number> {
    const records = await this.readMetrics();
    const kept = records.filter((r) => r.step <= step);
    await this.write('metrics', kept.map((r) => `${JSON.stringify(r)}\n`).join(''));
    return records.length - kept.length;
  }

  /**
   * Writes a checkpoint atomically and keeps the one before it as `checkpoint.prev.bin`: after a
   * crash between the two renames the previous one is still there, and a damaged latest one has
   * a fallback.
   */
  async saveCheckpoint(checkpoint: Checkpoint): Promise<void> {
    const bytes = encodeCheckpoint(checkpoint);
    const temp = join(this.dir, `.checkpoint-${process.pid}.tmp`);
    try {
      await writeFile(temp, bytes);
      faultPoint('checkpoint-temp-written');
      if (existsSync(this.path('checkpoint')))
        await rename(this.path('checkpoint'), this.path('previousCheckpoint'));
      faultPoint('checkpoint-rotated');
      await rename(temp, this.path('checkpoint'));
    } catch (error) {
      await rm(temp, { force: true });
      throw new ContrastiveError(
        `train: cannot write ${this.path('checkpoint')}: ${describeFsError(error)}.`,
      );
    }
  }

  /**
   * The checkpoint to resume from: `checkpoint.bin`, or the previous one when the latest is
   * missing (a crash between renames). A damaged latest checkpoint is an error that offers the
   * previous one (`--resume-from checkpoint.prev.bin`).
   */
  async readCheckpoint(from?: string): Promise<{ checkpoint: Checkpoint; path: string }> {
    if (from) {
      const path = existsSync(from) ? from : join(this.dir, from);
      return { checkpoint: await readCheckpoint(path), path };
    }
    const latest = this.path('checkpoint');
    const previous = this.path('previousCheckpoint');
    if (!existsSync(latest)) {
      if (existsSync(previous)) return { checkpoint: await readCheckpoint(previous), path: previous };
      throw new ContrastiveError(`train: --resume: ${latest} does not exist; nothing to resume.`);
    }
    try {
      return { checkpoint: await readCheckpoint(latest), path: latest };
    } catch (error) {
      if (!(error instanceof ContrastiveError) || !existsSync(previous)) throw error;
      const fallback = await readCheckpoint(previous).then(
        (c) =>
          `the previous checkpoint ${previous} (epoch ${String(c.meta.epoch)}, step ${String(c.meta.step)}) is intact: resume from it with --resume --resume-from ${RUN_FILES.previousCheckpoint}`,
        () => `the previous checkpoint ${previous} is damaged too`,
      );
      throw new ContrastiveError(`${error.message} ${fallback}.`);
    }
  }

  /** Saves the head, then the backbone (`model/model.json` last: its presence means finished). */
  async saveModel(model: ContrastiveModel): Promise<void> {
    try {
      await saveLayersModel(model.head, this.path('head'));
      faultPoint('head-saved');
      await saveLayersModel(model.backbone, this.path('model'));
    } catch (error) {
      if (error instanceof ContrastiveError) throw error;
      throw new ContrastiveError(
        `train: cannot save the model under ${this.dir}: ${describeFsError(error)}.`,
      );
    }
  }

  /** True when the backbone has been saved. */
  hasModel(): boolean {
    return existsSync(join(this.path('model'), 'model.json'));
  }

  /** The trained backbone (checksum verified). */
  async loadBackbone(command: string) {
    if (!this.hasModel()) {
      throw new ContrastiveError(
        `${command}: ${this.dir} has no trained model yet (${join(this.path('model'), 'model.json')} is missing); finish it with: contrastive train --out ${this.dir} --resume`,
      );
    }
    return loadLayersModelFromDir(this.path('model'));
  }

  /** Writes `eval.json`. */
  async writeEvaluation(evaluation: EvalFile): Promise<void> {
    await this.write('evaluation', `${JSON.stringify(evaluation)}\n`);
  }

  /** `eval.json`, or null when the run was not evaluated. */
  readEvaluation(command: string): Promise<EvalFile | null> {
    return this.readJson<EvalFile>('evaluation', command);
  }

  /** Records the run's frozen backbone (`backbone.json`). */
  writeBackbone(record: FrozenBackboneRecord): Promise<void> {
    return this.write('backbone', `${JSON.stringify(record, null, 2)}\n`);
  }

  /** The run's frozen backbone, or null for a run that trains its whole encoder. */
  readBackbone(command: string): Promise<FrozenBackboneRecord | null> {
    return this.readJson<FrozenBackboneRecord>('backbone', command);
  }

  private async write(file: keyof typeof RUN_FILES, text: string): Promise<void> {
    try {
      await writeFileAtomic(this.path(file), text);
    } catch (error) {
      throw new ContrastiveError(`cannot write ${this.path(file)}: ${describeFsError(error)}.`);
    }
  }

  /** The parsed file, or null when it does not exist; damaged JSON is an error naming the file. */
  private async readJson<T>(file: keyof typeof RUN_FILES, command: string): Promise<T | null> {
    const path = this.path(file);
    const text = await readFile(path, 'utf8').catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return null;
      throw new ContrastiveError(`${command}: cannot read ${path}: ${describeFsError(error)}.`);
    });
    if (text === null) return null;
    try {
      return JSON.parse(text) as T;
    } catch (error) {
      throw new ContrastiveError(
        `${command}: ${path} is damaged (not valid JSON: ${(error as Error).message}).`,
      );
    }
  }
}

const isTemp = (entry: string) => entry.endsWith('.tmp');
