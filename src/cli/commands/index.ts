import { BACKEND_OPTION, type CommandSpec, type OptionSpec, type OptionValue } from '../args.js';
import { QUEUE_OPTIONS, STORE_OPTION } from './store.js';

/** Options that say where data comes from, shared by `index`, `predict` and `embed --data`. */
export const DATA_SOURCE_OPTIONS: readonly OptionSpec[] = [
  {
    name: 'data',
    type: 'string',
    doc: 'what to embed: fashion-mnist[:train|:test], an image folder (sub-folders = label paths), a folder of images, an image file, or a .csv/.jsonl/.npy table',
  },
  {
    name: 'split',
    type: 'string',
    choices: ['train', 'test'],
    default: 'test',
    doc: 'Fashion-MNIST split when --data is fashion-mnist',
  },
  {
    name: 'dataDir',
    type: 'string',
    doc: "Fashion-MNIST folder (default: Debian's, else the embedded subset)",
  },
  { name: 'limit', type: 'integer', doc: 'Fashion-MNIST: the first N images only' },
  { name: 'labelColumn', type: 'string', doc: 'tables: the label-path column (default label)' },
];

/** The library source of `--data` and its companions. */
export async function dataSource(command: string, options: Record<string, OptionValue>) {
  const { ContrastiveError } = await import('../../errors.js');
  const { parseInputSource } = await import('../../search/embedInputs.js');
  const data = options.data as string | undefined;
  if (!data)
    throw new ContrastiveError(`contrastive ${command}: --data is required (${DATA_SOURCE_OPTIONS[0].doc}).`);
  const source = await parseInputSource(data, {
    split: options.split as 'train' | 'test',
    dataDir: options.dataDir as string | undefined,
  });
  if (source.kind === 'fashion-mnist' && options.limit !== undefined) source.limit = options.limit as number;
  if (source.kind === 'table' && options.labelColumn !== undefined)
    source.labelColumn = options.labelColumn as string;
  return source;
}

/** A progress line on a terminal (nothing when stderr is a file or a pipe). */
export function progressLine(what: string): (done: number, total: number) => void {
  return (done, total) => {
    if (!process.stderr.isTTY) return;
    process.stderr.write(`\r${what} ${done}/${total}${done === total ? '\n' : ''}`);
  };
}

/** `contrastive index runs/x --data catalogue/ --out catalogue.index`. */
export const indexCommand: CommandSpec = {
  name: 'index',
  summary: 'Embed a catalogue with a trained run and write a searchable index (one file).',
  positionals: [{ name: 'run', doc: 'run folder (its model embeds the items, and later the queries)' }],
  options: [
    ...DATA_SOURCE_OPTIONS,
    { name: 'out', type: 'string', doc: 'index file to write, e.g. catalogue.index (this, --store or both)' },
    { ...STORE_OPTION, doc: `also (or instead) write the items into this store: ${STORE_OPTION.doc}` },
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
    const out = options.out as string | undefined;
    const storeUrl = options.store as string | undefined;
    if (!out && !storeUrl)
      throw new ContrastiveError(
        'contrastive index: --out (the index file to write) or --store (a store to write into) is required.',
      );
    // a store that cannot be reached fails now, not after the embedding
    const { PostgresStore } = await import('../../store/postgresStore.js');
    const store = storeUrl ? await PostgresStore.open(storeUrl) : null;
    const { useBackend } = await import('../../engine/backend.js');
    const { embedInputs } = await import('../../search/embedInputs.js');
    const { openRunEncoder } = await import('../../search/runModel.js');
    const { EmbeddingIndex } = await import('../../search/embeddingIndex.js');
    await useBackend(options.backend as 'auto');
    let source: Awaited<ReturnType<typeof dataSource>>;
    let encoder: Awaited<ReturnType<typeof openRunEncoder>>;
    try {
      source = await dataSource('index', options);
      encoder = await openRunEncoder(positionals[0], options.space as 'backbone' | 'head');
    } catch (error) {
      await store?.close();
      throw error;
    }
    try {
      const started = performance.now();
      const embedded = await embedInputs(encoder, source, {
        onProgress: progressLine('embedding'),
        thumbnails: options.thumbnails as boolean,
      });
      const index = EmbeddingIndex.create({
        tree: encoder.tree,
        dim: embedded.dim,
        space: encoder.space,
        model: encoder.identity,
      });
      index.add(embedded.items, embedded.embeddings);
      if (options.approximate) await index.buildApproximate();
      if (out) await index.save(out);
      if (store) await store.write(index, { onProgress: progressLine('writing') });
      const labelled = embedded.items.filter((it) => it.label != null).length;
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
      };
      if (options.json) console.log(JSON.stringify(summary));
      else
        console.log(
          `indexed ${summary.items} items (${labelled} labelled) as ${summary.dim}-d ${summary.space} embeddings, ${summary.search} search, into ${[out, store?.url].filter(Boolean).join(' and ')} in ${summary.seconds} s`,
        );
      index.dispose();
    } finally {
      encoder.dispose();
      await store?.close();
    }
  },
};

/** `contrastive index <run> --data … --store … --queue redis://…`: jobs for `contrastive worker`s. */
async function queueIndex(run: string, options: Record<string, OptionValue>): Promise<number> {
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
  const source = await dataSource('index', options);
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
