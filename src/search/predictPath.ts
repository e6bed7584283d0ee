import { ContrastiveError } from '../errors.js';
import type { LabelPath } from '../hierarchy/labelTree.js';
import type { EmbeddingIndex } from './embeddingIndex.js';
import { childLists } from './treeNodes.js';
import { type EmbeddingsLike, normalizedRows, rowDot } from './vectors.js';

/**
 * How a level's class and confidence are computed:
 * - `'knn'`: the k nearest labelled items vote with weight `exp((cos - 1) / τ)` (the weighted kNN
 *   of `knnClassify`); the path is that of the leaf with the largest vote (so at full coverage it
 *   is exactly `knnClassify`'s prediction), and a node's confidence is the share of the vote that
 *   falls in its subtree.
 * - `'prototype'`: softmax over `cos / τ` to the prototypes (mean embeddings) of the children of
 *   the node chosen one level up; a node's confidence is the product of those probabilities down
 *   its path.
 * Both confidences shrink (or stay) from a node to its child, so "deepest confident level" is well defined.
 */
export type PlacementMethod = 'knn' | 'prototype';

/** Options of {@link predictPath}. */
export interface PredictPathOptions {
  /** `'auto'` (default): the calibration's choice, else `'knn'`. */
  method?: PlacementMethod | 'auto';
  /**
   * The confidence a level must reach to be answered (one number, or one per level, coarsest
   * first). Default: the calibration's thresholds, else 0 (every level answered: full coverage).
   */
  minConfidence?: number | readonly number[];
  /** From {@link calibrate}: maps raw confidences to the probability of being right, and holds thresholds. */
  calibration?: PathCalibration;
  /** kNN: neighbours that vote. Default 200 (as `knnClassify`). */
  k?: number;
  /** kNN: vote temperature. Default 0.07 (as `knnClassify`). */
  temperature?: number;
  /** Prototypes: softmax temperature. Default 0.05. */
  prototypeTemperature?: number;
  /**
   * For each query, the id of an index item to leave out (the query itself, when the queries are
   * in the index): out of its own neighbours, and out of its own ancestors' prototypes.
   */
  selfIds?: readonly (string | number | undefined)[];
}

/** One level of a placement. */
export interface LevelPrediction {
  level: number;
  levelName: string;
  /** The node chosen at this level (on the greedy top-down path). */
  name: string;
  /** Its node id within the level. */
  id: number;
  /** Calibrated confidence (the raw one when no calibration is given). */
  confidence: number;
  /** The method's own score in [0, 1] before calibration. */
  rawConfidence: number;
  /** Whether this level cleared its threshold (and every coarser one did). */
  answered: boolean;
}

/** {@link predictPath}'s result for one query. */
export interface PathPrediction {
  /** The answered path: down to the deepest confident level (possibly a parent node, or empty). */
  path: string[];
  /** Number of answered levels (0 = not even the coarsest level is confident). */
  depth: number;
  /** Every level of the greedy path, answered or not. */
  levels: LevelPrediction[];
  method: PlacementMethod;
}

/** A labelled validation (or test) split. */
export interface LabelledEmbeddings {
  embeddings: EmbeddingsLike;
  /** One label path per row. */
  labels: readonly LabelPath[];
  /** Per row, the id of the same item in the index, left out of its own neighbours. */
  selfIds?: readonly (string | number | undefined)[];
}

/** One level of a calibration. */
export interface LevelCalibration {
  level: number;
  levelName: string;
  /** Calibrated confidence needed to answer this level (Infinity: never). */
  threshold: number;
  /** On the validation split: fraction of queries answered at this level or deeper. */
  coverage: number;
  /** On the validation split: accuracy of those answers (the target, unless coverage is 0). */
  precision: number;
  /** Accuracy of the level when every query is answered. */
  accuracyAtFullCoverage: number;
  /** The isotonic map: raw confidences up to `rawUpTo[i]` map to `calibrated[i]` (non-decreasing). */
  rawUpTo: number[];
  calibrated: number[];
}

/** What {@link calibrate} measured for one method. */
export interface MethodCalibration {
  method: PlacementMethod;
  levels: LevelCalibration[];
  /** Coverage at the target precision, averaged over levels: what the choice is based on. */
  meanCoverage: number;
  /** Accuracy at full coverage, averaged over levels (the tie-breaker). */
  meanAccuracy: number;
  /** Coverage vs accuracy when one threshold is applied at every level, for plotting and reports. */
  curve: { threshold: number; coverage: number[]; accuracy: number[] }[];
}

/** {@link calibrate}'s result: pass it to {@link predictPath} as `calibration`. */
export interface PathCalibration {
  /** The better of the measured methods (higher mean coverage at the target precision). */
  method: PlacementMethod;
  targetPrecision: number;
  validationSize: number;
  /** The chosen method's levels. */
  levels: LevelCalibration[];
  /** Both methods, as measured. */
  methods: MethodCalibration[];
  /** The settings the confidences were measured with (predictPath reuses them). */
  settings: { k: number; temperature: number; prototypeTemperature: number };
}

/** Options of {@link calibrate}. */
export interface CalibrateOptions
  extends Pick<PredictPathOptions, 'k' | 'temperature' | 'prototypeTemperature'> {
  /** Accuracy wanted for every answered level. Default 0.95. */
  targetPrecision?: number;
  /** Which methods to measure. Default both. */
  methods?: readonly PlacementMethod[];
}

/** Raw greedy top-down placement of every query: `[Q, L]` node ids and raw confidences. */
interface RawPlacement {
  ids: Int32Array;
  raw: Float64Array;
  numQueries: number;
}

/**
 * Places items in the tree top down: per level a class and a confidence, stopping at the deepest
 * level whose confidence clears its threshold, so an item of an unseen class lands at its parent
 * (e.g. `Clothes › Tops`, class unsure) instead of a wrong guess.
 *
 * @example
 * ```ts
 * const calibration = calibrate(index, validation, { targetPrecision: 0.95 });
 * const [p] = predictPath(index, [embedding], { calibration });
 * console.log(p.path.join(' › '), p.levels.map((l) => l.confidence.toFixed(2)));
 * ```
 */
export function predictPath(
  index: EmbeddingIndex,
  embeddings: EmbeddingsLike,
  options: PredictPathOptions = {},
): PathPrediction[] {
  const fn = 'predictPath';
  const calibration = options.calibration;
  const method =
    options.method === undefined || options.method === 'auto'
      ? (calibration?.method ?? 'knn')
      : options.method;
  if (method !== 'knn' && method !== 'prototype')
    throw new ContrastiveError(
      `${fn}: method must be 'knn', 'prototype' or 'auto', but got ${JSON.stringify(method)}.`,
    );
  const settings = resolveSettings(fn, { ...calibration?.settings, ...options });
  const depth = index.tree.depth;
  const levelCalibration =
    calibration && calibration.levels.length === depth
      ? calibration.method === method
        ? calibration.levels
        : calibration.methods.find((m) => m.method === method)?.levels
      : undefined;
  const thresholds = resolveThresholds(fn, options.minConfidence, depth, levelCalibration);
  const { data, rows } = normalizedRows(embeddings, index.dim, fn);
  checkSelfIds(fn, 'selfIds', options.selfIds, rows);
  const placement = rawPlacement(index, data, rows, method, settings, options.selfIds);
  return Array.from({ length: rows }, (_, q) => {
    const levels: LevelPrediction[] = [];
    let answeredDepth = 0;
    for (let l = 0; l < depth; l++) {
      const id = placement.ids[q * depth + l];
      const raw = placement.raw[q * depth + l];
      const confidence = levelCalibration ? applyIsotonic(levelCalibration[l], raw) : raw;
      const answered = answeredDepth === l && id >= 0 && confidence >= thresholds[l];
      if (answered) answeredDepth++;
      levels.push({
        level: l,
        levelName: index.tree.levelNames[l],
        name: id >= 0 ? index.tree.classes(l)[id] : '',
        id,
        confidence,
        rawConfidence: raw,
        answered,
      });
    }
    return { path: levels.slice(0, answeredDepth).map((p) => p.name), depth: answeredDepth, levels, method };
  });
}

/**
 * Calibrates placement on a labelled validation split: for each method, per level, an isotonic
 * map from raw confidence to measured accuracy, then (top down) the lowest threshold whose answers
 * reach `targetPrecision`; reports coverage vs accuracy, and picks the method that answers more
 * queries at the target.
 */
export function calibrate(
  index: EmbeddingIndex,
  validation: LabelledEmbeddings,
  options: CalibrateOptions = {},
): PathCalibration {
  const fn = 'calibrate';
  const target = options.targetPrecision ?? 0.95;
  if (!(typeof target === 'number' && target > 0 && target <= 1))
    throw new ContrastiveError(`${fn}: targetPrecision must be in (0, 1], but got ${target}.`);
  const settings = resolveSettings(fn, options);
  const { data, rows } = normalizedRows(validation.embeddings, index.dim, fn, 'validation.embeddings');
  if (validation.labels.length !== rows)
    throw new ContrastiveError(
      `${fn}: validation.labels must have one path per row (${rows}), but got ${validation.labels.length}.`,
    );
  if (rows === 0) throw new ContrastiveError(`${fn}: validation must hold at least one row, but holds none.`);
  checkSelfIds(fn, 'validation.selfIds', validation.selfIds, rows);
  const depth = index.tree.depth;
  let truth: Int32Array;
  try {
    truth = index.tree.encode(validation.labels, { padToDepth: 'repeat-leaf' });
  } catch (error) {
    throw new ContrastiveError(`${fn}: validation.labels: ${(error as Error).message}`);
  }
  const methods = (options.methods ?? ['knn', 'prototype']).map((method) => {
    const placement = rawPlacement(index, data, rows, method, settings, validation.selfIds);
    // correct[q][l]: the greedy path is right down to level l
    const correct = new Uint8Array(rows * depth);
    for (let q = 0; q < rows; q++) {
      for (let l = 0; l < depth; l++) {
        const ok =
          placement.ids[q * depth + l] === truth[q * depth + l] &&
          (l === 0 || correct[q * depth + l - 1] === 1);
        correct[q * depth + l] = ok ? 1 : 0;
      }
    }
    const levels: LevelCalibration[] = [];
    let reach = Array.from({ length: rows }, (_, q) => q);
    for (let l = 0; l < depth; l++) {
      const iso = isotonicFit(
        Array.from({ length: rows }, (_, q) => placement.raw[q * depth + l]),
        Array.from({ length: rows }, (_, q) => correct[q * depth + l]),
      );
      const level: LevelCalibration = {
        level: l,
        levelName: index.tree.levelNames[l],
        threshold: Number.POSITIVE_INFINITY,
        coverage: 0,
        precision: 0,
        accuracyAtFullCoverage: mean(Array.from({ length: rows }, (_, q) => correct[q * depth + l])),
        rawUpTo: iso.rawUpTo,
        calibrated: iso.calibrated,
      };
      // the lowest threshold whose answers (among queries that passed the coarser levels) reach the target
      const scored = reach
        .map((q) => ({
          q,
          c: applyIsotonic(level, placement.raw[q * depth + l]),
          ok: correct[q * depth + l],
        }))
        .sort((a, b) => b.c - a.c);
      let hits = 0;
      let best = -1;
      for (let i = 0; i < scored.length; i++) {
        hits += scored[i].ok;
        const lastOfTie = i === scored.length - 1 || scored[i + 1].c < scored[i].c;
        if (lastOfTie && hits / (i + 1) >= target) best = i;
      }
      if (best >= 0) {
        level.threshold = scored[best].c;
        const answered = scored.slice(0, best + 1);
        level.coverage = answered.length / rows;
        level.precision = mean(answered.map((s) => s.ok));
        reach = answered.map((s) => s.q);
      } else {
        reach = [];
      }
      levels.push(level);
    }
    const curve = [0, 0.5, 0.7, 0.8, 0.9, 0.95, 0.99].map((threshold) => {
      const coverage: number[] = [];
      const accuracy: number[] = [];
      const alive = new Uint8Array(rows).fill(1);
      for (let l = 0; l < depth; l++) {
        let answered = 0;
        let right = 0;
        for (let q = 0; q < rows; q++) {
          if (!alive[q] || applyIsotonic(levels[l], placement.raw[q * depth + l]) < threshold) {
            alive[q] = 0;
            continue;
          }
          answered++;
          right += correct[q * depth + l];
        }
        coverage.push(answered / rows);
        accuracy.push(answered ? right / answered : 0);
      }
      return { threshold, coverage, accuracy };
    });
    return {
      method,
      levels,
      meanCoverage: mean(levels.map((l) => l.coverage)),
      meanAccuracy: mean(levels.map((l) => l.accuracyAtFullCoverage)),
      curve,
    } satisfies MethodCalibration;
  });
  const chosen = [...methods].sort(
    (a, b) => b.meanCoverage - a.meanCoverage || b.meanAccuracy - a.meanAccuracy,
  )[0];
  return {
    method: chosen.method,
    targetPrecision: target,
    validationSize: rows,
    levels: chosen.levels,
    methods,
    settings,
  };
}

function rawPlacement(
  index: EmbeddingIndex,
  data: Float32Array,
  numQueries: number,
  method: PlacementMethod,
  settings: PathCalibration['settings'],
  selfIds: PredictPathOptions['selfIds'],
): RawPlacement {
  const tree = index.tree;
  const depth = tree.depth;
  const ids = new Int32Array(numQueries * depth).fill(-1);
  const raw = new Float64Array(numQueries * depth);
  if (index.size === 0) return { ids, raw, numQueries };
  const children = childLists(tree);
  if (method === 'knn') {
    const selfRows = selfIds?.map((id) => (id === undefined ? undefined : index.rowOfItem(id)));
    const neighbors = index.exactNeighbors(
      data,
      numQueries,
      settings.k,
      null,
      new Set(),
      (q) => selfRows?.[q],
    );
    // path[l] of each neighbour's leaf, computed once per leaf
    const leafPaths = Array.from({ length: tree.numClasses() }, (_, leaf) => tree.row(leaf));
    const mass = tree.levelSizes.map((n) => new Float64Array(n));
    for (let q = 0; q < numQueries; q++) {
      for (const m of mass) m.fill(0);
      let total = 0;
      for (let r = 0; r < neighbors.k; r++) {
        const row = neighbors.rows[q * neighbors.k + r];
        if (row < 0) break;
        const leaf = index.leafAt(row);
        if (leaf < 0) continue;
        const w = Math.exp((neighbors.similarities[q * neighbors.k + r] - 1) / settings.temperature);
        total += w;
        const path = leafPaths[leaf];
        for (let l = 0; l < depth; l++) mass[l][path[l]] += w;
      }
      if (total === 0) continue;
      // the path of the leaf with the largest vote (the class knnClassify predicts), so accuracy
      // at full coverage is the kNN's at every level; each level's confidence is its subtree's share
      const leafMass = mass[depth - 1];
      let best = 0;
      for (let leaf = 1; leaf < leafMass.length; leaf++) if (leafMass[leaf] > leafMass[best]) best = leaf;
      const path = leafPaths[best];
      for (let l = 0; l < depth; l++) {
        ids[q * depth + l] = path[l];
        raw[q * depth + l] = mass[l][path[l]] / total;
      }
    }
    return { ids, raw, numQueries };
  }
  const prototypes = tree.levelSizes.map((_, l) => index.prototypes(l));
  const dim = index.dim;
  const own = new Float32Array(dim);
  for (let q = 0; q < numQueries; q++) {
    // leave-one-out: a query that is an index item is left out of its own ancestors' prototypes
    const selfId = selfIds?.[q];
    const selfRow = selfId === undefined ? undefined : index.rowOfItem(selfId);
    const selfLeaf = selfRow === undefined ? -1 : index.leafAt(selfRow);
    let candidates = Array.from({ length: tree.levelSizes[0] }, (_, id) => id);
    let confidence = 1;
    for (let l = 0; l < depth; l++) {
      const p = prototypes[l];
      const selfNode = selfLeaf < 0 ? -1 : index.ancestor(selfLeaf, l);
      const present = candidates.filter((c) => p.counts[c] - (c === selfNode ? 1 : 0) > 0);
      if (present.length === 0) break;
      const logits = present.map((c) => {
        if (c !== selfNode) return rowDot(data, q, p.vectors, c, dim) / settings.prototypeTemperature;
        const self = index.rowVector(selfRow!);
        let norm = 0;
        for (let j = 0; j < dim; j++) {
          own[j] = p.sums[c * dim + j] - self[j];
          norm += own[j] * own[j];
        }
        return norm > 0 ? rowDot(data, q, own, 0, dim) / Math.sqrt(norm) / settings.prototypeTemperature : 0;
      });
      const top = Math.max(...logits);
      const weights = logits.map((z) => Math.exp(z - top));
      const sum = weights.reduce((a, b) => a + b, 0);
      let bestAt = 0;
      for (let i = 1; i < present.length; i++) if (logits[i] > logits[bestAt]) bestAt = i;
      confidence *= weights[bestAt] / sum;
      ids[q * depth + l] = present[bestAt];
      raw[q * depth + l] = confidence;
      candidates = l + 1 < depth ? children[l][present[bestAt]] : [];
    }
  }
  return { ids, raw, numQueries };
}

function checkSelfIds(fn: string, field: string, selfIds: PredictPathOptions['selfIds'], rows: number): void {
  if (selfIds !== undefined && selfIds.length !== rows)
    throw new ContrastiveError(
      `${fn}: ${field} must have one entry per row (${rows}), but got ${selfIds.length}.`,
    );
}

function resolveSettings(
  fn: string,
  options: Pick<PredictPathOptions, 'k' | 'temperature' | 'prototypeTemperature'>,
): PathCalibration['settings'] {
  const k = options.k ?? 200;
  const temperature = options.temperature ?? 0.07;
  const prototypeTemperature = options.prototypeTemperature ?? 0.05;
  if (!(Number.isInteger(k) && k >= 1))
    throw new ContrastiveError(`${fn}: k must be an integer >= 1, but got ${k}.`);
  for (const [name, v] of [
    ['temperature', temperature],
    ['prototypeTemperature', prototypeTemperature],
  ] as const) {
    if (!(typeof v === 'number' && Number.isFinite(v) && v > 0))
      throw new ContrastiveError(`${fn}: ${name} must be a finite number > 0, but got ${v}.`);
  }
  return { k, temperature, prototypeTemperature };
}

function resolveThresholds(
  fn: string,
  given: number | readonly number[] | undefined,
  depth: number,
  levels: readonly LevelCalibration[] | undefined,
): number[] {
  if (given === undefined) return levels ? levels.map((l) => l.threshold) : new Array(depth).fill(0);
  const list = typeof given === 'number' ? new Array(depth).fill(given) : [...given];
  if (list.length !== depth || list.some((t) => typeof t !== 'number' || Number.isNaN(t)))
    throw new ContrastiveError(
      `${fn}: minConfidence must be a number or ${depth} numbers (one per level), but got ${JSON.stringify(given)}.`,
    );
  return list;
}

/** Pool-adjacent-violators: the non-decreasing step function closest (least squares) to `(x, y)`. */
function isotonicFit(x: number[], y: number[]): { rawUpTo: number[]; calibrated: number[] } {
  const order = x.map((_, i) => i).sort((a, b) => x[a] - x[b]);
  const blocks: { upTo: number; sum: number; count: number }[] = [];
  for (const i of order) {
    const last = blocks[blocks.length - 1];
    // equal raw values must share one calibrated value
    if (last && last.upTo === x[i]) {
      last.sum += y[i];
      last.count++;
    } else blocks.push({ upTo: x[i], sum: y[i], count: 1 });
    while (blocks.length > 1) {
      const b = blocks[blocks.length - 1];
      const a = blocks[blocks.length - 2];
      if (a.sum / a.count <= b.sum / b.count) break;
      a.sum += b.sum;
      a.count += b.count;
      a.upTo = b.upTo;
      blocks.pop();
    }
  }
  return { rawUpTo: blocks.map((b) => b.upTo), calibrated: blocks.map((b) => b.sum / b.count) };
}

function applyIsotonic(level: Pick<LevelCalibration, 'rawUpTo' | 'calibrated'>, raw: number): number {
  const { rawUpTo, calibrated } = level;
  if (rawUpTo.length === 0) return raw;
  let lo = 0;
  let hi = rawUpTo.length - 1;
  if (raw > rawUpTo[hi]) return calibrated[hi];
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (rawUpTo[mid] >= raw) hi = mid;
    else lo = mid + 1;
  }
  return calibrated[lo];
}

function mean(values: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < values.length; i++) s += values[i];
  return values.length ? s / values.length : 0;
}
