import { BACKEND_OPTION, defineCommand } from '../args.js';
import { STORE_OPTION } from './store.js';

/** `contrastive search catalogue.index --id 123 --within Clothes/Tops`. */
export const searchCommand = defineCommand({
  name: 'search',
  summary:
    'Search an index by image, item id or vector; optionally inside a node of the tree, grouped by a level.',
  positionals: [
    { name: 'index', doc: 'index file written by contrastive index (or --store)', optional: true },
  ],
  options: [
    { name: 'image', type: 'string', doc: "query image file (embedded with the index's model)" },
    {
      name: 'id',
      type: 'string',
      doc: 'query by the id of an item of the index (left out of its own results)',
    },
    { name: 'vector', type: 'list', doc: 'query vector, comma-separated numbers' },
    { name: 'k', type: 'integer', default: 10, doc: 'results (groups, with --group-by)' },
    {
      name: 'within',
      type: 'string',
      doc: 'search only inside this node of the tree, e.g. Clothes/Tops (exact)',
    },
    { name: 'groupBy', type: 'string', doc: 'group results by their node at this level (name or number)' },
    { name: 'groupSize', type: 'integer', default: 3, doc: 'results per group with --group-by' },
    {
      name: 'exact',
      type: 'boolean',
      default: false,
      doc: 'exact search even when the index has an HNSW graph',
    },
    { name: 'run', type: 'string', doc: 'run folder of the model (default: the one recorded in the index)' },
    { ...STORE_OPTION, doc: `search this store instead of an index file: ${STORE_OPTION.doc}` },
    { name: 'json', type: 'boolean', default: false, doc: 'print one JSON document instead of a table' },
    BACKEND_OPTION,
  ],
  async run({ positionals, options }) {
    const { ContrastiveError } = await import('../../errors.js');
    const given = (['image', 'id', 'vector'] as const).filter((name) => options[name] !== undefined);
    if (given.length !== 1)
      throw new ContrastiveError(
        `contrastive search: give exactly one of --image, --id and --vector, but got ${given.length ? given.map((g) => `--${g}`).join(' and ') : 'none'}.`,
      );
    const { useBackend } = await import('../../engine/backend.js');
    if ((positionals[0] === undefined) === (options.store === undefined))
      throw new ContrastiveError(
        'contrastive search: give either an index file or --store (pglite:./catalogue.pg or postgres://…), not both or neither.',
      );
    if (options.store !== undefined) return searchStore(options);
    const { Catalogue } = await import('../../catalogue/catalogue.js');
    await useBackend(options.backend);
    const catalogue = await Catalogue.open(positionals[0], { run: options.run });
    const index = catalogue.index;
    const query =
      options.id !== undefined
        ? { id: options.id }
        : options.vector !== undefined
          ? {
              vector: options.vector.map((text, i) => {
                const value = Number(text);
                if (text.trim() === '' || !Number.isFinite(value))
                  throw new ContrastiveError(
                    `contrastive search: --vector value ${i} must be a finite number, but got ${JSON.stringify(text)}.`,
                  );
                return value;
              }),
            }
          : { image: options.image as string };
    const result = await catalogue
      .search(query, {
        k: options.k,
        within: options.within,
        groupBy: options.groupBy,
        groupSize: options.groupSize,
        approximate: options.exact ? false : undefined,
      })
      .finally(() => catalogue.dispose());
    const queryLabel = result.queryLabel;
    const tree = index.tree;
    const { formatLabelPath } = await import('../../hierarchy/labelPath.js');
    const leafRow = (label: string[]) => tree.encode([label]);
    const lca = (label: string[] | null) =>
      queryLabel && label ? tree.lcaHeight(leafRow(queryLabel), leafRow(label)) : null;
    const rows = result.hits.map((hit, rank) => ({
      rank: rank + 1,
      id: hit.id,
      score: hit.score,
      label: hit.label ? formatLabelPath(hit.label, tree.separator) : null,
      lcaHeight: lca(hit.label),
      group: result.groups
        ? formatLabelPath(result.groups.find((g) => g.hits.includes(hit))!.node, tree.separator)
        : undefined,
      source: hit.source ?? null,
    }));
    if (options.json) {
      console.log(
        JSON.stringify({
          query:
            options.id !== undefined
              ? { id: options.id, label: queryLabel ? formatLabelPath(queryLabel, tree.separator) : null }
              : options.image !== undefined
                ? { image: options.image }
                : { vector: true },
          within: options.within ?? null,
          groupBy: options.groupBy ?? null,
          approximate: result.approximate,
          results: rows,
        }),
      );
      return;
    }
    const { formatTable } = await import('../table.js');
    const head = [
      'rank',
      ...(result.groups ? ['group'] : []),
      'id',
      'score',
      'label path',
      'LCA height',
      'source',
    ];
    console.log(
      formatTable(
        head,
        rows.map((r) => [
          String(r.rank),
          ...(result.groups ? [r.group ?? ''] : []),
          r.id,
          r.score.toFixed(4),
          r.label ?? '(unlabelled)',
          r.lcaHeight === null ? '–' : String(r.lcaHeight),
          r.source ?? '',
        ]),
      ),
    );
    const notes = [
      queryLabel
        ? `query label: ${formatLabelPath(queryLabel, tree.separator)} (LCA height 0 = same class, ${tree.depth} = different ${tree.levelNames[0]})`
        : 'query label unknown: no LCA heights',
      result.approximate ? 'approximate (HNSW) search; --exact for exact' : 'exact search',
    ];
    console.log(notes.join('; '));
  },
});

/** `contrastive search --store …`: the same query flags, answered by the store (which says which plan ran). */
async function searchStore(options: Record<string, import('../args.js').OptionValue>): Promise<number> {
  const { ContrastiveError } = await import('../../errors.js');
  if (options.groupBy !== undefined)
    throw new ContrastiveError(
      'contrastive search: --group-by is not available with --store yet; search an index file (contrastive index … --out) for grouped results.',
    );
  const { PostgresStore } = await import('../../store/postgresStore.js');
  const { formatLabelPath } = await import('../../hierarchy/labelPath.js');
  const store = await PostgresStore.open(options.store as string);
  try {
    const info = await store.schema();
    if (!info)
      throw new ContrastiveError(
        `contrastive search: the store ${store.url} is empty; write an index into it first (contrastive store import <index> --store …).`,
      );
    const searchOptions = {
      k: options.k as number,
      within: options.within as string | undefined,
      plan: options.exact ? ('exact' as const) : ('auto' as const),
    };
    let result: import('../../store/postgresStore.js').StoreSearchResult;
    if (options.id !== undefined) result = await store.search({ id: options.id as string }, searchOptions);
    else if (options.vector !== undefined) {
      const vector = (options.vector as string[]).map((text, i) => {
        const value = Number(text);
        if (text.trim() === '' || !Number.isFinite(value))
          throw new ContrastiveError(
            `contrastive search: --vector value ${i} must be a finite number, but got ${JSON.stringify(text)}.`,
          );
        return value;
      });
      result = await store.search({ vector }, searchOptions);
    } else {
      const { useBackend } = await import('../../engine/backend.js');
      const { embedImageWithRecordedModel } = await import('../../catalogue/queryImage.js');
      await useBackend(options.backend as 'auto');
      const vector = await embedImageWithRecordedModel(
        store,
        options.image as string,
        options.run as string | undefined,
      );
      result = await store.search({ vector }, searchOptions);
    }
    const tree = info.tree;
    const rows = result.hits.map((hit, rank) => ({
      rank: rank + 1,
      id: hit.id,
      score: hit.score,
      label: hit.label ? formatLabelPath(hit.label, tree.separator) : null,
      source: hit.source ?? null,
    }));
    if (options.json) {
      console.log(
        JSON.stringify({
          store: store.url,
          query:
            options.id !== undefined
              ? { id: options.id }
              : options.image !== undefined
                ? { image: options.image }
                : { vector: true },
          within: options.within ?? null,
          plan: result.plan,
          scopeSize: result.scopeSize,
          index: result.index,
          approximate: result.plan === 'approximate',
          results: rows,
        }),
      );
      return 0;
    }
    const { formatTable } = await import('../table.js');
    console.log(
      formatTable(
        ['rank', 'id', 'score', 'label path', 'source'],
        rows.map((r) => [
          String(r.rank),
          r.id,
          r.score.toFixed(4),
          r.label ?? '(unlabelled)',
          r.source ?? '',
        ]),
      ),
    );
    console.log(
      result.plan === 'exact'
        ? `exact search of ${result.scopeSize} items`
        : `approximate search (HNSW, iterative scan) of a scope of more than ${result.scopeSize - 1} items; --exact for exact`,
    );
    return 0;
  } finally {
    await store.close();
  }
}
