import { ContrastiveError } from '../errors.js';
import { type LabelPath, LabelTree, type LabelTreeJSON } from '../hierarchy/labelTree.js';
import {
  EmbeddingIndex,
  type EmbeddingSpace,
  type IndexItemInput,
  type IndexSnapshot,
  type ModelIdentity,
  type SearchHit,
} from '../search/embeddingIndex.js';
import { resolveNode } from '../search/treeNodes.js';
import type { EmbeddingsLike } from '../search/vectors.js';
import { ltreePath } from './ltreeLabels.js';
import { migrateStore } from './migrate.js';
import { openSqlClient, type SqlClient, type SqlRunner } from './sqlClient.js';

/** What a store holds: the model, space and dimension that wrote it, its tree and its state. */
export interface StoreInfo {
  /** The store URL (password hidden). */
  url: string;
  dim: number;
  space: EmbeddingSpace;
  /** The model whose embeddings the store holds (null: vectors from elsewhere). */
  model: ModelIdentity | null;
  tree: LabelTree;
  /** `'building'` while an import or a queue of jobs writes it; `'ready'` once complete and counted. */
  state: 'building' | 'ready';
  /** Items stored now. */
  items: number;
  /** Items the build expects (null when not building to a count). */
  expectedItems: number | null;
  /** Whether items were added or removed since the prototypes were computed ({@link PostgresStore.refreshPrototypes}). */
  prototypesStale: boolean;
  /** Whether items were added or removed since the calibration was written. */
  calibrationStale: boolean;
  /** Whether the HNSW index exists. */
  approximate: boolean;
}

/** What a store is written for: the model, space, dimension and label tree of its items. */
export interface StoreSchema {
  dim: number;
  space: EmbeddingSpace;
  model: ModelIdentity | null;
  tree: LabelTree;
}

/** Options of {@link PostgresStore.open}. */
export interface PostgresStoreOptions {
  /**
   * Subtrees (or catalogues) of at most this many items are searched exactly (the `ltree` GiST
   * index and a sequential distance scan); larger ones through HNSW with iterative scans. Default 20,000.
   */
  exactUpTo?: number;
  /** `hnsw.ef_search` for approximate searches (also the number of candidates re-ranked). Default 200. */
  efSearch?: number;
}

/** A query: a vector, or the id of a stored item (left out of its own results). */
export type StoreQuery = { vector: ArrayLike<number> } | { id: string | number };

/** Options of {@link PostgresStore.search}. */
export interface StoreSearchOptions {
  /** Results. Default 10. */
  k?: number;
  /** Search only inside this node of the tree (`'Clothes/Tops'`). */
  within?: LabelPath;
  /** Ids never returned. */
  exclude?: Iterable<string | number>;
  /** `'auto'` (default: by the scope's size, see {@link PostgresStoreOptions.exactUpTo}), `'exact'` or `'approximate'`. */
  plan?: 'auto' | 'exact' | 'approximate';
  /** `hnsw.ef_search` of this search (the store's {@link PostgresStoreOptions.efSearch} when absent). */
  efSearch?: number;
}

/** {@link PostgresStore.search}'s result. */
export interface StoreSearchResult {
  /** Best first. */
  hits: SearchHit[];
  /** Which path ran: an exact distance scan of the scope, or HNSW with iterative index scans. */
  plan: 'exact' | 'approximate';
  /** Items in the scope, counted up to `exactUpTo + 1` (so `exactUpTo + 1` means "more"). */
  scopeSize: number;
  /** The HNSW index an approximate plan walks: the node's own partial index, or the global one (null when exact). */
  index: string | null;
}

/** Options of {@link PostgresStore.write}. */
export interface StoreWriteOptions {
  /** Rows per INSERT. Default 1000. */
  batchSize?: number;
  /** Called after every batch. */
  onProgress?: (done: number, total: number) => void;
  /** Build the HNSW index at the end. Default true. */
  approximate?: boolean;
}

/** Options of {@link PostgresStore.add}. */
export interface StoreAddOptions {
  /** An id already stored: `'error'` (default; nothing of the call is written) or `'skip'` (kept as is: idempotent retries). */
  ifExists?: 'error' | 'skip';
}

interface MetaRow {
  dim: number;
  space: EmbeddingSpace;
  model_checksum: string | null;
  model_source: string | null;
  tree: LabelTreeJSON | string;
  state: 'building' | 'ready';
  expected_items: string | number | null;
  prototypes_stale: boolean;
  calibration_stale: boolean;
}

const ITEM_COLUMNS = 'id, leaf, source, thumbnail';

/**
 * A catalogue of embeddings in PostgreSQL with pgvector and `ltree`: embedded (PGlite, one
 * process, `pglite:./catalogue.pg`) or on a server (`postgres://…`, any number of processes and
 * machines). Items carry their label path as `ltree` (escaped, see {@link encodeLtreeLabel}), so
 * a search inside a subtree is exact when the subtree is small and HNSW with pgvector's iterative
 * index scans when it is big: a filtered search never returns fewer than k hits. A store is written
 * by one model, at one dimension: another one is refused by name.
 *
 * @example
 * ```ts
 * const store = await PostgresStore.open('pglite:./catalogue.pg');
 * await store.write(await EmbeddingIndex.load('catalogue.index'));
 * const { hits, plan } = await store.search({ id: '17' }, { k: 10, within: 'Clothes/Tops' });
 * await store.close();
 * ```
 */
export class PostgresStore {
  private schemaCache: StoreSchema | null = null;
  /** Whether the store was seen ready (it stays so until a new build starts in this process). */
  private readySeen = false;
  private readonly exactUpTo: number;
  private readonly efSearch: number;

  private constructor(
    private readonly client: SqlClient,
    options: PostgresStoreOptions,
  ) {
    this.exactUpTo = options.exactUpTo ?? 20_000;
    this.efSearch = options.efSearch ?? 200;
  }

  /**
   * Opens (and, when new, creates) the store at `url`: `pglite:<folder>` (`pglite:memory:` for a
   * throw-away one) or `postgres://user:password@host:port/db`. A server that does not answer or
   * refuses the login is a one-line error naming what to fix.
   */
  static async open(url: string, options: PostgresStoreOptions = {}): Promise<PostgresStore> {
    const fn = 'PostgresStore.open';
    for (const [name, value, min] of [
      ['exactUpTo', options.exactUpTo, 0],
      ['efSearch', options.efSearch, 1],
    ] as const) {
      if (value !== undefined && !(Number.isInteger(value) && value >= min && value <= 1_000_000_000))
        throw new ContrastiveError(`${fn}: ${name} must be an integer >= ${min}, but got ${value}.`);
    }
    const client = await openSqlClient(url, fn);
    try {
      await migrateStore(client);
    } catch (error) {
      await client.close().catch(() => {});
      throw error;
    }
    return new PostgresStore(client, options);
  }

  /** The store URL (password hidden). */
  get url(): string {
    return this.client.url;
  }

  /** `'pglite'` (embedded) or `'postgres'` (a server). */
  get kind(): 'pglite' | 'postgres' {
    return this.client.kind;
  }

  /** Closes the connection. */
  async close(): Promise<void> {
    await this.client.close();
  }

  /** What the store holds, or null when nothing was written to it yet. */
  async info(): Promise<StoreInfo | null> {
    const schema = await this.schema();
    if (!schema) return null;
    const [meta] = await this.client.query<MetaRow>('SELECT * FROM contrastive_meta');
    const [{ n }] = await this.client.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM contrastive_items',
    );
    const [{ hnsw }] = await this.client.query<{ hnsw: boolean }>(
      "SELECT EXISTS (SELECT 1 FROM pg_indexes WHERE indexname = 'contrastive_items_hnsw') AS hnsw",
    );
    return {
      url: this.url,
      ...schema,
      state: meta.state,
      items: Number(n),
      expectedItems: meta.expected_items === null ? null : Number(meta.expected_items),
      prototypesStale: meta.prototypes_stale,
      calibrationStale: meta.calibration_stale,
      approximate: hnsw,
    };
  }

  /** The model, space, dimension and tree the store was written for, or null when it is empty. */
  async schema(): Promise<StoreSchema | null> {
    if (this.schemaCache) return this.schemaCache;
    const rows = await this.client.query<MetaRow>('SELECT * FROM contrastive_meta');
    if (rows.length === 0) return null;
    const meta = rows[0];
    const treeJson = typeof meta.tree === 'string' ? (JSON.parse(meta.tree) as LabelTreeJSON) : meta.tree;
    this.schemaCache = {
      dim: Number(meta.dim),
      space: meta.space,
      model:
        meta.model_checksum === null
          ? null
          : { checksum: meta.model_checksum, source: meta.model_source ?? '(unknown)' },
      tree: LabelTree.fromSerialized(treeJson),
    };
    return this.schemaCache;
  }

  /**
   * Makes the store one for `schema`'s items: a new store records it (in state `'building'`,
   * expecting `expectedItems` more items when given); an existing one must have been written by
   * the same model, space, dimension and tree, or this is an error naming both.
   */
  async prepare(schema: StoreSchema, expectedItems?: number): Promise<void> {
    const fn = 'PostgresStore.prepare';
    this.readySeen = false;
    await this.client.transaction(async (tx) => {
      await tx.exec('LOCK TABLE contrastive_meta IN EXCLUSIVE MODE');
      const existing = await tx.query<{ n: number }>('SELECT count(*)::int AS n FROM contrastive_meta');
      if (Number(existing[0].n) === 0) {
        const dim = schema.dim;
        if (!(Number.isInteger(dim) && dim > 0 && dim <= 16000))
          throw new ContrastiveError(`${fn}: dim must be an integer in [1, 16000], but got ${dim}.`);
        await tx.query(
          `INSERT INTO contrastive_meta (dim, space, model_checksum, model_source, tree, state, expected_items)
           VALUES ($1, $2, $3, $4, $5::jsonb, 'building', $6)`,
          [
            dim,
            schema.space,
            schema.model?.checksum ?? null,
            schema.model?.source ?? null,
            JSON.stringify(schema.tree.toJSON()),
            expectedItems ?? null,
          ],
        );
        // the dimension becomes part of the column type: the database itself refuses another one
        await tx.exec(
          `ALTER TABLE contrastive_items ALTER COLUMN embedding TYPE vector(${dim});
           ALTER TABLE contrastive_prototypes ALTER COLUMN embedding TYPE vector(${dim});`,
        );
        const nodes: unknown[][] = [[], [], [], []];
        const tree = schema.tree;
        for (let l = 0; l < tree.depth; l++)
          for (let id = 0; id < tree.levelSizes[l]; id++) {
            const path = tree.path(l, id);
            nodes[0].push(l);
            nodes[1].push(id);
            nodes[2].push(ltreePath(path));
            nodes[3].push(path.join(tree.separator));
          }
        await tx.query(
          'INSERT INTO contrastive_nodes (level, node, path, label_path) SELECT l, n, p::ltree, t FROM unnest($1::int[], $2::int[], $3::text[], $4::text[]) AS u(l, n, p, t)',
          nodes,
        );
        this.schemaCache = null;
        return;
      }
      this.schemaCache = null;
      const stored = (await this.schemaIn(tx))!;
      checkSameSchema(this.url, stored, schema, fn);
      if (expectedItems !== undefined) {
        const [{ n }] = await tx.query<{ n: number }>('SELECT count(*)::int AS n FROM contrastive_items');
        await tx.query(
          "UPDATE contrastive_meta SET state = 'building', expected_items = $1, updated_at = now()",
          [Number(n) + expectedItems],
        );
      }
    });
  }

  /**
   * Writes every item of an index into the store (a new one takes the index's model, dimension and
   * tree; an existing one must match them), then checks the count, builds the HNSW index and the
   * prototypes and marks the store ready. Ids already stored are kept as they are, so a write that
   * was interrupted can simply be run again.
   */
  async write(
    index: EmbeddingIndex,
    options: StoreWriteOptions = {},
  ): Promise<{ inserted: number; items: number }> {
    const fn = 'PostgresStore.write';
    const batchSize = options.batchSize ?? 1000;
    if (!(Number.isInteger(batchSize) && batchSize >= 1))
      throw new ContrastiveError(`${fn}: batchSize must be an integer >= 1, but got ${batchSize}.`);
    const snapshot = index.snapshot();
    await this.prepare(snapshot);
    const present = await this.client.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM contrastive_items WHERE id = ANY($1::text[])',
      [snapshot.ids],
    );
    const [{ n: before }] = await this.client.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM contrastive_items',
    );
    const expected = Number(before) + snapshot.ids.length - Number(present[0].n);
    await this.client.query("UPDATE contrastive_meta SET state = 'building', expected_items = $1", [
      expected,
    ]);
    let inserted = 0;
    for (let start = 0; start < snapshot.ids.length; start += batchSize) {
      const end = Math.min(snapshot.ids.length, start + batchSize);
      inserted += await this.client.transaction((tx) => this.insertRows(tx, snapshot, start, end, 'skip'));
      options.onProgress?.(end, snapshot.ids.length);
    }
    const items = await this.finish({ approximate: options.approximate ?? true });
    return { inserted, items };
  }

  /**
   * Ends a build: checks the store holds the items it expects (else an error saying how many are
   * missing, and the store stays `'building'`), builds the HNSW index (unless `approximate: false`),
   * recomputes the prototypes and marks the store ready. Resolves to the number of items.
   */
  async finish(options: { approximate?: boolean } = {}): Promise<number> {
    const fn = 'PostgresStore.finish';
    const [meta] = await this.client.query<MetaRow>('SELECT * FROM contrastive_meta');
    if (!meta)
      throw new ContrastiveError(`${fn}: the store ${this.url} is empty; write an index into it first.`);
    const [{ n }] = await this.client.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM contrastive_items',
    );
    const expected = meta.expected_items === null ? null : Number(meta.expected_items);
    if (expected !== null && Number(n) !== expected)
      throw new ContrastiveError(
        `${fn}: the store ${this.url} holds ${n} items but the build expects ${expected}; run the import or the workers again (items already stored are kept) before searching it.`,
      );
    if (options.approximate ?? true) await this.buildApproximate();
    await this.client.exec('ANALYZE contrastive_items');
    await this.refreshPrototypes();
    await this.client.query(
      "UPDATE contrastive_meta SET state = 'ready', expected_items = NULL, calibration_stale = true, updated_at = now()",
    );
    return Number(n);
  }

  /**
   * Builds the HNSW indexes (cosine) that are missing: one over the whole catalogue and one partial
   * index (`WHERE path <@ node`) per node holding more than `exactUpTo` items, so a search inside a
   * large node walks a graph of that node's items only (a global graph filtered to a node loses
   * recall when the query lies far from the node). Later adds and removes keep them up to date.
   */
  async buildApproximate(options: { m?: number; efConstruction?: number } = {}): Promise<void> {
    const m = options.m ?? 16;
    const ef = options.efConstruction ?? 64;
    if (!(Number.isInteger(m) && m >= 2 && m <= 100 && Number.isInteger(ef) && ef >= 4 && ef <= 1000))
      throw new ContrastiveError(
        `PostgresStore.buildApproximate: m must be an integer in [2, 100] and efConstruction in [4, 1000], but got ${m} and ${ef}.`,
      );
    const using = `USING hnsw (embedding vector_cosine_ops) WITH (m = ${m}, ef_construction = ${ef})`;
    await this.client.exec(`CREATE INDEX IF NOT EXISTS contrastive_items_hnsw ON contrastive_items ${using}`);
    const large = await this.client.query<{ level: number; node: number; path: string }>(
      `SELECT n.level, n.node, n.path::text AS path FROM contrastive_nodes n JOIN contrastive_items i ON i.path <@ n.path
       GROUP BY n.level, n.node, n.path HAVING count(*) > $1`,
      [this.exactUpTo],
    );
    for (const node of large)
      await this.client.exec(
        `CREATE INDEX IF NOT EXISTS ${nodeIndexName(node.level, node.node)} ON contrastive_items ${using} WHERE path <@ ${ltreeLiteral(node.path)}`,
      );
    this.nodeIndexes = null;
  }

  /** Names of the partial HNSW indexes (read once, refreshed by {@link buildApproximate}). */
  private nodeIndexes: Set<string> | null = null;

  private async partialIndexes(): Promise<Set<string>> {
    if (!this.nodeIndexes) {
      const rows = await this.client.query<{ indexname: string }>(
        "SELECT indexname FROM pg_indexes WHERE tablename = 'contrastive_items' AND indexname LIKE 'contrastive_items_hnsw_n%'",
      );
      this.nodeIndexes = new Set(rows.map((r) => r.indexname));
    }
    return this.nodeIndexes;
  }

  /**
   * Adds items (ids, label paths, sources; embeddings `[items.length, dim]`, stored L2-normalised)
   * without rebuilding anything: the HNSW index takes them in, and the prototypes and calibration
   * are marked stale. Resolves to how many were written (fewer than given only with `ifExists: 'skip'`).
   */
  async add(
    items: readonly IndexItemInput[],
    embeddings: EmbeddingsLike,
    options: StoreAddOptions = {},
  ): Promise<number> {
    const fn = 'PostgresStore.add';
    const schema = await this.schema();
    if (!schema)
      throw new ContrastiveError(
        `${fn}: the store ${this.url} is empty; write an index into it first (it records the model, dimension and tree).`,
      );
    // the index checks ids, labels, dimension and finiteness, and normalises the rows
    const staging = EmbeddingIndex.create(schema);
    staging.add(items, embeddings);
    const snapshot = staging.snapshot();
    const written = await this.client.transaction(async (tx) => {
      const count = await this.insertRows(
        tx,
        snapshot,
        0,
        snapshot.ids.length,
        options.ifExists ?? 'error',
        fn,
      );
      if (count > 0)
        await tx.exec(
          'UPDATE contrastive_meta SET prototypes_stale = true, calibration_stale = true, updated_at = now()',
        );
      return count;
    });
    return written;
  }

  /** Removes items by id (an unknown id is an error, and nothing is removed); marks prototypes and calibration stale. */
  async remove(ids: Iterable<string | number>): Promise<number> {
    const fn = 'PostgresStore.remove';
    const list = [...new Set([...ids].map((id) => String(id)))];
    return this.client.transaction(async (tx) => {
      const gone = await tx.query<{ id: string }>(
        'DELETE FROM contrastive_items WHERE id = ANY($1::text[]) RETURNING id',
        [list],
      );
      if (gone.length !== list.length) {
        const removed = new Set(gone.map((r) => r.id));
        const missing = list.find((id) => !removed.has(id));
        throw new ContrastiveError(
          `${fn}: ids must be ids of items in the store ${this.url}, but ${JSON.stringify(missing)} is not one; nothing was removed.`,
        );
      }
      if (gone.length > 0)
        await tx.exec(
          'UPDATE contrastive_meta SET prototypes_stale = true, calibration_stale = true, updated_at = now()',
        );
      return gone.length;
    });
  }

  /** Recomputes every node's prototype (normalised mean embedding) from the items; clears the stale mark. */
  async refreshPrototypes(): Promise<void> {
    await this.client.transaction(async (tx) => {
      await tx.exec(`DELETE FROM contrastive_prototypes;
        INSERT INTO contrastive_prototypes (level, node, item_count, embedding)
          SELECT n.level, n.node, count(i.id), CASE WHEN count(i.id) > 0 THEN l2_normalize(avg(i.embedding)) END
          FROM contrastive_nodes n LEFT JOIN contrastive_items i ON i.path <@ n.path
          GROUP BY n.level, n.node;
        UPDATE contrastive_meta SET prototypes_stale = false;`);
    });
  }

  /**
   * The prototypes of a level, as {@link EmbeddingIndex.prototypes} gives them (`[nodes, dim]`, a
   * zero row for a node without items), and whether items changed since they were computed.
   */
  async prototypes(level: number): Promise<{ vectors: Float32Array; counts: Int32Array; stale: boolean }> {
    const schema = await this.requireSchema('PostgresStore.prototypes');
    if (!(Number.isInteger(level) && level >= 0 && level < schema.tree.depth))
      throw new ContrastiveError(
        `PostgresStore.prototypes: level must be an integer in [0, ${schema.tree.depth - 1}], but got ${level}.`,
      );
    const rows = await this.client.query<{ node: number; item_count: number; e: string | null }>(
      'SELECT node, item_count::int AS item_count, embedding::text AS e FROM contrastive_prototypes WHERE level = $1',
      [level],
    );
    const [meta] = await this.client.query<MetaRow>('SELECT prototypes_stale FROM contrastive_meta');
    const size = schema.tree.levelSizes[level];
    const vectors = new Float32Array(size * schema.dim);
    const counts = new Int32Array(size);
    for (const row of rows) {
      counts[row.node] = Number(row.item_count);
      if (row.e) vectors.set(parseVector(row.e), row.node * schema.dim);
    }
    return { vectors, counts, stale: meta.prototypes_stale };
  }

  /** Stores a calibration (e.g. `calibrate()`'s result) under a name; it is fresh until items change. */
  async writeCalibration(name: string, body: unknown): Promise<void> {
    await this.client.transaction(async (tx) => {
      await tx.query(
        'INSERT INTO contrastive_calibration (name, body) VALUES ($1, $2::jsonb) ON CONFLICT (name) DO UPDATE SET body = EXCLUDED.body',
        [name, JSON.stringify(body)],
      );
      await tx.exec('UPDATE contrastive_meta SET calibration_stale = false');
    });
  }

  /** A stored calibration and whether items changed since it was written; null when there is none. */
  async readCalibration(name: string): Promise<{ body: unknown; stale: boolean } | null> {
    const rows = await this.client.query<{ body: unknown }>(
      'SELECT body FROM contrastive_calibration WHERE name = $1',
      [name],
    );
    if (rows.length === 0) return null;
    const [meta] = await this.client.query<MetaRow>('SELECT calibration_stale FROM contrastive_meta');
    const body = typeof rows[0].body === 'string' ? JSON.parse(rows[0].body) : rows[0].body;
    return { body, stale: meta.calibration_stale };
  }

  /** Checks that `model` wrote this store's vectors (see {@link EmbeddingIndex.checkModel}). */
  checkModel(model: ModelIdentity, where = 'PostgresStore.checkModel'): void {
    const stored = this.schemaCache?.model;
    if (stored && stored.checksum !== model.checksum)
      throw new ContrastiveError(
        `${where}: the store ${this.url} was written by the model from ${stored.source} (checksum ${stored.checksum.slice(0, 12)}), but the query model from ${model.source} has checksum ${model.checksum.slice(0, 12)}; embed queries with the store's model.`,
      );
  }

  /** The model recorded in the store (after {@link schema} was read). */
  get model(): ModelIdentity | null {
    return this.schemaCache?.model ?? null;
  }

  /** The space recorded in the store (after {@link schema} was read). */
  get space(): EmbeddingSpace {
    return this.schemaCache?.space ?? 'backbone';
  }

  /**
   * Searches the store: inside `within` (or the whole catalogue), exactly when the scope holds at
   * most `exactUpTo` items, else through HNSW with `hnsw.iterative_scan = relaxed_order` (the
   * scan goes on until enough items of the scope are found, so a filtered search keeps its recall)
   * and the `efSearch` best candidates re-ranked exactly. `plan` says which ran.
   */
  async search(query: StoreQuery, options: StoreSearchOptions = {}): Promise<StoreSearchResult> {
    return (await this.searchOrExplain(query, options, false)) as StoreSearchResult;
  }

  /** The plan {@link search} would choose, and PostgreSQL's `EXPLAIN` of its query (which indexes it uses). */
  async explain(
    query: StoreQuery,
    options: StoreSearchOptions = {},
  ): Promise<{ plan: 'exact' | 'approximate'; scopeSize: number; lines: string[] }> {
    return (await this.searchOrExplain(query, options, true)) as {
      plan: 'exact' | 'approximate';
      scopeSize: number;
      lines: string[];
    };
  }

  private async searchOrExplain(
    query: StoreQuery,
    options: StoreSearchOptions,
    explain: boolean,
  ): Promise<StoreSearchResult | { plan: 'exact' | 'approximate'; scopeSize: number; lines: string[] }> {
    const fn = 'PostgresStore.search';
    const schema = await this.requireSchema(fn);
    const k = options.k ?? 10;
    if (!(Number.isInteger(k) && k >= 1 && k <= 10_000))
      throw new ContrastiveError(`${fn}: k must be an integer in [1, 10000], but got ${k}.`);
    const plan = options.plan ?? 'auto';
    if (!['auto', 'exact', 'approximate'].includes(plan))
      throw new ContrastiveError(
        `${fn}: plan must be 'auto', 'exact' or 'approximate', but got ${JSON.stringify(plan)}.`,
      );
    const exclude = [...(options.exclude ?? [])].map(String);
    let vectorText: string;
    if (query !== null && typeof query === 'object' && 'id' in query) {
      const id = String(query.id);
      const rows = await this.client.query<{ e: string }>(
        'SELECT embedding::text AS e FROM contrastive_items WHERE id = $1',
        [id],
      );
      if (rows.length === 0)
        throw new ContrastiveError(
          `${fn}: query.id must be the id of an item in the store ${this.url}, but ${JSON.stringify(id)} is not one.`,
        );
      vectorText = rows[0].e;
      exclude.push(id);
    } else {
      const vector = (query as { vector?: ArrayLike<number> })?.vector;
      if (!vector || typeof vector.length !== 'number' || vector.length !== schema.dim)
        throw new ContrastiveError(
          `${fn}: query must be { id } or { vector } with ${schema.dim} numbers (the store's dimension), but got ${vector && typeof vector.length === 'number' ? `${vector.length} numbers` : JSON.stringify(query)?.slice(0, 60)}.`,
        );
      let norm = 0;
      for (let j = 0; j < vector.length; j++) {
        if (!Number.isFinite(vector[j]))
          throw new ContrastiveError(
            `${fn}: query vector value ${j} must be a finite number, but got ${vector[j]}.`,
          );
        norm += vector[j] * vector[j];
      }
      if (norm === 0) throw new ContrastiveError(`${fn}: query vector must not be all zeros.`);
      vectorText = vectorLiteral(Float32Array.from(vector));
    }
    const path =
      options.within === undefined
        ? null
        : (() => {
            const node = resolveNode(schema.tree, options.within, `${fn}: within`);
            return ltreePath(schema.tree.path(node.level, node.id));
          })();
    const cap = this.exactUpTo + 1;
    const [{ n: scopeSize }] = await this.client.query<{ n: number }>(
      path === null
        ? 'SELECT count(*)::int AS n FROM (SELECT 1 FROM contrastive_items LIMIT $1) s'
        : 'SELECT count(*)::int AS n FROM (SELECT 1 FROM contrastive_items WHERE path <@ $2::ltree LIMIT $1) s',
      path === null ? [cap] : [cap, path],
    );
    const chosen: 'exact' | 'approximate' =
      plan === 'auto' ? (Number(scopeSize) <= this.exactUpTo ? 'exact' : 'approximate') : plan;
    // a large node with its own partial HNSW index: the node's path inline, so the planner can
    // prove the index's predicate (WHERE path <@ 'node') and walk that node's graph
    const node = path === null ? null : resolveNode(schema.tree, options.within!, `${fn}: within`);
    const partial =
      chosen === 'approximate' &&
      node &&
      (await this.partialIndexes()).has(nodeIndexName(node.level, node.id))
        ? nodeIndexName(node.level, node.id)
        : null;
    const where =
      path === null
        ? 'NOT (id = ANY($2::text[]))'
        : partial
          ? `path <@ ${ltreeLiteral(path)} AND NOT (id = ANY($2::text[]))`
          : 'path <@ $3::ltree AND NOT (id = ANY($2::text[]))';
    const params: unknown[] = [vectorText, exclude];
    if (path !== null && !partial) params.push(path);
    const efSearch = options.efSearch ?? this.efSearch;
    if (!(Number.isInteger(efSearch) && efSearch >= 1 && efSearch <= 1000))
      throw new ContrastiveError(`${fn}: efSearch must be an integer in [1, 1000], but got ${efSearch}.`);
    const candidates = Math.max(efSearch, k);
    const { setup, sql } =
      chosen === 'exact'
        ? {
            // no index scan: the HNSW index cannot be used, the ltree GiST index still can (bitmap scan)
            setup: 'SET LOCAL enable_indexscan = off',
            sql: `SELECT ${ITEM_COLUMNS}, embedding <=> $1::vector AS distance FROM contrastive_items
                  WHERE ${where} ORDER BY distance, id LIMIT ${k}`,
          }
        : {
            // the HNSW index with iterative scans; sorting a bitmap or sequential scan of a big
            // scope is what this plan avoids, so those are priced out
            setup: `SET LOCAL hnsw.iterative_scan = relaxed_order; SET LOCAL hnsw.ef_search = ${Math.min(1000, candidates)};
                    SET LOCAL enable_sort = off; SET LOCAL enable_bitmapscan = off; SET LOCAL enable_seqscan = off`,
            // relaxed order: the candidates come nearly sorted; re-rank them exactly
            sql: `WITH candidates AS MATERIALIZED (
                    SELECT ${ITEM_COLUMNS}, embedding <=> $1::vector AS distance FROM contrastive_items
                    WHERE ${where} ORDER BY embedding <=> $1::vector LIMIT ${candidates})
                  SELECT * FROM candidates ORDER BY distance, id LIMIT ${k}`,
          };
    const rows = await this.client.transaction(async (tx) => {
      await tx.exec(setup);
      return tx.query<ItemRow & { 'QUERY PLAN'?: string }>(explain ? `EXPLAIN ${sql}` : sql, params);
    });
    if (explain)
      return { plan: chosen, scopeSize: Number(scopeSize), lines: rows.map((r) => r['QUERY PLAN'] ?? '') };
    const tree = schema.tree;
    const hits = rows.map((row) => {
      const hit: SearchHit = {
        id: row.id,
        label: row.leaf === null ? null : tree.path(tree.depth - 1, Number(row.leaf)),
        score: 1 - Number(row.distance),
      };
      if (row.source !== null) hit.source = row.source;
      if (row.thumbnail !== null) hit.thumbnail = row.thumbnail;
      return hit;
    });
    return {
      hits,
      plan: chosen,
      scopeSize: Number(scopeSize),
      index: chosen === 'exact' ? null : (partial ?? 'contrastive_items_hnsw'),
    };
  }

  /**
   * Reads the whole store into an in-memory {@link EmbeddingIndex} (for predict, dedupe, serve,
   * eval), its items in id order: integer ids numerically first (the order `contrastive index`
   * numbers a dataset's rows in, so the index equals the file `index --out` writes of the same
   * data), then the others by code unit (as JavaScript sorts).
   */
  async loadIndex(): Promise<EmbeddingIndex> {
    const schema = await this.requireSchema('PostgresStore.loadIndex');
    const rows = await this.client.query<ItemRow & { e: string }>(
      `SELECT ${ITEM_COLUMNS}, embedding::text AS e FROM contrastive_items
       ORDER BY CASE WHEN id ~ '^[0-9]{1,15}$' THEN id::bigint END NULLS LAST, id COLLATE "C"`,
    );
    const vectors = new Float32Array(rows.length * schema.dim);
    rows.forEach((row, i) => {
      vectors.set(parseVector(row.e), i * schema.dim);
    });
    return EmbeddingIndex.fromSnapshot({
      ...schema,
      ids: rows.map((r) => r.id),
      leaves: Int32Array.from(rows, (r) => (r.leaf === null ? -1 : Number(r.leaf))),
      sources: rows.map((r) => r.source ?? undefined),
      thumbnails: rows.map((r) => r.thumbnail ?? undefined),
      vectors,
      approximate: null,
    });
  }

  /** Runs SQL on the store's connection (for tools and tests: the schema is in `src/store/migrations/`). */
  async query<T = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<T[]> {
    return this.client.query<T>(sql, params);
  }

  private async requireSchema(fn: string): Promise<StoreSchema> {
    const schema = await this.schema();
    if (!schema)
      throw new ContrastiveError(
        `${fn}: the store ${this.url} is empty; write an index into it first (contrastive store import <index> --store ${this.url}).`,
      );
    if (fn === 'PostgresStore.search' && !this.readySeen) {
      const [meta] = await this.client.query<MetaRow>('SELECT state, expected_items FROM contrastive_meta');
      if (meta.state !== 'ready') {
        const [{ n }] = await this.client.query<{ n: number }>(
          'SELECT count(*)::int AS n FROM contrastive_items',
        );
        throw new ContrastiveError(
          `${fn}: the store ${this.url} is still being built (${n} of ${meta.expected_items ?? '?'} items): finish the import or the workers (contrastive store import / contrastive worker) before searching it.`,
        );
      }
      this.readySeen = true;
    }
    return schema;
  }

  private async schemaIn(tx: SqlRunner): Promise<StoreSchema | null> {
    const rows = await tx.query<MetaRow>('SELECT * FROM contrastive_meta');
    if (rows.length === 0) return null;
    const meta = rows[0];
    const treeJson = typeof meta.tree === 'string' ? (JSON.parse(meta.tree) as LabelTreeJSON) : meta.tree;
    return {
      dim: Number(meta.dim),
      space: meta.space,
      model:
        meta.model_checksum === null
          ? null
          : { checksum: meta.model_checksum, source: meta.model_source ?? '(unknown)' },
      tree: LabelTree.fromSerialized(treeJson),
    };
  }

  /** Inserts rows `[start, end)` of a snapshot in one statement; resolves to how many were new. */
  private async insertRows(
    tx: SqlRunner,
    snapshot: IndexSnapshot,
    start: number,
    end: number,
    ifExists: 'error' | 'skip',
    fn = 'PostgresStore.write',
  ): Promise<number> {
    const { tree, dim } = snapshot;
    const columns: unknown[][] = [[], [], [], [], [], [], []];
    const pathOfLeaf = new Map<number, [string, string]>();
    for (let row = start; row < end; row++) {
      const leaf = snapshot.leaves[row];
      let paths = pathOfLeaf.get(leaf);
      if (!paths && leaf >= 0) {
        const segments = tree.path(tree.depth - 1, leaf);
        paths = [ltreePath(segments), segments.join(tree.separator)];
        pathOfLeaf.set(leaf, paths);
      }
      columns[0].push(snapshot.ids[row]);
      columns[1].push(leaf < 0 ? null : leaf);
      columns[2].push(paths?.[0] ?? null);
      columns[3].push(paths?.[1] ?? null);
      columns[4].push(snapshot.sources[row] ?? null);
      columns[5].push(snapshot.thumbnails[row] ?? null);
      columns[6].push(vectorLiteral(snapshot.vectors.subarray(row * dim, (row + 1) * dim)));
    }
    let inserted: { id: string }[];
    try {
      inserted = await tx.query<{ id: string }>(
        `INSERT INTO contrastive_items (id, leaf, path, label_path, source, thumbnail, embedding)
         SELECT i, l, p::ltree, t, s, th, e::vector
         FROM unnest($1::text[], $2::int[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[]) AS u(i, l, p, t, s, th, e)
         ON CONFLICT (id) DO NOTHING RETURNING id`,
        columns,
      );
    } catch (error) {
      const e = error as { code?: string; message?: string };
      if (e?.code === '22000' || /dimensions/.test(String(e?.message)))
        throw new ContrastiveError(
          `${fn}: the store ${this.url} holds ${(await this.schema())?.dim}-dimensional embeddings, but these have ${dim} (${e.message}); write them to another --store.`,
        );
      throw error;
    }
    if (ifExists === 'error' && inserted.length !== end - start) {
      const fresh = new Set(inserted.map((r) => r.id));
      const clash = (columns[0] as string[]).find((id) => !fresh.has(id));
      throw new ContrastiveError(
        `${fn}: items[${(columns[0] as string[]).indexOf(clash!)}].id ${JSON.stringify(clash)} must be new, but the store ${this.url} already holds it; nothing of this call was written (remove it first, or add with ifExists: 'skip').`,
      );
    }
    return inserted.length;
  }
}

interface ItemRow {
  id: string;
  leaf: number | null;
  source: string | null;
  thumbnail: string | null;
  distance: number | string;
}

/** Refuses to mix models, spaces, dimensions or trees in one store. */
function checkSameSchema(url: string, stored: StoreSchema, given: StoreSchema, fn: string): void {
  if (stored.dim !== given.dim)
    throw new ContrastiveError(
      `${fn}: the store ${url} holds ${stored.dim}-dimensional embeddings, but these have ${given.dim}; write them to another --store (a store holds one model's embeddings).`,
    );
  if (stored.space !== given.space)
    throw new ContrastiveError(
      `${fn}: the store ${url} holds ${stored.space} embeddings, but these are ${given.space} embeddings; write them to another --store or index with --space ${stored.space}.`,
    );
  if ((stored.model?.checksum ?? null) !== (given.model?.checksum ?? null))
    throw new ContrastiveError(
      `${fn}: the store ${url} was written by the model from ${stored.model?.source ?? '(no model recorded)'} (checksum ${stored.model?.checksum.slice(0, 12) ?? 'none'}), but these embeddings come from ${given.model?.source ?? '(no model recorded)'} (checksum ${given.model?.checksum.slice(0, 12) ?? 'none'}); write them to another --store.`,
    );
  if (JSON.stringify(stored.tree.toJSON()) !== JSON.stringify(given.tree.toJSON()))
    throw new ContrastiveError(
      `${fn}: the store ${url} was written with another label tree (levels ${stored.tree.levelNames.join('/')}, ${stored.tree.numClasses()} leaves) than these items (${given.tree.levelNames.join('/')}, ${given.tree.numClasses()} leaves); write them to another --store.`,
    );
}

/** A row as pgvector's text form; float32 values print (and parse back) exactly. */
/** The partial HNSW index of a node. */
function nodeIndexName(level: number, node: number): string {
  return `contrastive_items_hnsw_n${level}_${node}`;
}

/** An ltree path as an SQL literal; escaped labels hold only letters, digits and `_`, so this is safe to inline. */
function ltreeLiteral(path: string): string {
  if (!/^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$/.test(path))
    throw new ContrastiveError(`PostgresStore: ${JSON.stringify(path)} is not an escaped ltree path.`);
  return `'${path}'::ltree`;
}

function vectorLiteral(row: ArrayLike<number>): string {
  let out = '[';
  for (let j = 0; j < row.length; j++) out += (j ? ',' : '') + row[j];
  return `${out}]`;
}

function parseVector(text: string): Float32Array {
  return Float32Array.from(text.slice(1, -1).split(','), Number);
}
