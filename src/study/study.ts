import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { evaluateRun } from '../eval/evaluateRun.js';
import { writeFileAtomic } from '../io/atomic.js';
import type { EvalFile } from '../report/loadRun.js';
import { writeReport } from '../report/writeReport.js';
import { resolveTrainConfig, type TrainConfig } from '../train/config.js';
import { ProgressReporter } from '../train/progress.js';
import { train } from '../train/trainer.js';

/** One arm of the study: a name and the training options that differ from the shared ones. */
export interface StudyArm {
  name: string;
  options: Partial<TrainConfig>;
}

/** The arms SPEC.md's claims need: flat vs hierarchical losses (both forms), MoCo vs SANE and its ablations. */
export const STUDY_ARMS: readonly StudyArm[] = [
  { name: 'ce', options: { method: 'ce' } },
  { name: 'simclr', options: { method: 'simclr' } },
  { name: 'supcon', options: { method: 'supcon' } },
  { name: 'himulcon', options: { method: 'himulcon' } },
  { name: 'hicone', options: { method: 'hicone' } },
  { name: 'himulcone', options: { method: 'himulcone' } },
  { name: 'himulcone-reference', options: { method: 'himulcone', hierarchyMode: 'reference' } },
  { name: 'moco', options: { method: 'moco' } },
  { name: 'sane', options: { method: 'sane' } },
  { name: 'sane-refinery-only', options: { method: 'sane', mixup: false } },
  { name: 'sane-mixup-only', options: { method: 'sane', refinery: false } },
  { name: 'supcon-unseen', options: { method: 'supcon', holdoutClasses: ['Shirt', 'Sneaker'] } },
  { name: 'himulcone-unseen', options: { method: 'himulcone', holdoutClasses: ['Shirt', 'Sneaker'] } },
];

/** Options of {@link runStudy}. */
export interface StudyOptions {
  /** Folder of the study's runs. */
  out: string;
  /** Where `results.md` goes. Default `<out>/results.md`. */
  resultsPath?: string;
  seeds: readonly number[];
  /** Training options shared by every arm (encoder, epochs, sizes, learning rate ...). */
  shared: Partial<TrainConfig>;
  /** Evaluation: linear-probe epochs (0 skips it). */
  probeEpochs?: number;
  arms?: readonly StudyArm[];
  /** The exact command line, for the results page. */
  command?: string;
  progress?: ProgressReporter;
  /**
   * Train and evaluate each run in a child process (`contrastive train` / `eval`), so every run
   * starts with an empty wasm heap: the heap never shrinks, and two dozen runs in one process can
   * exhaust its 4 GiB. Default false (in-process, what tests use).
   */
  isolate?: boolean;
}

/** Mean and standard deviation (sample, n-1) of a metric over seeds. */
export interface Aggregate {
  mean: number;
  std: number;
  n: number;
}

/** The metrics the study compares, read from each run's eval.json. */
export const STUDY_METRICS: {
  key: string;
  label: string;
  read: (e: EvalFile) => number | undefined;
  higherIsBetter: boolean;
}[] = [
  {
    key: 'knnFine',
    label: 'kNN acc (class)',
    read: (e) => e.knn.accuracyByLevel.at(-1),
    higherIsBetter: true,
  },
  { key: 'probe', label: 'linear probe', read: (e) => e.linearProbe?.testAccuracy, higherIsBetter: true },
  ...[0, 1, 2].flatMap((l) => [
    {
      key: `p1-${l}`,
      label: `P@1 L${l}`,
      read: (e: EvalFile) => e.retrieval[l]?.precisionAt1,
      higherIsBetter: true,
    },
    {
      key: `map-${l}`,
      label: `mAP@R L${l}`,
      read: (e: EvalFile) => e.retrieval[l]?.mapAtR,
      higherIsBetter: true,
    },
  ]),
  { key: 'r10', label: 'R@10 (class)', read: (e) => e.retrieval.at(-1)?.recallAt[10], higherIsBetter: true },
  {
    key: 'severity',
    label: 'mistake severity',
    read: (e) => e.severity.knn.meanLcaHeight,
    higherIsBetter: false,
  },
  {
    key: 'violations',
    label: 'consistency violations',
    read: (e) => e.consistency?.violationRate,
    higherIsBetter: false,
  },
  {
    key: 'unseenCoarse',
    label: 'unseen: mAP@R L0',
    read: (e) => e.unseen?.retrieval[0]?.mapAtR,
    higherIsBetter: true,
  },
  {
    key: 'unseenMid',
    label: 'unseen: mAP@R L1',
    read: (e) => e.unseen?.retrieval[1]?.mapAtR,
    higherIsBetter: true,
  },
];

/**
 * Trains and evaluates every arm for every seed (skipping runs already evaluated, so an
 * interrupted study continues where it stopped), then writes `results.md` (mean ± std over seeds)
 * and an HTML report of the first seed's runs.
 */
export async function runStudy(options: StudyOptions): Promise<Map<string, Map<string, Aggregate>>> {
  const arms = options.arms ?? STUDY_ARMS;
  const progress = options.progress ?? new ProgressReporter();
  const evaluations = new Map<string, EvalFile[]>();
  const started = performance.now();
  for (const arm of arms) {
    for (const seed of options.seeds) {
      const runDir = join(options.out, `${arm.name}-s${seed}`);
      const evalPath = join(runDir, 'eval.json');
      if (!existsSync(evalPath)) {
        const trained = existsSync(join(runDir, 'model', 'model.json'));
        const resume = !trained && existsSync(join(runDir, 'checkpoint.bin'));
        const evalOptions = {
          backend: options.shared.backend as 'auto',
          linearProbe: options.probeEpochs ? { epochs: options.probeEpochs } : (false as const),
          knnK: 200,
          strips: seed === options.seeds[0] ? 6 : 0,
          seed,
        };
        if (options.isolate) {
          progress.message(`study: ${arm.name} seed ${seed} (child process)`);
          await runIsolated(
            runDir,
            { ...options.shared, ...arm.options, seed },
            trained,
            resume,
            evalOptions,
            options.probeEpochs ?? 0,
          );
        } else {
          if (!trained) {
            const config = await resolveTrainConfig({
              ...options.shared,
              ...arm.options,
              seed,
              out: runDir,
              resume,
            } as never);
            const effective = resume
              ? {
                  ...(JSON.parse(await readFile(join(runDir, 'config.json'), 'utf8')) as TrainConfig),
                  resume,
                }
              : config;
            progress.message(`study: training ${arm.name} seed ${seed}`);
            const result = await train(effective, { progress });
            if (result.interrupted)
              throw new Error('study interrupted; run the same command again to continue');
          }
          progress.message(`study: evaluating ${arm.name} seed ${seed}`);
          await evaluateRun(runDir, evalOptions);
          tf.disposeVariables();
        }
      }
      const list = evaluations.get(arm.name) ?? [];
      list.push(JSON.parse(await readFile(evalPath, 'utf8')) as EvalFile);
      evaluations.set(arm.name, list);
    }
  }
  const table = new Map<string, Map<string, Aggregate>>();
  for (const [arm, list] of evaluations) {
    const row = new Map<string, Aggregate>();
    for (const metric of STUDY_METRICS) {
      const values = list.map(metric.read).filter((v): v is number => v !== undefined && Number.isFinite(v));
      if (values.length > 0) row.set(metric.key, aggregate(values));
    }
    table.set(arm, row);
  }
  const resultsPath = options.resultsPath ?? join(options.out, 'results.md');
  await writeFileAtomic(resultsPath, renderResults(table, options, (performance.now() - started) / 1000));
  await writeReport(
    arms.map((a) => join(options.out, `${a.name}-s${options.seeds[0]}`)),
    { out: join(options.out, 'report.html'), title: 'Study: Fashion-MNIST, every method' },
  );
  progress.message(`study: wrote ${resultsPath} and ${join(options.out, 'report.html')}`);
  return table;
}

/** `contrastive train` then `contrastive eval` for one run, each in its own process. */
async function runIsolated(
  runDir: string,
  options: Partial<TrainConfig>,
  trained: boolean,
  resume: boolean,
  evalOptions: { backend: string; knnK: number; strips: number; seed: number },
  probeEpochs: number,
): Promise<void> {
  const bin = fileURLToPath(new URL('../cli/bin.js', import.meta.url));
  const run = (args: string[]) => {
    const r = spawnSync(process.execPath, [bin, ...args], { stdio: 'inherit' });
    if (r.status !== 0)
      throw new Error(
        `study: \`contrastive ${args.slice(0, 2).join(' ')}\` failed (exit ${r.status}); run the same command again to continue`,
      );
  };
  if (!trained) {
    if (resume) run(['train', '--out', runDir, '--resume']);
    else {
      const config = join(runDir, '..', `.${runDir.split(/[\\/]/).pop()}.config.json`);
      await writeFileAtomic(config, JSON.stringify({ ...options, out: runDir }));
      run(['train', '--config', config]);
    }
  }
  run([
    'eval',
    runDir,
    '--knn-k',
    String(evalOptions.knnK),
    '--probe-epochs',
    String(probeEpochs),
    '--strips',
    String(evalOptions.strips),
    '--seed',
    String(evalOptions.seed),
    '--backend',
    evalOptions.backend,
  ]);
}

export function aggregate(values: readonly number[]): Aggregate {
  const n = values.length;
  const mean = values.reduce((a, b) => a + b, 0) / n;
  const std = n > 1 ? Math.sqrt(values.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1)) : 0;
  return { mean, std, n };
}

function renderResults(
  table: Map<string, Map<string, Aggregate>>,
  options: StudyOptions,
  seconds: number,
): string {
  const isRate = (key: string) => key !== 'severity';
  const cell = (a: Aggregate | undefined, key: string) => {
    if (!a) return '–';
    const scale = isRate(key) ? 100 : 1;
    const digits = isRate(key) ? 2 : 3;
    return a.n > 1
      ? `${(scale * a.mean).toFixed(digits)} ± ${(scale * a.std).toFixed(digits)}`
      : (scale * a.mean).toFixed(digits);
  };
  const metrics = STUDY_METRICS.filter((m) => [...table.values()].some((row) => row.has(m.key)));
  const lines = [
    '# Study results: Fashion-MNIST',
    '',
    `Generated ${new Date().toISOString()} by \`tfjs-contrastive\` in ${(seconds / 60).toFixed(1)} min on this machine (${process.platform}/${process.arch}, node ${process.version}, tfjs-core ${tf.version_core}, backend ${tf.getBackend()}).`,
    '',
    `Seeds: ${options.seeds.join(', ')} — each cell is mean ± standard deviation over seeds (rates in %, mistake severity in tree levels). Levels: L0 = group (Clothes/Goods), L1 = family, L2 = class. "unseen" rows train without Shirt and Sneaker and retrieve their test images.`,
    '',
    `Shared training options: \`${JSON.stringify(options.shared)}\``,
    '',
    ...(options.command ? ['Command:', '', '```sh', options.command, '```', ''] : []),
    `| arm | ${metrics.map((m) => `${m.label}${m.higherIsBetter ? ' ↑' : ' ↓'}`).join(' | ')} |`,
    `| --- | ${metrics.map(() => '---').join(' | ')} |`,
    ...[...table].map(
      ([arm, row]) => `| ${arm} | ${metrics.map((m) => cell(row.get(m.key), m.key)).join(' | ')} |`,
    ),
    '',
    'A difference counts as real only when it exceeds the spread over seeds.',
    '',
  ];
  return lines.join('\n');
}
