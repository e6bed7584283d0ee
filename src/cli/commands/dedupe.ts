import { BACKEND_OPTION, defineCommand } from '../args.js';

/** `contrastive dedupe catalogue.index --threshold 0.98`. */
export const dedupeCommand = defineCommand({
  name: 'dedupe',
  summary:
    'Find near-duplicate pairs and clusters in an index (threshold given, or calibrated from the labels).',
  positionals: [
    {
      name: 'index',
      doc: 'index file written by contrastive index, or a store URL (pglite:./catalogue.pg, postgres://…)',
    },
  ],
  options: [
    {
      name: 'threshold',
      type: 'number',
      doc: 'cosine similarity at or above which two items are duplicates',
    },
    {
      name: 'targetPrecision',
      type: 'number',
      doc: 'calibrate the threshold for this precision on copies of sampled items (Gaussian feature noise on their embeddings) against their nearest distinct neighbours of the same class (default: 0.99 when --threshold is not given)',
    },
    { name: 'neighbors', type: 'integer', default: 10, doc: 'nearest neighbours per item considered' },
    { name: 'show', type: 'integer', default: 20, doc: 'pairs printed in the table' },
    { name: 'out', type: 'string', doc: 'write every pair to this .csv or .jsonl file' },
    { name: 'json', type: 'boolean', default: false, doc: 'print one JSON document instead of a table' },
    BACKEND_OPTION,
  ],
  async run({ positionals, options }) {
    const { ContrastiveError } = await import('../../errors.js');
    if (options.threshold !== undefined && options.targetPrecision !== undefined)
      throw new ContrastiveError(
        'contrastive dedupe: give one of --threshold and --target-precision, not both.',
      );
    const { useBackend } = await import('../../engine/backend.js');
    const { Catalogue } = await import('../../catalogue/catalogue.js');
    await useBackend(options.backend);
    const catalogue = await Catalogue.open(positionals[0]);
    const index = catalogue.index;
    let report: import('../../search/duplicates.js').DuplicateReport;
    try {
      report = catalogue.dedupe({
        threshold: options.threshold,
        targetPrecision: options.targetPrecision,
        neighbors: options.neighbors,
      });
    } finally {
      index.dispose();
    }
    const { formatLabelPath } = await import('../../hierarchy/labelPath.js');
    const label = (id: string) => {
      const path = index.item(id).label;
      return path ? formatLabelPath(path, index.tree.separator) : null;
    };
    const pairs = report.pairs.map((p) => ({ ...p, labelA: label(p.a), labelB: label(p.b) }));
    const out = options.out;
    if (out) {
      const { writeFileAtomic } = await import('../../io/atomic.js');
      if (out.endsWith('.jsonl'))
        await writeFileAtomic(
          out,
          pairs.map((p) => JSON.stringify(p)).join('\n') + (pairs.length ? '\n' : ''),
        );
      else {
        const csv = (v: string | null) =>
          v === null ? '' : /[",\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v;
        await writeFileAtomic(
          out,
          `${['a', 'b', 'score', 'label_a', 'label_b'].join(',')}\n${pairs.map((p) => [csv(p.a), csv(p.b), p.score.toFixed(6), csv(p.labelA), csv(p.labelB)].join(',')).join('\n')}\n`,
        );
      }
    }
    if (options.json) {
      console.log(
        JSON.stringify({
          threshold: report.threshold,
          calibration: report.calibration ?? null,
          pairs,
          clusters: report.clusters,
        }),
      );
      return;
    }
    const { formatTable } = await import('../table.js');
    const shown = pairs.slice(0, options.show);
    console.log(
      formatTable(
        ['a', 'b', 'score', 'label a', 'label b'],
        shown.map((p) => [p.a, p.b, p.score.toFixed(4), p.labelA ?? '–', p.labelB ?? '–']),
      ),
    );
    const calibration = report.calibration
      ? `; calibrated for ${report.calibration.targetPrecision} precision from ${report.calibration.from}${report.calibration.transformation ? ` (${report.calibration.positives} copies made by ${report.calibration.transformation}, against ${report.calibration.negatives} nearest distinct same-class pairs)` : ''}: ${report.calibration.reached ? 'reached' : 'NOT reached'} (${(100 * report.calibration.precision).toFixed(1)}%${report.calibration.recall !== undefined ? `, recall of the copies ${(100 * report.calibration.recall).toFixed(1)}%` : ''})`
      : '';
    console.log(
      `${pairs.length} pairs in ${report.clusters.length} clusters at similarity >= ${report.threshold.toFixed(4)}${calibration}${pairs.length > shown.length ? `; showing ${shown.length}` : ''}${out ? `; all pairs in ${out}` : ''}`,
    );
  },
});
