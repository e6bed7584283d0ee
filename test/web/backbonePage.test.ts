/**
 * The exported page of runs trained on a frozen pretrained backbone, one per kind (tfjs layers,
 * tfjs graph, ONNX): a head trains on a tiny catalogue of transparent PNGs, the images are indexed,
 * `contrastive export-web` copies the backbone (and onnxruntime-web for ONNX), and headless
 * Chromium embeds the same images, plus a larger and a smaller one: every component within 1e-4
 * of Node's `embedQueryImage`, and the same top 10. Each kind records another fit (stretch, pad,
 * crop) and background, which the page must follow. A backbone whose files changed since the run
 * is refused, by export-web and by the page.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import sharp from 'sharp';
import { embedQueryImage } from '../../src/catalogue/queryImage.js';
import { useBackend } from '../../src/engine/backend.js';
import { Rng } from '../../src/random.js';
import { train } from '../../src/run/train.js';
import { EmbeddingIndex } from '../../src/search/embeddingIndex.js';
import { embedInputs } from '../../src/search/embedInputs.js';
import { openRunEncoder } from '../../src/search/runModel.js';
import { resolveTrainConfig } from '../../src/train/config.js';
import { CHROMIUM, launchChromium, serveFolder } from '../helpers/browser.js';
import { REPO_ROOT } from '../helpers/fixtures.js';
import {
  TINY_ONNX,
  writeGraphModel,
  writeLayersModel,
  writeTransparentCatalogue,
} from '../helpers/pretrained.js';
import { quietProgress, tempRuns } from '../helpers/train.js';

const KINDS = ['layers', 'graph', 'onnx'] as const;
type Kind = (typeof KINDS)[number];

interface PageAnswer {
  embedding: number[];
  hits: { id: string; score: number }[];
  milliseconds: number;
}

function exportWeb(index: string, out: string) {
  return spawnSync(
    process.execPath,
    [
      resolve(REPO_ROOT, 'dist/src/cli/bin.js'),
      'export-web',
      index,
      '--out',
      out,
      '--backend',
      'wasm',
      '--json',
    ],
    { encoding: 'utf8', timeout: 180_000 },
  );
}

/** Embeds each file in the page (`contrastivePage.queryImage`, top 10). */
async function pageAnswers(url: string, files: string[], allowHttp: boolean) {
  const browser = await launchChromium();
  try {
    const context = await browser.newContext();
    const outside: string[] = [];
    const local = allowHttp ? /^(?!file:|data:|blob:|http:\/\/127\.0\.0\.1:)/ : /^(?!file:|data:|blob:)/;
    await context.route(local, (route) => {
      outside.push(route.request().url());
      return route.abort();
    });
    const page = await context.newPage();
    const consoleLines: string[] = [];
    page.on('console', (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
    page.on('pageerror', (e) => consoleLines.push(`pageerror: ${e.message}`));
    await page.goto(url);
    const images = await Promise.all(files.map(async (f) => (await readFile(f)).toString('base64')));
    const answers = (await page.evaluate(async (data) => {
      const api = (
        globalThis as unknown as {
          contrastivePage: { ready: Promise<unknown>; queryImage(b: Blob, o: object): Promise<PageAnswer> };
        }
      ).contrastivePage;
      await api.ready;
      const out: PageAnswer[] = [];
      for (const b64 of data) {
        const blob = new Blob([Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))], { type: 'image/png' });
        const a = await api.queryImage(blob, { k: 10 });
        out.push({
          embedding: a.embedding,
          hits: a.hits.map((h) => ({ id: h.id, score: h.score })),
          milliseconds: a.milliseconds,
        });
      }
      return out;
    }, images)) as PageAnswer[];
    const error = await page.locator('#error').textContent();
    return { answers, consoleLines, outside, error };
  } finally {
    await browser.close();
  }
}

describe('export-web for runs on a frozen pretrained backbone (layers, graph, ONNX) in headless Chromium', {
  skip: CHROMIUM ? false : 'Chromium is not installed (/usr/bin/chromium)',
}, () => {
  let dir: string;
  let catalogue: string;
  let files: string[];
  const backbones: Record<Kind, string> = { layers: '', graph: '', onnx: TINY_ONNX };
  const runs = {} as Record<Kind, { run: string; index: string; site: string }>;
  /** Each kind with another recorded fit and background, so the page must follow the record. */
  const decodeOptions: Record<Kind, { backboneResize: string; background: string }> = {
    layers: { backboneResize: 'stretch', background: 'white' },
    graph: { backboneResize: 'pad', background: '#204080' },
    onnx: { backboneResize: 'crop', background: 'black' },
  };
  /** Query images not in the catalogue: larger (shrunk by more than 2) and smaller (enlarged), translucent. */
  const extraQueries: string[] = [];
  before(async () => {
    await useBackend('wasm');
    dir = await tempRuns();
    catalogue = await writeTransparentCatalogue(join(dir, 'catalogue'), 6);
    files = [];
    for (const parent of ['cool', 'warm'])
      for (const name of (await readdir(join(catalogue, parent))).sort())
        for (let k = 0; k < 6; k++) files.push(join(catalogue, parent, name, `${k}.png`));
    for (const [w, h, seed] of [
      [64, 41, 1],
      [9, 13, 2],
    ]) {
      const rng = new Rng(seed);
      const px = Buffer.from(Array.from({ length: w * h * 4 }, () => Math.floor(rng.next() * 256)));
      const file = join(dir, `extra-${w}x${h}.png`);
      await sharp(px, { raw: { width: w, height: h, channels: 4 } })
        .png()
        .toFile(file);
      extraQueries.push(file);
    }
    backbones.layers = await writeLayersModel(join(dir, 'layers'));
    backbones.graph = await writeGraphModel(join(dir, 'graph'));
    for (const kind of KINDS) {
      const run = join(dir, `run-${kind}`);
      await train(
        await resolveTrainConfig({
          out: run,
          data: catalogue,
          backbone: backbones[kind],
          freeze: true,
          method: 'supcon',
          backend: 'wasm',
          epochs: 2,
          batchSize: 8,
          embeddingDim: 16,
          projectionDim: 8,
          headDims: ['32'],
          testFraction: 0.25,
          learningRate: 0.01,
          warmupEpochs: 0,
          logEvery: 2,
          seed: 3,
          ...decodeOptions[kind],
        }),
        { progress: quietProgress() },
      );
      const embedded = await embedInputs(run, { kind: 'image-folder', path: catalogue });
      const encoder = await openRunEncoder(run);
      const index = EmbeddingIndex.create({ tree: encoder.tree, dim: embedded.dim, model: embedded.model });
      encoder.dispose();
      index.add(embedded.items, embedded.embeddings);
      const indexPath = join(dir, `${kind}.index`);
      await index.save(indexPath);
      index.dispose();
      const site = join(dir, `site-${kind}`);
      const r = exportWeb(indexPath, site);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(JSON.parse(r.stdout).pretrained, kind);
      const record = JSON.parse(await readFile(join(run, 'backbone.json'), 'utf8'));
      assert.equal(record.preprocessing.fit, decodeOptions[kind].backboneResize);
      assert.equal(record.preprocessing.resampler, 'portable');
      runs[kind] = { run, index: indexPath, site };
    }
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('copies the backbone files the run names, and onnxruntime-web only for ONNX', async () => {
    assert.deepEqual((await readdir(join(runs.layers.site, 'backbone'))).sort(), [
      'model.json',
      'weights.bin',
    ]);
    assert.deepEqual((await readdir(join(runs.graph.site, 'backbone'))).sort(), [
      'group1-shard1of1.bin',
      'model.json',
    ]);
    assert.deepEqual(await readdir(join(runs.onnx.site, 'backbone')), ['tiny-cnn.onnx']);
    assert.deepEqual(
      await readFile(join(runs.onnx.site, 'backbone', 'tiny-cnn.onnx')),
      await readFile(TINY_ONNX),
    );
    assert.deepEqual((await readdir(join(runs.onnx.site, 'ort'))).sort(), [
      'ort-wasm-simd-threaded.mjs',
      'ort-wasm-simd-threaded.wasm',
      'ort.wasm.min.mjs',
    ]);
    assert.ok(!existsSync(join(runs.layers.site, 'ort')), 'a tfjs backbone needs no ONNX runtime');
  });

  for (const kind of KINDS)
    it(`${kind}: the page embeds each image as Node does (≤ 1e-4 per component) with the same top 10`, async (t) => {
      const queries = [...files.filter((_, i) => i % 2 === 0), ...extraQueries];
      const server = await serveFolder(runs[kind].site);
      let result: Awaited<ReturnType<typeof pageAnswers>>;
      try {
        result = await pageAnswers(`${server.url}index.html`, queries, true);
      } finally {
        await server.close();
      }
      assert.equal(result.error ?? '', '');
      assert.deepEqual(result.consoleLines, []);
      assert.deepEqual(result.outside, [], 'the page reached beyond the local server');
      const encoder = await openRunEncoder(runs[kind].run);
      const index = await EmbeddingIndex.load(runs[kind].index);
      let largest = 0;
      try {
        for (const [q, file] of queries.entries()) {
          const node = await embedQueryImage(encoder, file);
          const page = result.answers[q].embedding;
          assert.equal(page.length, node.length);
          let worst = 0;
          for (let i = 0; i < node.length; i++) worst = Math.max(worst, Math.abs(page[i] - node[i]));
          assert.ok(worst <= 1e-4, `${file}: the page's embedding is up to ${worst} off Node's`);
          largest = Math.max(largest, worst);
          const hits = index.search({ vector: node }, { k: 10 }).hits;
          const pageHits = result.answers[q].hits;
          assert.equal(pageHits.length, hits.length);
          // the same ranking; two items may swap only where Node scores them alike (a tie within 1e-4)
          hits.forEach((hit, rank) => {
            if (pageHits[rank].id === hit.id) return;
            const other = hits.find((h) => h.id === pageHits[rank].id);
            assert.ok(
              other && Math.abs(other.score - hit.score) <= 1e-4,
              `${file}: rank ${rank + 1} is ${pageHits[rank].id} in the page but ${hit.id} in Node`,
            );
          });
        }
        const ms = result.answers.map((a) => a.milliseconds).sort((a, b) => a - b);
        t.diagnostic(
          `${queries.length} images: largest |page − Node| per component ${largest.toExponential(2)}; median query ${ms[ms.length >> 1].toFixed(0)} ms in the page`,
        );
      } finally {
        encoder.dispose();
        index.dispose();
      }
    });

  it('layers: the page opened from file:// uses the embedded copy and embeds the same', async () => {
    const query = files[1];
    const result = await pageAnswers(
      pathToFileURL(join(runs.layers.site, 'index.html')).href,
      [query],
      false,
    );
    assert.equal(result.error ?? '', '');
    assert.deepEqual(result.consoleLines, []);
    const encoder = await openRunEncoder(runs.layers.run);
    try {
      const node = await embedQueryImage(encoder, query);
      const page = result.answers[0].embedding;
      assert.ok(node.every((v, i) => Math.abs(v - page[i]) <= 1e-4));
    } finally {
      encoder.dispose();
    }
  });

  it('a backbone whose files changed since the run is refused, naming it; nothing is written', async () => {
    const weights = join(backbones.layers, 'weights.bin');
    const original = await readFile(weights);
    const changed = Buffer.from(original);
    changed[0] ^= 1;
    await writeFile(weights, changed);
    try {
      const out = join(dir, 'site-changed');
      const r = exportWeb(runs.layers.index, out);
      assert.notEqual(r.status, 0);
      assert.match(r.stderr, /backbone/);
      assert.match(r.stderr, /changed/);
      assert.ok(!existsSync(join(out, 'index.html')), 'no page was written');
    } finally {
      await writeFile(weights, original);
    }
  });

  it('a run trained before the portable resampler (sharp resized its images) is refused with a reason', async () => {
    const recordPath = join(runs.layers.run, 'backbone.json');
    const original = await readFile(recordPath, 'utf8');
    const legacy = JSON.parse(original);
    delete legacy.preprocessing.resampler;
    await writeFile(recordPath, JSON.stringify(legacy));
    try {
      const r = exportWeb(runs.layers.index, join(dir, 'site-legacy'));
      assert.notEqual(r.status, 0);
      assert.match(r.stderr, /before the portable image resampler/);
    } finally {
      await writeFile(recordPath, original);
    }
  });

  it('the page refuses backbone files that do not match the run (a site edited after export)', async () => {
    const site = runs.graph.site;
    const shard = join(site, 'backbone', 'group1-shard1of1.bin');
    const original = await readFile(shard);
    const changed = Buffer.from(original);
    changed[4] ^= 1;
    await writeFile(shard, changed);
    const server = await serveFolder(site);
    try {
      const browser = await launchChromium();
      try {
        const page = await browser.newPage();
        await page.goto(`${server.url}index.html`);
        const reason = await page.evaluate(async () =>
          (
            globalThis as unknown as { contrastivePage: { ready: Promise<unknown> } }
          ).contrastivePage.ready.then(
            () => 'loaded',
            (e: Error) => e.message,
          ),
        );
        assert.match(reason, /SHA-256/);
      } finally {
        await browser.close();
      }
    } finally {
      await server.close();
      await writeFile(shard, original);
    }
  });
});
