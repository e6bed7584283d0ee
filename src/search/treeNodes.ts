import { ContrastiveError } from '../errors.js';
import { closestNames } from '../hierarchy/closest.js';
import { formatLabelPath, parseLabelPath } from '../hierarchy/labelPath.js';
import type { LabelPath, LabelTree } from '../hierarchy/labelTree.js';

/** A node of a {@link LabelTree}: its level and its id within that level. */
export interface TreeNodeRef {
  level: number;
  id: number;
}

/**
 * Where every node's leaves sit when the leaves are listed depth-first: the leaves of any node
 * are one contiguous run `[start, end)` of that order. The index stores its rows in this order,
 * so restricting a search to a subtree is a slice of the matrix — exact by construction.
 */
export interface TreeLayout {
  /** `leafRank[leafId]`: position of the leaf in depth-first order. */
  leafRank: Int32Array;
  /** `leafStart[l][id]`, `leafEnd[l][id]`: the node's leaves are ranks `[start, end)`. */
  leafStart: Int32Array[];
  leafEnd: Int32Array[];
}

/** Depth-first order of the leaves and each node's run of leaf ranks. */
export function treeLayout(tree: LabelTree): TreeLayout {
  const depth = tree.depth;
  const leafStart = tree.levelSizes.map((n) => new Int32Array(n));
  const leafEnd = tree.levelSizes.map((n) => new Int32Array(n));
  const leafRank = new Int32Array(tree.numClasses());
  const children = childLists(tree);
  let rank = 0;
  const walk = (level: number, id: number) => {
    leafStart[level][id] = rank;
    if (level === depth - 1) leafRank[id] = rank++;
    else for (const child of children[level][id]) walk(level + 1, child);
    leafEnd[level][id] = rank;
  };
  for (let id = 0; id < tree.levelSizes[0]; id++) walk(0, id);
  return { leafRank, leafStart, leafEnd };
}

/** `children[l][id]`: ids at level l+1 of the children of node `id` at level l (one pass). */
export function childLists(tree: LabelTree): number[][][] {
  const out = tree.levelSizes.map((n) => Array.from({ length: n }, () => [] as number[]));
  for (let l = 1; l < tree.depth; l++)
    for (let id = 0; id < tree.levelSizes[l]; id++) out[l - 1][tree.parent(l, id)].push(id);
  return out;
}

/**
 * The node a path names: `'Clothes/Tops'` is the level-1 node Tops under Clothes. An unknown path
 * is a {@link ContrastiveError} naming the field, the first unknown segment and the closest known
 * paths at that level (did-you-mean).
 */
export function resolveNode(tree: LabelTree, path: LabelPath, where: string): TreeNodeRef {
  const segments = (typeof path === 'string' ? parseLabelPath(path, tree.separator) : [...path]).map((s) =>
    String(s).trim(),
  );
  if (segments.length === 0 || segments.length > tree.depth || segments.some((s) => s === '')) {
    throw new ContrastiveError(
      `${where} must be a label path of 1 to ${tree.depth} levels like ${JSON.stringify(formatLabelPath(tree.path(Math.min(1, tree.depth - 1), 0), tree.separator))}, but got ${JSON.stringify(path)}.`,
    );
  }
  let parent = -1;
  for (let l = 0; l < segments.length; l++) {
    const names = tree.classes(l);
    let found = -1;
    for (let id = 0; id < names.length; id++) {
      if (names[id] === segments[l] && (l === 0 || tree.parent(l, id) === parent)) {
        found = id;
        break;
      }
    }
    if (found < 0) {
      const candidates = names.map((_, id) => ({
        name: names[id],
        path: formatLabelPath(tree.path(l, id), tree.separator),
      }));
      const close = closestNames(segments[l], candidates, 3).map((c) => JSON.stringify(c.path));
      const known = candidates.filter((_, id) => l === 0 || tree.parent(l, id) === parent).map((c) => c.name);
      throw new ContrastiveError(
        `${where} must be a node of the label tree, but ${JSON.stringify(formatLabelPath(segments.slice(0, l + 1), tree.separator))} is not one (known ${l === 0 ? 'at the top' : `under ${JSON.stringify(formatLabelPath(segments.slice(0, l), tree.separator))}`}: ${known.join(', ')})${close.length ? `; did you mean ${close.join(' or ')}?` : '.'}`,
      );
    }
    parent = found;
  }
  return { level: segments.length - 1, id: parent };
}

/** A level given by number or by name (`'family'`); anything else is an error naming `where`. */
export function resolveLevel(tree: LabelTree, level: number | string, where: string): number {
  if (typeof level === 'number' && Number.isInteger(level) && level >= 0 && level < tree.depth) return level;
  if (typeof level === 'string') {
    const byName = tree.levelNames.indexOf(level);
    if (byName >= 0) return byName;
    if (/^\d+$/.test(level) && Number(level) < tree.depth) return Number(level);
  }
  throw new ContrastiveError(
    `${where} must be a level in [0, ${tree.depth - 1}] or one of ${tree.levelNames.map((n) => JSON.stringify(n)).join(', ')}, but got ${JSON.stringify(level)}.`,
  );
}
