import { ContrastiveError } from '../errors.js';
import type { LabelPath } from '../hierarchy/labelTree.js';
import type { EmbeddingIndex, RowNeighbors } from './embeddingIndex.js';
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
  /**
   * How typical the item is of the chosen node (kNN: mean cosine to its 10 closest neighbours in
   * the node; prototypes: cosine to the node's prototype). An item of a class the index lacks is
   * less typical of the class it lands in: the class level needs the calibration's `typicalCut`.
   */
  typicality: number;
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
  /**
   * The level is answered when its raw confidence is strictly above this (1: never). Absent in
   * calibrations made before it existed, which compare the calibrated confidence with `threshold`.
   */
  rawCut?: number;
  /**
   * With unseen classes simulated, the class level is also answered only when the query is more
   * typical of the chosen class (see `PathPrediction`'s `typicality`) than this: the split-conformal
   * quantile of the placements whose own class was left out.
   */
  typicalCut?: number;
  /** What the threshold guarantees, and on how many calibration answers. */
  guarantee?: LevelGuarantee;
}

/**
 * The finite-sample guarantee of one level's threshold. Thresholds are tested from the strictest
 * down (a fixed sequence, each at the calibration's `confidence`) and the loosest one that passes
 * is kept: with probability at least `confidence` over the draw of the calibration items, answers
 * at this level are at least `targetPrecision` right on fresh items drawn like them.
 */
export interface LevelGuarantee {
  /** Calibration answers the bound rests on, and how many were right. */
  answered: number;
  right: number;
  /** The one-sided Clopper-Pearson lower bound on their precision at `confidence` (≥ the target when met). */
  precisionLowerBound: number;
  /** Whether some threshold passed; if not, the level is never answered. */
  met: boolean;
  /**
   * Levels where a node was left out of the index (the class level with `unseen: 'classes'`): how
   * many left-out placements set the split-conformal bound, and the bound on the share of items of
   * an unseen class that still answer this level (at most `1 - targetPrecision`).
   */
  unseenItems?: number;
  unseenAnswerBound?: number;
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
  /** Confidence of every level's precision bound (see {@link LevelGuarantee}). */
  confidence?: number;
  /** Whether unseen classes were simulated (see {@link CalibrateOptions.unseen}). */
  unseen?: 'classes' | 'none';
  /** The guarantee in one sentence, for printing. */
  guarantee?: string;
}

/** Options of {@link calibrate}. */
export interface CalibrateOptions
  extends Pick<PredictPathOptions, 'k' | 'temperature' | 'prototypeTemperature'> {
  /** Accuracy wanted for every answered level. Default 0.95. */
  targetPrecision?: number;
  /** Which methods to measure. Default both. */
  methods?: readonly PlacementMethod[];
  /**
   * Probability that the chosen thresholds meet the target on fresh data (over the draw of the
   * calibration items): each level's precision is bounded from below at this confidence. Default 0.9.
   */
  confidence?: number;
  /**
   * `'classes'` (default): also place every calibration item as if its finest class were missing
   * from the index (its items left out of the neighbours and prototypes), so that the class level
   * learns what an unseen class looks like: its threshold is raised to the split-conformal
   * quantile of those placements (an item of an unseen class names a class with probability at
   * most `1 - targetPrecision`), and the coarser levels must reach the target on those placements
   * too. `'none'`: only the items as they are (the class level is then overconfident on classes the
   * index does not hold).
   */
  unseen?: 'classes' | 'none';
}

/** Raw greedy top-down placement of every query: `[Q, L]` node ids and raw confidences. */
interface RawPlacement {
  ids: Int32Array;
  raw: Float64Array;
  /**
   * How typical the query is of the chosen node: kNN, the mean similarity of its closest
   * neighbours inside the node (up to 10); prototypes, the cosine to the node's prototype.
   */
  typical: Float64Array;
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
  // a calibration's own thresholds are cuts on the raw confidence (what its guarantee was tested on)
  const rawCuts =
    options.minConfidence === undefined && levelCalibration?.every((l) => l.rawCut !== undefined)
      ? levelCalibration.map((l) => l.rawCut!)
      : null;
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
      const typicality = placement.typical[q * depth + l];
      const typicalCut = rawCuts ? levelCalibration![l].typicalCut : undefined;
      const clears = rawCuts
        ? Number.isFinite(thresholds[l]) &&
          raw > rawCuts[l] &&
          (typicalCut === undefined || (typicalCut !== null && typicality > typicalCut))
        : confidence >= thresholds[l];
      const answered = answeredDepth === l && id >= 0 && clears;
      if (answered) answeredDepth++;
      levels.push({
        level: l,
        levelName: index.tree.levelNames[l],
        name: id >= 0 ? index.tree.classes(l)[id] : '',
        id,
        confidence,
        rawConfidence: raw,
        typicality,
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
  const confidence = options.confidence ?? 0.9;
  if (!(typeof confidence === 'number' && confidence > 0 && confidence < 1))
    throw new ContrastiveError(`${fn}: confidence must be in (0, 1), but got ${confidence}.`);
  const unseen = options.unseen ?? 'classes';
  if (unseen !== 'classes' && unseen !== 'none')
    throw new ContrastiveError(
      `${fn}: unseen must be 'classes' or 'none', but got ${JSON.stringify(unseen)}.`,
    );
  const settings = resolveSettings(fn, options);
  const { data, rows } = normalizedRows(validation.embeddings, index.dim, fn, 'validation.embeddings');
  if (validation.labels.length !== rows)
    throw new ContrastiveError(
      `${fn}: validation.labels must have one path per row (${rows}), but got ${validation.labels.length}.`,
    );
  if (rows === 0) throw new ContrastiveError(`${fn}: validation must hold at least one row, but holds none.`);
  checkSelfIds(fn, 'validation.selfIds', validation.selfIds, rows);
  const depth = index.tree.depth;
  const leafLevel = depth - 1;
  let truth: Int32Array;
  try {
    truth = index.tree.encode(validation.labels, { padToDepth: 'repeat-leaf' });
  } catch (error) {
    throw new ContrastiveError(`${fn}: validation.labels: ${(error as Error).message}`);
  }
  // the simulated unseen classes: each item's own class left out, where another class of its
  // parent holds items (so its coarser levels still have a right answer)
  const leftOut = unseen === 'classes' ? unseenLeaves(index, truth, rows) : null;
  const delta = 1 - confidence;
  const methods = (options.methods ?? ['knn', 'prototype']).map((method) => {
    const seen = judgedPlacement(index, data, rows, method, settings, validation.selfIds, truth, null);
    const loco = leftOut
      ? judgedPlacement(index, data, rows, method, settings, validation.selfIds, truth, leftOut)
      : null;
    // the left-out placements that exist (items whose class could be left out)
    const locoRows = leftOut ? Array.from({ length: rows }, (_, q) => q).filter((q) => leftOut[q] >= 0) : [];
    const levels: LevelCalibration[] = [];
    let reach = Array.from({ length: rows }, (_, q) => q);
    for (let l = 0; l < depth; l++) {
      const at = (p: JudgedPlacement, q: number) => ({
        raw: p.raw[q * depth + l],
        ok: p.correct[q * depth + l],
      });
      // the confidence is the measured chance of being right, seen and left-out placements pooled
      const all = [
        ...Array.from({ length: rows }, (_, q) => at(seen, q)),
        ...(loco ? locoRows.map((q) => at(loco, q)) : []),
      ];
      const iso = isotonicFit(
        all.map((x) => x.raw),
        all.map((x) => x.ok),
      );
      const level: LevelCalibration = {
        level: l,
        levelName: index.tree.levelNames[l],
        threshold: Number.POSITIVE_INFINITY,
        coverage: 0,
        precision: 0,
        accuracyAtFullCoverage: mean(Array.from({ length: rows }, (_, q) => seen.correct[q * depth + l])),
        rawUpTo: iso.rawUpTo,
        calibrated: iso.calibrated,
        rawCut: 1,
      };
      // at the class level an unseen class must rarely clear the cut: split conformal over the
      // left-out placements (a fresh one exceeds the k-th smallest with probability <= 1 - k/(n+1))
      let typicalCut = Number.NEGATIVE_INFINITY;
      const guarantee: LevelGuarantee = { answered: 0, right: 0, precisionLowerBound: 0, met: false };
      if (loco && l === leafLevel) {
        const scores = locoRows.map((q) => loco.typical[q * depth + l]).sort((a, b) => a - b);
        const n = scores.length;
        const k = Math.ceil((n + 1) * target);
        guarantee.unseenItems = n;
        if (n > 0 && k <= n) {
          typicalCut = scores[k - 1];
          guarantee.unseenAnswerBound = 1 - k / (n + 1);
        } else typicalCut = Number.POSITIVE_INFINITY;
        level.typicalCut = typicalCut;
      }
      // the precision test: the seen placements that reached this level (and, at the class level,
      // are more typical of their class than the unseen-class cut)
      const tested = reach
        .filter((q) => seen.typical[q * depth + l] > typicalCut)
        .map((q) => ({ q, loco: false, ...at(seen, q) }))
        .sort((a, b) => b.raw - a.raw);
      const chosen =
        typicalCut === Number.POSITIVE_INFINITY
          ? null
          : fixedSequence(tested, target, delta, Number.NEGATIVE_INFINITY);
      if (chosen) {
        const answered = tested.slice(0, chosen.count);
        level.rawCut = chosen.cut;
        const answeredSeen = answered.filter((x) => !x.loco);
        level.threshold = Math.min(...answered.map((x) => applyIsotonic(level, x.raw)));
        level.coverage = answeredSeen.length / rows;
        level.precision = mean(answeredSeen.map((x) => x.ok));
        guarantee.answered = chosen.count;
        guarantee.right = chosen.right;
        guarantee.precisionLowerBound = binomialLowerBound(chosen.right, chosen.count, delta);
        guarantee.met = true;
        reach = answeredSeen.map((x) => x.q);
      } else reach = [];
      level.guarantee = guarantee;
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
          if (!alive[q] || applyIsotonic(levels[l], seen.raw[q * depth + l]) < threshold) {
            alive[q] = 0;
            continue;
          }
          answered++;
          right += seen.correct[q * depth + l];
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
    confidence,
    unseen,
    guarantee: guaranteeText(chosen.levels, target, confidence, rows, unseen),
  };
}

/** One sentence: what the thresholds promise, per level. */
function guaranteeText(
  levels: readonly LevelCalibration[],
  target: number,
  confidence: number,
  rows: number,
  unseen: 'classes' | 'none',
): string {
  const pct = (v: number) => `${(100 * v).toFixed(1)} %`;
  const perLevel = levels
    .map((l) =>
      l.guarantee?.met
        ? `${l.levelName} >= ${pct(l.guarantee.precisionLowerBound)} (${l.guarantee.right}/${l.guarantee.answered} right)`
        : `${l.levelName} never answered (no threshold reaches the target)`,
    )
    .join(', ');
  const leaf = levels[levels.length - 1]?.guarantee;
  const unseenText =
    unseen === 'classes'
      ? leaf?.unseenAnswerBound !== undefined
        ? `; an item of a class missing from the index names a class with probability <= ${pct(leaf.unseenAnswerBound)} (split conformal on typicality over ${leaf.unseenItems} placements with the item's own class left out; assumes a new class resembles a left-out one)`
        : `; too few left-out placements (${leaf?.unseenItems ?? 0}) to bound unseen classes, so the class level is never answered`
      : '; unseen classes were not simulated (unseen: none), so the class level may name a wrong class for them';
  return `with ${pct(confidence)} confidence (fixed-sequence Clopper-Pearson test, ${rows} calibration items), answers at each level are at least ${pct(target)} right on fresh items like the calibration ones: ${perLevel}${unseenText}. The levels reuse the same items (the bound holds per level).`;
}

/** Raw placement with, per query and level, whether the greedy path is right down to that level. */
interface JudgedPlacement extends RawPlacement {
  correct: Uint8Array;
}

function judgedPlacement(
  index: EmbeddingIndex,
  data: Float32Array,
  rows: number,
  method: PlacementMethod,
  settings: PathCalibration['settings'],
  selfIds: PredictPathOptions['selfIds'],
  truth: Int32Array,
  leftOut: Int32Array | null,
): JudgedPlacement {
  const depth = index.tree.depth;
  const placement = rawPlacement(index, data, rows, method, settings, selfIds, leftOut ?? undefined);
  const correct = new Uint8Array(rows * depth);
  for (let q = 0; q < rows; q++)
    for (let l = 0; l < depth; l++)
      correct[q * depth + l] =
        placement.ids[q * depth + l] === truth[q * depth + l] && (l === 0 || correct[q * depth + l - 1] === 1)
          ? 1
          : 0;
  return { ...placement, correct };
}

/** Per query, its own leaf when another leaf of the same parent holds items (-1 otherwise). */
function unseenLeaves(index: EmbeddingIndex, truth: Int32Array, rows: number): Int32Array {
  const tree = index.tree;
  const depth = tree.depth;
  const counts = index.prototypes(depth - 1).counts;
  const parentOf = (leaf: number) => (depth === 1 ? 0 : tree.parent(depth - 1, leaf));
  const populated = new Map<number, number>();
  for (let leaf = 0; leaf < counts.length; leaf++)
    if (counts[leaf] > 0) populated.set(parentOf(leaf), (populated.get(parentOf(leaf)) ?? 0) + 1);
  const out = new Int32Array(rows).fill(-1);
  for (let q = 0; q < rows; q++) {
    const leaf = truth[q * depth + depth - 1];
    const others = (populated.get(parentOf(leaf)) ?? 0) - (counts[leaf] > 0 ? 1 : 0);
    if (others > 0) out[q] = leaf;
  }
  return out;
}

/**
 * Tests thresholds from the strictest down, each answering the top `count` of `sorted` (by raw,
 * descending; ties answered together; only cuts at or above `floor`): H0 "precision < target" is
 * rejected when a binomial(count, target) reaches `right` with probability <= delta. Stops at the
 * first that fails and returns the loosest one rejected (a fixed sequence: every rejection holds
 * at once with probability >= 1 - delta). Null when the first already fails.
 */
function fixedSequence(
  sorted: readonly { raw: number; ok: number }[],
  target: number,
  delta: number,
  floor: number,
): { count: number; right: number; cut: number } | null {
  // only items above the floor can be answered; start where an all-right answer can pass (with
  // room for a couple of errors), then move down in about 400 steps
  let n = 0;
  while (n < sorted.length && sorted[n].raw > floor) n++;
  if (n === 0) return null;
  const allRight = target >= 1 ? n : Math.ceil(Math.log(delta) / Math.log(target));
  const step = Math.max(1, Math.ceil(n / 400));
  let best: { count: number; right: number; cut: number } | null = null;
  let right = 0;
  let count = 0;
  let want = Math.min(n, 2 * allRight);
  while (count < n) {
    // answer the top `want`, extended to the end of its tie group
    while (count < want || (count < n && count > 0 && sorted[count].raw === sorted[count - 1].raw))
      right += sorted[count++].ok;
    if (binomialUpperTail(right, count, target) > delta) break;
    const next = count < sorted.length ? sorted[count].raw : -1;
    best = { count, right, cut: Math.max(next, floor) };
    want = Math.min(n, count + step);
  }
  return best;
}

const logFactorials: number[] = [0];
function logFactorial(n: number): number {
  for (let i = logFactorials.length; i <= n; i++) logFactorials.push(logFactorials[i - 1] + Math.log(i));
  return logFactorials[n];
}

/** P(Binomial(n, p) >= k). */
function binomialUpperTail(k: number, n: number, p: number): number {
  if (k <= 0) return 1;
  if (p >= 1) return 1;
  if (p <= 0) return 0;
  let sum = 0;
  const lp = Math.log(p);
  const lq = Math.log1p(-p);
  for (let i = k; i <= n; i++)
    sum += Math.exp(logFactorial(n) - logFactorial(i) - logFactorial(n - i) + i * lp + (n - i) * lq);
  return Math.min(1, sum);
}

/** One-sided Clopper-Pearson lower bound on a proportion at confidence 1 - delta. */
function binomialLowerBound(right: number, n: number, delta: number): number {
  if (right <= 0 || n <= 0) return 0;
  let lo = 0;
  let hi = right / n;
  for (let i = 0; i < 50; i++) {
    const mid = (lo + hi) / 2;
    if (binomialUpperTail(right, n, mid) > delta) hi = mid;
    else lo = mid;
  }
  return lo;
}

/** kNN typicality: the mean similarity of this many closest neighbours inside the node. */
const TYPICAL_NEIGHBORS = 10;

function rawPlacement(
  index: EmbeddingIndex,
  data: Float32Array,
  numQueries: number,
  method: PlacementMethod,
  settings: PathCalibration['settings'],
  selfIds: PredictPathOptions['selfIds'],
  leftOut?: Int32Array,
): RawPlacement {
  const tree = index.tree;
  const depth = tree.depth;
  const ids = new Int32Array(numQueries * depth).fill(-1);
  const raw = new Float64Array(numQueries * depth);
  const typical = new Float64Array(numQueries * depth).fill(-1);
  if (index.size === 0) return { ids, raw, typical, numQueries };
  const children = childLists(tree);
  const selfRows = selfIds?.map((id) => (id === undefined ? undefined : index.rowOfItem(id)));
  if (method === 'knn') {
    const neighbors = knnNeighbors(index, data, numQueries, settings.k, selfRows, leftOut);
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
        let sum = 0;
        let count = 0;
        for (let r = 0; r < neighbors.k && count < TYPICAL_NEIGHBORS; r++) {
          const row = neighbors.rows[q * neighbors.k + r];
          if (row < 0) break;
          const leaf = index.leafAt(row);
          if (leaf < 0 || leafPaths[leaf][l] !== path[l]) continue;
          sum += neighbors.similarities[q * neighbors.k + r];
          count++;
        }
        typical[q * depth + l] = count ? sum / count : -1;
      }
    }
    return { ids, raw, typical, numQueries };
  }
  const prototypes = tree.levelSizes.map((_, l) => index.prototypes(l));
  const leafPrototypes = prototypes[depth - 1];
  const dim = index.dim;
  const own = new Float32Array(dim);
  for (let q = 0; q < numQueries; q++) {
    // what is taken out of the prototypes of one leaf and its ancestors: a left-out class (all its
    // items), or a query that is an index item (itself)
    const selfRow = selfRows?.[q];
    let removedLeaf = leftOut && leftOut[q] >= 0 ? leftOut[q] : -1;
    let removed: Float32Array | null = null;
    let removedCount = 0;
    if (removedLeaf >= 0) {
      removed = leafPrototypes.sums.subarray(removedLeaf * dim, (removedLeaf + 1) * dim);
      removedCount = leafPrototypes.counts[removedLeaf];
    } else if (selfRow !== undefined && index.leafAt(selfRow) >= 0) {
      removedLeaf = index.leafAt(selfRow);
      removed = index.rowVector(selfRow);
      removedCount = 1;
    }
    let candidates = Array.from({ length: tree.levelSizes[0] }, (_, id) => id);
    let confidence = 1;
    for (let l = 0; l < depth; l++) {
      const p = prototypes[l];
      const changed = removedLeaf < 0 ? -1 : index.ancestor(removedLeaf, l);
      const present = candidates.filter((c) => p.counts[c] - (c === changed ? removedCount : 0) > 0);
      if (present.length === 0) break;
      const logits = present.map((c) => {
        if (c !== changed) return rowDot(data, q, p.vectors, c, dim) / settings.prototypeTemperature;
        let norm = 0;
        for (let j = 0; j < dim; j++) {
          own[j] = p.sums[c * dim + j] - removed![j];
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
      typical[q * depth + l] = logits[bestAt] * settings.prototypeTemperature;
      candidates = l + 1 < depth ? children[l][present[bestAt]] : [];
    }
  }
  return { ids, raw, typical, numQueries };
}

/**
 * Exact k nearest rows of every query, without the query's own row, and without every row of its
 * left-out leaf (queries grouped by that leaf, one search per group).
 */
function knnNeighbors(
  index: EmbeddingIndex,
  data: Float32Array,
  numQueries: number,
  k: number,
  selfRows: readonly (number | undefined)[] | undefined,
  leftOut: Int32Array | undefined,
): RowNeighbors {
  if (!leftOut) return index.exactNeighbors(data, numQueries, k, null, new Set(), (q) => selfRows?.[q]);
  const dim = index.dim;
  const rows = new Int32Array(numQueries * k).fill(-1);
  const similarities = new Float32Array(numQueries * k).fill(Number.NEGATIVE_INFINITY);
  const groups = new Map<number, number[]>();
  for (let q = 0; q < numQueries; q++) {
    const list = groups.get(leftOut[q]) ?? [];
    list.push(q);
    groups.set(leftOut[q], list);
  }
  for (const [leaf, queries] of groups) {
    const excluded = new Set<number>();
    if (leaf >= 0)
      for (let row = 0; row < index.size; row++) if (index.leafAt(row) === leaf) excluded.add(row);
    const block = new Float32Array(queries.length * dim);
    queries.forEach((q, i) => {
      block.set(data.subarray(q * dim, (q + 1) * dim), i * dim);
    });
    const found = index.exactNeighbors(
      block,
      queries.length,
      k,
      null,
      excluded,
      (i) => selfRows?.[queries[i]],
    );
    queries.forEach((q, i) => {
      rows.set(found.rows.subarray(i * k, (i + 1) * k), q * k);
      similarities.set(found.similarities.subarray(i * k, (i + 1) * k), q * k);
    });
  }
  return { k, rows, similarities };
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
