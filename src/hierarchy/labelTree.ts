import { ContrastiveError, check } from '../errors.js';
import { closestNames } from './closest.js';
import { formatLabelPath, parseLabelPath } from './labelPath.js';

/** Options of {@link LabelTree.fromPaths} (and, in part, of the other builders). */
export interface FromPathsOptions {
  /** Separator between path segments; the tree keeps it as its default for encode/decode. Default `'/'`. */
  separator?: string;
  /**
   * Paths shorter than the deepest one are an error by default; `'repeat-leaf'` pads them by
   * repeating their last segment (`Goods/Bag` in a 3-level tree becomes `Goods/Bag/Bag`);
   * `'unknown'` keeps them as partial labels (known only to their depth): they add no node of
   * their own below, so each must be a prefix of some full-depth path.
   */
  padToDepth?: PadToDepth;
  /** Older name of {@link padToDepth}. */
  pad?: PadToDepth;
  /** Names of the levels, coarsest first (default `level0`, `level1`, ...). */
  levelNames?: readonly string[];
  /**
   * By default a name belongs to one parent: `Tops/Shirt` and `Bottoms/Shirt` is an error (usually
   * a typo in the data). With `true` they are two different nodes that happen to share a name.
   */
  allowSharedNames?: boolean;
}

/**
 * What to do with a label path shorter than the tree: `'error'`, `'repeat-leaf'` (pad it with its
 * last segment) or `'unknown'` (a partial label: -1 at the levels below it, see `UNKNOWN_LABEL`).
 */
export type PadToDepth = 'error' | 'repeat-leaf' | 'unknown';

/** Options of {@link LabelTree.encode}. */
export interface EncodeOptions {
  /** Separator inside string paths. Default: the tree's own (the one it was built with). */
  separator?: string;
  /**
   * A path shorter than the tree is an error by default; `'repeat-leaf'` pads it by repeating its
   * leaf, as when building; `'unknown'` encodes its known prefix and -1 in every column below
   * (what the hierarchical losses and the metrics read as "level not known").
   */
  padToDepth?: PadToDepth;
}

/** The serialised form, as saved in a run folder (`labelTree.json`). */
export interface LabelTreeJSON {
  format: 'tfjs-contrastive/label-tree@1';
  levelNames: string[];
  /** The separator of string paths (absent in files written before it was saved: `/`). */
  separator?: string;
  /** `nodes[l]`: the nodes of level l, in id order: their name and the id of their parent at level l-1 (-1 at level 0). */
  nodes: { name: string; parent: number }[][];
}

/** A nested tree: `{ Clothes: { Tops: ['T-shirt', 'Shirt'] }, Goods: { Bags: ['Bag'] } }`. */
export type NestedTree = { [name: string]: NestedTree | readonly string[] | null };

/** A label path: a string with separators (`'Clothes/Tops/T-shirt'`) or its segments. */
export type LabelPath = string | readonly string[];

interface TreeNode {
  name: string;
  parent: number;
}

const FORMAT = 'tfjs-contrastive/label-tree@1';

/**
 * A label hierarchy of fixed depth L: level 0 is the coarsest, level L-1 the leaves (classes).
 * Node ids are per level (0..count-1, a global index of the node within its level), so a label
 * path encodes to one integer row `[L]` whose prefixes identify the ancestors: two samples are
 * positives at level l exactly when their rows agree on columns `0..l` — the convention every loss
 * and metric of the library uses. Two children with the same name under different parents get
 * different ids, so their rows never share a wrong prefix.
 *
 * @example
 * ```ts
 * const tree = LabelTree.fromPaths(['Clothes/Tops/T-shirt', 'Goods/Shoes/Sneaker']);
 * tree.encode(['Clothes/Tops/T-shirt']); // Int32Array [0, 0, 0]
 * tree.decode([1, 1, 1]); // ['Goods/Shoes/Sneaker']
 * ```
 */
export class LabelTree {
  /** `index[l]`: `parentId \0 name` -> node id at level l. */
  private readonly index: Map<string, number>[];

  private constructor(
    /** Names of the levels, coarsest first. */
    readonly levelNames: string[],
    private readonly nodes: TreeNode[][],
    /** Separator of string paths, used by default by {@link encode} and {@link decode}. */
    readonly separator: string,
  ) {
    this.index = nodes.map((level) => new Map(level.map((n, id) => [key(n.parent, n.name), id])));
  }

  /** Number of levels L. */
  get depth(): number {
    return this.nodes.length;
  }

  /** Number of levels L (same as {@link depth}). */
  get numLevels(): number {
    return this.nodes.length;
  }

  /** Number of nodes at each level, coarsest first. */
  get levelSizes(): number[] {
    return this.nodes.map((l) => l.length);
  }

  /** Number of nodes at `level` (default: the leaves, i.e. the number of fine classes). */
  numClasses(level = this.depth - 1): number {
    this.checkLevel('numClasses', level);
    return this.nodes[level].length;
  }

  /**
   * Builds the tree from label paths. Duplicates are fine (a dataset's labels can be passed as
   * they are); the order of first appearance gives the ids.
   */
  static fromPaths(paths: Iterable<LabelPath>, options: FromPathsOptions = {}): LabelTree {
    const fn = 'LabelTree.fromPaths';
    const separator = checkSeparator(fn, options.separator);
    const pad = options.padToDepth ?? options.pad ?? 'error';
    check(
      pad === 'error' || pad === 'repeat-leaf' || pad === 'unknown',
      () => `${fn}: padToDepth must be 'error', 'repeat-leaf' or 'unknown', but got ${JSON.stringify(pad)}.`,
    );
    // Split each distinct path once: datasets repeat a handful of paths many times.
    const distinct = new Map<string, { segments: string[]; index: number }>();
    let i = 0;
    for (const p of paths) {
      const text = typeof p === 'string' ? p : p.join('\u0000');
      if (!distinct.has(text)) {
        const segments = typeof p === 'string' ? parseLabelPath(p, separator).map((s) => s.trim()) : [...p];
        segments.forEach((s, l) => {
          check(
            typeof s === 'string' && s.trim() !== '',
            () =>
              `${fn}: path ${i} must have a non-empty name at every level, but got ${JSON.stringify(p)} (level ${l} is empty).`,
          );
        });
        distinct.set(text, { segments: segments.map((s) => s.trim()), index: i });
      }
      i++;
    }
    check(distinct.size > 0, () => `${fn}: paths must hold at least one label path, but got none.`);
    const rows = [...distinct.values()];
    const deepest = rows.reduce((a, b) => (b.segments.length > a.segments.length ? b : a));
    const depth = deepest.segments.length;
    for (const r of rows) {
      if (r.segments.length === depth || pad === 'unknown') continue;
      check(
        pad === 'repeat-leaf',
        () =>
          `${fn}: path ${r.index} must have ${depth} levels like path ${deepest.index} (${JSON.stringify(deepest.segments.join(separator))}), but got ${r.segments.length} (${JSON.stringify(r.segments.join(separator))}); pass padToDepth: 'repeat-leaf' (the CLI's --short-labels repeat-leaf) to pad short paths by repeating their leaf, or 'unknown' (--short-labels unknown) to keep them as partial labels.`,
      );
      padSegments(r.segments, depth);
    }
    const tree = new LabelTree(
      levelNamesOrDefault(fn, options.levelNames, depth),
      Array.from({ length: depth }, () => []),
      separator,
    );
    const byName = Array.from({ length: depth }, () => new Map<string, number>());
    // full paths first, so that partial ones ('unknown') only name nodes that full paths made
    const ordered =
      pad === 'unknown'
        ? [
            ...rows.filter((r) => r.segments.length === depth),
            ...rows.filter((r) => r.segments.length < depth),
          ]
        : rows;
    for (const r of ordered) {
      if (r.segments.length < depth) {
        let parent = -1;
        r.segments.forEach((name, l) => {
          const id = tree.index[l].get(key(parent, name));
          check(
            id !== undefined,
            () =>
              `${fn}: path ${r.index} (${JSON.stringify(r.segments.join(separator))}) is a partial label (${r.segments.length} of ${depth} levels) and must be a prefix of some full-depth path, but no full path passes through ${JSON.stringify(r.segments.slice(0, l + 1).join(separator))}; pad it with padToDepth: 'repeat-leaf' or add a full path.`,
          );
          parent = id;
        });
        continue;
      }
      let parent = -1;
      r.segments.forEach((name, l) => {
        let id = tree.index[l].get(key(parent, name));
        if (id === undefined) {
          const other = byName[l].get(name);
          check(
            options.allowSharedNames || other === undefined,
            () =>
              `${fn}: node ${JSON.stringify(name)} at level ${l} must have one parent, but got two: ${JSON.stringify(tree.pathText(l - 1, tree.nodes[l][other!].parent))} and ${JSON.stringify(r.segments.slice(0, l).join(separator))} (path ${r.index}); fix the data or pass allowSharedNames: true (the CLI's --allow-shared-names).`,
          );
          id = tree.nodes[l].length;
          tree.nodes[l].push({ name, parent });
          tree.index[l].set(key(parent, name), id);
          byName[l].set(name, id);
        }
        parent = id;
      });
    }
    return tree;
  }

  /** Builds the tree from one column per level, coarsest first (e.g. CSV columns `group,family,class`). */
  static fromColumns(
    columns: readonly (readonly string[])[],
    options: Pick<FromPathsOptions, 'levelNames' | 'allowSharedNames' | 'separator'> = {},
  ): LabelTree {
    const fn = 'LabelTree.fromColumns';
    check(columns.length > 0, () => `${fn}: columns must hold one column per level, but got none.`);
    const n = columns[0].length;
    columns.forEach((c, l) => {
      check(
        c.length === n,
        () => `${fn}: column ${l} must have ${n} rows like column 0, but got ${c.length}.`,
      );
    });
    return LabelTree.fromPaths(
      Array.from({ length: n }, (_, i) => columns.map((c) => c[i])),
      options,
    );
  }

  /**
   * Builds the tree from a nested object; leaves are arrays of names (or keys with a `null`
   * value). Every branch must reach the same depth unless `padToDepth: 'repeat-leaf'` is passed.
   */
  static fromNested(nested: NestedTree, options: FromPathsOptions = {}): LabelTree {
    const fn = 'LabelTree.fromNested';
    const paths: string[][] = [];
    const walk = (node: unknown, prefix: string[]) => {
      if (node === null) {
        paths.push(prefix);
      } else if (Array.isArray(node)) {
        check(
          node.length > 0,
          () => `${fn}: ${JSON.stringify(prefix.join('/'))} must list at least one child, but got [].`,
        );
        for (const leaf of node) {
          check(
            typeof leaf === 'string',
            () =>
              `${fn}: the children of ${JSON.stringify(prefix.join('/'))} must be names (strings), but got ${JSON.stringify(leaf)}.`,
          );
          paths.push([...prefix, leaf]);
        }
      } else if (typeof node === 'object') {
        const entries = Object.entries(node as NestedTree);
        check(
          entries.length > 0,
          () =>
            `${fn}: ${prefix.length ? JSON.stringify(prefix.join('/')) : 'the tree'} must have at least one child, but got {}.`,
        );
        for (const [name, child] of entries) walk(child, [...prefix, name]);
      } else {
        throw new ContrastiveError(
          `${fn}: ${JSON.stringify(prefix.join('/'))} must be an object, an array of names or null, but got ${JSON.stringify(node)}.`,
        );
      }
    };
    walk(nested, []);
    return LabelTree.fromPaths(paths, options);
  }

  /**
   * Reads a tree from JSON: the form written by {@link toJSON} (recognised by its `format` field)
   * or a nested tree (see {@link fromNested}); a string is parsed first.
   */
  static fromJSON(json: LabelTreeJSON | NestedTree | string, options: FromPathsOptions = {}): LabelTree {
    let value: unknown = json;
    if (typeof json === 'string') {
      try {
        value = JSON.parse(json);
      } catch (error) {
        throw new ContrastiveError(
          `LabelTree.fromJSON: json must be valid JSON, but parsing failed (${(error as Error).message}).`,
        );
      }
    }
    check(
      value !== null && typeof value === 'object' && !Array.isArray(value),
      () =>
        `LabelTree.fromJSON: json must be a serialised tree or a nested object, but got ${preview(value)}.`,
    );
    if ('format' in value || 'nodes' in value) return LabelTree.fromSerialized(value as LabelTreeJSON);
    return LabelTree.fromNested(value as NestedTree, options);
  }

  /** Reads the form written by {@link toJSON}, checking that it describes a well-formed tree. */
  static fromSerialized(json: LabelTreeJSON): LabelTree {
    const fn = 'LabelTree.fromSerialized';
    check(
      json !== null && typeof json === 'object' && json.format === FORMAT,
      () => `${fn}: json must have format '${FORMAT}', but got ${preview(json)}.`,
    );
    const { nodes, levelNames } = json;
    check(
      Array.isArray(nodes) && nodes.length > 0 && nodes.every((l) => Array.isArray(l) && l.length > 0),
      () => `${fn}: nodes must be a non-empty array of non-empty levels, but got ${preview(nodes)}.`,
    );
    check(
      Array.isArray(levelNames) &&
        levelNames.length === nodes.length &&
        levelNames.every((n) => typeof n === 'string'),
      () =>
        `${fn}: levelNames must be ${nodes.length} strings (one per level), but got ${preview(levelNames)}.`,
    );
    const separator = checkSeparator(fn, json.separator);
    nodes.forEach((level, l) => {
      const seen = new Set<string>();
      const hasChild = l + 1 < nodes.length ? new Uint8Array(level.length) : null;
      if (hasChild) for (const n of nodes[l + 1]) if (Number.isInteger(n?.parent)) hasChild[n.parent] = 1;
      level.forEach((n, id) => {
        const lo = l === 0 ? -1 : 0;
        const hi = l === 0 ? -1 : nodes[l - 1].length - 1;
        check(
          n !== null && typeof n === 'object' && typeof n.name === 'string' && n.name.trim() !== '',
          () => `${fn}: node ${id} at level ${l} must have a non-empty name, but got ${preview(n)}.`,
        );
        check(
          Number.isInteger(n.parent) && n.parent >= lo && n.parent <= hi,
          () =>
            `${fn}: node ${id} at level ${l} must have a parent in [${lo}, ${hi}], but got ${preview(n.parent)}.`,
        );
        check(
          !seen.has(key(n.parent, n.name)),
          () =>
            `${fn}: node ${id} at level ${l} (${JSON.stringify(n.name)}) must be unique under its parent, but it repeats.`,
        );
        seen.add(key(n.parent, n.name));
        check(
          hasChild === null || hasChild[id] === 1,
          () =>
            `${fn}: node ${id} at level ${l} (${JSON.stringify(n.name)}) must have children (every leaf is at level ${nodes.length - 1}), but has none.`,
        );
      });
    });
    return new LabelTree(
      [...levelNames],
      nodes.map((level) => level.map((n) => ({ name: n.name, parent: n.parent }))),
      separator,
    );
  }

  /** The serialisable form (saved with every run, so a model's labels can always be read back). */
  toJSON(): LabelTreeJSON {
    return {
      format: FORMAT,
      levelNames: [...this.levelNames],
      separator: this.separator,
      nodes: this.nodes.map((l) => l.map((n) => ({ ...n }))),
    };
  }

  /** The nested-object form of the tree (leaves as arrays of names), for display or hand editing. */
  toNested(): NestedTree {
    const build = (level: number, parent: number): NestedTree | string[] => {
      const children = this.nodes[level].flatMap((n, id) => (n.parent === parent ? [id] : []));
      if (level === this.depth - 1) return children.map((id) => this.nodes[level][id].name);
      return Object.fromEntries(children.map((id) => [this.nodes[level][id].name, build(level + 1, id)]));
    };
    return build(0, -1) as NestedTree;
  }

  /** Node names of `level`, by id (the class names of that level). */
  classes(level: number): string[] {
    this.checkLevel('classes', level);
    return this.nodes[level].map((n) => n.name);
  }

  /** The id of the parent (at `level - 1`) of node `id` at `level`; -1 at level 0. */
  parent(level: number, id: number): number {
    this.checkNode('parent', level, id);
    return this.nodes[level][id].parent;
  }

  /** The ids (at `level + 1`) of the children of node `id` at `level`; `[]` for a leaf. */
  children(level: number, id: number): number[] {
    this.checkNode('children', level, id);
    if (level === this.depth - 1) return [];
    return this.nodes[level + 1].flatMap((n, child) => (n.parent === id ? [child] : []));
  }

  /** The full path (names, coarsest first) of node `id` at `level`. */
  path(level: number, id: number): string[] {
    this.checkNode('path', level, id);
    const out = new Array<string>(level + 1);
    for (let l = level; l >= 0; l--) {
      out[l] = this.nodes[l][id].name;
      id = this.nodes[l][id].parent;
    }
    return out;
  }

  /** The `[L]` label row of leaf `leafId` (its ancestors' ids, coarsest first). */
  row(leafId: number): number[] {
    this.checkNode('row', this.depth - 1, leafId);
    const r = new Array<number>(this.depth);
    let id = leafId;
    for (let l = this.depth - 1; l >= 0; l--) {
      r[l] = id;
      id = this.nodes[l][id].parent;
    }
    return r;
  }

  /** `[C, L]` label rows of every leaf, by leaf id (row-major). */
  leafRows(): Int32Array {
    const c = this.numClasses();
    const out = new Int32Array(c * this.depth);
    for (let leaf = 0; leaf < c; leaf++) out.set(this.row(leaf), leaf * this.depth);
    return out;
  }

  /**
   * Encodes label paths to `[N, L]` rows (row-major Int32Array). An unknown label is an error
   * naming it, the known labels under the same parent and the closest known names at its level.
   * Options may be a separator string (older form).
   */
  encode(paths: readonly LabelPath[], options: EncodeOptions | string = {}): Int32Array {
    const fn = 'LabelTree.encode';
    const opts = typeof options === 'string' ? { separator: options } : options;
    const separator = checkSeparator(fn, opts.separator ?? this.separator);
    const depth = this.depth;
    const out = new Int32Array(paths.length * depth);
    const cache = new Map<string, number>(); // path text -> leaf id
    paths.forEach((p, i) => {
      const text = typeof p === 'string' ? p : p.join('\u0000');
      let leaf = cache.get(text);
      if (leaf === undefined) {
        const segments = typeof p === 'string' ? parseLabelPath(p, separator).map((s) => s.trim()) : [...p];
        if (segments.length < depth && opts.padToDepth === 'repeat-leaf') padSegments(segments, depth);
        const partial = opts.padToDepth === 'unknown' && segments.length < depth && segments.length > 0;
        check(
          segments.length === depth || partial,
          () =>
            `${fn}: path ${i} must have ${depth} levels like the tree, but got ${segments.length} (${JSON.stringify(p)})${segments.length < depth ? "; pass padToDepth: 'repeat-leaf' (--short-labels repeat-leaf) to pad it, or 'unknown' to keep it as a partial label" : ''}.`,
        );
        let parent = -1;
        segments.forEach((name, l) => {
          const id = this.index[l].get(key(parent, name));
          if (id === undefined) throw this.unknownLabel(fn, i, p, segments, l, parent);
          parent = id;
        });
        // a partial path's deepest known node, encoded as -(1 + level) - depth*id: decoded below
        leaf = partial ? -1 - (segments.length - 1) - depth * parent : parent;
        cache.set(text, leaf);
      }
      let known = depth;
      let id = leaf;
      if (leaf < 0) {
        const code = -1 - leaf;
        known = (code % depth) + 1;
        id = Math.floor(code / depth);
      }
      for (let l = depth - 1; l >= known; l--) out[i * depth + l] = -1;
      for (let l = known - 1; l >= 0; l--) {
        out[i * depth + l] = id;
        id = this.nodes[l][id].parent;
      }
    });
    return out;
  }

  /**
   * Decodes `[N, L]` rows to their paths' segments; a row whose columns are not one node's
   * ancestors is an error. A partial row (-1 below a known prefix) decodes to its known prefix.
   */
  decodeRows(rows: ArrayLike<number>): string[][] {
    const fn = 'LabelTree.decode';
    const depth = this.depth;
    check(
      rows.length % depth === 0,
      () =>
        `${fn}: rows must hold N x ${depth} values (one column per level), but got ${rows.length} values.`,
    );
    const out: string[][] = [];
    for (let i = 0; i < rows.length / depth; i++) {
      let known = depth;
      while (known > 0 && rows[i * depth + known - 1] === -1) known--;
      check(
        known > 0,
        () => `${fn}: row ${i} must know at least its coarsest level, but every column is -1.`,
      );
      const last = known - 1;
      const leaf = rows[i * depth + last];
      check(
        Number.isInteger(leaf) && leaf >= 0 && leaf < this.nodes[last].length,
        () =>
          `${fn}: row ${i} must end in a ${known === depth ? 'leaf' : `level-${last} node`} id in [0, ${this.nodes[last].length - 1}], but got ${leaf}.`,
      );
      for (let l = last - 1, id = this.nodes[last][leaf].parent; l >= 0; l--) {
        check(
          rows[i * depth + l] === id,
          () =>
            `${fn}: row ${i} must hold the ancestors of ${known === depth ? `leaf ${leaf} (${this.row(leaf).join(',')})` : `node ${leaf} at level ${last}`}, but got ${Array.from({ length: depth }, (_, k) => rows[i * depth + k]).join(',')}.`,
        );
        id = this.nodes[l][id].parent;
      }
      out.push(this.path(last, leaf));
    }
    return out;
  }

  /** Decodes `[N, L]` rows back to paths joined by `separator` (default: the tree's). */
  decode(rows: ArrayLike<number>, separator = this.separator): string[] {
    return this.decodeRows(rows).map((segments) => formatLabelPath(segments, separator));
  }

  /**
   * Height of the lowest common ancestor of two label rows: 0 for the same leaf, 1 for siblings,
   * L when they differ already at the coarsest level. This is the tree distance used for mistake
   * severity (Bertinetto et al. 2020).
   */
  lcaHeight(a: ArrayLike<number>, b: ArrayLike<number>): number {
    return this.depth - this.lcaDepth(a, b);
  }

  /**
   * Depth of the lowest common ancestor of two label rows: the number of levels (columns) they
   * share from the coarsest one — L for the same leaf, 0 when they differ at level 0 (their LCA is
   * the root). The pair is a positive at level l exactly when `lcaDepth > l`.
   */
  lcaDepth(a: ArrayLike<number>, b: ArrayLike<number>): number {
    check(
      a.length >= this.depth && b.length >= this.depth,
      () => `LabelTree.lcaDepth: rows must have ${this.depth} columns, but got ${a.length} and ${b.length}.`,
    );
    let shared = 0;
    while (shared < this.depth && a[shared] === b[shared]) shared++;
    return shared;
  }

  /**
   * `[C, C]` LCA heights between every pair of leaves (row-major, by leaf id): the cost matrix of
   * hierarchical mistake severity.
   */
  leafLcaHeights(): Int32Array {
    const rows = this.leafRows();
    const c = this.numClasses();
    const out = new Int32Array(c * c);
    for (let i = 0; i < c; i++)
      for (let j = 0; j < c; j++)
        out[i * c + j] = this.lcaHeight(rows.subarray(i * this.depth), rows.subarray(j * this.depth));
    return out;
  }

  private unknownLabel(
    fn: string,
    i: number,
    p: LabelPath,
    segments: readonly string[],
    l: number,
    parent: number,
  ): ContrastiveError {
    const name = segments[l];
    const siblings = this.nodes[l].filter((n) => n.parent === parent).map((n) => n.name);
    const where =
      l === 0 ? 'at the top level' : `under ${JSON.stringify(segments.slice(0, l).join(this.separator))}`;
    const closest = closestNames(
      name,
      this.nodes[l].map((_, id) => ({ name: this.nodes[l][id].name, id })),
      3,
    ).map(({ id }) => JSON.stringify(this.pathText(l, id)));
    const known = `${siblings.slice(0, 12).join(', ')}${siblings.length > 12 ? ', ...' : ''}`;
    return new ContrastiveError(
      `${fn}: path ${i} (${JSON.stringify(p)}) must name a known ${this.levelNames[l]} (level ${l}) ${where}, but got unknown label ${JSON.stringify(name)}; known there: ${known || '(none)'}${closest.length ? `; closest known: ${closest.join(', ')}` : ''}.`,
    );
  }

  private pathText(level: number, id: number): string {
    return level < 0 ? '' : formatLabelPath(this.path(level, id), this.separator);
  }

  private checkLevel(method: string, level: number): void {
    check(
      Number.isInteger(level) && level >= 0 && level < this.depth,
      () => `LabelTree.${method}: level must be an integer in [0, ${this.depth - 1}], but got ${level}.`,
    );
  }

  private checkNode(method: string, level: number, id: number): void {
    this.checkLevel(method, level);
    check(
      Number.isInteger(id) && id >= 0 && id < this.nodes[level].length,
      () =>
        `LabelTree.${method}: id must be a node of level ${level} in [0, ${this.nodes[level].length - 1}], but got ${id}.`,
    );
  }
}

const key = (parent: number, name: string) => `${parent}\u0000${name}`;

function padSegments(segments: string[], depth: number): void {
  while (segments.length < depth) segments.push(segments[segments.length - 1]);
}

function checkSeparator(fn: string, separator: string | undefined): string {
  const s = separator ?? '/';
  check(
    typeof s === 'string' && s.length > 0,
    () => `${fn}: separator must be a non-empty string, but got ${JSON.stringify(separator)}.`,
  );
  return s;
}

function levelNamesOrDefault(fn: string, levelNames: readonly string[] | undefined, depth: number): string[] {
  if (levelNames === undefined) return Array.from({ length: depth }, (_, l) => `level${l}`);
  check(
    levelNames.length === depth,
    () => `${fn}: levelNames must have ${depth} entries (one per level), but got ${levelNames.length}.`,
  );
  return [...levelNames];
}

function preview(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}
