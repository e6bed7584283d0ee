import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { evaluateEmbeddings } from '../../src/eval/index.js';
import { Rng } from '../../src/random.js';
import type { MetricRecord } from '../../src/run/index.js';

const PIXEL =
  'data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGNgAAAAAgABSK+kcQAAAABJRU5ErkJggg==';

/**
 * A run folder as the trainer and `contrastive eval` leave it (config.json, metrics.jsonl with a
 * torn last line, eval.json from real metrics on synthetic 2-level embeddings).
 */
export async function makeRunFolder(
  dir: string,
  name: string,
  seed: number,
  method = 'himulcone',
): Promise<string> {
  const runDir = join(dir, name);
  const rng = new Rng(seed);
  const split = (n: number) => {
    const labels = Array.from({ length: n }, () => {
      const fine = rng.int(4);
      return [fine % 2, fine];
    });
    return {
      embeddings: tf.tensor2d(labels.map(([c, f]) => [c * 3 + rng.normal(), f + rng.normal(), rng.normal()])),
      labels,
    };
  };
  const [train, test] = [split(120), split(80)];
  const evaluation = evaluateEmbeddings(train, test, { knnK: 10, linearProbe: false, projectionPoints: 60 });
  tf.dispose([train.embeddings, test.embeddings]);
  const history: MetricRecord[] = Array.from({ length: 20 }, (_, i) => ({
    kind: 'step',
    epoch: 1 + Math.floor(i / 10),
    step: (i + 1) * 10,
    loss: 5 / (i + 1) + rng.next() * 0.1,
    levelLosses: [4 / (i + 1), 6 / (i + 1)],
  }));
  await mkdir(runDir, { recursive: true });
  await writeFile(join(runDir, 'config.json'), JSON.stringify({ method, epochs: 2 }));
  await writeFile(
    join(runDir, 'metrics.jsonl'),
    `${history.map((h) => JSON.stringify(h)).join('\n')}\n{"kind":"st`,
  );
  await writeFile(
    join(runDir, 'eval.json'),
    JSON.stringify({
      ...evaluation,
      levelNames: ['group', 'class'],
      classNames: [
        ['Clothes', 'Goods'],
        ['T-shirt', 'Trouser', 'Bag <b>', 'Sandal'],
      ],
      strips: [
        { query: PIXEL, label: 'T-shirt', neighbors: [{ image: PIXEL, label: 'Shirt', sharedLevels: 1 }] },
      ],
    }),
  );
  return runDir;
}
