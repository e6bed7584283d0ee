/**
 * The main job: train HiMulConE on Fashion-MNIST (the full set where Debian's package is
 * installed, else the embedded subset), evaluate it the way the papers do, and write the HTML
 * report — the library calls behind `contrastive train`, `eval` and `report`.
 *
 *   npm run demo                      (runs/demo/report.html)
 *   node dist/examples/demo.js --epochs 5 --out runs/demo2
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { writeReport } from '../src/report/writeReport.js';
import { evaluateRun } from '../src/run/evaluateRun.js';
import { train } from '../src/run/train.js';
import { resolveTrainConfig } from '../src/train/config.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}

const out = arg('out', 'runs/demo');
// the demo starts over each time; real runs refuse to overwrite and resume instead
await rm(out, { recursive: true, force: true });
const config = await resolveTrainConfig({
  method: 'himulcone',
  out,
  encoder: 'mlp',
  epochs: Number(arg('epochs', '5')),
  trainLimit: Number(arg('train-limit', '6000')),
  testLimit: 1000,
  batchSize: 256,
  learningRate: 0.002,
  temperature: 0.1,
  seed: 0,
});
await train(config);
const evaluation = await evaluateRun(out, { knnK: 200, linearProbe: { epochs: 10 } });
const pct = (v: number | undefined) => (v === undefined ? '–' : `${(100 * v).toFixed(1)}%`);
const levels = evaluation.levelNames ?? evaluation.retrieval.map((r) => `level ${r.level}`);
console.log(
  `\n${'embedding'.padEnd(20)} ${levels.map((l) => `kNN ${l}`.padStart(13)).join(' ')} ${levels.map((l) => `mAP@R ${l}`.padStart(15)).join(' ')}`,
);
const line = (name: string, knn: number[], map: number[]) =>
  console.log(
    `${name.padEnd(20)} ${knn.map((v) => pct(v).padStart(13)).join(' ')} ${map.map((v) => pct(v).padStart(15)).join(' ')}`,
  );
line(
  'trained HiMulConE',
  evaluation.knn.accuracyByLevel,
  evaluation.retrieval.map((r) => r.mapAtR),
);
for (const b of evaluation.baselines ?? []) line(b.name, b.knnAccuracyByLevel, b.mapAtR);
// what training bought, in one sentence: retrieval and kNN at every level against the raw pixels
const raw = evaluation.baselines?.find((b) => b.name === 'raw input');
if (raw) {
  const points = (a: number, b: number) => `${a >= b ? '+' : ''}${(100 * (a - b)).toFixed(1)}`;
  const map = evaluation.retrieval.map((r, l) => `${levels[l]} ${points(r.mapAtR, raw.mapAtR[l])}`);
  const knn = evaluation.knn.accuracyByLevel.map(
    (a, l) => `${levels[l]} ${points(a, raw.knnAccuracyByLevel[l])}`,
  );
  console.log(
    `\nwhat training bought over raw pixels, in points: mAP@R ${map.join(', ')}; kNN accuracy ${knn.join(', ')} (linear probe ${pct(evaluation.linearProbe?.testAccuracy)})`,
  );
}
const { out: report } = await writeReport([out], { out: join(out, 'report.html') });
console.log(`report: ${report}`);
