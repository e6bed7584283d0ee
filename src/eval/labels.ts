import { check } from '../errors.js';
import type { LabelsLike } from '../losses/parts/labels.js';
import { type Grouping, type LabelMatrix, prefixGroupings, readLabelMatrix } from '../losses/parts/labels.js';

/**
 * Label rows of a query set and a database in one id space: `queryIds[l][i] === databaseIds[l][j]`
 * exactly when query i and database item j share the level-l prefix (columns `0..l`).
 */
export interface SharedLevelIds {
  numLevels: number;
  queryIds: Int32Array[];
  databaseIds: Int32Array[];
  /** `members[l][g]`: database indices in level-l group g. */
  members: Int32Array[][];
  queryLabels: LabelMatrix;
  databaseLabels: LabelMatrix;
  /**
   * Partial labels: `queryKnown[l]` (and `databaseKnown[l]`) is 1 for the rows whose label path
   * reaches level l, or `undefined` when every row knows it. A row unknown at level l is in a
   * group of its own kind (never shared with a known row), so it is never relevant to a known
   * query; metrics skip it as a query at that level.
   */
  queryKnown: (Uint8Array | undefined)[];
  databaseKnown: (Uint8Array | undefined)[];
}

/**
 * Reads query and database labels (`[N]` or `[N, L]`, coarsest first; -1 below a row's known
 * prefix) and groups them by prefix.
 */
export function sharedLevelIds(
  fn: string,
  queryLabels: LabelsLike,
  databaseLabels?: LabelsLike,
): SharedLevelIds {
  const partial = { allowUnknown: true };
  const q = readLabelMatrix(fn, 'labels', queryLabels, partial);
  const d =
    databaseLabels === undefined ? q : readLabelMatrix(fn, 'database labels', databaseLabels, partial);
  check(
    q.cols === d.cols,
    () => `${fn}: database labels must have ${q.cols} levels like the query labels, but got ${d.cols}.`,
  );
  const merged: LabelMatrix = {
    values: d === q ? q.values : concat(q.values, d.values),
    rows: d === q ? q.rows : q.rows + d.rows,
    cols: q.cols,
  };
  if (q.knownDepth || d.knownDepth) {
    const depthOf = (m: LabelMatrix) => m.knownDepth ?? new Int32Array(m.rows).fill(m.cols);
    merged.knownDepth = d === q ? depthOf(q) : concat(depthOf(q), depthOf(d));
  }
  const groupings = prefixGroupings(merged);
  const offset = d === q ? 0 : q.rows;
  const queryIds = groupings.map((g) => g.ids.subarray(0, q.rows));
  const databaseIds = groupings.map((g) => g.ids.subarray(offset, offset + d.rows));
  const members = groupings.map((g, l) => groupMembers(g, databaseIds[l]));
  const queryKnown = groupings.map((g) => g.known?.subarray(0, q.rows));
  const databaseKnown = groupings.map((g) => g.known?.subarray(offset, offset + d.rows));
  return {
    numLevels: q.cols,
    queryIds,
    databaseIds,
    members,
    queryLabels: q,
    databaseLabels: d,
    queryKnown,
    databaseKnown,
  };
}

function concat(a: Int32Array, b: Int32Array): Int32Array {
  const out = new Int32Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

function groupMembers(grouping: Grouping, ids: Int32Array): Int32Array[] {
  const counts = new Int32Array(grouping.sizes.length);
  for (const g of ids) counts[g]++;
  const members = Array.from(counts, (c) => new Int32Array(c));
  counts.fill(0);
  ids.forEach((g, j) => {
    members[g][counts[g]++] = j;
  });
  return members;
}

/** Number of leading label columns two rows share (0..L). */
export function sharedPrefixLength(a: LabelMatrix, i: number, b: LabelMatrix, j: number): number {
  let s = 0;
  while (s < a.cols && a.values[i * a.cols + s] === b.values[j * b.cols + s]) s++;
  return s;
}
