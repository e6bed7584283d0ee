import * as tf from '@tensorflow/tfjs-core';
import { takeRows } from '../data/splits.js';
import { check } from '../errors.js';
import { type LabelMatrix, type LabelsLike, readLabelMatrix } from '../losses/parts/labels.js';
import { Rng } from '../random.js';
import { type HierarchyConsistency, hierarchyConsistency } from './consistency.js';
import { knnClassify } from './knn.js';
import { type LinearProbeOptions, linearProbe } from './linearProbe.js';
import { nearestNeighbors } from './neighbors.js';
import { pca2d } from './projection.js';
import { type LevelRetrieval, retrievalMetrics } from './retrieval.js';
import { type MistakeSeverity, mistakeSeverity } from './severity.js';

/**
 * Embeddings of one split with their `[N, L]` label rows (coarsest first). Rows may be partial
 * (-1 below a known prefix): kNN, retrieval and consistency count them only at the levels they
 * know; mistake severity and the linear probe (finest classes) use only fully labelled rows.
 */
export interface EmbeddedSplit {
  embeddings: tf.Tensor2D;
  labels: LabelsLike;
}

/** Options of {@link evaluateEmbeddings}. */
export interface EvaluateOptions {
  /** kNN neighbours and temperature (InstDisc protocol). Defaults 200 and 0.07. */
  knnK?: number;
  knnTemperature?: number;
  /** Linear-probe settings, or `false` to skip it (it is the slowest metric). */
  linearProbe?: LinearProbeOptions | false;
  /** Anchors for the hierarchy-consistency count. Default 2000; 0 skips it (not measured). */
  consistencyAnchors?: number;
  /** Fine-class label rows held out of training: their test samples form the unseen-class queries. */
  heldOutClasses?: readonly (readonly number[])[];
  /** Test points in the 2-D map (a seeded subset). Default 2000; 0 skips it. */
  projectionPoints?: number;
  /** Also retrieve each test query among the training items (`crossRetrieval`). Default true. */
  crossSplit?: boolean;
  seed?: number;
}

/** Everything `contrastive eval` writes to `eval.json`. */
export interface EvaluationSummary {
  numTrain: number;
  numTest: number;
  numLevels: number;
  /** Weighted kNN on test embeddings against train embeddings; accuracy of the predicted path per level. */
  knn: { k: number; temperature: number; accuracyByLevel: number[] };
  /** Linear probe on the finest level (absent when skipped). */
  linearProbe?: { trainAccuracy: number; testAccuracy: number };
  /** Test vs test: leave-one-out retrieval within the test split, per level. */
  retrieval: LevelRetrieval[];
  /**
   * Test vs train (cross-split): each test query retrieves among the training items, per level —
   * what a catalogue user sees when the catalogue is the training set (absent when skipped).
   */
  crossRetrieval?: LevelRetrieval[];
  /** Mistake severity of kNN predictions and of each test item's nearest test neighbour. */
  severity: { knn: MistakeSeverity; nearestNeighbor: MistakeSeverity };
  consistency?: HierarchyConsistency;
  /** Retrieval for queries of held-out fine classes (within the whole test split). */
  unseen?: { numQueries: number; retrieval: LevelRetrieval[] };
  /** 2-D PCA map of a subset of the test embeddings: `points` is `[n, 2]` row-major, `labels` their rows. */
  projection?: { indices: number[]; points: number[]; labels: number[][] };
}

/**
 * Evaluates frozen embeddings the way the papers do: kNN and linear-probe accuracy, retrieval at
 * every hierarchy level, mistake severity, hierarchy consistency, unseen fine classes, and a 2-D
 * map for the report.
 */
export function evaluateEmbeddings(
  train: EmbeddedSplit,
  test: EmbeddedSplit,
  options: EvaluateOptions = {},
): EvaluationSummary {
  const fn = 'evaluateEmbeddings';
  const partial = { allowUnknown: true };
  const testLabels = readLabelMatrix(fn, 'test labels', test.labels, partial);
  const trainLabels = readLabelMatrix(fn, 'train labels', train.labels, partial);
  check(
    testLabels.cols === trainLabels.cols,
    () =>
      `${fn}: train and test labels must have the same levels, but got ${trainLabels.cols} and ${testLabels.cols}.`,
  );
  checkEvaluateOptions(fn, options);
  checkFiniteEmbeddings(fn, 'train embeddings', train.embeddings);
  checkFiniteEmbeddings(fn, 'test embeddings', test.embeddings);
  const numLevels = testLabels.cols;
  const k = options.knnK ?? 200;
  const temperature = options.knnTemperature ?? 0.07;
  const testRows = rows(testLabels);
  const trainRows = rows(trainLabels);
  const knn = knnClassify(test.embeddings, testRows, train.embeddings, trainRows, { k, temperature });
  const nn = nearestNeighbors(test.embeddings, test.embeddings, 1, { excludeSelf: true });
  // mistake severity compares full paths: partial rows (and neighbours) are left out of it
  const testFull = fullyKnown(testLabels);
  const testIsFull = new Uint8Array(testLabels.rows);
  for (const i of testFull) testIsFull[i] = 1;
  const nnPairs = testFull.filter((i) => testIsFull[nn.indices[i]] === 1);
  const knnPredicted = rows(knn.predicted);
  const summary: EvaluationSummary = {
    numTrain: trainLabels.rows,
    numTest: testLabels.rows,
    numLevels,
    knn: { k, temperature, accuracyByLevel: knn.accuracyByLevel },
    retrieval: retrievalMetrics(test.embeddings, testRows),
    crossRetrieval:
      options.crossSplit === false
        ? undefined
        : retrievalMetrics(test.embeddings, testRows, {
            database: { embeddings: train.embeddings, labels: trainRows },
          }),
    severity: {
      knn: severityOf(
        testFull.map((i) => knnPredicted[i]),
        testFull.map((i) => testRows[i]),
        numLevels,
      ),
      nearestNeighbor: severityOf(
        nnPairs.map((i) => testRows[nn.indices[i]]),
        nnPairs.map((i) => testRows[i]),
        numLevels,
      ),
    },
  };
  if (options.linearProbe !== false) {
    // the probe learns the finest classes: rows with a partial label path are left out
    const trainFull = fullyKnown(trainLabels);
    const subset = (x: tf.Tensor2D, idx: number[], n: number) => (idx.length === n ? x : gatherRows(x, idx));
    const trainX = subset(train.embeddings, trainFull, trainLabels.rows);
    const testX = subset(test.embeddings, testFull, testLabels.rows);
    const probe = linearProbe(
      trainX,
      trainFull.map((i) => trainRows[i]),
      testX,
      testFull.map((i) => testRows[i]),
      { seed: options.seed, ...(options.linearProbe ?? {}) },
    );
    if (trainX !== train.embeddings) trainX.dispose();
    if (testX !== test.embeddings) testX.dispose();
    summary.linearProbe = { trainAccuracy: probe.trainAccuracy, testAccuracy: probe.testAccuracy };
  }
  if (numLevels >= 2 && options.consistencyAnchors !== 0) {
    summary.consistency = hierarchyConsistency(test.embeddings, testRows, {
      maxAnchors: options.consistencyAnchors,
      seed: options.seed,
    });
  }
  if (options.heldOutClasses && options.heldOutClasses.length > 0) {
    const held = new Set(options.heldOutClasses.map((r) => r.join('/')));
    const queryIndices = testRows.map((r, i) => (held.has(r.join('/')) ? i : -1)).filter((i) => i >= 0);
    summary.unseen = {
      numQueries: queryIndices.length,
      retrieval: queryIndices.length > 0 ? retrievalMetrics(test.embeddings, testRows, { queryIndices }) : [],
    };
  }
  const points = options.projectionPoints ?? 2000;
  if (points > 0) {
    const n = testLabels.rows;
    const indices =
      n > points
        ? Array.from(new Rng(options.seed ?? 0).permutation(n).subarray(0, points)).sort((a, b) => a - b)
        : Array.from({ length: n }, (_, i) => i);
    const subset = gatherRows(test.embeddings, indices);
    summary.projection = {
      indices,
      points: Array.from(pca2d(subset, options.seed ?? 0), (v) => Number(v.toFixed(5))),
      labels: indices.map((i) => testRows[i]),
    };
    subset.dispose();
  }
  return summary;
}

/**
 * Throws when an embedding holds NaN or ±Infinity: a diverged model would otherwise score
 * perfectly (every distance NaN, every tie broken in its favour).
 */
export function checkFiniteEmbeddings(fn: string, name: string, embeddings: tf.Tensor2D): void {
  const values = embeddings.dataSync();
  const d = embeddings.shape[1];
  let bad = 0;
  for (let i = 0; i < embeddings.shape[0]; i++) {
    for (let j = 0; j < d; j++) {
      if (!Number.isFinite(values[i * d + j])) {
        bad++;
        break;
      }
    }
  }
  check(
    bad === 0,
    () =>
      `${fn}: ${bad} of ${embeddings.shape[0]} ${name} are not finite (NaN or Infinity): the model diverged or its weights are damaged; metrics on them would be meaningless.`,
  );
}

/** Checks the options before any work, naming the option. */
export function checkEvaluateOptions(fn: string, options: EvaluateOptions): void {
  const int = (name: keyof EvaluateOptions, min: number) => {
    const v = options[name];
    check(
      v === undefined || (typeof v === 'number' && Number.isInteger(v) && v >= min),
      () => `${fn}: ${name} must be an integer >= ${min}, but got ${String(v)}.`,
    );
  };
  int('knnK', 1);
  int('consistencyAnchors', 0);
  int('projectionPoints', 0);
  const t = options.knnTemperature;
  check(
    t === undefined || (Number.isFinite(t) && t > 0),
    () => `${fn}: knnTemperature must be a number > 0, but got ${String(t)}.`,
  );
}

/** {@link mistakeSeverity}, or no mistakes when no row is fully labelled. */
function severityOf(predicted: number[][], truth: number[][], numLevels: number): MistakeSeverity {
  if (truth.length > 0) return mistakeSeverity(predicted, truth);
  return { meanLcaHeight: 0, numMistakes: 0, histogram: new Array<number>(numLevels + 1).fill(0) };
}

/** Indices of the rows whose label path is known at every level. */
function fullyKnown(m: LabelMatrix): number[] {
  const out: number[] = [];
  for (let i = 0; i < m.rows; i++) if (!m.knownDepth || m.knownDepth[i] === m.cols) out.push(i);
  return out;
}

function rows(m: { values: Int32Array; rows: number; cols: number }): number[][] {
  return Array.from({ length: m.rows }, (_, i) =>
    Array.from(m.values.subarray(i * m.cols, (i + 1) * m.cols)),
  );
}

function gatherRows(x: tf.Tensor2D, indices: number[]): tf.Tensor2D {
  const [, d] = x.shape;
  return tf.tensor2d(takeRows(x.dataSync() as Float32Array, d, indices), [indices.length, d]);
}
