import { readFile, stat } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { ContrastiveError } from '../errors.js';
import type { EvaluationSummary } from '../eval/evaluate.js';
import type { MetricRecord, NeighborStrip, ReportRun } from './runRecords.js';

/** What `contrastive eval` writes to `<run>/eval.json`. */
export interface EvalFile extends EvaluationSummary {
  levelNames?: string[];
  classNames?: string[][];
  strips?: NeighborStrip[];
}

/**
 * Reads a run folder (`config.json`, `metrics.jsonl`, and `eval.json` when the run was evaluated)
 * into what the report and `compare` show.
 */
export async function loadRun(dir: string): Promise<ReportRun> {
  const fn = 'loadRun';
  const info = await stat(dir).catch(() => null);
  if (!info?.isDirectory())
    throw new ContrastiveError(`${fn}: ${dir} is not a run folder (no such directory).`);
  const config = await readJson<Record<string, unknown>>(join(dir, 'config.json'));
  const evaluation = await readJson<EvalFile>(join(dir, 'eval.json'));
  const history = await readJsonLines<MetricRecord>(join(dir, 'metrics.jsonl'));
  if (!config && !evaluation && history.length === 0) {
    throw new ContrastiveError(
      `${fn}: ${dir} holds no config.json, metrics.jsonl or eval.json; is it a run folder?`,
    );
  }
  return {
    name: basename(resolve(dir)),
    method: typeof config?.method === 'string' ? config.method : undefined,
    config: config ?? undefined,
    history,
    evaluation: evaluation ?? undefined,
    levelNames: evaluation?.levelNames,
    classNames: evaluation?.classNames,
    strips: evaluation?.strips,
  };
}

/** The parsed file, or null when it does not exist. */
async function readJson<T>(path: string): Promise<T | null> {
  const text = await readFile(path, 'utf8').catch(() => null);
  if (text === null) return null;
  try {
    return JSON.parse(text) as T;
  } catch (error) {
    throw new ContrastiveError(`loadRun: ${path} is not valid JSON (${(error as Error).message}).`);
  }
}

async function readJsonLines<T>(path: string): Promise<T[]> {
  const text = await readFile(path, 'utf8').catch(() => '');
  const out: T[] = [];
  const lines = text.split('\n');
  lines.forEach((line, i) => {
    if (line.trim() === '') return;
    try {
      out.push(JSON.parse(line) as T);
    } catch {
      // a run killed mid-write can leave a partial last line; anything else is corruption
      if (i < lines.length - 2) {
        throw new ContrastiveError(`loadRun: ${path} line ${i + 1} is not valid JSON: ${line.slice(0, 80)}`);
      }
    }
  });
  return out;
}
