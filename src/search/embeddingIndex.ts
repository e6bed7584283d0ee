import { ContrastiveError } from '../errors.js';
import type { LabelPath, LabelTree } from '../hierarchy/labelTree.js';
import { HnswGraph, type HnswOptions } from './hnsw.js';
import {
  checkSnapshot,
  type EmbeddingSpace,
  type IndexSnapshot,
  isNodePath,
  type ModelIdentity,
} from './indexSchema.js';
import { leafAncestor, type NodePrototypes, nodePrototypes } from './prototypes.js';
import { resolveLevel, resolveNode, type TreeLayout, type TreeNodeRef, treeLayout } from './treeNodes.js';
import { type RowNeighbors, TreeOrderedSearch } from './treeSearch.js';
import { type EmbeddingsLike, normalizedRows, rowDot } from './vectors.js';

export type { EmbeddingSpace, IndexSnapshot, ModelIdentity } from './indexSchema.js';
export type { RowNeighbors } from './treeSearch.js';

/** An item to add: its id, and optionally its label path, source file and thumbnail. */
export interface IndexItemInput {
  /** Unique id; numbers are stored as their decimal string. */
  id: string | number;
  /** Label path (`'Clothes/Tops/Shirt'` or segments); `null`/absent for an unlabelled item. */
  label?: LabelPath | null;
  /** Where the item came from (an image file, a table row), shown with results. */
  source?: string;
  /** A small picture (e.g. a `data:image/png;base64,...` URL), shown with results. */
  thumbnail?: string;
}

/** A stored item. */
export interface IndexItem {
  id: string;
  /** Label path segments, coarsest first; `null` when unlabelled. */
  label: string[] | null;
  source?: string;
  thumbnail?: string;
}

/** Options of {@link EmbeddingIndex.create}. */
export interface EmbeddingIndexOptions {
  /** The label tree of the items (a run's `labelTree.json`). */
  tree: LabelTree;
  /** Embedding dimension D. */
  dim: number;
  /** Which space the vectors are in. Default `'backbone'`. */
  space?: EmbeddingSpace;
  /** The model that made the vectors (see {@link ModelIdentity}); `null` when unknown. */
  model?: ModelIdentity | null;
  /**
   * Nodes of `tree` the model never saw in training (paths, coarsest first): a catalogue's own
   * classes beyond the run's tree. They are searched, grouped and placed like any other node.
   */
  unseen?: readonly (readonly string[])[];
}

/** A query: a vector, or the id of an item of the index (which is then left out of its own results). */
export type SearchQuery = { vector: ArrayLike<number> } | { id: string | number } | ArrayLike<number>;

/** Options of {@link EmbeddingIndex.search}. */
export interface SearchOptions {
  /** Results per query (or groups, with `groupBy`). Default 10; more than the index holds is the index's size. */
  k?: number;
  /** Search only inside this node of the tree (`'Clothes/Tops'`); exact, never a filtered global top-k. */
  within?: LabelPath;
  /** Group results by their node at this level (number or level name): the best `groupSize` hits of the `k` best groups. */
  groupBy?: number | string;
  /** Hits per group with `groupBy`. Default 3 (capped, like `k`, at the index's size). */
  groupSize?: number;
  /** Ids never returned. */
  exclude?: Iterable<string | number>;
  /**
   * Use the HNSW graph (see {@link EmbeddingIndex.buildApproximate}). Default: whether the index
   * has one. `within` and `groupBy` always search exactly.
   */
  approximate?: boolean;
}

/** One result. */
export interface SearchHit extends IndexItem {
  /** Cosine similarity to the query. */
  score: number;
}

/** A group of results (with `groupBy`). */
export interface SearchGroup {
  /** The node's path (down to the `groupBy` level). */
  node: string[];
  /** Best score in the group. */
  score: number;
  hits: SearchHit[];
}

/** {@link EmbeddingIndex.search}'s result. */
export interface SearchResult {
  /** Best first (with `groupBy`: every group's hits, groups best first). */
  hits: SearchHit[];
  groups?: SearchGroup[];
  /** Whether the HNSW graph produced the candidates. */
  approximate: boolean;
}

/**
 * The Node-only file side of the index (`node:fs`, `node:crypto`), imported on first save/load
 * through a variable so that bundlers of the browser entry (`tfjs-contrastive/web`) do not follow it.
 */
const NODE_INDEX_FILE = './indexFile.js';

/**
 * A searchable catalogue of embeddings with their label tree: exact cosine search by blocked matrix
 * products (on the active tfjs backend; call `await useBackend()` first), optional approximate
 * search with an HNSW graph, search restricted exactly to a subtree, results grouped by a level,
 * per-node prototypes, and a versioned, checksummed file format.
 *
 * @example
 * ```ts
 * const index = EmbeddingIndex.create({ tree, dim: 128 });
 * index.add(items, embeddings);                       // items: { id, label?, source? }[]
 * const { hits } = index.search({ id: '17' }, { k: 10, within: 'Clothes/Tops' });
 * await index.save('catalogue.index');
 * ```
 */
export class EmbeddingIndex {
  private vectors = new Float32Array(0);
  private count = 0;
  private readonly ids: string[] = [];
  private readonly leaves: number[] = [];
  private readonly sources: (string | undefined)[] = [];
  private readonly thumbnails: (string | undefined)[] = [];
  /** Stable numeric key of each row (the HNSW graph's key; rows move on removal, keys do not). */
  private readonly keys: number[] = [];
  private readonly rowOfId = new Map<string, number>();
  private readonly rowOfKey = new Map<number, number>();
  private nextKey = 0;
  private engine: TreeOrderedSearch | null = null;
  private readonly prototypeCache = new Map<number, NodePrototypes>();
  private graph: HnswGraph | null = null;
  private readonly layout: TreeLayout;

  private constructor(
    /** The label tree of the items. */
    readonly tree: LabelTree,
    /** Embedding dimension D. */
    readonly dim: number,
    /** Which model output the vectors are. */
    readonly space: EmbeddingSpace,
    /** The model that made the vectors, or null when unknown. */
    readonly model: ModelIdentity | null,
    unseen: readonly (readonly string[])[],
  ) {
    this.layout = treeLayout(tree);
    this.unseenPaths = unseen.map((path) => [...path]);
    this.unseenKeys = new Set(this.unseenPaths.map((path) => path.join('\u0000')));
  }

  private readonly unseenPaths: string[][];
  private readonly unseenKeys: Set<string>;

  /** Nodes of the tree the model never saw in training (paths, coarsest first; empty for a run's own tree). */
  get unseenNodes(): string[][] {
    return this.unseenPaths.map((path) => [...path]);
  }

  /** Whether a node (its path, coarsest first) is one the model never saw in training. */
  isUnseen(path: readonly string[]): boolean {
    return this.unseenKeys.has(path.join('\u0000'));
  }

  /** An empty index. */
  static create(options: EmbeddingIndexOptions): EmbeddingIndex {
    const fn = 'EmbeddingIndex.create';
    if (!(Number.isInteger(options.dim) && options.dim > 0))
      throw new ContrastiveError(`${fn}: dim must be an integer > 0, but got ${options.dim}.`);
    const space = options.space ?? 'backbone';
    if (space !== 'backbone' && space !== 'head')
      throw new ContrastiveError(
        `${fn}: space must be 'backbone' or 'head', but got ${JSON.stringify(space)}.`,
      );
    const unseen = options.unseen ?? [];
    for (const path of unseen)
      if (!isNodePath(options.tree, path))
        throw new ContrastiveError(
          `${fn}: unseen must list nodes of the tree, but ${JSON.stringify(path)} is not one.`,
        );
    return new EmbeddingIndex(options.tree, options.dim, space, options.model ?? null, unseen);
  }

  /** Number of items. */
  get size(): number {
    return this.count;
  }

  /** Whether approximate search is on (an HNSW graph is built). */
  get approximate(): boolean {
    return this.graph !== null;
  }

  /**
   * Adds items with their embeddings (`[items.length, dim]`; stored L2-normalised). Ids must be
   * new; labels must be paths of the index's tree. Nothing is added when any row is invalid.
   */
  add(items: readonly IndexItemInput[], embeddings: EmbeddingsLike): void {
    const fn = 'EmbeddingIndex.add';
    const { data, rows } = normalizedRows(embeddings, this.dim, fn);
    if (rows !== items.length) {
      throw new ContrastiveError(
        `${fn}: embeddings must have one row per item (${items.length}), but got ${rows}.`,
      );
    }
    const leafCache = new Map<string, number>();
    const seen = new Set<string>();
    const prepared = items.map((item, i) => {
      const id = itemId(item?.id, `${fn}: items[${i}].id`);
      if (this.rowOfId.has(id) || seen.has(id))
        throw new ContrastiveError(
          `${fn}: items[${i}].id ${JSON.stringify(id)} must be unique, but it is already in the index.`,
        );
      seen.add(id);
      return { id, leaf: this.leafOf(item.label, leafCache, `${fn}: items[${i}].label`), item };
    });
    this.reserve(this.count + rows);
    this.vectors.set(data, this.count * this.dim);
    const newKeys: number[] = [];
    for (const { id, leaf, item } of prepared) {
      const row = this.count++;
      const key = this.nextKey++;
      this.ids[row] = id;
      this.leaves[row] = leaf;
      this.sources[row] = item.source;
      this.thumbnails[row] = item.thumbnail;
      this.keys[row] = key;
      this.rowOfId.set(id, row);
      this.rowOfKey.set(key, row);
      newKeys.push(key);
    }
    this.graph?.add(newKeys, data);
    this.invalidate();
  }

  /** Removes items by id; an unknown id is an error (and nothing is removed). Returns how many. */
  remove(ids: Iterable<string | number>): number {
    const fn = 'EmbeddingIndex.remove';
    const rows = [...ids].map((raw, i) => {
      const id = itemId(raw, `${fn}: ids[${i}]`);
      const row = this.rowOfId.get(id);
      if (row === undefined) throw this.unknownId(fn, `ids[${i}]`, id);
      return id;
    });
    const removedKeys: number[] = [];
    for (const id of new Set(rows)) {
      const row = this.rowOfId.get(id)!;
      const last = this.count - 1;
      removedKeys.push(this.keys[row]);
      this.rowOfId.delete(id);
      this.rowOfKey.delete(this.keys[row]);
      if (row !== last) {
        // the last row moves into the hole, so storage stays dense
        this.vectors.copyWithin(row * this.dim, last * this.dim, (last + 1) * this.dim);
        this.ids[row] = this.ids[last];
        this.leaves[row] = this.leaves[last];
        this.sources[row] = this.sources[last];
        this.thumbnails[row] = this.thumbnails[last];
        this.keys[row] = this.keys[last];
        this.rowOfId.set(this.ids[row], row);
        this.rowOfKey.set(this.keys[row], row);
      }
      for (const list of [this.ids, this.leaves, this.sources, this.thumbnails, this.keys])
        list.length = last;
      this.count = last;
    }
    this.graph?.remove(removedKeys);
    this.invalidate();
    return removedKeys.length;
  }

  /** Whether an item with this id is stored. */
  has(id: string | number): boolean {
    return this.rowOfId.has(String(id));
  }

  /** The stored item (an unknown id is an error naming it). */
  item(id: string | number): IndexItem {
    return this.itemAt(this.rowOf('EmbeddingIndex.item', 'id', id));
  }

  /** The stored (L2-normalised) embedding of an item, as a copy. */
  embedding(id: string | number): Float32Array {
    const row = this.rowOf('EmbeddingIndex.embedding', 'id', id);
    return this.vectors.slice(row * this.dim, (row + 1) * this.dim);
  }

  /** Every item, in storage order. */
  items(): IndexItem[] {
    return Array.from({ length: this.count }, (_, row) => this.itemAt(row));
  }

  /**
   * Searches one query. A `{id}` query uses that item's stored embedding and leaves the item out of
   * its results. Bad input (k <= 0, a `within` path not in the tree, a wrong-length or non-finite
   * vector, an unknown id) is a {@link ContrastiveError} naming the field.
   */
  search(query: SearchQuery, options: SearchOptions = {}): SearchResult {
    const fn = 'EmbeddingIndex.search';
    if (query !== null && typeof query === 'object' && 'id' in query) {
      const id = itemId(query.id, `${fn}: query.id`);
      const row = this.rowOf(fn, 'query.id', id);
      const vector = this.vectors.subarray(row * this.dim, (row + 1) * this.dim);
      return this.searchBatch([vector], { ...options, exclude: [...(options.exclude ?? []), id] })[0];
    }
    const vector = query !== null && typeof query === 'object' && 'vector' in query ? query.vector : query;
    if (vector === null || typeof vector !== 'object' || typeof vector.length !== 'number') {
      throw new ContrastiveError(
        `${fn}: query must be { vector }, { id } or an array of ${this.dim} numbers, but got ${JSON.stringify(query)?.slice(0, 80)}.`,
      );
    }
    if (vector.length !== this.dim) {
      throw new ContrastiveError(
        `${fn}: query vector must have ${this.dim} values (the index's dimension), but got ${vector.length}.`,
      );
    }
    return this.searchBatch([Array.from(vector)], options, 'query vector')[0];
  }

  /** Searches many query vectors at once (one blocked matrix product per block of queries). */
  searchBatch(queries: EmbeddingsLike, options: SearchOptions = {}, field = 'queries'): SearchResult[] {
    const fn = 'EmbeddingIndex.search';
    const requestedK = options.k ?? 10;
    if (!(Number.isInteger(requestedK) && requestedK >= 1))
      throw new ContrastiveError(`${fn}: k must be an integer >= 1, but got ${requestedK}.`);
    const requestedGroupSize = options.groupSize ?? 3;
    if (!(Number.isInteger(requestedGroupSize) && requestedGroupSize >= 1))
      throw new ContrastiveError(`${fn}: groupSize must be an integer >= 1, but got ${requestedGroupSize}.`);
    // no query can have more results than there are items: a huge k costs what k = size costs
    const k = Math.min(requestedK, Math.max(1, this.count));
    const groupSize = Math.min(requestedGroupSize, Math.max(1, this.count));
    const scope =
      options.within === undefined ? null : resolveNode(this.tree, options.within, `${fn}: within`);
    const groupLevel =
      options.groupBy === undefined ? null : resolveLevel(this.tree, options.groupBy, `${fn}: groupBy`);
    const excluded = new Set<number>();
    let excludeIndex = 0;
    for (const raw of options.exclude ?? []) {
      const row = this.rowOfId.get(itemId(raw, `${fn}: exclude[${excludeIndex}]`));
      if (row !== undefined) excluded.add(row); // excluding an absent id is harmless
      excludeIndex++;
    }
    const { data, rows: numQueries } = normalizedRows(queries, this.dim, fn, field);
    if (options.approximate && !this.graph)
      throw new ContrastiveError(
        `${fn}: approximate must be false: this index has no HNSW graph (call buildApproximate first).`,
      );
    const useGraph = (options.approximate ?? this.graph !== null) && scope === null && groupLevel === null;
    if (useGraph) return this.approximateSearch(data, numQueries, k, excluded);
    if (groupLevel !== null)
      return this.groupedSearch(data, numQueries, k, groupSize, groupLevel, scope, excluded);
    const neighbors = this.exactNeighbors(data, numQueries, k, scope, excluded);
    return Array.from({ length: numQueries }, (_, q) => ({
      hits: this.hitsOf(neighbors, q),
      approximate: false,
    }));
  }

  /**
   * Exact k nearest storage rows of `[Q, dim]` L2-normalised queries, optionally inside one node
   * and without some rows. The search runs over the node's slice of the depth-first-ordered matrix,
   * so restricting never loses recall.
   */
  exactNeighbors(
    queries: Float32Array,
    numQueries: number,
    k: number,
    scope: TreeNodeRef | null = null,
    excluded: ReadonlySet<number> = new Set(),
    excludedPerQuery?: (query: number) => number | undefined,
  ): RowNeighbors {
    return this.searchEngine().neighbors(queries, numQueries, k, scope, excluded, excludedPerQuery);
  }

  /**
   * Builds (or rebuilds) the HNSW graph; afterwards {@link search} is approximate by default.
   * Needs the `usearch` package (loaded on first use).
   */
  async buildApproximate(options: HnswOptions = {}): Promise<void> {
    this.graphFrom = 'built';
    this.graph = await HnswGraph.build(
      this.dim,
      this.keys,
      this.vectors.subarray(0, this.count * this.dim),
      options,
    );
  }

  /** Drops the HNSW graph: search is exact again. */
  dropApproximate(): void {
    this.graph = null;
  }

  /**
   * Mean embedding of every node of `level` (L2-normalised; a node without items gets a zero row),
   * `[numClasses(level), dim]`, with the number of items behind each and the unnormalised sums
   * (so a caller can leave one item out of its own prototype).
   */
  prototypes(level: number | string): NodePrototypes {
    const l = resolveLevel(this.tree, level, 'EmbeddingIndex.prototypes: level');
    let cached = this.prototypeCache.get(l);
    if (!cached) {
      cached = nodePrototypes(this.tree, l, this.vectors, this.leaves, this.count, this.dim);
      this.prototypeCache.set(l, cached);
    }
    return cached;
  }

  /** The stored (unit) row of a storage row, as a view: do not modify. */
  rowVector(row: number): Float32Array {
    return this.vectors.subarray(row * this.dim, (row + 1) * this.dim);
  }

  /** Leaf id of a storage row (`-1` when unlabelled); rows are what {@link exactNeighbors} returns. */
  leafAt(row: number): number {
    return this.leaves[row];
  }

  /** Id of a storage row. */
  idAt(row: number): string {
    return this.ids[row];
  }

  /** Storage row of an id, or undefined. */
  rowOfItem(id: string | number): number | undefined {
    return this.rowOfId.get(String(id));
  }

  /** The stored item at a storage row. */
  itemAt(row: number): IndexItem {
    const leaf = this.leaves[row];
    const item: IndexItem = {
      id: this.ids[row],
      label: leaf < 0 ? null : this.tree.path(this.tree.depth - 1, leaf),
    };
    if (this.sources[row] !== undefined) item.source = this.sources[row];
    if (this.thumbnails[row] !== undefined) item.thumbnail = this.thumbnails[row];
    return item;
  }

  /** A copy of the `[N, dim]` stored rows, in storage order. */
  matrix(): Float32Array {
    return this.vectors.slice(0, this.count * this.dim);
  }

  /** The ancestor at `level` of a leaf. */
  ancestor(leaf: number, level: number): number {
    return leafAncestor(this.tree, leaf, level);
  }

  /** Checks that `model` made this index: a query embedded by another model would be compared with the wrong vectors. */
  checkModel(model: ModelIdentity, where = 'EmbeddingIndex.checkModel'): void {
    if (this.model && this.model.checksum !== model.checksum) {
      throw new ContrastiveError(
        `${where}: the index was built by the model from ${this.model.source} (checksum ${this.model.checksum.slice(0, 12)}), but the query model from ${model.source} has checksum ${model.checksum.slice(0, 12)}; embed queries with the index's model or rebuild the index.`,
      );
    }
  }

  /** Everything the file format stores. */
  snapshot(): IndexSnapshot {
    return {
      dim: this.dim,
      space: this.space,
      model: this.model,
      tree: this.tree,
      ids: this.ids.slice(0, this.count),
      leaves: Int32Array.from(this.leaves.slice(0, this.count)),
      sources: this.sources.slice(0, this.count),
      thumbnails: this.thumbnails.slice(0, this.count),
      vectors: this.matrix(),
      approximate: this.graph ? { ...this.graph.options } : null,
      unseen: this.unseenNodes,
    };
  }

  /** Rebuilds an index from {@link snapshot}'s form (the HNSW graph too, when it had one). */
  static async fromSnapshot(
    snapshot: IndexSnapshot,
    name = 'the snapshot',
    where = 'EmbeddingIndex.fromSnapshot',
  ): Promise<EmbeddingIndex> {
    checkSnapshot(snapshot, name, where);
    const index = EmbeddingIndex.create(snapshot);
    const n = snapshot.ids.length;
    index.reserve(n);
    index.vectors.set(snapshot.vectors.subarray(0, n * snapshot.dim));
    for (let row = 0; row < n; row++) {
      const id = snapshot.ids[row];
      index.ids.push(id);
      index.leaves.push(snapshot.leaves[row]);
      index.sources.push(snapshot.sources[row] ?? undefined);
      index.thumbnails.push(snapshot.thumbnails[row] ?? undefined);
      index.keys.push(row);
      index.rowOfId.set(id, row);
      index.rowOfKey.set(row, row);
    }
    index.count = n;
    index.nextKey = n;
    if (snapshot.approximate) await index.buildApproximate(snapshot.approximate);
    return index;
  }

  /**
   * Writes the index to one file (see `docs/index-format.md`), atomically; an approximate index
   * stores its HNSW graph too, so that {@link load} does not rebuild it.
   */
  async save(path: string): Promise<void> {
    const { writeIndexFile } = (await import(NODE_INDEX_FILE)) as typeof import('./indexFile.js');
    await writeIndexFile(
      path,
      this.snapshot(),
      this.graph ? { graph: this.graph, keys: this.keys.slice(0, this.count) } : null,
    );
  }

  /**
   * Where the HNSW graph came from: `'file'` (read and validated on load), `'built'` (by
   * {@link buildApproximate}, including a rebuild on load when the file held none or one that
   * failed validation), or null for an exact index.
   */
  get approximateFrom(): 'file' | 'built' | null {
    return this.graph ? this.graphFrom : null;
  }

  private graphFrom: 'file' | 'built' = 'built';

  /** Reads a file written by {@link save}; a newer, older or corrupt file is an error naming it. */
  static async load(path: string): Promise<EmbeddingIndex> {
    const { readIndexFile, readIndexGraph } = (await import(
      NODE_INDEX_FILE
    )) as typeof import('./indexFile.js');
    const snapshot = await readIndexFile(path);
    const index = await EmbeddingIndex.fromSnapshot(
      { ...snapshot, approximate: null },
      path,
      'EmbeddingIndex.load',
    );
    if (!snapshot.approximate) return index;
    const graph = await readIndexGraph(snapshot);
    if (!graph) {
      // none stored, or stale, forged or unreadable: made again from the vectors
      await index.buildApproximate(snapshot.approximate);
      return index;
    }
    const keys = snapshot.graph!.keys;
    index.rowOfKey.clear();
    keys.forEach((key, row) => {
      index.keys[row] = key;
      index.rowOfKey.set(key, row);
    });
    index.nextKey = keys.reduce((m, k) => Math.max(m, k + 1), 0);
    index.graph = graph;
    index.graphFrom = 'file';
    return index;
  }

  /** Frees the cached tensor (the index stays usable; the cache is rebuilt on the next search). */
  dispose(): void {
    this.invalidate();
  }

  private approximateSearch(
    data: Float32Array,
    numQueries: number,
    k: number,
    excluded: ReadonlySet<number>,
  ): SearchResult[] {
    const graph = this.graph!;
    // ask for extra candidates so that excluded items do not shorten the list
    const want = Math.min(Math.max(this.count, 1), k + excluded.size);
    const { keys } = graph.search(data, want);
    return Array.from({ length: numQueries }, (_, q) => {
      const hits: SearchHit[] = [];
      for (let r = 0; r < want && hits.length < k; r++) {
        const key = keys[q * want + r];
        const row = key < 0 ? undefined : this.rowOfKey.get(key);
        if (row === undefined || excluded.has(row)) continue;
        hits.push({ ...this.itemAt(row), score: rowDot(data, q, this.vectors, row, this.dim) });
      }
      hits.sort((a, b) => b.score - a.score);
      return { hits, approximate: true };
    });
  }

  private groupedSearch(
    data: Float32Array,
    numQueries: number,
    k: number,
    groupSize: number,
    level: number,
    scope: TreeNodeRef | null,
    excluded: ReadonlySet<number>,
  ): SearchResult[] {
    return this.searchEngine()
      .grouped(data, numQueries, k, groupSize, level, scope, excluded)
      .map((found) => {
        const groups: SearchGroup[] = found.map((g) => ({
          node: this.tree.path(level, g.node),
          score: g.similarities[0],
          hits: g.rows.map((row, r) => ({ ...this.itemAt(row), score: g.similarities[r] })),
        }));
        return { hits: groups.flatMap((g) => g.hits), groups, approximate: false };
      });
  }

  private hitsOf(neighbors: RowNeighbors, q: number): SearchHit[] {
    const hits: SearchHit[] = [];
    for (let r = 0; r < neighbors.k; r++) {
      const row = neighbors.rows[q * neighbors.k + r];
      if (row < 0) break;
      hits.push({ ...this.itemAt(row), score: neighbors.similarities[q * neighbors.k + r] });
    }
    return hits;
  }

  /** The tree-ordered exact search engine over the current rows (built on first use, dropped on change). */
  private searchEngine(): TreeOrderedSearch {
    this.engine ??= new TreeOrderedSearch(
      this.tree,
      this.layout,
      this.dim,
      this.count,
      this.vectors,
      this.leaves,
    );
    return this.engine;
  }

  private invalidate(): void {
    this.engine?.dispose();
    this.engine = null;
    this.prototypeCache.clear();
  }

  private reserve(rows: number): void {
    if (rows * this.dim <= this.vectors.length) return;
    const grown = new Float32Array(Math.max(rows, Math.ceil(this.count * 1.5)) * this.dim);
    grown.set(this.vectors.subarray(0, this.count * this.dim));
    this.vectors = grown;
  }

  private leafOf(label: LabelPath | null | undefined, cache: Map<string, number>, where: string): number {
    if (label === null || label === undefined) return -1;
    const text = typeof label === 'string' ? label : label.join('\u0000');
    let leaf = cache.get(text);
    if (leaf === undefined) {
      try {
        const row = this.tree.encode([label], { padToDepth: 'repeat-leaf' });
        leaf = row[this.tree.depth - 1];
      } catch (error) {
        throw new ContrastiveError(`${where}: ${(error as Error).message}`);
      }
      cache.set(text, leaf);
    }
    return leaf;
  }

  private rowOf(fn: string, field: string, raw: string | number): number {
    const id = itemId(raw, `${fn}: ${field}`);
    const row = this.rowOfId.get(id);
    if (row === undefined) throw this.unknownId(fn, field, id);
    return row;
  }

  private unknownId(fn: string, field: string, id: string): ContrastiveError {
    return new ContrastiveError(
      `${fn}: ${field} must be the id of an item in the index, but ${JSON.stringify(id)} is not one (${this.count} items${this.count ? `, e.g. ${JSON.stringify(this.ids[0])}` : ''}).`,
    );
  }
}

function itemId(raw: unknown, where: string): string {
  if (typeof raw === 'number' && Number.isFinite(raw)) return String(raw);
  if (typeof raw === 'string' && raw !== '') return raw;
  throw new ContrastiveError(
    `${where} must be a non-empty string or a number, but got ${JSON.stringify(raw)}.`,
  );
}
