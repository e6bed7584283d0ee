/**
 * Loss micro-benchmark: forward + backward of each loss at N·V = 1024 and 4096 rows, D = 128, on
 * every available backend. Prints ms/step (median of the timed steps) and the peak bytes held by
 * tfjs tensors during one step. A script, never a test.
 *
 *   node dist/bench/losses.js [--backends wasm,cpu] [--rows 1024,4096] [--steps 5] [--dim 128]
 */
import * as tf from '@tensorflow/tfjs-core';
import {
  type BackendName,
  hiMulConLoss,
  infoNCELoss,
  ntXentLoss,
  Rng,
  saneLoss,
  supConLoss,
  useBackend,
} from '../src/index.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}

const backends = arg('backends', 'wasm,cpu').split(',') as BackendName[];
const rowCounts = arg('rows', '1024,4096').split(',').map(Number);
const steps = Number(arg('steps', '5'));
const dim = Number(arg('dim', '128'));

type Loss = (f: tf.Tensor) => tf.Scalar;

function losses(rows: number, rng: Rng): [string, Loss, tf.Tensor][] {
  const n = rows / 2;
  const normal = (shape: number[]) =>
    tf.tensor(
      Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.normal()),
      shape,
    );
  // a 3-level tree: 2 › 10 › 100 classes
  const labels = Array.from({ length: n }, () => {
    const fine = rng.int(100);
    return [fine % 2, fine % 10, fine];
  });
  const views = normal([n, 2, dim]);
  const keys = normal([n, dim]);
  const queue = normal([4096, dim]);
  const queries = normal([n, dim]);
  return [
    ['ntXentLoss', (f) => ntXentLoss(f, { temperature: 0.1 }), views],
    [
      'supConLoss',
      (f) =>
        supConLoss(
          f,
          labels.map((r) => r[2]),
        ),
      views,
    ],
    ['hiMulConLoss hmce paper', (f) => hiMulConLoss(f, labels, { variant: 'hmce' }), views],
    [
      'hiMulConLoss hmce reference',
      (f) => hiMulConLoss(f, labels, { variant: 'hmce', mode: 'reference' }),
      views,
    ],
    ['infoNCELoss (K=4096)', (f) => infoNCELoss(f, keys, queue, { temperature: 0.2 }), queries],
    ['saneLoss (K=4096)', (f) => saneLoss(f, keys, queue, { alpha: 0.2, beta: 0.2 }), queries],
  ];
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function main() {
  console.log(
    `loss fwd+bwd, D=${dim}, ${steps} timed steps after 1 warm-up; rows = N·V (queries = N·V/2 for MoCo/SANE)`,
  );
  console.log(['backend', 'rows', 'loss', 'ms/step', 'peak MiB'].join('\t'));
  for (const backend of backends) {
    try {
      await useBackend(backend);
    } catch (error) {
      console.log(`${backend}\tskipped: ${(error as Error).message}`);
      continue;
    }
    for (const rows of rowCounts) {
      const rng = new Rng(rows);
      for (const [name, loss, input] of losses(rows, rng)) {
        const step = () => {
          const { value, grad } = tf.valueAndGrad(loss)(input);
          grad.dataSync();
          value.dispose();
          grad.dispose();
        };
        let line: string;
        try {
          step();
          const times: number[] = [];
          for (let s = 0; s < steps; s++) {
            const t0 = performance.now();
            step();
            times.push(performance.now() - t0);
          }
          const profile = await tf.profile(step);
          line = `${median(times).toFixed(1)}\t${(profile.peakBytes / 2 ** 20).toFixed(1)}`;
        } catch (error) {
          line = `failed: ${(error as Error).message.slice(0, 80)}`;
        }
        console.log([backend, rows, name, line].join('\t'));
      }
    }
    tf.disposeVariables();
  }
}

await main();
