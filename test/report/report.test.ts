import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { useBackend } from '../../src/engine/backend.js';
import { evaluateEmbeddings } from '../../src/eval/index.js';
import { Rng } from '../../src/random.js';
import { loadRun, type MetricRecord, renderReport, writeReport } from '../../src/report/index.js';

/** A run folder as the trainer and `contrastive eval` leave it. */
async function makeRun(dir: string, name: string, seed: number): Promise<string> {
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
  const evaluation = evaluateEmbeddings(split(120), split(80), {
    knnK: 10,
    linearProbe: false,
    projectionPoints: 60,
  });
  const history: MetricRecord[] = Array.from({ length: 20 }, (_, i) => ({
    kind: 'step',
    epoch: 1 + Math.floor(i / 10),
    step: (i + 1) * 10,
    loss: 5 / (i + 1) + rng.next() * 0.1,
    levelLosses: [4 / (i + 1), 6 / (i + 1)],
  }));
  const pixel =
    'data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGNgAAAAAgABSK+kcQAAAABJRU5ErkJggg==';
  await import('node:fs/promises').then((fs) => fs.mkdir(runDir, { recursive: true }));
  await writeFile(join(runDir, 'config.json'), JSON.stringify({ method: 'himulcone', epochs: 2 }));
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
        { query: pixel, label: 'T-shirt', neighbors: [{ image: pixel, label: 'Shirt', sharedLevels: 1 }] },
      ],
    }),
  );
  return runDir;
}

describe('HTML report', () => {
  let dir: string;
  before(async () => {
    await useBackend('cpu');
    dir = await mkdtemp(join(tmpdir(), 'contrastive-report-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('loads run folders (tolerating a torn last metrics line) and renders one offline page', async () => {
    const runs = [await makeRun(dir, 'fm-hmce', 1), await makeRun(dir, 'fm-supcon', 2)];
    const run = await loadRun(runs[0]);
    assert.equal(run.name, 'fm-hmce');
    assert.equal(run.method, 'himulcone');
    assert.equal(run.history.length, 20);
    const { out, charts } = await writeReport(runs, {
      out: join(dir, 'report.html'),
      chartsDir: join(dir, 'charts'),
    });
    const html = await readFile(out, 'utf8');
    assert.match(html, /<table class="metrics">/);
    assert.match(html, /<h3>fm-hmce: retrieval per level/);
    assert.equal((html.match(/<svg /g) ?? []).length, 1 + 2 * (1 + 2)); // loss, then per run: levels + 2 maps
    assert.match(html, /Bag &lt;b&gt;/); // names are escaped
    assert.doesNotMatch(html.replace(/xmlns="http:\/\/www.w3.org\/2000\/svg"/g, ''), /(src|href)="https?:/);
    assert.equal(charts.length, 2 * 7);
    const png = await readFile(charts.find((c) => c.endsWith('loss.png'))!);
    assert.deepEqual([...png.subarray(1, 4)], [...Buffer.from('PNG')]);
  });

  it('a missing run folder is a clear error', async () => {
    await assert.rejects(loadRun(join(dir, 'nope')), /loadRun: .*nope is not a run folder/);
    assert.match(renderReport([{ name: 'empty', history: [] }]), /<h1>Contrastive runs: empty<\/h1>/);
  });
});
