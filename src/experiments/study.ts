import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { ContrastiveError } from '../errors.js';
import { writeFileAtomic } from '../io/atomic.js';
import { writeReport } from '../report/writeReport.js';
import { evaluateRun } from '../run/evaluateRun.js';
import { RunFolder } from '../run/folder.js';
import type { EvalFile, MetricRecord } from '../run/records.js';
import { train } from '../run/train.js';
import { resolveTrainConfig, type TrainConfig } from '../train/config.js';
import { ProgressReporter } from '../train/progress.js';

/** One arm of the study: a name and the training options that differ from the shared ones. */
export interface StudyArm {
  name: string;
  options: Partial<TrainConfig>;
  /** The arm whose tuned temperature and learning rate this one uses (ablations, unseen-class variants). */
  tuneWith?: string;
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
  { name: 'sane-refinery-only', options: { method: 'sane', mixup: false }, tuneWith: 'sane' },
  { name: 'sane-mixup-only', options: { method: 'sane', refinery: false }, tuneWith: 'sane' },
  {
    name: 'supcon-unseen',
    options: { method: 'supcon', holdoutClasses: ['Shirt', 'Sneaker'] },
    tuneWith: 'supcon',
  },
  {
    name: 'himulcone-unseen',
    options: { method: 'himulcone', holdoutClasses: ['Shirt', 'Sneaker'] },
    tuneWith: 'himulcone',
  },
];

/** The arms {@link labelNoiseArms} adds a noisy copy of: flat and hierarchical supervision, MoCo and SANE. */
export const LABEL_NOISE_PARENTS = ['supcon', 'himulcone', 'moco', 'sane'] as const;

/**
 * Arms trained with `--label-noise p` for each of `levels` (fractions in [0, 1)): for every arm of
 * {@link LABEL_NOISE_PARENTS}, `<parent>-noise<100p>` (e.g. `sane-noise20`), with its parent's
 * options and its parent's tuning. Self-supervised MoCo ignores labels, so its noisy arm is a
 * control: it should match its parent within seed noise.
 */
export function labelNoiseArms(levels: readonly number[]): StudyArm[] {
  for (const p of levels) {
    if (!(p > 0 && p < 1))
      throw new ContrastiveError(`study: --label-noise-levels must be in (0, 1), but got ${p}.`);
  }
  return levels.flatMap((p) =>
    LABEL_NOISE_PARENTS.map((parent) => {
      const base = STUDY_ARMS.find((a) => a.name === parent) as StudyArm;
      return {
        name: `${parent}-noise${Math.round(100 * p)}`,
        options: { ...base.options, labelNoise: p },
        tuneWith: parent,
      };
    }),
  );
}

/**
 * The arms named in `names`, in the order of `arms`; every arm when `names` is empty. An unknown
 * name is an error listing the known ones.
 */
export function selectArms(arms: readonly StudyArm[], names: readonly string[]): StudyArm[] {
  if (names.length === 0) return [...arms];
  const known = new Set(arms.map((a) => a.name));
  const unknown = names.filter((n) => !known.has(n));
  if (unknown.length > 0)
    throw new ContrastiveError(
      `study: --arms: unknown arm${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')}; known arms: ${[...known].join(', ')}${unknown.some((n) => /-noise\d+$/.test(n)) ? ' (the -noise<p> arms exist for the levels --label-noise-levels names)' : ''}.`,
    );
  const wanted = new Set(names);
  return arms.filter((a) => wanted.has(a.name));
}

/**
 * The same small search for every method: each (temperature, learning rate) pair trains once on
 * the training split less a validation part and is scored on that part — the mean over levels of
 * mAP@R — so the test split never chooses anything.
 */
export interface StudyTuning {
  /** Temperatures tried (`ce` has none and tries only the learning rates). */
  temperatures: readonly number[];
  learningRates: readonly number[];
  /** Epochs of each tuning run. */
  epochs: number;
  /** Fraction of the training split held out for validation. Default 0.1. */
  validationFraction?: number;
}

/** The outcome of the search for one arm. */
export interface TuningResult {
  temperature: number;
  learningRate: number;
  /** Validation score of the chosen pair: mean over levels of mAP@R. */
  score: number;
  grid: { temperature: number; learningRate: number; score: number }[];
}

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
  /** Choose each method's temperature and learning rate first (off: the shared ones for all). */
  tune?: StudyTuning;
  arms?: readonly StudyArm[];
  /** The exact command line, for the results page. */
  command?: string;
  progress?: ProgressReporter;
  /**
   * Runs `contrastive <args>` in a child process and resolves to its exit status. Given, each run
   * trains and evaluates through it, so every run starts with an empty wasm heap: the heap never
   * shrinks, and two dozen runs in one process can exhaust its 4 GiB. Absent, runs train
   * in-process (what tests use). The CLI passes one that spawns itself.
   */
  runCommand?: (args: string[]) => Promise<number> | number;
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
  // per arm, one vector per run: the fraction of logged steps at which HiConE's clamp bound, per level
  const clampActivity = new Map<string, number[][]>();
  const started = performance.now();
  const tuned = options.tune
    ? await tune(options, options.tune, arms, progress)
    : new Map<string, TuningResult>();
  for (const arm of arms) {
    const chosen = tuned.get(arm.tuneWith ?? arm.name) ?? tuned.get(arm.name);
    for (const seed of options.seeds) {
      const runDir = join(options.out, `${arm.name}-s${seed}`);
      const trainOptions = {
        ...options.shared,
        ...arm.options,
        ...(chosen ? { temperature: chosen.temperature, learningRate: chosen.learningRate } : {}),
        seed,
      };
      const evaluation = await ensureRun(
        options,
        progress,
        `${arm.name} seed ${seed}`,
        runDir,
        trainOptions,
        {
          probeEpochs: options.probeEpochs ?? 0,
          strips: seed === options.seeds[0] ? 6 : 0,
        },
      );
      const list = evaluations.get(arm.name) ?? [];
      list.push(evaluation);
      evaluations.set(arm.name, list);
      const binds = clampBindsOf(await new RunFolder(runDir).readMetrics());
      if (binds) clampActivity.set(arm.name, [...(clampActivity.get(arm.name) ?? []), binds]);
    }
  }
  const table = new Map<string, Map<string, Aggregate>>();
  for (const [arm, list] of evaluations) {
    const row = new Map<string, Aggregate>();
    for (const metric of STUDY_METRICS) {
      const values = list.map(metric.read).filter((v): v is number => v !== undefined && Number.isFinite(v));
      if (values.length > 0) row.set(metric.key, aggregate(values));
    }
    const runs = clampActivity.get(arm) ?? [];
    const levels = Math.max(0, ...runs.map((r) => r.length));
    for (let l = 0; l < levels; l++) {
      const values = runs.map((r) => r[l]).filter((v) => v !== undefined);
      row.set(`${CLAMP_KEY}${l}`, aggregate(values));
    }
    table.set(arm, row);
  }
  const resultsPath = options.resultsPath ?? join(options.out, 'results.md');
  await writeFileAtomic(
    resultsPath,
    renderResults(table, options, tuned, (performance.now() - started) / 1000),
  );
  await writeReport(
    arms.map((a) => join(options.out, `${a.name}-s${options.seeds[0]}`)),
    { out: join(options.out, 'report.html'), title: 'Study: Fashion-MNIST, every method' },
  );
  progress.message(`study: wrote ${resultsPath} and ${join(options.out, 'report.html')}`);
  return table;
}

/** Row keys of the table's HiConE clamp activity, one per level: `clampBinds-L0`, ... */
export const CLAMP_KEY = 'clampBinds-L';

/**
 * How often HiConE's clamp bound in a run, per level (coarsest first): the mean over the run's
 * logged step records of their `hiconeClampBinds` (each the fraction of that window's steps at
 * which the level's loss was replaced by a finer level's). Undefined for runs of methods without
 * the clamp (no record carries it).
 */
export function clampBindsOf(records: readonly MetricRecord[]): number[] | undefined {
  const rows = records
    .filter((r) => r.kind === 'step' && r.hiconeClampBinds)
    .map((r) => r.hiconeClampBinds as number[]);
  if (rows.length === 0) return undefined;
  const levels = Math.max(...rows.map((r) => r.length));
  return Array.from({ length: levels }, (_, l) => {
    const values = rows.map((r) => r[l]).filter((v) => v !== undefined);
    return values.reduce((a, b) => a + b, 0) / values.length;
  });
}

/**
 * Trains (or resumes) and evaluates one run unless its eval.json exists — so an interrupted study
 * continues where it stopped — and returns its evaluation.
 */
async function ensureRun(
  options: StudyOptions,
  progress: ProgressReporter,
  label: string,
  runDir: string,
  trainOptions: Partial<TrainConfig>,
  run: { probeEpochs: number; strips: number },
): Promise<EvalFile> {
  const evalPath = join(runDir, 'eval.json');
  if (!existsSync(evalPath)) {
    const trained = existsSync(join(runDir, 'model', 'model.json'));
    // a run stopped before its first checkpoint is 'started': train restarts it in place
    const resume = !trained && (await new RunFolder(runDir).state()) === 'checkpointed';
    const evalOptions = {
      backend: options.shared.backend as 'auto',
      linearProbe: run.probeEpochs ? { epochs: run.probeEpochs } : (false as const),
      knnK: 200,
      strips: run.strips,
      seed: trainOptions.seed ?? 0,
    };
    if (options.runCommand) {
      progress.message(`study: ${label} (child process)`);
      await runIsolated(
        options.runCommand,
        runDir,
        trainOptions,
        trained,
        resume,
        evalOptions,
        run.probeEpochs,
      );
    } else {
      if (!trained) {
        const config = resume
          ? { ...(await new RunFolder(runDir).readConfig('study')), resume }
          : await resolveTrainConfig({ ...trainOptions, out: runDir } as never);
        progress.message(`study: training ${label}`);
        const result = await train(config, { progress });
        if (result.interrupted)
          throw new ContrastiveError('study: interrupted; run the same command again to continue.');
      }
      progress.message(`study: evaluating ${label}`);
      await evaluateRun(runDir, evalOptions);
      tf.disposeVariables();
    }
  }
  return JSON.parse(await readFile(evalPath, 'utf8')) as EvalFile;
}

/** Mean over levels of mAP@R: how well retrieval respects the whole tree, the tuning score. */
export function tuningScore(evaluation: EvalFile): number {
  const values = evaluation.retrieval.map((r) => r.mapAtR);
  return values.reduce((a, b) => a + b, 0) / values.length;
}

/**
 * The search of {@link StudyTuning} for every arm that is not tuned with another, on the first
 * seed; writes `<out>/tuning.json`.
 */
async function tune(
  options: StudyOptions,
  tuning: StudyTuning,
  arms: readonly StudyArm[],
  progress: ProgressReporter,
): Promise<Map<string, TuningResult>> {
  const results = new Map<string, TuningResult>();
  const seed = options.seeds[0] ?? 0;
  // each arm is tuned as the arm it takes its tuning from (its parent, even when the parent is not
  // one of the arms run: --arms sane-noise20 still uses sane's choice), each such arm once
  const toTune = new Map<string, StudyArm>();
  for (const arm of arms) {
    const parent = arm.tuneWith
      ? (arms.find((a) => a.name === arm.tuneWith) ?? STUDY_ARMS.find((a) => a.name === arm.tuneWith))
      : undefined;
    const tuned = parent ?? arm;
    if (!toTune.has(tuned.name)) toTune.set(tuned.name, tuned);
  }
  for (const arm of toTune.values()) {
    const method = arm.options.method ?? options.shared.method;
    const temperatures =
      method === 'ce' ? [options.shared.temperature ?? tuning.temperatures[0]] : tuning.temperatures;
    const grid: TuningResult['grid'] = [];
    for (const temperature of temperatures) {
      for (const learningRate of tuning.learningRates) {
        const evaluation = await ensureRun(
          options,
          progress,
          `tuning ${arm.name} τ=${temperature} lr=${learningRate}`,
          join(options.out, 'tuning', `${arm.name}-t${temperature}-lr${learningRate}`),
          {
            ...options.shared,
            ...arm.options,
            temperature,
            learningRate,
            epochs: tuning.epochs,
            validationFraction: tuning.validationFraction ?? 0.1,
            seed,
          },
          { probeEpochs: 0, strips: 0 },
        );
        grid.push({ temperature, learningRate, score: tuningScore(evaluation) });
      }
    }
    // ties go to the earlier pair of the grid, so the choice is deterministic
    const best = grid.reduce((a, b) => (b.score > a.score ? b : a));
    results.set(arm.name, { ...best, grid });
  }
  await writeFileAtomic(
    join(options.out, 'tuning.json'),
    `${JSON.stringify(Object.fromEntries(results), null, 2)}\n`,
  );
  return results;
}

/** `contrastive train` then `contrastive eval` for one run, each in its own process. */
async function runIsolated(
  runCommand: NonNullable<StudyOptions['runCommand']>,
  runDir: string,
  options: Partial<TrainConfig>,
  trained: boolean,
  resume: boolean,
  evalOptions: { backend: string; knnK: number; strips: number; seed: number },
  probeEpochs: number,
): Promise<void> {
  const run = async (args: string[]) => {
    const status = await runCommand(args);
    if (status !== 0)
      throw new ContrastiveError(
        `study: \`contrastive ${args.slice(0, 2).join(' ')}\` failed (exit ${status}); run the same command again to continue.`,
      );
  };
  if (!trained) {
    if (resume) await run(['train', '--out', runDir, '--resume']);
    else {
      const config = join(runDir, '..', `.${runDir.split(/[\\/]/).pop()}.config.json`);
      await writeFileAtomic(config, JSON.stringify({ ...options, out: runDir }));
      await run(['train', '--config', config]);
    }
  }
  await run([
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
  tuned: Map<string, TuningResult>,
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
  const hasClamp = [...table.values()].some((row) => row.has(`${CLAMP_KEY}0`));
  const clampCell = (row: Map<string, Aggregate>) => {
    const levels = [...row.keys()].filter((k) => k.startsWith(CLAMP_KEY)).length;
    if (levels === 0) return '–';
    return Array.from({ length: levels }, (_, l) => {
      const a = row.get(`${CLAMP_KEY}${l}`) as Aggregate;
      return (100 * a.mean).toFixed(1);
    }).join(' / ');
  };
  const lines = [
    '# Study results: Fashion-MNIST',
    '',
    `Generated ${new Date().toISOString()} by \`tfjs-contrastive\` in ${(seconds / 60).toFixed(1)} min on this machine (${process.platform}/${process.arch}, node ${process.version}, tfjs-core ${tf.version_core}, backend ${tf.getBackend() ?? `${options.shared.backend ?? 'auto'}, each run in its own process`}).`,
    '',
    `Seeds: ${options.seeds.join(', ')} — each cell is mean ± standard deviation over seeds (rates in %, mistake severity in tree levels). Levels: L0 = group (Clothes/Goods), L1 = family, L2 = class. "unseen" rows train without Shirt and Sneaker and retrieve their test images.`,
    '',
    `Shared training options: \`${JSON.stringify(options.shared)}\``,
    '',
    ...(options.command ? ['Command:', '', '```sh', options.command, '```', ''] : []),
    `| arm | ${metrics.map((m) => `${m.label}${m.higherIsBetter ? ' ↑' : ' ↓'}`).join(' | ')}${hasClamp ? ' | clamp binds (per level, %)' : ''} |`,
    `| --- | ${metrics.map(() => '---').join(' | ')}${hasClamp ? ' | ---' : ''} |`,
    ...[...table].map(
      ([arm, row]) =>
        `| ${arm} | ${metrics.map((m) => cell(row.get(m.key), m.key)).join(' | ')}${hasClamp ? ` | ${clampCell(row)}` : ''} |`,
    ),
    '',
    'A difference counts as real only when it exceeds the spread over seeds.',
    ...(hasClamp
      ? [
          '',
          "\"clamp binds\": for the arms with HiConE's constraint (hicone, himulcone), per level L0 / L1 / L2, the share of training steps at which the level's loss was replaced by a finer level's larger loss (mean over the logged steps, then over seeds); the finest level never binds. Where it is 0 the constraint changed no gradient.",
        ]
      : []),
    '',
    ...renderTuning(tuned, options),
  ];
  return lines.join('\n');
}

/** The tuning section of results.md: the grid each method searched and what it chose. */
function renderTuning(tuned: Map<string, TuningResult>, options: StudyOptions): string[] {
  const tuning = options.tune;
  if (!tuning || tuned.size === 0) return [];
  const pairs = [...tuned.values()][0].grid.length;
  return [
    '## Tuning',
    '',
    `Every method searched the same grid — τ ∈ {${tuning.temperatures.join(', ')}} × learning rate ∈ {${tuning.learningRates.join(', ')}} (\`ce\` has no τ: learning rates only) — with ${tuning.epochs} epoch(s) per pair on seed ${options.seeds[0] ?? 0}, trained on the training split less ${Math.round(100 * (tuning.validationFraction ?? 0.1))}% and scored on that held-out part by the mean over levels of mAP@R. The test split chose nothing. Ablations, unseen-class and label-noise arms use their parent's choice; the shared τ and learning rate above are overridden.`,
    '',
    `| arm | chosen τ | chosen lr | validation score | all ${pairs > 1 ? 'pairs' : 'pair'} (τ / lr: score) |`,
    '| --- | --- | --- | --- | --- |',
    ...[...tuned].map(
      ([arm, r]) =>
        `| ${arm} | ${r.temperature} | ${r.learningRate} | ${(100 * r.score).toFixed(2)} | ${r.grid
          .map((g) => `${g.temperature} / ${g.learningRate}: ${(100 * g.score).toFixed(2)}`)
          .join('; ')} |`,
    ),
    '',
  ];
}
