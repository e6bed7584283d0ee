/**
 * A small end-to-end demo: an MLP learns embeddings of points drawn around a 3-level label tree
 * (2 › 6 › 18 classes) with HiMulConE, and per-level nearest-neighbour precision is printed before
 * and after training. Runs in well under a minute on two CPU cores.
 *
 *   node dist/examples/syntheticTree.js [--backend cpu] [--steps 300]
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { type BackendName, hiMulConLossDetails, Rng, useBackend } from '../src/index.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}

const INPUT_DIM = 32;
const rng = new Rng(Number(arg('seed', '7')));

/** Class centres: a coarse centre, a middle offset and a fine offset, so the tree shows in space. */
function makeTree() {
  const vec = (scale: number) => Array.from({ length: INPUT_DIM }, () => scale * rng.normal());
  const coarse = [vec(1), vec(1)];
  const middle = Array.from({ length: 6 }, (_, m) => coarse[m % 2].map((x, k) => x + vec(0.7)[k]));
  const fine = Array.from({ length: 18 }, (_, f) => middle[f % 6].map((x, k) => x + vec(0.5)[k]));
  return fine;
}

/** n samples: label rows [coarse, middle, fine] and noisy points around the fine centre. */
function sample(centres: number[][], n: number) {
  const labels: number[][] = [];
  const x = new Float32Array(n * INPUT_DIM);
  for (let i = 0; i < n; i++) {
    const f = rng.int(18);
    labels.push([(f % 6) % 2, f % 6, f]);
    for (let k = 0; k < INPUT_DIM; k++) x[i * INPUT_DIM + k] = centres[f][k] + 0.9 * rng.normal();
  }
  return { x: tf.tensor2d(x, [n, INPUT_DIM]), labels };
}

/** A light augmentation: Gaussian jitter, so the two views of a point differ. */
const jitter = (x: tf.Tensor2D) =>
  tf.add(
    x,
    tf.mul(
      tf.tensor(
        Float32Array.from({ length: x.size }, () => rng.normal()),
        x.shape,
      ),
      0.3,
    ),
  );

/** Precision@1 at each level: does the nearest other test point share the level's label prefix? */
function precisionAt1(model: tfl.LayersModel, x: tf.Tensor2D, labels: number[][]): number[] {
  const sims = tf.tidy(() => {
    const e = model.predict(x) as tf.Tensor2D;
    const u = tf.div(e, tf.norm(e, 2, 1, true));
    return tf.matMul(u, u, false, true).arraySync() as number[][];
  });
  return [0, 1, 2].map((level) => {
    let hits = 0;
    sims.forEach((row, i) => {
      let best = -1;
      row.forEach((s, j) => {
        if (j !== i && (best < 0 || s > row[best])) best = j;
      });
      if (labels[i].slice(0, level + 1).every((v, k) => v === labels[best][k])) hits++;
    });
    return hits / labels.length;
  });
}

async function main() {
  const backend = await useBackend(arg('backend', 'auto') as BackendName | 'auto');
  const steps = Number(arg('steps', '200'));
  const centres = makeTree();
  const test = sample(centres, 600);
  const model = tfl.sequential({
    layers: [
      tfl.layers.dense({
        inputShape: [INPUT_DIM],
        units: 64,
        activation: 'relu',
        kernelInitializer: tfl.initializers.glorotUniform({ seed: 1 }),
      }),
      tfl.layers.dense({ units: 16, kernelInitializer: tfl.initializers.glorotUniform({ seed: 2 }) }),
    ],
  });
  const fmt = (p: number[]) => p.map((v) => v.toFixed(3)).join(' / ');
  console.log(`backend ${backend}; precision@1 coarse / middle / fine`);
  console.log(`before training: ${fmt(precisionAt1(model, test.x, test.labels))}`);

  const optimizer = tf.train.adam(0.01);
  const t0 = performance.now();
  for (let step = 1; step <= steps; step++) {
    const batch = sample(centres, 128);
    const loss = optimizer.minimize(() => {
      // two augmented views of each point -> [N, 2, D]
      const views = tf.stack([model.apply(jitter(batch.x)), model.apply(jitter(batch.x))] as tf.Tensor[], 1);
      const details = hiMulConLossDetails(views, batch.labels, { variant: 'hmce', temperature: 0.1 });
      return details.loss;
    }, true) as tf.Scalar;
    if (step % 50 === 0 || step === 1) console.log(`step ${step}: loss ${loss.dataSync()[0].toFixed(4)}`);
    loss.dispose();
    batch.x.dispose();
  }
  const seconds = (performance.now() - t0) / 1000;
  console.log(
    `after ${steps} steps (${seconds.toFixed(1)} s): ${fmt(precisionAt1(model, test.x, test.labels))}`,
  );
}

await main();
