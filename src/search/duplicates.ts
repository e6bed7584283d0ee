import { ContrastiveError } from '../errors.js';
import { Rng } from '../random.js';
import type { EmbeddingIndex } from './embeddingIndex.js';
import { type EmbeddingsLike, normalizedRows, rowDot } from './vectors.js';

/** Options of {@link findDuplicates}: give a `threshold`, or a `targetPrecision` to calibrate one. */
export interface FindDuplicatesOptions {
  /** Cosine similarity at or above which two items are duplicates. */
  threshold?: number;
  /**
   * Calibrate the threshold: the lowest similarity whose judged candidate pairs reach this
   * precision. With `knownPairs`, the pairs touching an item of a known pair are judged (right when
   * they are a known pair); without, pairs of labelled items are, right when both have the same
   * finest label (the only signal labels give; real near-duplicates are a stricter notion, so
   * known pairs calibrate better).
   */
  targetPrecision?: number;
  /** Known duplicate pairs (ids) to calibrate on. */
  knownPairs?: readonly (readonly [string | number, string | number])[];
  /**
   * Perturbed copies of some index items (e.g. their images augmented and re-embedded) to
   * calibrate on: each copy against its own item is a duplicate, the item against its nearest
   * distinct neighbours of the same finest class (any class when unlabelled) is not. Without
   * copies (and without `knownPairs`), copies are made in the embedding space with small Gaussian
   * feature noise (`copyNoise`).
   */
  copies?: { ids: readonly (string | number)[]; embeddings: EmbeddingsLike; transformation?: string };
  /** Embedding-space copies: noise of this norm added to a unit embedding. Default 0.05. */
  copyNoise?: number;
  /** Embedding-space copies: how many items. Default 1,000 (or every item of a smaller index). */
  copyCount?: number;
  /** Nearest neighbours per item considered as candidates. Default 10. */
  neighbors?: number;
}

/** One duplicate pair. */
export interface DuplicatePair {
  a: string;
  b: string;
  score: number;
}

/** {@link findDuplicates}'s result. */
export interface DuplicateReport {
  /** The similarity threshold used (given or calibrated). */
  threshold: number;
  /** With `targetPrecision`: what the calibration measured on the candidate pairs. */
  calibration?: {
    targetPrecision: number;
    /** Precision of the pairs at the threshold, by the calibration's notion of right. */
    precision: number;
    /** With `knownPairs`: the fraction of them found at the threshold. */
    recall?: number;
    /** `'known-pairs'`, or `'copies'` (given, or made with feature noise: see `transformation`). */
    from: 'known-pairs' | 'copies';
    /** With copies: what made them, and how many calibration pairs there were. */
    transformation?: string;
    positives?: number;
    negatives?: number;
    /** Whether the target could be reached (if not, the threshold is the best precision's). */
    reached: boolean;
  };
  /** Pairs at or above the threshold, most similar first. */
  pairs: DuplicatePair[];
  /** Connected groups of duplicates (two or more ids each), largest first. */
  clusters: string[][];
}

/**
 * Near-duplicate pairs and clusters of an index: every item's nearest neighbours (exact, or from
 * the HNSW graph when the index has one) above a similarity threshold, joined into clusters.
 *
 * @example
 * ```ts
 * const { pairs, clusters } = findDuplicates(index, { threshold: 0.97 });
 * ```
 */
export function findDuplicates(index: EmbeddingIndex, options: FindDuplicatesOptions = {}): DuplicateReport {
  const fn = 'findDuplicates';
  const neighbors = options.neighbors ?? 10;
  if (!(Number.isInteger(neighbors) && neighbors >= 1))
    throw new ContrastiveError(`${fn}: neighbors must be an integer >= 1, but got ${neighbors}.`);
  if (options.threshold !== undefined && options.targetPrecision !== undefined)
    throw new ContrastiveError(`${fn}: give one of threshold and targetPrecision, but got both.`);
  if (
    options.threshold !== undefined &&
    !(Number.isFinite(options.threshold) && options.threshold >= -1 && options.threshold <= 1)
  )
    throw new ContrastiveError(
      `${fn}: threshold must be a cosine similarity in [-1, 1], but got ${options.threshold}.`,
    );
  // neither: a calibrated default
  const target = options.threshold === undefined ? (options.targetPrecision ?? 0.99) : undefined;
  if (target !== undefined && !(target > 0 && target <= 1))
    throw new ContrastiveError(`${fn}: targetPrecision must be in (0, 1], but got ${target}.`);
  const candidates = candidatePairs(index, neighbors);
  let threshold = options.threshold ?? 1;
  let calibration: DuplicateReport['calibration'];
  if (target !== undefined && !options.knownPairs) {
    const calibrated = calibrateOnCopies(index, candidates, target, options);
    threshold = calibrated.threshold;
    calibration = calibrated.calibration;
  } else if (target !== undefined) {
    const known = options.knownPairs ? knownPairSet(index, options.knownPairs) : null;
    const isRight = (p: { a: number; b: number }) =>
      known
        ? known.has(pairKey(p.a, p.b))
        : index.leafAt(p.a) >= 0 && index.leafAt(p.a) === index.leafAt(p.b);
    // only pairs whose truth is known are judged: with known pairs, those touching an item of one
    // (right when they are a known pair); with labels, those between two labelled items
    const judged = known ? knownItems(known) : null;
    const usable = candidates.filter((p) =>
      judged ? judged.has(p.a) || judged.has(p.b) : index.leafAt(p.a) >= 0 && index.leafAt(p.b) >= 0,
    );
    let right = 0;
    let bestAt = -1;
    let bestPrecision = -1;
    let bestPrecisionAt = -1;
    usable.forEach((p, i) => {
      right += isRight(p) ? 1 : 0;
      const lastOfTie = i === usable.length - 1 || usable[i + 1].score < p.score;
      if (!lastOfTie) return;
      const precision = right / (i + 1);
      if (precision >= target) bestAt = i;
      if (precision > bestPrecision) {
        bestPrecision = precision;
        bestPrecisionAt = i;
      }
    });
    const at = bestAt >= 0 ? bestAt : bestPrecisionAt;
    threshold = at >= 0 ? usable[at].score : 1;
    const kept = usable.slice(0, at + 1);
    const found = kept.filter(isRight).length;
    calibration = {
      targetPrecision: target,
      precision: kept.length ? found / kept.length : 0,
      from: 'known-pairs',
      reached: bestAt >= 0,
    };
    if (known) calibration.recall = known.size ? found / known.size : 0;
  }
  const kept = candidates.filter((p) => p.score >= threshold);
  const pairs = kept.map((p) => ({ a: index.idAt(p.a), b: index.idAt(p.b), score: p.score }));
  return { threshold, calibration, pairs, clusters: clustersOf(index, kept) };
}

/**
 * The threshold for `target` precision on pairs of an item and its perturbed copy (duplicates)
 * against the item and its nearest distinct neighbours among the candidates, of the same finest
 * class when both are labelled (not duplicates): the lowest similarity whose pairs reach it.
 */
function calibrateOnCopies(
  index: EmbeddingIndex,
  candidates: readonly { a: number; b: number; score: number }[],
  target: number,
  options: FindDuplicatesOptions,
): { threshold: number; calibration: NonNullable<DuplicateReport['calibration']> } {
  const fn = 'findDuplicates';
  const dim = index.dim;
  let rows: number[];
  let copies: Float32Array;
  let transformation: string;
  if (options.copies) {
    const given = options.copies;
    const { data, rows: n } = normalizedRows(given.embeddings, dim, fn, 'copies.embeddings');
    if (given.ids.length !== n)
      throw new ContrastiveError(
        `${fn}: copies.ids must have one id per row (${n}), but got ${given.ids.length}.`,
      );
    rows = given.ids.map((id, i) => {
      const row = index.rowOfItem(id);
      if (row === undefined)
        throw new ContrastiveError(
          `${fn}: copies.ids[${i}] must name an item of the index, but ${JSON.stringify(id)} is not one.`,
        );
      return row;
    });
    copies = data;
    transformation = given.transformation ?? 'given copies';
  } else {
    const noise = options.copyNoise ?? 0.05;
    if (!(noise > 0 && noise < 1))
      throw new ContrastiveError(`${fn}: copyNoise must be in (0, 1), but got ${noise}.`);
    const rng = new Rng(0);
    rows = Array.from(
      rng.permutation(index.size).subarray(0, Math.min(index.size, options.copyCount ?? 1000)),
    );
    copies = new Float32Array(rows.length * dim);
    rows.forEach((row, i) => {
      const v = index.rowVector(row);
      let norm = 0;
      for (let j = 0; j < dim; j++) {
        const x = v[j] + (noise / Math.sqrt(dim)) * rng.normal();
        copies[i * dim + j] = x;
        norm += x * x;
      }
      for (let j = 0; j < dim; j++) copies[i * dim + j] /= Math.sqrt(norm);
    });
    transformation = `Gaussian feature noise of norm ${noise} on the embeddings (no inputs to re-embed)`;
  }
  const scored: { score: number; positive: boolean }[] = [];
  rows.forEach((row, i) => {
    scored.push({ score: rowDot(copies, i, index.rowVector(row), 0, dim), positive: true });
  });
  const sameClass = (a: number, b: number) =>
    index.leafAt(a) < 0 || index.leafAt(b) < 0 || index.leafAt(a) === index.leafAt(b);
  const copied = new Set(rows);
  // negatives: each copied item's candidate neighbours (its `neighbors` nearest distinct items),
  // of the same finest class when both are labelled
  for (const p of candidates) {
    if (!(copied.has(p.a) || copied.has(p.b)) || !sameClass(p.a, p.b)) continue;
    scored.push({ score: p.score, positive: false });
  }
  scored.sort((x, y) => y.score - x.score || Number(y.positive) - Number(x.positive));
  const positives = rows.length;
  const negatives = scored.length - positives;
  let right = 0;
  let best = -1;
  let bestPrecision = -1;
  let bestPrecisionAt = -1;
  scored.forEach((s, i) => {
    right += s.positive ? 1 : 0;
    const lastOfTie = i === scored.length - 1 || scored[i + 1].score < s.score;
    if (!lastOfTie) return;
    const precision = right / (i + 1);
    if (precision >= target) best = i;
    if (precision > bestPrecision) {
      bestPrecision = precision;
      bestPrecisionAt = i;
    }
  });
  const at = best >= 0 ? best : bestPrecisionAt;
  const kept = scored.slice(0, at + 1);
  const found = kept.filter((s) => s.positive).length;
  return {
    threshold: at >= 0 ? scored[at].score : 1,
    calibration: {
      targetPrecision: target,
      precision: kept.length ? found / kept.length : 0,
      recall: positives ? found / positives : 0,
      from: 'copies',
      reached: best >= 0,
      transformation,
      positives,
      negatives,
    },
  };
}

/** Each item's nearest neighbours as unordered pairs (row a < row b), most similar first. */
function candidatePairs(index: EmbeddingIndex, neighbors: number): { a: number; b: number; score: number }[] {
  const n = index.size;
  const seen = new Map<string, { a: number; b: number; score: number }>();
  const add = (x: number, y: number, score: number) => {
    const a = Math.min(x, y);
    const b = Math.max(x, y);
    const key = pairKey(a, b);
    if (!seen.has(key)) seen.set(key, { a, b, score });
  };
  const matrix = index.matrix();
  const block = 2048;
  for (let start = 0; start < n; start += block) {
    const size = Math.min(block, n - start);
    const queries = matrix.subarray(start * index.dim, (start + size) * index.dim);
    if (index.approximate) {
      const results = index.searchBatch(queries, { k: Math.min(neighbors + 1, n) });
      results.forEach((r, i) => {
        for (const hit of r.hits.slice(0, neighbors + 1)) {
          const row = index.rowOfItem(hit.id)!;
          if (row !== start + i) add(start + i, row, hit.score);
        }
      });
    } else {
      const found = index.exactNeighbors(queries, size, neighbors, null, new Set(), (q) => start + q);
      for (let q = 0; q < size; q++)
        for (let r = 0; r < found.k; r++) {
          const row = found.rows[q * found.k + r];
          if (row >= 0) add(start + q, row, found.similarities[q * found.k + r]);
        }
    }
  }
  return [...seen.values()].sort((x, y) => y.score - x.score || x.a - y.a || x.b - y.b);
}

function knownPairSet(
  index: EmbeddingIndex,
  pairs: NonNullable<FindDuplicatesOptions['knownPairs']>,
): Set<string> {
  const out = new Set<string>();
  pairs.forEach(([x, y], i) => {
    const a = index.rowOfItem(x);
    const b = index.rowOfItem(y);
    if (a === undefined || b === undefined)
      throw new ContrastiveError(
        `findDuplicates: knownPairs[${i}] must name two items of the index, but ${JSON.stringify(a === undefined ? x : y)} is not one.`,
      );
    out.add(pairKey(Math.min(a, b), Math.max(a, b)));
  });
  return out;
}

const pairKey = (a: number, b: number) => `${a}:${b}`;

function knownItems(pairs: ReadonlySet<string>): Set<number> {
  const rows = new Set<number>();
  for (const key of pairs) for (const row of key.split(':')) rows.add(Number(row));
  return rows;
}

function clustersOf(index: EmbeddingIndex, pairs: readonly { a: number; b: number }[]): string[][] {
  const parent = new Map<number, number>();
  const find = (x: number): number => {
    let root = x;
    while (parent.get(root) !== undefined && parent.get(root) !== root) root = parent.get(root)!;
    parent.set(x, root);
    return root;
  };
  for (const { a, b } of pairs) {
    if (!parent.has(a)) parent.set(a, a);
    if (!parent.has(b)) parent.set(b, b);
    const ra = find(a);
    const rb = find(b);
    if (ra !== rb) parent.set(Math.max(ra, rb), Math.min(ra, rb));
  }
  const groups = new Map<number, number[]>();
  for (const row of parent.keys()) {
    const root = find(row);
    const list = groups.get(root) ?? [];
    list.push(row);
    groups.set(root, list);
  }
  return [...groups.values()]
    .filter((g) => g.length > 1)
    .map((g) => g.sort((x, y) => x - y).map((row) => index.idAt(row)))
    .sort((x, y) => y.length - x.length || (x[0] < y[0] ? -1 : 1));
}
