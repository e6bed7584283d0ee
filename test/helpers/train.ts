import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EMBEDDED_FASHION_MNIST_DIR } from '../../src/data/fashionMnist.js';
import { resolveTrainConfig, type TrainConfig } from '../../src/train/config.js';
import { ProgressReporter } from '../../src/train/progress.js';

/** A fresh temp folder for runs. */
export const tempRuns = () => mkdtemp(join(tmpdir(), 'contrastive-runs-'));

/** A small, fast config on the embedded Fashion-MNIST subset (MLP encoder, wasm). */
export async function smallConfig(out: string, overrides: Partial<TrainConfig> = {}): Promise<TrainConfig> {
  return resolveTrainConfig({
    out,
    dataDir: EMBEDDED_FASHION_MNIST_DIR,
    backend: 'wasm',
    encoder: 'mlp',
    embeddingDim: 64,
    projectionDim: 32,
    trainLimit: 512,
    testLimit: 300,
    batchSize: 64,
    epochs: 2,
    learningRate: 0.002,
    warmupEpochs: 0,
    logEvery: 4,
    queueSize: 256,
    seed: 5,
    ...overrides,
  });
}

/** Progress output swallowed (tests assert on files and results). */
export function quietProgress(): ProgressReporter {
  const sink = { write: () => true, isTTY: false } as unknown as NodeJS.WriteStream;
  return new ProgressReporter(sink, false);
}
