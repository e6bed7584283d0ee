import type * as tfl from '@tensorflow/tfjs-layers';
import { closeRunData, type RunData, type StreamMode } from '../data/runData.js';
import type { TrainConfig } from '../train/config.js';
import { checkSameData } from './fingerprint.js';
import { RunFolder } from './folder.js';
import { loadRunInputs, openRecordedBackbone } from './frozenBackbone.js';

/** Where a finished run's data is now, when it is not where training found it. */
export interface TrainedRunOptions {
  /** The run's `--data` file or folder, moved (its contents must still match). */
  data?: string;
  /** Fashion-MNIST folder; another folder than the run's (e.g. the full set) is allowed. */
  dataDir?: string;
  /** Use at most this many training rows (another value than the run's is allowed). */
  trainLimit?: number;
  /** The command, for error messages. */
  command?: string;
  /**
   * How to read the data: default the run's own `--stream` (and `--cache-dir`, else the run's
   * `cache/`); `'off'` reads it into memory whatever the run did.
   */
  stream?: StreamMode;
}

/**
 * A finished run: its options, trained backbone and the data it was trained on (streamed from
 * the image cache when the run was; release it with `closeRunData`).
 */
export interface TrainedRun {
  folder: RunFolder;
  config: TrainConfig;
  model: tfl.LayersModel;
  data: RunData;
}

/**
 * Loads a finished run: `config.json`, the backbone (checksum verified) and the run's data,
 * checked against the label tree and data fingerprint saved at training time — evaluating on
 * other data by accident is an error, not a silently different number.
 */
export async function loadTrainedRun(runDir: string, options: TrainedRunOptions = {}): Promise<TrainedRun> {
  const command = options.command ?? 'eval';
  const folder = new RunFolder(runDir);
  await folder.requireFolder(command);
  const config = await folder.readConfig(command);
  const model = await folder.loadBackbone(command);
  try {
    const dataOptions = {
      ...config,
      data: options.data ?? config.data,
      dataDir: options.dataDir ?? config.dataDir,
      trainLimit: options.trainLimit ?? config.trainLimit,
    };
    const record = await folder.readBackbone(command);
    const extractor = record ? await openRecordedBackbone(runDir, record, command) : null;
    const data = await loadRunInputs(
      config,
      {
        ...dataOptions,
        stream: options.stream ?? ((config.stream ?? 'auto') as StreamMode),
        cacheDir: config.cacheDir ?? folder.path('cache'),
      },
      extractor,
    ).finally(() => extractor?.dispose());
    try {
      const sameTrain =
        dataOptions.trainLimit === config.trainLimit && dataOptions.dataDir === config.dataDir;
      const sameTest = dataOptions.dataDir === config.dataDir;
      await checkSameData(
        command,
        runDir,
        { tree: await folder.readLabelTree(command), fingerprint: await folder.readFingerprint(command) },
        data,
        [...(sameTrain ? (['train'] as const) : []), ...(sameTest ? (['test'] as const) : [])],
      );
    } catch (error) {
      await closeRunData(data);
      throw error;
    }
    return { folder, config, model, data };
  } catch (error) {
    model.dispose();
    throw error;
  }
}
