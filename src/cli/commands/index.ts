import { DATA_SOURCE_OPTIONS } from '../../data/sources.js';
import { BACKEND_OPTION, defineCommand, type OptionValue } from '../args.js';
import { progressLine } from '../output.js';
import { QUEUE_OPTIONS, STORE_OPTION } from './store.js';

/** The `--data` block (declared once in `data/sources.ts`), shared by `index`, `predict` and `embed --data`. */
export { DATA_SOURCE_OPTIONS } from '../../data/sources.js';

/** The data source of `--data` and its companions, resolved by the one parser (`data/sources.ts`). */
export async function dataSource(
  command: string,
  options: Readonly<Record<string, OptionValue | undefined>>,
) {
  const { dataSourceOptions } = await import('../../data/sources.js');
  return dataSourceOptions(`contrastive ${command}`, options);
}

/** `contrastive index runs/x --data catalogue/ --out catalogue.index`. */
export const indexCommand = defineCommand({
  name: 'index',
  summary: 'Embed a catalogue with a trained run and write a searchable index (one file).',
  positionals: [{ name: 'run', doc: 'run folder (its model embeds the items, and later the queries)' }],
  options: [
    ...DATA_SOURCE_OPTIONS,
    { name: 'out', type: 'string', doc: 'index file to write, e.g. catalogue.index (this, --store or both)' },
    {
      ...STORE_OPTION,
      doc: `also (or instead) write the items into this store: ${STORE_OPTION.doc}` as string,
    },
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
    ...QUEUE_OPTIONS,
    { name: 'jobSize', type: 'integer', default: 1000, doc: 'with --queue: items per job' },
    {
      name: 'wait',
      type: 'boolean',
      default: true,
      doc: 'with --queue: follow the jobs, check the count and finish the store (--no-wait: queue and return)',
    },
    { name: 'json', type: 'boolean', default: false, doc: 'print one JSON document instead of text' },
    BACKEND_OPTION,
  ],
  async run({ positionals, options }) {
    const { ContrastiveError } = await import('../../errors.js');
    if (options.queue !== undefined) return queueIndex(positionals[0], options);
    const out = options.out;
    const storeUrl = options.store;
    if (!out && !storeUrl)
      throw new ContrastiveError(
        'contrastive index: --out (the index file to write) or --store (a store to write into) is required.',
      );
    // a store that cannot be reached fails now, not after the embedding
    const { PostgresStore } = await import('../../store/postgresStore.js');
    const { useBackend } = await import('../../engine/backend.js');
    const { buildIndex } = await import('../../catalogue/build.js');
    const { newClassRetrieval } = await import('../../catalogue/newClasses.js');
    const { formatLabelPath } = await import('../../hierarchy/labelPath.js');
    const store = storeUrl ? await PostgresStore.open(storeUrl) : null;
    try {
      await useBackend(options.backend);
      const source = await dataSource('index', options);
      const started = performance.now();
      const quiet = options.json === true;
      const index = await buildIndex(positionals[0], source.source, {
        space: options.space,
        approximate: options.approximate,
        thumbnails: options.thumbnails,
        limit: source.limit,
        cacheDir: source.cacheDir,
        onDecodeProgress: progressLine('index: decoding', quiet),
        onProgress: progressLine('index: embedding', quiet),
      });
      try {
        if (out) {
          if (!quiet) process.stderr.write(`index: writing ${out}\n`);
          await index.save(out);
        }
        if (store)
          await store.write(index, { onProgress: progressLine('index: writing to the store', quiet) });
        const sep = index.tree.separator;
        const leafLevel = index.tree.depth - 1;
        const newClasses = index.unseenNodes
          .filter((p) => p.length === index.tree.depth)
          .map((p) => formatLabelPath(p, sep));
        const report = options.report ? newClassRetrieval(index) : null;
        let labelled = 0;
        for (let row = 0; row < index.size; row++) if (index.leafAt(row) >= 0) labelled++;
        const summary = {
          out: out ?? null,
          store: store?.url ?? null,
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
          `indexed ${summary.items} items (${labelled} labelled) as ${summary.dim}-d ${summary.space} embeddings, ${summary.search} search, into ${[out, store?.url].filter(Boolean).join(' and ')} in ${summary.seconds} s`,
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
    } finally {
      await store?.close();
    }
  },
});

/** `contrastive index <run> --data … --store … --queue redis://…`: jobs for `contrastive worker`s. */
async function queueIndex(
  run: string,
  options: Readonly<Record<string, OptionValue | undefined>>,
): Promise<number> {
  const { ContrastiveError } = await import('../../errors.js');
  if (!options.store || options.out)
    throw new ContrastiveError(
      'contrastive index: --queue needs --store (where the workers write) and no --out (the workers write no index file).',
    );
  const { useBackend } = await import('../../engine/backend.js');
  const { openRunEncoder } = await import('../../search/runModel.js');
  const { PostgresStore } = await import('../../store/postgresStore.js');
  const { enqueueCatalogue, waitForCatalogue } = await import('../../store/queue.js');
  await useBackend(options.backend as 'auto');
  const resolved = await dataSource('index', options);
  // the jobs carry their source: --limit goes into it (the kinds a queue splits)
  const { limit } = resolved;
  const source =
    limit === undefined
      ? resolved.source
      : resolved.source.kind === 'fashion-mnist'
        ? { ...resolved.source, limit }
        : resolved.source.kind === 'images'
          ? { ...resolved.source, files: resolved.source.files.slice(0, limit) }
          : resolved.source;
  const store = await PostgresStore.open(options.store as string);
  try {
    const encoder = await openRunEncoder(run, options.space as 'backbone' | 'head');
    const started = performance.now();
    const queueOptions = { queue: options.queue as string, queueName: options.queueName as string };
    let queued: { jobs: number; items: number };
    try {
      queued = await enqueueCatalogue(encoder, source, store, {
        ...queueOptions,
        jobSize: options.jobSize as number,
      });
    } finally {
      encoder.dispose();
    }
    const items = options.wait
      ? await waitForCatalogue(store, { ...queueOptions, onProgress: progressLine('jobs') })
      : null;
    const summary = {
      store: store.url,
      jobs: queued.jobs,
      items: items ?? queued.items,
      state: items === null ? 'building' : 'ready',
      seconds: Number(((performance.now() - started) / 1000).toFixed(2)),
    };
    if (options.json) console.log(JSON.stringify(summary));
    else
      console.log(
        items === null
          ? `queued ${queued.items} items as ${queued.jobs} jobs for ${store.url}; run contrastive worker ${run} --queue … --store … (anywhere), then contrastive index again with --queue to finish`
          : `indexed ${items} items through ${queued.jobs} jobs into ${store.url} in ${summary.seconds} s`,
      );
    return 0;
  } finally {
    await store.close();
  }
}
