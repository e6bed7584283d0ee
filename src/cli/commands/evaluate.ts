import { BACKEND_OPTION, type CommandSpec } from '../args.js';

/** `contrastive eval runs/x`: every metric, a table on the terminal, `runs/x/eval.json`. */
export const evalCommand: CommandSpec = {
  name: 'eval',
  summary:
    'Evaluate a trained run (kNN, linear probe, per-level retrieval, severity, consistency) into eval.json.',
  positionals: [{ name: 'run', doc: 'run folder' }],
  options: [
    {
      name: 'data',
      type: 'string',
      doc: "the run's --data file or folder, if it moved (its contents must match what the run was trained on)",
    },
    { name: 'dataDir', type: 'string', doc: "Fashion-MNIST folder (default: the run's)" },
    {
      name: 'trainLimit',
      type: 'integer',
      min: 0,
      doc: "training images used as the kNN/probe database (default: the run's)",
    },
    { name: 'knnK', type: 'integer', default: 200, min: 1, doc: 'kNN neighbours' },
    { name: 'knnTemperature', type: 'number', default: 0.07, min: 1e-6, doc: 'kNN vote temperature' },
    {
      name: 'probeEpochs',
      type: 'integer',
      default: 30,
      min: 0,
      doc: 'linear-probe epochs (0: skip the probe)',
    },
    {
      name: 'consistencyAnchors',
      type: 'integer',
      default: 2000,
      min: 0,
      doc: 'anchors for the hierarchy-consistency count (0: not measured)',
    },
    { name: 'strips', type: 'integer', default: 8, min: 0, doc: 'nearest-neighbour strips for the report' },
    { name: 'seed', type: 'integer', default: 0, doc: 'seed of the sampled subsets' },
    {
      name: 'baselines',
      type: 'boolean',
      default: true,
      doc: 'also score the raw input and the untrained encoder (--no-baselines to skip)',
    },
    BACKEND_OPTION,
  ],
  async run({ positionals, options }) {
    const { evaluateRun } = await import('../../run/evaluateRun.js');
    const { formatTable } = await import('../table.js');
    const o = options as Record<string, number | string | undefined>;
    const result = await evaluateRun(positionals[0], {
      data: o.data as string | undefined,
      dataDir: o.dataDir as string | undefined,
      trainLimit: o.trainLimit as number | undefined,
      knnK: o.knnK as number,
      knnTemperature: o.knnTemperature as number,
      linearProbe: o.probeEpochs === 0 ? false : { epochs: o.probeEpochs as number },
      consistencyAnchors: o.consistencyAnchors as number,
      strips: o.strips as number,
      seed: o.seed as number,
      baselines: options.baselines as boolean,
      backend: o.backend as 'auto',
    });
    const pct = (v: number | undefined) => (v === undefined ? '–' : (100 * v).toFixed(2));
    const head = ['level', 'kNN acc', 'P@1', 'R@1', 'R@5', 'R@10', 'R-prec', 'mAP@R'];
    const rows = result.retrieval.map((r) => [
      result.levelNames?.[r.level] ?? String(r.level),
      pct(result.knn.accuracyByLevel[r.level]),
      pct(r.precisionAt1),
      pct(r.recallAt[1]),
      pct(r.recallAt[5]),
      pct(r.recallAt[10]),
      pct(r.rPrecision),
      pct(r.mapAtR),
    ]);
    console.log(formatTable(head, rows));
    if (result.baselines?.length) {
      // what training bought: the same metrics for the raw input and the encoder before training
      const levels = result.retrieval.map((r) => result.levelNames?.[r.level] ?? String(r.level));
      const line = (name: string, knn: number[], map: number[]) => [name, ...knn.map(pct), ...map.map(pct)];
      console.log(
        `\n${formatTable(
          ['embedding', ...levels.map((l) => `kNN ${l}`), ...levels.map((l) => `mAP@R ${l}`)],
          [
            line(
              'trained',
              result.knn.accuracyByLevel,
              result.retrieval.map((r) => r.mapAtR),
            ),
            ...result.baselines.map((b) => line(b.name, b.knnAccuracyByLevel, b.mapAtR)),
          ],
        )}`,
      );
    }
    console.log(
      [
        `linear probe: ${pct(result.linearProbe?.testAccuracy)}%`,
        `mistake severity (mean LCA height of wrong kNN predictions): ${result.severity.knn.meanLcaHeight.toFixed(3)}`,
        `hierarchy-consistency violations: ${result.consistency ? `${pct(result.consistency.violationRate)}%` : 'not measured'}`,
        ...(result.unseen
          ? [
              `held-out classes: ${result.unseen.numQueries} queries, coarse mAP@R ${pct(result.unseen.retrieval[0]?.mapAtR)}%`,
            ]
          : []),
        `wrote ${positionals[0]}/eval.json`,
      ].join('\n'),
    );
  },
};
