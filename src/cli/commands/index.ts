import { DATA_SOURCE_OPTIONS } from '../../data/sources.js';
import { BACKEND_OPTION, type CommandSpec, type OptionValue } from '../args.js';

/** The `--data` block (declared once in `data/sources.ts`), shared by `index`, `predict` and `embed --data`. */
export { DATA_SOURCE_OPTIONS } from '../../data/sources.js';

/** The data source of `--data` and its companions, resolved by the one parser (`data/sources.ts`). */
export async function dataSource(command: string, options: Record<string, OptionValue>) {
  const { dataSourceOptions } = await import('../../data/sources.js');
  return dataSourceOptions(`contrastive ${command}`, options);
}

/**
 * Progress on stderr: one line redrawn on a terminal; when stderr is a file or a pipe (a log, a
 * CI job), a plain line at every tenth so a long run is never silent. `quiet` (--json) prints
 * nothing.
 */
export function progressLine(what: string, quiet = false): (done: number, total: number) => void {
  let shown = -1;
  return (done, total) => {
    if (quiet) return;
    if (process.stderr.isTTY) {
      process.stderr.write(`\r${what} ${done}/${total}${done === total ? '\n' : ''}`);
      return;
    }
    const tenth = Math.floor((10 * done) / Math.max(1, total));
    if (tenth === shown) return;
    shown = tenth;
    process.stderr.write(`${what} ${done}/${total}\n`);
  };
}

/** `contrastive index runs/x --data catalogue/ --out catalogue.index`. */
export const indexCommand: CommandSpec = {
  name: 'index',
  summary: 'Embed a catalogue with a trained run and write a searchable index (one file).',
  positionals: [{ name: 'run', doc: 'run folder (its model embeds the items, and later the queries)' }],
  options: [
    ...DATA_SOURCE_OPTIONS,
    { name: 'out', type: 'string', doc: 'index file to write, e.g. catalogue.index (required)' },
    {
      name: 'space',
      type: 'string',
      choices: ['backbone', 'head'],
      default: 'backbone',
      doc: "which model output to index: the backbone's (as the papers evaluate) or the projection head's",
    },
    {
      name: 'approximate',
      type: 'boolean',
      default: false,
      doc: 'also build an HNSW graph (usearch): faster search on large catalogues, recall slightly below 1; within/group-by stay exact',
    },
    {
      name: 'thumbnails',
      type: 'boolean',
      default: false,
      doc: 'store a small PNG of every image in the index',
    },
    {
      name: 'report',
      type: 'boolean',
      default: false,
      doc: 'print retrieval (P@1, mAP@R per level) on the classes the run never saw in training',
    },
    { name: 'json', type: 'boolean', default: false, doc: 'print one JSON document instead of text' },
    BACKEND_OPTION,
  ],
  async run({ positionals, options }) {
    const { ContrastiveError } = await import('../../errors.js');
    const out = options.out as string | undefined;
    if (!out) throw new ContrastiveError('contrastive index: --out is required (the index file to write).');
    const { useBackend } = await import('../../engine/backend.js');
    const { buildIndex } = await import('../../catalogue/build.js');
    const { newClassRetrieval } = await import('../../catalogue/newClasses.js');
    const { formatLabelPath } = await import('../../hierarchy/labelPath.js');
    await useBackend(options.backend as 'auto');
    const { source, limit, cacheDir } = await dataSource('index', options);
    const started = performance.now();
    const quiet = options.json === true;
    const index = await buildIndex(positionals[0], source, {
      space: options.space as 'backbone' | 'head',
      approximate: options.approximate as boolean,
      thumbnails: options.thumbnails as boolean,
      limit,
      cacheDir,
      onDecodeProgress: progressLine('index: decoding', quiet),
      onProgress: progressLine('index: embedding', quiet),
    });
    try {
      if (!quiet) process.stderr.write(`index: writing ${out}\n`);
      await index.save(out);
      const sep = index.tree.separator;
      const leafLevel = index.tree.depth - 1;
      const newClasses = index.unseenNodes
        .filter((p) => p.length === index.tree.depth)
        .map((p) => formatLabelPath(p, sep));
      const report = options.report ? newClassRetrieval(index) : null;
      let labelled = 0;
      for (let row = 0; row < index.size; row++) if (index.leafAt(row) >= 0) labelled++;
      const summary = {
        out,
        items: index.size,
        labelled,
        dim: index.dim,
        space: index.space,
        search: index.approximate ? 'approximate (HNSW) + exact' : 'exact',
        model: index.model,
        seconds: Number(((performance.now() - started) / 1000).toFixed(2)),
        newNodes: index.unseenNodes.map((p) => formatLabelPath(p, sep)),
        report,
      };
      if (options.json) {
        console.log(JSON.stringify(summary));
        return;
      }
      console.log(
        `indexed ${summary.items} items (${labelled} labelled) as ${summary.dim}-d ${summary.space} embeddings, ${summary.search} search, into ${out} in ${summary.seconds} s`,
      );
      if (newClasses.length > 0)
        console.log(
          `${newClasses.length} ${index.tree.levelNames[leafLevel]} classes the run never saw in training (marked unseen in the index; search --within and --group-by cover them): ${newClasses.join(', ')}`,
        );
      if (options.report) {
        if (!report) console.log('report: no items of classes unseen in training, nothing to report');
        else {
          const { formatTable } = await import('../table.js');
          console.log(
            `retrieval of the ${report.queries} items of the new classes against every other labelled item (leave-one-out):`,
          );
          console.log(
            formatTable(
              ['level', 'queries', 'P@1', 'mAP@R'],
              report.levels.map((r) => [
                r.levelName,
                String(r.numQueries),
                `${(100 * r.precisionAt1).toFixed(1)}%`,
                `${(100 * r.mapAtR).toFixed(1)}%`,
              ]),
            ),
          );
        }
      }
    } finally {
      index.dispose();
    }
  },
};
