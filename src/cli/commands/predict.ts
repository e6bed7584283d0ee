import { BACKEND_OPTION, type CommandSpec } from '../args.js';
import { DATA_SOURCE_OPTIONS, dataSource, progressLine } from './index.js';

/** `contrastive predict catalogue.index --data new-items/ --out preds.csv`. */
export const predictCommand: CommandSpec = {
  name: 'predict',
  summary:
    'Place new items in the tree: a class and a calibrated confidence per level, stopping at the deepest confident level.',
  positionals: [{ name: 'index', doc: 'index file written by contrastive index' }],
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
    { name: 'run', type: 'string', doc: 'run folder of the model (default: the one recorded in the index)' },
    { name: 'json', type: 'boolean', default: false, doc: 'print one JSON document instead of a table' },
    BACKEND_OPTION,
  ],
  async run({ positionals, options }) {
    const { ContrastiveError } = await import('../../errors.js');
    const out = options.out as string | undefined;
    if (out !== undefined && !/\.(csv|jsonl)$/.test(out))
      throw new ContrastiveError(
        `contrastive predict: --out must name a .csv or .jsonl file, but got ${JSON.stringify(out ?? null)}.`,
      );
    const { useBackend } = await import('../../engine/backend.js');
    const { EmbeddingIndex } = await import('../../search/embeddingIndex.js');
    const { embedInputs } = await import('../../search/embedInputs.js');
    const { calibrate, predictPath } = await import('../../search/predictPath.js');
    const { openIndexEncoder } = await import('../../search/runModel.js');
    const { Rng } = await import('../../random.js');
    const { writeFileAtomic } = await import('../../io/atomic.js');
    await useBackend(options.backend as 'auto');
    const index = await EmbeddingIndex.load(positionals[0]);
    const tree = index.tree;
    const { source, limit, cacheDir } = await dataSource('predict', options);
    const encoder = await openIndexEncoder(index, options.run as string | undefined);
    let calibration: import('../../search/predictPath.js').PathCalibration;
    let embedded: import('../../search/embedInputs.js').EmbeddedInputs;
    let calibratedOn: string;
    try {
      embedded = await embedInputs(encoder, source, {
        limit,
        cacheDir,
        onDecodeProgress: progressLine('decoding'),
        onProgress: progressLine('embedding'),
      });
      const settings = {
        k: options.k as number,
        targetPrecision: options.targetPrecision as number,
        confidence: options.confidence as number,
        unseen: options.unseen as 'classes' | 'none',
      };
      // items to predict that are also calibration items (same id or same vector) would grade
      // their own answers: refused, or a loud warning with --allow-overlap
      const overlapWith = (ids: Set<string>, vectors: Set<string>, what: string) => {
        let shared = 0;
        embedded.items.forEach((it, i) => {
          const v = embedded.embeddings.subarray(i * embedded.dim, (i + 1) * embedded.dim);
          if (ids.has(String(it.id)) || vectors.has(vectorKey(v))) shared++;
        });
        if (shared === 0) return;
        const message = `${shared} of ${embedded.items.length} items to predict are also ${what} (same id or vector): their calibrated precision would be measured on themselves`;
        if (!options.allowOverlap)
          throw new ContrastiveError(
            `contrastive predict: ${message}; calibrate on other data (--calibrate-on), predict items outside the index, or pass --allow-overlap.`,
          );
        process.stderr.write(`WARNING: ${message}; the guarantee does not hold for them.\n`);
      };
      if (options.calibrateOn !== undefined) {
        const { dataSourceOptions } = await import('../../data/sources.js');
        const calibrationSource = await dataSourceOptions('contrastive predict', options, 'calibrateOn');
        const labelled = await embedInputs(encoder, calibrationSource.source, { cacheDir });
        const rows = labelled.items.flatMap((it, i) => (it.label ? [i] : []));
        overlapWith(
          new Set(
            options.calibrateOn === (options.data ?? null) ? labelled.items.map((it) => String(it.id)) : [],
          ),
          new Set(
            rows.map((i) =>
              vectorKey(labelled.embeddings.subarray(i * labelled.dim, (i + 1) * labelled.dim)),
            ),
          ),
          `items of --calibrate-on ${options.calibrateOn}`,
        );
        if (rows.length === 0)
          throw new ContrastiveError(
            `contrastive predict: --calibrate-on ${options.calibrateOn} must be labelled, but has no label paths.`,
          );
        calibration = calibrate(
          index,
          {
            embeddings: rows.map((i) =>
              labelled.embeddings.subarray(i * labelled.dim, (i + 1) * labelled.dim),
            ),
            labels: rows.map((i) => labelled.items[i].label!),
          },
          settings,
        );
        calibratedOn = `${rows.length} items of ${options.calibrateOn}`;
      } else {
        // leave-one-out on the index's own labelled items (a seeded sample)
        const labelled = index.items().filter((it) => it.label !== null);
        if (labelled.length < 2)
          throw new ContrastiveError(
            'contrastive predict: the index has fewer than 2 labelled items to calibrate on; pass --calibrate-on.',
          );
        // the index's items are the calibration items and every query's neighbours
        overlapWith(
          new Set(),
          new Set(index.items().map((it) => vectorKey(index.embedding(it.id)))),
          'items of the index',
        );
        const order = new Rng(0).permutation(labelled.length);
        const sample = Array.from(
          order.subarray(0, Math.min(labelled.length, options.calibrationLimit as number)),
          (i) => labelled[i],
        );
        calibration = calibrate(
          index,
          {
            embeddings: sample.map((it) => index.embedding(it.id)),
            labels: sample.map((it) => it.label!),
            selfIds: sample.map((it) => it.id),
          },
          settings,
        );
        calibratedOn = `${sample.length} labelled items of the index, each left out of its own neighbours`;
      }
    } finally {
      encoder.dispose();
    }
    const method = options.method as 'auto' | 'knn' | 'prototype';
    const predictions = predictPath(index, embedded.embeddings, {
      calibration,
      method,
      k: options.k as number,
      minConfidence: options.minConfidence as number | undefined,
    });
    const depth = tree.depth;
    const records = predictions.map((p, i) => {
      const item = embedded.items[i];
      const truth = item.label
        ? typeof item.label === 'string'
          ? item.label.split(tree.separator)
          : [...item.label]
        : null;
      return {
        id: String(item.id),
        source: item.source ?? null,
        label: truth ? truth.join(tree.separator) : null,
        path: p.path.join(tree.separator),
        depth: p.depth,
        levels: p.levels.map((l) => ({
          level: l.levelName,
          name: l.name,
          confidence: l.confidence,
          answered: l.answered,
        })),
        truth,
      };
    });
    const jsonLines = () => `${records.map(({ truth: _t, ...r }) => JSON.stringify(r)).join('\n')}\n`;
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
              r.path || '(none)',
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
    // per level: thresholds and validation coverage/precision, and what happened on --data
    const levels = Array.from({ length: depth }, (_, l) => {
      const cal = calibration.levels[l];
      const answered = records.filter((r) => r.depth > l);
      const judged = answered.filter((r) => r.truth !== null);
      const right = judged.filter((r) =>
        r.levels.slice(0, l + 1).every((x, j) => x.name === r.truth![j]),
      ).length;
      return {
        level: tree.levelNames[l],
        threshold: Number.isFinite(cal.threshold) ? cal.threshold : null,
        validationCoverage: cal.coverage,
        validationPrecision: cal.precision,
        answered: answered.length / Math.max(1, records.length),
        accuracy: judged.length ? right / judged.length : null,
      };
    });
    const summary = {
      out: out ?? null,
      items: records.length,
      method: predictions[0]?.method ?? calibration.method,
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
    };
    index.dispose();
    if (out === undefined) {
      // the predictions went to stdout; the summary goes to stderr
      process.stderr.write(`${summary.guarantee}\n`);
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
  },
};

/** A key that two embeddings of the same item share: the unit vector at 4 decimals. */
function vectorKey(v: ArrayLike<number>): string {
  let norm = 0;
  for (let j = 0; j < v.length; j++) norm += v[j] * v[j];
  const scale = norm > 0 ? 1 / Math.sqrt(norm) : 0;
  return Array.from(v, (x) => (x * scale).toFixed(4)).join(',');
}
