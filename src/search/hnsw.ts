import { ContrastiveError } from '../errors.js';

/** Settings of the approximate (HNSW) search; see `docs/index-format.md`. */
export interface HnswOptions {
  /** Graph degree M. Default 16. */
  connectivity?: number;
  /** Candidate list size while inserting (efConstruction). Default 128. */
  expansionAdd?: number;
  /** Candidate list size while searching (ef); larger is slower and more exact. Default 128. */
  expansionSearch?: number;
}

/** The subset of usearch's `Index` this module uses (it ships its own types; this keeps our boundary small). */
interface UsearchIndex {
  add(keys: BigUint64Array, vectors: Float32Array, threads?: number): void;
  search(
    vectors: Float32Array,
    k: number,
    threads?: number,
  ): { keys: BigUint64Array; distances: Float32Array; counts?: BigUint64Array };
  remove(keys: BigUint64Array): number | number[];
  size(): number;
  contains(keys: BigUint64Array): boolean[];
  save(path: string): void;
  load(path: string): void;
}

interface UsearchModule {
  Index: new (config: {
    dimensions: number;
    metric: string;
    connectivity: number;
    expansion_add: number;
    expansion_search: number;
  }) => UsearchIndex;
  MetricKind: { Cos: string; IP: string };
}

let loaded: Promise<UsearchModule> | null = null;

/** Loads `usearch` once, on first use: exact search never needs it. */
async function loadUsearch(): Promise<UsearchModule> {
  loaded ??= (async () => {
    try {
      // a variable keeps bundlers (and the browser entry) from resolving the native module
      const name = 'usearch';
      const module = (await import(name)) as { default?: UsearchModule } & UsearchModule;
      return module.default ?? module;
    } catch (error) {
      loaded = null;
      throw new ContrastiveError(
        `approximate search needs the npm package usearch (prebuilt HNSW binaries), which failed to load: ${(error as Error).message}; install it (npm install usearch) or use exact search.`,
      );
    }
  })();
  return loaded;
}

/**
 * An HNSW graph over L2-normalised rows (inner product = cosine), keyed by the index's stable item
 * keys. Scores are recomputed exactly by the caller from the stored vectors; the graph only picks
 * candidates.
 */
export class HnswGraph {
  private constructor(
    private readonly graph: UsearchIndex,
    readonly dim: number,
    readonly options: Required<HnswOptions>,
  ) {}

  /** Builds a graph of `vectors` `[keys.length, dim]` (rows L2-normalised). */
  static async build(
    dim: number,
    keys: ArrayLike<number>,
    vectors: Float32Array,
    options: HnswOptions = {},
  ): Promise<HnswGraph> {
    const out = await HnswGraph.empty(dim, options);
    if (keys.length > 0) out.add(keys, vectors);
    return out;
  }

  /**
   * Reads a graph that {@link saveTo} wrote (usearch's own file format). The caller validates it
   * against the vectors it is meant for ({@link covers}) before searching with it.
   */
  static async loadFrom(path: string, dim: number, options: HnswOptions): Promise<HnswGraph> {
    const out = await HnswGraph.empty(dim, options);
    out.graph.load(path);
    return out;
  }

  /** Writes the graph to a file in usearch's format. */
  saveTo(path: string): void {
    this.graph.save(path);
  }

  /**
   * Whether this graph indexes exactly `keys` (no more, no fewer) and finds the `sample` rows of
   * `vectors` (`[keys.length, dim]`, unit rows) as their own nearest neighbour (or a row equal to
   * them): what a graph read from a file must show before it is used.
   */
  covers(keys: ArrayLike<number>, vectors: Float32Array, sample: number): boolean {
    if (this.graph.size() !== keys.length) return false;
    if (keys.length === 0) return true;
    const present = this.graph.contains(BigUint64Array.from(Array.from(keys, BigInt)));
    if (!present.every(Boolean)) return false;
    const rowOfKey = new Map<number, number>();
    for (let row = 0; row < keys.length; row++) rowOfKey.set(keys[row], row);
    const step = Math.max(1, Math.floor(keys.length / Math.max(1, sample)));
    for (let row = 0; row < keys.length; row += step) {
      const vector = vectors.subarray(row * this.dim, (row + 1) * this.dim);
      const found = rowOfKey.get(this.search(vector, 1).keys[0]);
      if (found === undefined) return false;
      let dot = 0;
      for (let j = 0; j < this.dim; j++) dot += vector[j] * vectors[found * this.dim + j];
      if (!(dot >= 1 - 1e-4)) return false;
    }
    return true;
  }

  private static async empty(dim: number, options: HnswOptions): Promise<HnswGraph> {
    const usearch = await loadUsearch();
    const resolved: Required<HnswOptions> = {
      connectivity: options.connectivity ?? 16,
      expansionAdd: options.expansionAdd ?? 128,
      expansionSearch: options.expansionSearch ?? 128,
    };
    for (const [name, value] of Object.entries(resolved)) {
      if (!(Number.isInteger(value) && value > 0))
        throw new ContrastiveError(`HnswGraph: ${name} must be an integer > 0, but got ${value}.`);
    }
    const graph = new usearch.Index({
      dimensions: dim,
      metric: usearch.MetricKind.IP,
      connectivity: resolved.connectivity,
      expansion_add: resolved.expansionAdd,
      expansion_search: resolved.expansionSearch,
    });
    return new HnswGraph(graph, dim, resolved);
  }

  get size(): number {
    return this.graph.size();
  }

  add(keys: ArrayLike<number>, vectors: Float32Array): void {
    this.graph.add(BigUint64Array.from(Array.from(keys, BigInt)), vectors, 0);
  }

  remove(keys: ArrayLike<number>): void {
    if (keys.length > 0) this.graph.remove(BigUint64Array.from(Array.from(keys, BigInt)));
  }

  /** Up to `k` candidate keys per query (`queries` `[Q, dim]`), `-1` padding where fewer were found. */
  search(queries: Float32Array, k: number): { keys: Float64Array; k: number } {
    const numQueries = queries.length / this.dim;
    const result = this.graph.search(queries, k, 0);
    const keys = new Float64Array(numQueries * k).fill(-1);
    if (numQueries === 1) {
      result.keys.forEach((key, r) => {
        keys[r] = Number(key);
      });
    } else {
      const counts = result.counts!;
      for (let q = 0; q < numQueries; q++)
        for (let r = 0; r < Number(counts[q]); r++) keys[q * k + r] = Number(result.keys[q * k + r]);
    }
    return { keys, k };
  }
}
