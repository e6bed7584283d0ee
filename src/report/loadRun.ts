import { stat } from 'node:fs/promises';
import { basename, resolve } from 'node:path';
import { ContrastiveError } from '../errors.js';
import { RunFolder } from '../run/folder.js';
import type { ReportRun } from './runRecords.js';

/**
 * Reads a run folder (`config.json`, `metrics.jsonl`, and `eval.json` when the run was evaluated)
 * into what the report and `compare` show.
 */
export async function loadRun(dir: string): Promise<ReportRun> {
  const fn = 'loadRun';
  const info = await stat(dir).catch(() => null);
  if (!info?.isDirectory())
    throw new ContrastiveError(`${fn}: ${dir} is not a run folder (no such directory).`);
  const folder = new RunFolder(dir);
  const config = await folder.readConfig(fn).catch((error) => {
    if (error instanceof ContrastiveError && /does not exist/.test(error.message)) return null;
    throw error;
  });
  const evaluation = await folder.readEvaluation(fn);
  const history = await folder.readMetrics();
  if (!config && !evaluation && history.length === 0) {
    throw new ContrastiveError(
      `${fn}: ${dir} holds no config.json, metrics.jsonl or eval.json; is it a run folder?`,
    );
  }
  return {
    name: basename(resolve(dir)),
    method: typeof config?.method === 'string' ? config.method : undefined,
    config: (config as Record<string, unknown> | null) ?? undefined,
    history,
    evaluation: evaluation ?? undefined,
    levelNames: evaluation?.levelNames,
    classNames: evaluation?.classNames,
    strips: evaluation?.strips,
    baselines: evaluation?.baselines,
  };
}
