import { ContrastiveError, check } from '../errors.js';

/** Options of {@link LabelTree.fromPaths}. */
export interface FromPathsOptions {
  /** Separator between path segments. Default `'/'`. */
  separator?: string;
  /**
   * Paths shorter than the deepest one are an error by default; `'repeat-leaf'` pads them by
   * repeating their last segment (`Goods/Bag` in a 3-level tree becomes `Goods/Bag/Bag`).
   */
  pad?: 'error' | 'repeat-leaf';
  /** Names of the levels, coarsest first (default `level0`, `level1`, ...). */
  levelNames?: readonly string[];
  /**
   * By default a name belongs to one parent: `Tops/Shirt` and `Bottoms/Shirt` is an error (usually
   * a typo in the data). With `true` they are two different nodes that happen to share a name.
   */
  allowSharedNames?: boolean;
}

/** The serialised form, as saved in a run folder (`labelTree.json`). */
export interface LabelTreeJSON {
  format: 'tfjs-contrastive/label-tree@1';
  levelNames: string[];
  /** `nodes[l]`: the nodes of level l, in id order: their name and the id of their parent at level l-1. */
  nodes: { name: string; parent: number }[][];
}

/** A nested tree: `{ Clothes: { Tops: ['T-shirt', 'Shirt'] }, Goods: { Bags: ['Bag'] } }`. */
export type NestedTree = { [name: string]: NestedTree | readonly string[] | null };

/**
 * A label hierarchy of fixed depth L: level 0 is the coarsest, level L-1 the leaves (classes).
 * Node ids are per level (0..count-1), so a label path encodes to one integer row `[L]` whose
 * prefixes identify the ancestors: two samples are positives at level l exactly when their rows
 * agree on columns `0..l` — the convention every loss and metric of the library uses.
 * The same name may appear under different parents (two `Other` nodes are different nodes).
 *
 * @example
 * ```ts
 * const tree = LabelTree.fromPaths(['Clothes/Tops/T-shirt', 'Goods/Shoes/Sneaker']);
 * tree.encode(['Clothes/Tops/T-shirt']); // [[0, 0, 0]]
 * ```
 */
export class LabelTree {
  private readonly index: Map<string, number>[];

  private constructor(
    /** Names of the levels, coarsest first. */
    readonly levelNames: string[],
    private readonly nodes: { name: string; parent: number }[][],
  ) {
    this.index = nodes.map((level) => new Map(level.map((n, id) => [`${n.parent}\u0000${n.name}`, id])));
  }

  /** Number of levels L. */
  get depth(): number {
    return this.nodes.length;
  }

  /** Builds the tree from label paths (duplicates are fine; order of first appearance gives the ids). */
  static fromPaths(paths: Iterable<string | readonly string[]>, options: FromPathsOptions = {}): LabelTree {
    const split = LabelTree.splitter(options.separator ?? '/');
    const rows = [...paths].map((p, i) => {
      const segments = typeof p === 'string' ? split(p) : [...p];
      segments.forEach((s, k) => {
        check(
          typeof s === 'string' && s.trim() !== '',
          () => `LabelTree.fromPaths: path ${i} (${JSON.stringify(p)}) has an empty segment at level ${k}.`,
        );
      });
      return segments;
    });
    check(rows.length > 0, () => 'LabelTree.fromPaths: no label paths given.');
    const depth = Math.max(...rows.map((r) => r.length));
    rows.forEach((r, i) => {
      if (r.length === depth) return;
      check(
        options.pad === 'repeat-leaf',
        () =>
          `LabelTree.fromPaths: path ${i} (${JSON.stringify(r.join('/'))}) has ${r.length} levels but others have ${depth}; pass pad: 'repeat-leaf' to pad short paths by repeating their leaf.`,
      );
      while (r.length < depth) r.push(r[r.length - 1]);
    });
    const tree = new LabelTree(
      LabelTree.names(options.levelNames, depth),
      Array.from({ length: depth }, () => []),
    );
    const parentOf = Array.from({ length: depth }, () => new Map<string, string>());
    rows.forEach((r, i) => {
      if (!options.allowSharedNames) {
        r.forEach((name, l) => {
          const parent = l === 0 ? '' : r.slice(0, l).join('/');
          const seen = parentOf[l].get(name);
          check(
            seen === undefined || seen === parent,
            () =>
              `LabelTree.fromPaths: node ${JSON.stringify(name)} at level ${l} has two parents, ${JSON.stringify(seen)} and ${JSON.stringify(parent)} (path ${i}); fix the data or pass allowSharedNames: true.`,
          );
          parentOf[l].set(name, parent);
        });
      }
      tree.add(r);
    });
    return tree;
  }

  /** Builds the tree from one column per level (e.g. CSV columns `group,family,class`). */
  static fromColumns(
    columns: readonly (readonly string[])[],
    options: Pick<FromPathsOptions, 'levelNames' | 'allowSharedNames'> = {},
  ): LabelTree {
    check(columns.length > 0, () => 'LabelTree.fromColumns: no columns given.');
    const n = columns[0].length;
    columns.forEach((c, l) => {
      check(
        c.length === n,
        () => `LabelTree.fromColumns: column ${l} has ${c.length} rows, column 0 has ${n}.`,
      );
    });
    return LabelTree.fromPaths(
      Array.from({ length: n }, (_, i) => columns.map((c) => c[i])),
      options,
    );
  }

  /**
   * Builds the tree from a nested object; leaves are arrays of names (or `null` values). Every
   * branch must reach the same depth.
   */
  static fromNested(
    nested: NestedTree,
    options: Pick<FromPathsOptions, 'levelNames' | 'allowSharedNames'> = {},
  ): LabelTree {
    const paths: string[][] = [];
    const walk = (node: NestedTree | readonly string[] | null, prefix: string[]) => {
      if (node === null) {
        paths.push(prefix);
      } else if (Array.isArray(node)) {
        for (const leaf of node) paths.push([...prefix, String(leaf)]);
      } else if (typeof node === 'object') {
        const entries = Object.entries(node as NestedTree);
        check(entries.length > 0 || prefix.length > 0, () => 'LabelTree.fromNested: the tree is empty.');
        for (const [name, child] of entries) walk(child, [...prefix, name]);
      } else {
        throw new ContrastiveError(
          `LabelTree.fromNested: ${prefix.join('/')} must be an object, an array or null.`,
        );
      }
    };
    walk(nested, []);
    return LabelTree.fromPaths(paths, options);
  }

  /** Reads the form written by {@link toJSON}. */
  static fromJSON(json: LabelTreeJSON): LabelTree {
    check(
      json !== null &&
        typeof json === 'object' &&
        json.format === 'tfjs-contrastive/label-tree@1' &&
        Array.isArray(json.nodes),
      () =>
        `LabelTree.fromJSON: expected an object with format 'tfjs-contrastive/label-tree@1', but got ${JSON.stringify(json)?.slice(0, 80)}.`,
    );
    return new LabelTree(
      [...json.levelNames],
      json.nodes.map((level) => level.map((n) => ({ name: n.name, parent: n.parent }))),
    );
  }

  /** The serialisable form (saved with every run, so a model's labels can always be read back). */
  toJSON(): LabelTreeJSON {
    return {
      format: 'tfjs-contrastive/label-tree@1',
      levelNames: [...this.levelNames],
      nodes: this.nodes.map((l) => l.map((n) => ({ ...n }))),
    };
  }

  /** Node names of level l, by id. */
  classes(level: number): string[] {
    this.checkLevel(level);
    return this.nodes[level].map((n) => n.name);
  }

  /** Number of nodes at each level, coarsest first. */
  get levelSizes(): number[] {
    return this.nodes.map((l) => l.length);
  }

  /** The full path (names) of node `id` at `level`. */
  path(level: number, id: number): string[] {
    this.checkLevel(level);
    const out: string[] = [];
    for (let l = level; l >= 0; l--) {
      const node = this.nodes[l][id];
      check(node !== undefined, () => `LabelTree.path: no node ${id} at level ${l}.`);
      out.unshift(node.name);
      id = node.parent;
    }
    return out;
  }

  /** The leaf id of every level-(L-1) node's ancestors: `row(leafId)` gives its `[L]` label row. */
  row(leafId: number): number[] {
    const r = new Array<number>(this.depth);
    let id = leafId;
    for (let l = this.depth - 1; l >= 0; l--) {
      check(this.nodes[l][id] !== undefined, () => `LabelTree.row: no leaf ${leafId}.`);
      r[l] = id;
      id = this.nodes[l][id].parent;
    }
    return r;
  }

  /**
   * Encodes label paths to `[N, L]` rows (row-major Int32Array). An unknown label is an error
   * naming it and the known labels at that level under the same parent.
   */
  encode(paths: readonly (string | readonly string[])[], separator = '/'): Int32Array {
    const split = LabelTree.splitter(separator);
    const out = new Int32Array(paths.length * this.depth);
    paths.forEach((p, i) => {
      const segments = typeof p === 'string' ? split(p) : p;
      check(
        segments.length === this.depth,
        () =>
          `LabelTree.encode: path ${i} (${JSON.stringify(p)}) has ${segments.length} levels, the tree has ${this.depth}.`,
      );
      let parent = -1;
      segments.forEach((name, l) => {
        const id = this.index[l].get(`${parent}\u0000${name}`);
        if (id === undefined) {
          const siblings = this.nodes[l].filter((n) => n.parent === parent).map((n) => n.name);
          throw new ContrastiveError(
            `LabelTree.encode: unknown label ${JSON.stringify(name)} at level ${l} (${this.levelNames[l]}) of path ${i} (${JSON.stringify(p)}); known here: ${siblings.slice(0, 12).join(', ')}${siblings.length > 12 ? ', ...' : ''}.`,
          );
        }
        out[i * this.depth + l] = id;
        parent = id;
      });
    });
    return out;
  }

  /** Decodes `[N, L]` rows back to paths joined by `separator`. */
  decode(rows: ArrayLike<number>, separator = '/'): string[] {
    check(
      rows.length % this.depth === 0,
      () => `LabelTree.decode: ${rows.length} values is not a multiple of the depth ${this.depth}.`,
    );
    const out: string[] = [];
    for (let i = 0; i < rows.length / this.depth; i++)
      out.push(this.path(this.depth - 1, rows[i * this.depth + this.depth - 1]).join(separator));
    return out;
  }

  /**
   * Height of the lowest common ancestor of two label rows: 0 for the same leaf, 1 for siblings,
   * L when they differ already at the coarsest level (the tree distance used for mistake severity).
   */
  lcaHeight(a: ArrayLike<number>, b: ArrayLike<number>): number {
    let shared = 0;
    while (shared < this.depth && a[shared] === b[shared]) shared++;
    return this.depth - shared;
  }

  private add(segments: readonly string[]): void {
    let parent = -1;
    segments.forEach((name, l) => {
      const key = `${parent}\u0000${name}`;
      let id = this.index[l].get(key);
      if (id === undefined) {
        id = this.nodes[l].length;
        this.nodes[l].push({ name, parent });
        this.index[l].set(key, id);
      }
      parent = id;
    });
  }

  private checkLevel(level: number): void {
    check(
      Number.isInteger(level) && level >= 0 && level < this.depth,
      () => `LabelTree: level must be in [0, ${this.depth - 1}], but got ${level}.`,
    );
  }

  private static splitter(separator: string) {
    return (path: string) => path.split(separator).map((s) => s.trim());
  }

  private static names(levelNames: readonly string[] | undefined, depth: number): string[] {
    if (levelNames === undefined) return Array.from({ length: depth }, (_, l) => `level${l}`);
    check(
      levelNames.length === depth,
      () => `LabelTree: levelNames must have ${depth} entries (one per level), but got ${levelNames.length}.`,
    );
    return [...levelNames];
  }
}
