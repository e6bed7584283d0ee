import * as tf from '@tensorflow/tfjs-core';
import { ContrastiveError } from '../errors.js';
import { topK } from '../eval/neighbors.js';
import type { LabelPath, LabelTree } from '../hierarchy/labelTree.js';
import { HnswGraph, type HnswOptions } from './hnsw.js';
import { resolveLevel, resolveNode, type TreeLayout, treeLayout } from './treeNodes.js';
import { type EmbeddingsLike, normalizedRows, rowDot } from './vectors.js';

/**
 * Which output of the trained model an index holds: the backbone's (what the papers evaluate, and
 * the default) or the projection head's (the space the loss was computed in).
 */
export type EmbeddingSpace = 'backbone' | 'head';

/** The model that made an index's vectors, so queries are embedded the same way. */
export interface ModelIdentity {
  /** SHA-256 (hex) of the model's files (topology and weights; with the head's for `'head'`). */
  checksum: string;
  /** Where the model was loaded from (a run folder), for messages. */
  source: string;
}

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

/** Neighbours as storage rows: what {@link predictPath} and {@link findDuplicates} consume. */
export interface RowNeighbors {
  k: number;
  /** `[Q, k]` storage rows, `-1` where fewer than k rows exist. */
  rows: Int32Array;
  /** `[Q, k]` cosine similarities (`-Infinity` padding). */
  similarities: Float32Array;
}

/** Everything the file format stores (see `docs/index-format.md`). */
export interface IndexSnapshot {
  dim: number;
  space: EmbeddingSpace;
  model: ModelIdentity | null;
  tree: LabelTree;
  ids: string[];
  /** Leaf id per item, `-1` when unlabelled. */
  leaves: Int32Array;
  sources: (string | undefined)[];
  thumbnails: (string | undefined)[];
  /** `[N, dim]` L2-normalised rows. */
  vectors: Float32Array;
  /** HNSW settings when the index searches approximately, else null. */
  approximate: Required<HnswOptions> | null;
}

/**
 * The Node-only file side of the index (`node:fs`, `node:crypto`), imported on first save/load
 * through a variable so that bundlers of the browser entry (`tfjs-contrastive/web`) do not follow it.
 */
const NODE_INDEX_FILE = './indexFile.js';

/** The rows sorted by depth-first leaf order, and each node's slice: built lazily, dropped on change. */
interface SearchView {
  /** `order[pos]` = storage row at layout position pos. */
  order: Int32Array;
  /** `[dim, N]`: the rows in layout order, transposed once so every block is a plain product. */
  transposed: tf.Tensor2D;
  /** `nodeStart[l][id]`, `nodeEnd[l][id]`: the node's items are positions `[start, end)`. */
  nodeStart: Int32Array[];
  nodeEnd: Int32Array[];
  /** Positions `[labelledEnd, N)` hold the unlabelled items. */
  labelledEnd: number;
}

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
  private view: SearchView | null = null;
  private readonly prototypeCache = new Map<
    number,
    { vectors: Float32Array; counts: Int32Array; sums: Float32Array }
  >();
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
  ) {
    this.layout = treeLayout(tree);
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
    return new EmbeddingIndex(options.tree, options.dim, space, options.model ?? null);
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
    scope: { level: number; id: number } | null = null,
    excluded: ReadonlySet<number> = new Set(),
    excludedPerQuery?: (query: number) => number | undefined,
  ): RowNeighbors {
    const view = this.searchView();
    const start = scope ? view.nodeStart[scope.level][scope.id] : 0;
    const end = scope ? view.nodeEnd[scope.level][scope.id] : this.count;
    const rows = new Int32Array(numQueries * k).fill(-1);
    const similarities = new Float32Array(numQueries * k).fill(Number.NEGATIVE_INFINITY);
    if (end <= start || numQueries === 0) return { k, rows, similarities };
    const excludedPositions = this.positionsOf(excluded, start, end);
    const heapIdx = new Int32Array(k);
    const heapSim = new Float32Array(k);
    this.forEachScopeRow(queries, numQueries, start, end, (q, row) => {
      for (const p of excludedPositions) row[p] = Number.NEGATIVE_INFINITY;
      const own = excludedPerQuery?.(q);
      if (own !== undefined) {
        const p = this.positionOf(own) - start;
        if (p >= 0 && p < row.length) row[p] = Number.NEGATIVE_INFINITY;
      }
      heapIdx.fill(-1);
      heapSim.fill(Number.NEGATIVE_INFINITY);
      topK(row, k, heapIdx, heapSim);
      for (let r = 0; r < k && heapIdx[r] >= 0; r++) {
        rows[q * k + r] = view.order[start + heapIdx[r]];
        similarities[q * k + r] = heapSim[r];
      }
    });
    return { k, rows, similarities };
  }

  /**
   * Builds (or rebuilds) the HNSW graph; afterwards {@link search} is approximate by default.
   * Needs the `usearch` package (loaded on first use).
   */
  async buildApproximate(options: HnswOptions = {}): Promise<void> {
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
  prototypes(level: number | string): { vectors: Float32Array; counts: Int32Array; sums: Float32Array } {
    const l = resolveLevel(this.tree, level, 'EmbeddingIndex.prototypes: level');
    const cached = this.prototypeCache.get(l);
    if (cached) return cached;
    const numNodes = this.tree.levelSizes[l];
    const sums = new Float32Array(numNodes * this.dim);
    const counts = new Int32Array(numNodes);
    for (let row = 0; row < this.count; row++) {
      const leaf = this.leaves[row];
      if (leaf < 0) continue;
      const node = this.ancestor(leaf, l);
      counts[node]++;
      for (let j = 0; j < this.dim; j++) sums[node * this.dim + j] += this.vectors[row * this.dim + j];
    }
    const vectors = sums.slice();
    for (let node = 0; node < numNodes; node++) {
      let norm = 0;
      for (let j = 0; j < this.dim; j++) norm += vectors[node * this.dim + j] ** 2;
      if (norm > 0) for (let j = 0; j < this.dim; j++) vectors[node * this.dim + j] /= Math.sqrt(norm);
    }
    const out = { vectors, counts, sums };
    this.prototypeCache.set(l, out);
    return out;
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
    let id = leaf;
    for (let l = this.tree.depth - 1; l > level; l--) id = this.tree.parent(l, id);
    return id;
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
    };
  }

  /** Rebuilds an index from {@link snapshot}'s form (the HNSW graph too, when it had one). */
  static async fromSnapshot(snapshot: IndexSnapshot): Promise<EmbeddingIndex> {
    const index = EmbeddingIndex.create(snapshot);
    const n = snapshot.ids.length;
    index.reserve(n);
    index.vectors.set(snapshot.vectors.subarray(0, n * snapshot.dim));
    for (let row = 0; row < n; row++) {
      const id = snapshot.ids[row];
      if (index.rowOfId.has(id))
        throw new ContrastiveError(`EmbeddingIndex.fromSnapshot: id ${JSON.stringify(id)} appears twice.`);
      const leaf = snapshot.leaves[row];
      if (!(Number.isInteger(leaf) && leaf >= -1 && leaf < snapshot.tree.numClasses()))
        throw new ContrastiveError(
          `EmbeddingIndex.fromSnapshot: item ${JSON.stringify(id)} has leaf ${leaf}, not a leaf of the tree.`,
        );
      index.ids.push(id);
      index.leaves.push(leaf);
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

  /** Writes the index to one file (see `docs/index-format.md`), atomically. */
  async save(path: string): Promise<void> {
    const { writeIndexFile } = (await import(NODE_INDEX_FILE)) as typeof import('./indexFile.js');
    await writeIndexFile(path, this.snapshot());
  }

  /** Reads a file written by {@link save}; a newer, older or corrupt file is an error naming it. */
  static async load(path: string): Promise<EmbeddingIndex> {
    const { readIndexFile } = (await import(NODE_INDEX_FILE)) as typeof import('./indexFile.js');
    return EmbeddingIndex.fromSnapshot(await readIndexFile(path));
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
    scope: { level: number; id: number } | null,
    excluded: ReadonlySet<number>,
  ): SearchResult[] {
    const view = this.searchView();
    const start = scope ? view.nodeStart[scope.level][scope.id] : 0;
    const end = scope ? view.nodeEnd[scope.level][scope.id] : view.labelledEnd;
    // the groups: nodes of `level` whose slice lies inside the scope (unlabelled items belong to none)
    const groups: number[] = [];
    for (let id = 0; id < this.tree.levelSizes[level]; id++) {
      const s = view.nodeStart[level][id];
      const e = view.nodeEnd[level][id];
      if (e > s && s >= start && e <= end) groups.push(id);
      else if (e > s && scope && scope.level > level && s <= start && e >= end) groups.push(id);
    }
    const results: SearchResult[] = Array.from({ length: numQueries }, () => ({
      hits: [],
      groups: [],
      approximate: false,
    }));
    if (end <= start || numQueries === 0) return results;
    const excludedPositions = this.positionsOf(excluded, start, end);
    const heapIdx = new Int32Array(groupSize);
    const heapSim = new Float32Array(groupSize);
    this.forEachScopeRow(data, numQueries, start, end, (q, row) => {
      for (const p of excludedPositions) row[p] = Number.NEGATIVE_INFINITY;
      const found: SearchGroup[] = [];
      for (const id of groups) {
        const s = Math.max(view.nodeStart[level][id], start) - start;
        const e = Math.min(view.nodeEnd[level][id], end) - start;
        heapIdx.fill(-1);
        heapSim.fill(Number.NEGATIVE_INFINITY);
        topK(row.subarray(s, e), groupSize, heapIdx, heapSim);
        const hits: SearchHit[] = [];
        for (let r = 0; r < groupSize && heapIdx[r] >= 0; r++) {
          hits.push({ ...this.itemAt(view.order[start + s + heapIdx[r]]), score: heapSim[r] });
        }
        if (hits.length > 0) found.push({ node: this.tree.path(level, id), score: hits[0].score, hits });
      }
      found.sort((a, b) => b.score - a.score);
      const kept = found.slice(0, k);
      results[q] = { hits: kept.flatMap((g) => g.hits), groups: kept, approximate: false };
    });
    return results;
  }

  /**
   * Runs `visit(q, similarities to positions [start, end))` for every query, one block of queries
   * at a time (`[block, D] x [D, end - start]`, the blocking of `forEachSimilarityRow`, on the
   * cached transposed matrix: stored rows and queries are already unit length).
   */
  private forEachScopeRow(
    queries: Float32Array,
    numQueries: number,
    start: number,
    end: number,
    visit: (query: number, row: Float32Array) => void,
  ): void {
    const view = this.searchView();
    const width = end - start;
    // a block's similarities are blockSize x width floats: keep them near 16M (64 MB)
    const blockSize = Math.max(1, Math.min(256, Math.floor(2 ** 24 / Math.max(width, 1))));
    const database =
      start === 0 && end === this.count
        ? view.transposed
        : tf.slice(view.transposed, [0, start], [this.dim, width]);
    try {
      for (let first = 0; first < numQueries; first += blockSize) {
        const size = Math.min(blockSize, numQueries - first);
        const block = tf.tidy(() =>
          tf.matMul(
            tf.tensor2d(queries.subarray(first * this.dim, (first + size) * this.dim), [size, this.dim]),
            database,
          ),
        );
        const sims = block.dataSync() as Float32Array;
        block.dispose();
        for (let r = 0; r < size; r++) visit(first + r, sims.subarray(r * width, (r + 1) * width));
      }
    } finally {
      if (database !== view.transposed) database.dispose();
    }
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

  private positionsOf(rows: ReadonlySet<number>, start: number, end: number): number[] {
    const out: number[] = [];
    for (const row of rows) {
      const p = this.positionOf(row);
      if (p >= start && p < end) out.push(p - start);
    }
    return out;
  }

  private positionOfRow: Int32Array | null = null;

  private positionOf(row: number): number {
    if (!this.positionOfRow) {
      const view = this.searchView();
      this.positionOfRow = new Int32Array(this.count);
      view.order.forEach((r, p) => {
        this.positionOfRow![r] = p;
      });
    }
    return this.positionOfRow[row];
  }

  private searchView(): SearchView {
    if (this.view) return this.view;
    const n = this.count;
    const numLeaves = this.tree.numClasses();
    // counting sort by depth-first leaf rank; unlabelled rows go last, storage order kept inside a bucket
    const bucketStart = new Int32Array(numLeaves + 2);
    const bucketOf = (row: number) =>
      this.leaves[row] < 0 ? numLeaves : this.layout.leafRank[this.leaves[row]];
    for (let row = 0; row < n; row++) bucketStart[bucketOf(row) + 1]++;
    for (let b = 1; b < bucketStart.length; b++) bucketStart[b] += bucketStart[b - 1];
    const fill = bucketStart.slice();
    const order = new Int32Array(n);
    for (let row = 0; row < n; row++) order[fill[bucketOf(row)]++] = row;
    const sorted = new Float32Array(n * this.dim);
    order.forEach((row, p) => {
      sorted.set(this.vectors.subarray(row * this.dim, (row + 1) * this.dim), p * this.dim);
    });
    const nodeStart = this.layout.leafStart.map((starts) => starts.map((s) => bucketStart[s]));
    const nodeEnd = this.layout.leafEnd.map((ends) => ends.map((e) => bucketStart[e]));
    this.view = {
      order,
      transposed: tf.tidy(() => tf.transpose(tf.tensor2d(sorted, [n, this.dim]))),
      nodeStart,
      nodeEnd,
      labelledEnd: bucketStart[numLeaves],
    };
    return this.view;
  }

  private invalidate(): void {
    this.view?.transposed.dispose();
    this.view = null;
    this.positionOfRow = null;
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
