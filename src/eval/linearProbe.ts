import * as tf from '@tensorflow/tfjs-core';
import { check, checkPositive } from '../errors.js';
import type { LabelsLike } from '../losses/parts/labels.js';
import { Rng } from '../random.js';
import { sharedLevelIds } from './labels.js';

/** Options of {@link linearProbe}. */
export interface LinearProbeOptions {
  /** The level whose classes are predicted (0 = coarsest). Default: the finest. */
  level?: number;
  /** Passes over the training embeddings. Default 30. */
  epochs?: number;
  /** Mini-batch size. Default 256. */
  batchSize?: number;
  /** Adam learning rate. Default 0.01. */
  learningRate?: number;
  /** L2 penalty on the weights. Default 1e-4. */
  weightDecay?: number;
  /** Seed of the batch order. Default 0. */
  seed?: number;
}

/** {@link linearProbe}'s result. */
export interface LinearProbeResult {
  trainAccuracy: number;
  testAccuracy: number;
  numClasses: number;
}

/**
 * Linear-probe accuracy: multinomial logistic regression on frozen embeddings (standardised with
 * the training mean and standard deviation), trained with Adam on the training split, reported
 * on the test split. Test classes absent from training count as errors.
 */
export function linearProbe(
  trainEmbeddings: tf.Tensor2D,
  trainLabels: LabelsLike,
  testEmbeddings: tf.Tensor2D,
  testLabels: LabelsLike,
  options: LinearProbeOptions = {},
): LinearProbeResult {
  const fn = 'linearProbe';
  const epochs = options.epochs ?? 30;
  const batchSize = options.batchSize ?? 256;
  const learningRate = options.learningRate ?? 0.01;
  const weightDecay = options.weightDecay ?? 1e-4;
  checkPositive(fn, 'learningRate', learningRate);
  check(
    Number.isInteger(epochs) && epochs >= 1,
    () => `${fn}: epochs must be an integer >= 1, but got ${epochs}.`,
  );
  // test rows first so that train classes get the ids; ids of test-only classes are never predicted
  const ids = sharedLevelIds(fn, testLabels, trainLabels);
  const level = options.level ?? ids.numLevels - 1;
  check(
    level >= 0 && level < ids.numLevels,
    () => `${fn}: level must be in [0, ${ids.numLevels - 1}], but got ${level}.`,
  );
  check(
    ids.databaseKnown[level] === undefined && ids.queryKnown[level] === undefined,
    () =>
      `${fn}: every train and test row must know level ${level} (the probed classes), but some labels are -1 there; drop those rows (evaluateEmbeddings does) or probe a coarser level.`,
  );
  const yTrain = ids.databaseIds[level];
  const yTest = ids.queryIds[level];
  // a loop, not Math.max(...ids): a spread of 100,000s of arguments overflows the stack
  let numClasses = 0;
  for (const ids of [yTrain, yTest]) for (const id of ids) numClasses = Math.max(numClasses, id + 1);
  const n = trainEmbeddings.shape[0];
  const dim = trainEmbeddings.shape[1];
  check(yTrain.length === n, () => `${fn}: trainLabels must have ${n} rows, but got ${yTrain.length}.`);
  check(
    yTest.length === testEmbeddings.shape[0],
    () => `${fn}: testLabels must have ${testEmbeddings.shape[0]} rows, but got ${yTest.length}.`,
  );

  // tidy: tf.variable keeps its initial tensor alive otherwise
  const weights = tf.tidy(() => tf.variable(tf.zeros([dim, numClasses])));
  const bias = tf.tidy(() => tf.variable(tf.zeros([numClasses])));
  const optimizer = tf.train.adam(learningRate);
  const [mean, std] = tf.tidy(() => {
    const moments = tf.moments(trainEmbeddings, 0);
    return [moments.mean, tf.add(tf.sqrt(moments.variance), 1e-6)];
  });
  const standardize = (x: tf.Tensor) => tf.div(tf.sub(x, mean), std);
  const trainX = tf.tidy(() => standardize(trainEmbeddings));
  const logits = (x: tf.Tensor) => tf.add(tf.matMul(x, weights), bias);
  const accuracy = (x: tf.Tensor, y: Int32Array) =>
    tf.tidy(() => {
      const predicted = tf.argMax(logits(x), 1).dataSync();
      let hits = 0;
      predicted.forEach((c, i) => {
        if (c === y[i]) hits++;
      });
      return hits / y.length;
    });
  try {
    const rng = new Rng(options.seed ?? 0);
    for (let epoch = 0; epoch < epochs; epoch++) {
      const order = rng.permutation(n);
      for (let start = 0; start < n; start += batchSize) {
        const idx = order.subarray(start, Math.min(n, start + batchSize));
        tf.tidy(() => {
          const index = tf.tensor1d(idx, 'int32');
          const x = tf.gather(trainX, index);
          const y = tf.oneHot(
            tf.tensor1d(
              Int32Array.from(idx, (i) => yTrain[i]),
              'int32',
            ),
            Math.max(numClasses, 2),
          );
          optimizer.minimize(() => {
            const ce = tf.losses.softmaxCrossEntropy(
              tf.slice(y, [0, 0], [idx.length, numClasses]),
              logits(x),
            );
            return tf.add(ce, tf.mul(tf.sum(tf.square(weights)), weightDecay)) as tf.Scalar;
          });
        });
      }
    }
    const testX = tf.tidy(() => standardize(testEmbeddings));
    const result = {
      trainAccuracy: accuracy(trainX, yTrain),
      testAccuracy: accuracy(testX, yTest),
      numClasses,
    };
    testX.dispose();
    return result;
  } finally {
    optimizer.dispose();
    tf.dispose([weights, bias, mean, std, trainX]);
  }
}
