import { defineCommand, type OptionSpec } from '../args.js';

/** `--store`, shared by the commands that read or write a store. */
export const STORE_OPTION = {
  name: 'store',
  type: 'string',
  doc: 'catalogue store: pglite:./catalogue.pg (embedded, one process) or postgres://user:password@host:5432/db (a server with pgvector and ltree)',
} as const satisfies OptionSpec;

/** `--queue` and `--queue-name`, shared by `index --queue` and `worker`. */
export const QUEUE_OPTIONS = [
  {
    name: 'queue',
    type: 'string',
    doc: 'BullMQ queue in Redis, e.g. redis://127.0.0.1:6379: index splits the catalogue into jobs there, workers take them',
  },
  { name: 'queueName', type: 'string', default: 'contrastive-index', doc: 'name of the queue in Redis' },
] as const satisfies readonly OptionSpec[];

/** `contrastive store import catalogue.index --store pglite:./catalogue.pg`, `contrastive store info --store …`. */
export const storeCommand = defineCommand({
  name: 'store',
  summary: 'Write an index file into a Postgres store (import), or describe a store (info).',
  positionals: [
    { name: 'action', doc: 'import (an index file into the store) or info' },
    { name: 'index', doc: 'index file written by contrastive index (for import)', optional: true },
  ],
  options: [
    { ...STORE_OPTION, doc: `${STORE_OPTION.doc} (required)` as string },
    {
      name: 'approximate',
      type: 'boolean',
      default: true,
      doc: 'build the HNSW index after the import (large subtrees are searched through it)',
    },
    { name: 'json', type: 'boolean', default: false, doc: 'print one JSON document instead of text' },
  ],
  async run({ positionals, options }) {
    const { ContrastiveError } = await import('../../errors.js');
    const [action, indexPath] = positionals;
    if (action !== 'import' && action !== 'info')
      throw new ContrastiveError(
        `contrastive store: the action must be import or info, but got ${JSON.stringify(action ?? '')}.`,
      );
    const url = options.store;
    if (!url)
      throw new ContrastiveError(`contrastive store ${action}: --store is required (${STORE_OPTION.doc}).`);
    const { PostgresStore } = await import('../../store/postgresStore.js');
    const { progressLine } = await import('../output.js');
    if (action === 'import' && !indexPath)
      throw new ContrastiveError(
        'contrastive store import: give the index file to import (contrastive store import catalogue.index --store …).',
      );
    const { EmbeddingIndex } = await import('../../search/embeddingIndex.js');
    const index = action === 'import' ? await EmbeddingIndex.load(indexPath) : null;
    const store = await PostgresStore.open(url);
    try {
      const started = performance.now();
      const written = index
        ? await store.write(index, {
            approximate: options.approximate,
            onProgress: progressLine('writing'),
          })
        : null;
      const info = await store.info();
      const summary = {
        store: store.url,
        ...(written ? { imported: indexPath, inserted: written.inserted } : {}),
        items: info?.items ?? 0,
        dim: info?.dim ?? null,
        space: info?.space ?? null,
        model: info?.model ?? null,
        state: info?.state ?? 'empty',
        approximate: info?.approximate ?? false,
        prototypesStale: info?.prototypesStale ?? null,
        calibrationStale: info?.calibrationStale ?? null,
        seconds: Number(((performance.now() - started) / 1000).toFixed(2)),
      };
      if (options.json) console.log(JSON.stringify(summary));
      else if (!info) console.log(`${summary.store} is empty`);
      else
        console.log(
          `${written ? `wrote ${written.inserted} new items from ${indexPath} in ${summary.seconds} s; ` : ''}${summary.store}: ${summary.items} items, ${summary.dim}-d ${summary.space} embeddings from ${summary.model?.source ?? '(no model recorded)'}, ${summary.state}${summary.approximate ? ', HNSW index' : ''}${summary.prototypesStale ? ', prototypes stale' : ''}${summary.calibrationStale ? ', calibration stale' : ''}`,
        );
    } finally {
      index?.dispose();
      await store.close();
    }
  },
});
