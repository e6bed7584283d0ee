import { defineCommand } from '../args.js';

/** `contrastive compare runs/a runs/b ...`: the evaluated metrics side by side. */
export const compareCommand = defineCommand({
  name: 'compare',
  summary: 'Print the evaluation metrics of several runs side by side (runs must have eval.json).',
  positionals: [{ name: 'runs', doc: 'run folders', variadic: true }],
  options: [{ name: 'json', type: 'boolean', default: false, doc: 'print JSON instead of a table' }],
  async run({ positionals, options }) {
    const { ContrastiveError } = await import('../../errors.js');
    if (positionals.length === 0)
      throw new ContrastiveError('contrastive compare: give at least one run folder.');
    const { loadRun } = await import('../../report/index.js');
    const { formatTable } = await import('../table.js');
    const runs = await Promise.all(positionals.map(loadRun));
    const missing = runs.filter((r) => !r.evaluation).map((r) => r.name);
    if (missing.length > 0) {
      throw new ContrastiveError(
        `contrastive compare: ${missing.join(', ')} ha${missing.length > 1 ? 've' : 's'} no eval.json; run \`contrastive eval <run>\` first.`,
      );
    }
    const pct = (v: number | undefined) => (v === undefined ? '–' : (100 * v).toFixed(2));
    const numLevels = Math.max(...runs.map((r) => r.evaluation!.numLevels));
    const level = (r: (typeof runs)[number], l: number) => r.levelNames?.[l] ?? `level ${l}`;
    const rows: [string, (r: (typeof runs)[number]) => string][] = [
      ['method', (r) => r.method ?? '–'],
      ...Array.from({ length: numLevels }, (_, l): [string, (r: (typeof runs)[number]) => string] => [
        `kNN acc ${level(runs[0], l)} %`,
        (r) => pct(r.evaluation!.knn.accuracyByLevel[l]),
      ]),
      ['linear probe %', (r) => pct(r.evaluation!.linearProbe?.testAccuracy)],
      ...Array.from({ length: numLevels }, (_, l): [string, (r: (typeof runs)[number]) => string] => [
        `mAP@R ${level(runs[0], l)} %`,
        (r) => pct(r.evaluation!.retrieval[l]?.mapAtR),
      ]),
      ...Array.from({ length: numLevels }, (_, l): [string, (r: (typeof runs)[number]) => string] => [
        `P@1 ${level(runs[0], l)} %`,
        (r) => pct(r.evaluation!.retrieval[l]?.precisionAt1),
      ]),
      ['mistake severity (LCA height)', (r) => r.evaluation!.severity.knn.meanLcaHeight.toFixed(3)],
      ['consistency violations %', (r) => pct(r.evaluation!.consistency?.violationRate)],
      ['unseen: coarse mAP@R %', (r) => pct(r.evaluation!.unseen?.retrieval[0]?.mapAtR)],
      // baselines beside the results: what each run's training bought over its input and its start
      ...(
        [
          'raw input',
          'untrained encoder',
          'pretrained backbone',
          'frozen backbone features',
          'untrained head on them',
        ] as const
      ).flatMap((name): [string, (r: (typeof runs)[number]) => string][] =>
        runs.some((r) => r.baselines?.some((b) => b.name === name))
          ? [
              [
                `${name}: kNN acc ${level(runs[0], numLevels - 1)} %`,
                (r) => pct(r.baselines?.find((b) => b.name === name)?.knnAccuracyByLevel[numLevels - 1]),
              ],
              [
                `${name}: mAP@R ${level(runs[0], numLevels - 1)} %`,
                (r) => pct(r.baselines?.find((b) => b.name === name)?.mapAtR[numLevels - 1]),
              ],
            ]
          : [],
      ),
    ];
    if (options.json) {
      const table = Object.fromEntries(
        runs.map((r) => [r.name, Object.fromEntries(rows.map(([k, f]) => [k, f(r)]))]),
      );
      console.log(JSON.stringify(table, null, 2));
      return;
    }
    console.log(
      formatTable(
        ['metric', ...runs.map((r) => r.name)],
        rows.map(([name, f]) => [name, ...runs.map(f)]),
      ),
    );
  },
});
