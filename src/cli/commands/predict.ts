import { BACKEND_OPTION, defineCommand } from '../args.js';
import { progressLine } from '../output.js';
import { DATA_SOURCE_OPTIONS, dataSource } from './index.js';

/** `contrastive predict catalogue.index --data new-items/ --out preds.csv`. */
export const predictCommand = defineCommand({
  name: 'predict',
  summary:
    'Place new items in the tree: a class and a calibrated confidence per level, stopping at the deepest confident level.',
  positionals: [
    {
      name: 'index',
      doc: 'index file written by contrastive index, or a store URL (pglite:./catalogue.pg, postgres://…)',
    },
  ],
  options: [
    ...DATA_SOURCE_OPTIONS,
    {
      name: 'out',
      type: 'string',
      doc: 'predictions file: .csv or .jsonl (default: print them: JSONL with --json, a table otherwise)',
    },
    {
      name: 'calibrateOn',
      type: 'string',
      doc: "labelled data to calibrate on (same forms as --data; default: the index's labelled items, each left out of its own neighbours)",
    },
    {
      name: 'calibrationLimit',
      type: 'integer',
      default: 5000,
      doc: 'index items used to calibrate when --calibrate-on is not given',
    },
    {
      name: 'targetPrecision',
      type: 'number',
      default: 0.95,
      doc: 'accuracy wanted for every answered level',
    },
    {
      name: 'minConfidence',
      type: 'number',
      doc: 'one calibrated-confidence threshold for every level instead of the calibrated ones',
    },
    {
      name: 'method',
      type: 'string',
      choices: ['auto', 'knn', 'prototype'],
      default: 'auto',
      doc: 'kNN vote or prototypes (auto: whichever calibrates better)',
    },
    { name: 'k', type: 'integer', default: 200, doc: 'kNN neighbours' },
    {
      name: 'confidence',
      type: 'number',
      default: 0.9,
      doc: 'probability that the thresholds reach --target-precision on fresh data (Clopper-Pearson bound)',
    },
    {
      name: 'unseen',
      type: 'string',
      choices: ['classes', 'none'],
      default: 'classes',
      doc: "calibrate the class level against classes missing from the index (each calibration item's class left out)",
    },
    {
      name: 'allowOverlap',
      type: 'boolean',
      default: false,
      doc: 'predict items that are also calibration items (same id or vector) with a warning instead of refusing',
    },
    {
      name: 'run',
      type: 'string',
      doc: 'run folder of the model (default: the one recorded in the index or store)',
    },
    { name: 'json', type: 'boolean', default: false, doc: 'print one JSON document instead of a table' },
    BACKEND_OPTION,
  ],
  async run({ positionals, options }) {
    const { ContrastiveError } = await import('../../errors.js');
    const out = options.out;
    if (out !== undefined && !/\.(csv|jsonl)$/.test(out))
      throw new ContrastiveError(
        `contrastive predict: --out must name a .csv or .jsonl file, but got ${JSON.stringify(out ?? null)}.`,
      );
    const { useBackend } = await import('../../engine/backend.js');
    const { Catalogue } = await import('../../catalogue/catalogue.js');
    const { dataSourceOptions } = await import('../../data/sources.js');
    const { writeFileAtomic } = await import('../../io/atomic.js');
    await useBackend(options.backend);
    const catalogue = await Catalogue.open(positionals[0], { run: options.run });
    const tree = catalogue.index.tree;
    let prediction: import('../../catalogue/catalogue.js').DataPrediction;
    try {
      const { source, limit, cacheDir } = await dataSource('predict', options);
      const calibrateOn = options.calibrateOn;
      prediction = await catalogue.predictData(source, {
        limit,
        cacheDir,
        calibrateOn:
          calibrateOn === undefined
            ? undefined
            : {
                source: (await dataSourceOptions('contrastive predict', options, 'calibrateOn')).source,
                name: calibrateOn,
                sameAsData: calibrateOn === options.data,
              },
        calibrationLimit: options.calibrationLimit,
        k: options.k,
        targetPrecision: options.targetPrecision,
        confidence: options.confidence,
        unseen: options.unseen,
        method: options.method,
        minConfidence: options.minConfidence,
        allowOverlap: options.allowOverlap,
        onDecodeProgress: progressLine('predict: decoding', options.json),
        onProgress: progressLine('predict: embedding', options.json),
        onWarning: (message) => process.stderr.write(`WARNING: ${message}\n`),
      });
    } finally {
      catalogue.dispose();
    }
    const { calibration, calibratedOn, levels } = prediction;
    const records = prediction.items;
    const jsonLines = () => `${records.map((r) => JSON.stringify(r)).join('\n')}\n`;
    if (out === undefined) {
      // no --out: the predictions themselves are the output
      if (options.json) process.stdout.write(jsonLines());
      else {
        const { formatTable } = await import('../table.js');
        console.log(
          formatTable(
            ['id', 'label', 'path', ...tree.levelNames.map((n) => `${n} (conf.)`)],
            records.map((r) => [
              r.id,
              r.label ?? '–',
              `${r.path || '(none)'}${r.unseenInTraining ? ' (unseen in training)' : ''}`,
              ...r.levels.map((l) => `${l.name} (${l.confidence.toFixed(2)})${l.answered ? '' : ' ?'}`),
            ]),
          ),
        );
      }
    } else if (out.endsWith('.jsonl')) {
      await writeFileAtomic(out, jsonLines());
    } else {
      const csv = (v: string | number | null) => {
        const text = v === null ? '' : String(v);
        return /[",\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
      };
      const head = [
        'id',
        'source',
        'label',
        'path',
        'depth',
        ...tree.levelNames.flatMap((n) => [n, `${n}_confidence`]),
      ];
      const lines = records.map((r) =>
        [
          r.id,
          r.source,
          r.label,
          r.path,
          r.depth,
          ...r.levels.flatMap((l) => [l.name, l.confidence.toFixed(4)]),
        ]
          .map(csv)
          .join(','),
      );
      await writeFileAtomic(out, `${[head.join(','), ...lines].join('\n')}\n`);
    }
    const summary = {
      out: out ?? null,
      items: records.length,
      method: prediction.method,
      methods: calibration.methods.map((m) => ({
        method: m.method,
        meanCoverage: m.meanCoverage,
        meanAccuracy: m.meanAccuracy,
      })),
      targetPrecision: calibration.targetPrecision,
      calibratedOn,
      confidence: calibration.confidence,
      guarantee: calibration.guarantee,
      levels,
      notes: prediction.notes,
    };
    if (out === undefined) {
      // the predictions went to stdout; the summary goes to stderr
      process.stderr.write(
        `${[summary.guarantee, ...prediction.notes.map((n) => `note: ${n}`)].join('\n')}\n`,
      );
      return;
    }
    if (options.json) {
      console.log(JSON.stringify(summary));
      return;
    }
    const { formatTable } = await import('../table.js');
    const pct = (v: number | null) => (v === null ? '–' : `${(100 * v).toFixed(1)}%`);
    console.log(
      formatTable(
        ['level', 'threshold', 'calib. coverage', 'calib. precision', 'answered', 'accuracy'],
        levels.map((r) => [
          r.level,
          r.threshold === null ? 'never' : r.threshold.toFixed(3),
          pct(r.validationCoverage),
          pct(r.validationPrecision),
          pct(r.answered),
          pct(r.accuracy),
        ]),
      ),
    );
    console.log(
      `method: ${summary.method} (measured: ${summary.methods.map((m) => `${m.method} covers ${pct(m.meanCoverage)} at ${pct(summary.targetPrecision)} precision, ${pct(m.meanAccuracy)} accurate at full coverage`).join('; ')}); calibrated on ${calibratedOn}; wrote ${records.length} predictions to ${out}`,
    );
    console.log(`guarantee: ${summary.guarantee}`);
    for (const note of prediction.notes) console.log(`note: ${note}`);
  },
});
