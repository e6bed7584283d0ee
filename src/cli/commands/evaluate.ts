import { BACKEND_OPTION, defineCommand } from '../args.js';

/** `contrastive eval runs/x`: every metric, a table on the terminal, `runs/x/eval.json`. */
export const evalCommand = defineCommand({
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
    {
      name: 'json',
      type: 'boolean',
      default: false,
      doc: 'print eval.json (without the strips) on stdout instead of tables, and no progress lines',
    },
    BACKEND_OPTION,
  ],
  async run({ positionals, options }) {
    const { evaluateRun } = await import('../../run/evaluateRun.js');
    const { formatTable } = await import('../table.js');
    const o = options;
    const result = await evaluateRun(positionals[0], {
      data: o.data,
      dataDir: o.dataDir,
      trainLimit: o.trainLimit,
      knnK: o.knnK,
      knnTemperature: o.knnTemperature,
      linearProbe: o.probeEpochs === 0 ? false : { epochs: o.probeEpochs },
      consistencyAnchors: o.consistencyAnchors,
      strips: o.strips,
      seed: o.seed,
      baselines: options.baselines,
      backend: o.backend,
      // progress on stderr, one line per stage (and per tenth of each embedding); none with --json
      onProgress: options.json ? undefined : (message) => process.stderr.write(`eval: ${message}\n`),
    });
    if (options.json) {
      const { strips: _strips, ...rest } = result;
      console.log(JSON.stringify(rest, null, 1));
      return;
    }
    const pct = (v: number | undefined) => (v === undefined ? '–' : (100 * v).toFixed(2));
    const levelName = (l: number) => result.levelNames?.[l] ?? String(l);
    const retrievalTable = (title: string, retrieval: typeof result.retrieval, withKnn: boolean) =>
      `${title}\n${formatTable(
        ['level', ...(withKnn ? ['kNN acc'] : []), 'P@1', 'R@1', 'R@5', 'R@10', 'R-prec', 'mAP@R'],
        retrieval.map((r) => [
          levelName(r.level),
          ...(withKnn ? [pct(result.knn.accuracyByLevel[r.level])] : []),
          pct(r.precisionAt1),
          pct(r.recallAt[1]),
          pct(r.recallAt[5]),
          pct(r.recallAt[10]),
          pct(r.rPrecision),
          pct(r.mapAtR),
        ]),
      )}`;
    console.log(
      retrievalTable(
        `kNN (test vs train) and retrieval of test queries within the test split (test vs test, leave-one-out), ${result.numTest} queries:`,
        result.retrieval,
        true,
      ),
    );
    if (result.crossRetrieval)
      console.log(
        `\n${retrievalTable(
          `retrieval of test queries among the ${result.numTrain} training items (test vs train, cross-split):`,
          result.crossRetrieval,
          false,
        )}`,
      );
    if (result.baselines?.length) {
      // what training bought: the same metrics for the raw input and the encoder before training
      const levels = result.retrieval.map((r) => levelName(r.level));
      const cross = result.crossRetrieval !== undefined;
      const line = (name: string, knn: number[], map: number[], crossMap?: number[]) => [
        name,
        ...knn.map(pct),
        ...map.map(pct),
        ...(cross ? levels.map((_, l) => pct(crossMap?.[l])) : []),
      ];
      const rows = [
        line(
          'trained',
          result.knn.accuracyByLevel,
          result.retrieval.map((r) => r.mapAtR),
          result.crossRetrieval?.map((r) => r.mapAtR),
        ),
      ];
      for (const b of result.baselines) {
        const sample = b.sampledRows
          ? ` (sample: ${b.sampledRows.train} train / ${b.sampledRows.test} test rows)`
          : '';
        rows.push(line(`${b.name}${sample}`, b.knnAccuracyByLevel, b.mapAtR, b.crossMapAtR));
        if (b.trainedOnSameRows)
          rows.push(
            line(
              '  trained, on the same sample',
              b.trainedOnSameRows.knnAccuracyByLevel,
              b.trainedOnSameRows.mapAtR,
              b.trainedOnSameRows.crossMapAtR,
            ),
          );
      }
      console.log(
        `\n${formatTable(
          [
            'embedding',
            ...levels.map((l) => `kNN ${l}`),
            ...levels.map((l) => `mAP@R ${l} (test vs test)`),
            ...(cross ? levels.map((l) => `mAP@R ${l} (test vs train)`) : []),
          ],
          rows,
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
});
