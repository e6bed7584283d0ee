import * as tf from '@tensorflow/tfjs-core';
import type { TrainingData, TrainingSplit } from '../data/dataset.js';
import { embedSplit } from '../eval/embed.js';
import { knnClassify } from '../eval/knn.js';
import type { ContrastiveModel } from '../models/contrastiveModel.js';

/** kNN accuracy (finest level, k = 20) of backbone embeddings, test against train, on at most 5,000 / 1,000 samples. */
export function quickKnn(model: ContrastiveModel, data: TrainingData): number {
  const depth = data.tree.depth;
  const size = data.inputShape.reduce((a, b) => a * b, 1);
  const take = (split: TrainingSplit, limit: number) => {
    const n = Math.min(split.size, limit);
    const first = {
      inputs: split.inputs.subarray(0, n * size),
      labels: split.labels.subarray(0, n * depth),
      size: n,
    };
    const rows = Array.from({ length: n }, (_, i) =>
      Array.from(split.labels.subarray(i * depth, (i + 1) * depth)),
    );
    return { embeddings: embedSplit(model.backbone, first, data.inputShape), rows };
  };
  const train = take(data.train, 5000);
  const test = take(data.test, 1000);
  try {
    return knnClassify(test.embeddings, test.rows, train.embeddings, train.rows, { k: 20 }).accuracy;
  } finally {
    tf.dispose([train.embeddings, test.embeddings]);
  }
}
