import * as tf from '@tensorflow/tfjs-core';
import type { DataSplit, RunData } from '../data/runData.js';
import { embedDataSplit } from '../eval/embed.js';
import { knnClassify } from '../eval/knn.js';
import type { ContrastiveModel } from '../models/contrastiveModel.js';

/**
 * kNN accuracy (finest level, k = 20) of backbone embeddings, test against train, on at most the
 * first 5,000 / 1,000 samples (read from the image cache when the data is streamed).
 */
export async function quickKnn(model: ContrastiveModel, data: RunData): Promise<number> {
  const depth = data.tree.depth;
  const take = async (split: DataSplit, limit: number) => {
    const n = Math.min(split.size, limit);
    const rows = Array.from({ length: n }, (_, i) =>
      Array.from(split.labels.subarray(i * depth, (i + 1) * depth)),
    );
    return { embeddings: await embedDataSplit(model.backbone, split, data.inputShape, n), rows };
  };
  const train = await take(data.train, 5000);
  const test = await take(data.test, 1000).catch((error: unknown) => {
    train.embeddings.dispose();
    throw error;
  });
  try {
    return knnClassify(test.embeddings, test.rows, train.embeddings, train.rows, { k: 20 }).accuracy;
  } finally {
    tf.dispose([train.embeddings, test.embeddings]);
  }
}
