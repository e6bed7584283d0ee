import { DATA_SOURCE_OPTIONS } from '../../data/sources.js';
import { BACKEND_OPTION, type CommandSpec, type OptionValue } from '../args.js';

/** The `--data` block (declared once in `data/sources.ts`), shared by `index`, `predict` and `embed --data`. */
export { DATA_SOURCE_OPTIONS } from '../../data/sources.js';

/** The data source of `--data` and its companions, resolved by the one parser (`data/sources.ts`). */
export async function dataSource(command: string, options: Record<string, OptionValue>) {
  const { dataSourceOptions } = await import('../../data/sources.js');
  return dataSourceOptions(`contrastive ${command}`, options);
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
    { name: 'json', type: 'boolean', default: false, doc: 'print one JSON document instead of text' },
    BACKEND_OPTION,
  ],
  async run({ positionals, options }) {
    const { ContrastiveError } = await import('../../errors.js');
    const out = options.out as string | undefined;
    if (!out) throw new ContrastiveError('contrastive index: --out is required (the index file to write).');
    const { useBackend } = await import('../../engine/backend.js');
    const { embedInputs } = await import('../../search/embedInputs.js');
    const { openRunEncoder } = await import('../../search/runModel.js');
    const { EmbeddingIndex } = await import('../../search/embeddingIndex.js');
    await useBackend(options.backend as 'auto');
    const { source, limit, cacheDir } = await dataSource('index', options);
    const encoder = await openRunEncoder(positionals[0], options.space as 'backbone' | 'head');
    try {
      const started = performance.now();
      const embedded = await embedInputs(encoder, source, {
        limit,
        cacheDir,
        onDecodeProgress: progressLine('decoding'),
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
      await index.save(out);
      const labelled = embedded.items.filter((it) => it.label != null).length;
      const summary = {
        out,
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
          `indexed ${summary.items} items (${labelled} labelled) as ${summary.dim}-d ${summary.space} embeddings, ${summary.search} search, into ${out} in ${summary.seconds} s`,
        );
      index.dispose();
    } finally {
      encoder.dispose();
    }
  },
};
