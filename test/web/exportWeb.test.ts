/**
 * The exported page in a real browser: a tiny run and index are built here, `contrastive
 * export-web` writes the site, and Debian's headless Chromium (driven by playwright-core, no
 * browser download) opens it from file://. The page loads with no console errors, a search with
 * an uploaded image shows results, and for 20 query images its embeddings and top-10 equal
 * Node's (`decodeQueryImage` + the run's encoder + `EmbeddingIndex.search`). Skipped, with the
 * reason, where Chromium is not installed.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, readFile, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import sharp from 'sharp';
import { EMBEDDED_FASHION_MNIST_DIR, loadFashionMnist } from '../../src/data/fashionMnist.js';
import { useBackend } from '../../src/engine/backend.js';
import { train } from '../../src/run/train.js';
import { EmbeddingIndex } from '../../src/search/embeddingIndex.js';
import { decodeQueryImage, embedInputs } from '../../src/search/embedInputs.js';
import { openIndexEncoder } from '../../src/search/runModel.js';
import { REPO_ROOT } from '../helpers/fixtures.js';
import { quietProgress, smallConfig, tempRuns } from '../helpers/train.js';

const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));
const QUERIES = 20;

interface PageAnswer {
  embedding: number[];
  hits: { id: string; score: number; label: string | null }[];
  prediction: { path: string[]; levels: { name: string; confidence: number }[] };
  milliseconds: number;
}

describe('contrastive export-web in headless Chromium', {
  skip: CHROMIUM ? false : 'Chromium is not installed (/usr/bin/chromium)',
}, () => {
  let dir: string;
  let indexPath: string;
  let site: string;
  const queryFiles: string[] = [];
  before(async () => {
    await useBackend('wasm');
    dir = await tempRuns();
    const runDir = join(dir, 'run');
    await train(await smallConfig(runDir, { epochs: 1, trainLimit: 256, testLimit: 60 }), {
      progress: quietProgress(),
    });
    const embedded = await embedInputs(
      runDir,
      { kind: 'fashion-mnist', split: 'train', dataDir: EMBEDDED_FASHION_MNIST_DIR, limit: 500 },
      { thumbnails: true },
    );
    const encoder = await openIndexEncoder(
      { model: embedded.model, space: 'backbone', checkModel: () => {} },
      runDir,
    );
    const index = EmbeddingIndex.create({ tree: encoder.tree, dim: embedded.dim, model: embedded.model });
    encoder.dispose();
    index.add(embedded.items, embedded.embeddings);
    indexPath = join(dir, 'catalogue.index');
    await index.save(indexPath);
    index.dispose();
    const test = await loadFashionMnist({
      split: 'test',
      dataDir: EMBEDDED_FASHION_MNIST_DIR,
      limit: QUERIES,
    });
    await mkdir(join(dir, 'queries'), { recursive: true });
    for (let i = 0; i < QUERIES; i++) {
      const file = join(dir, 'queries', `q${i}.png`);
      const raw = Buffer.from(
        Array.from(test.images.subarray(i * 784, (i + 1) * 784), (v) => Math.round(v * 255)),
      );
      await sharp(raw, { raw: { width: 28, height: 28, channels: 1 } })
        .png()
        .toFile(file);
      queryFiles.push(file);
    }
    site = join(dir, 'site');
    const r = spawnSync(
      process.execPath,
      [
        resolve(REPO_ROOT, 'dist/src/cli/bin.js'),
        'export-web',
        indexPath,
        '--out',
        site,
        '--backend',
        'wasm',
        '--json',
      ],
      { encoding: 'utf8', timeout: 120_000 },
    );
    assert.equal(r.status, 0, r.stderr);
    const summary = JSON.parse(r.stdout);
    assert.equal(summary.items, 500);
    assert.equal(summary.thumbnails, 500);
    assert.ok(summary.calibration, 'the site carries a calibration');
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes the page, the bundle, the embedded data and plain copies of the index and model', async () => {
    for (const f of [
      'index.html',
      'app.js',
      'site-data.js',
      'catalogue.index',
      'model/model.json',
      'model/weights.bin',
    ])
      assert.ok(existsSync(join(site, f)), `${f} is missing`);
    assert.deepEqual(await readFile(join(site, 'catalogue.index')), await readFile(indexPath));
    const html = await readFile(join(site, 'index.html'), 'utf8');
    assert.doesNotMatch(html, /https?:\/\//, 'the page refers to the network');
  });

  it('loads with no console errors, searches an uploaded image, and equals Node on 20 queries', async (t) => {
    const { chromium } = await import('playwright-core');
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
      ],
    });
    try {
      const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
      // nothing may leave the machine: every request other than file:, data: and blob: fails the test
      const network: string[] = [];
      await context.route(/^(?!file:|data:|blob:)/, (route) => {
        network.push(route.request().url());
        return route.abort();
      });
      const page = await context.newPage();
      const consoleLines: string[] = [];
      page.on('console', (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
      page.on('pageerror', (e) => consoleLines.push(`pageerror: ${e.message}`));
      const opened = performance.now();
      await page.goto(pathToFileURL(join(site, 'index.html')).href);
      const ready = await page.evaluate(
        () =>
          (
            globalThis as unknown as {
              contrastivePage: { ready: Promise<{ items: number; milliseconds: number }> };
            }
          ).contrastivePage.ready,
      );
      const loadMs = performance.now() - opened;
      assert.equal(ready.items, 500);

      // the UI: pick a file, see 10 neighbours with thumbnails, label paths and scores, and a predicted path
      await page.setInputFiles('#file', queryFiles[0]);
      await page.waitForSelector('#results figure.hit:nth-child(10)');
      assert.equal(await page.locator('#results figure.hit').count(), 10);
      assert.equal(await page.locator('#results figure.hit img.thumb').count(), 10);
      assert.match(
        (await page.locator('#results figure.hit .label').first().textContent()) ?? '',
        /\w+ \/ \w+ \/ \w+/,
      );
      assert.ok((await page.locator('#prediction table.levels tr').count()) === 3);
      // narrowing to a branch: every hit lies under it
      await page.selectOption('#within', 'Goods');
      await page.waitForFunction(() =>
        [...document.querySelectorAll('#results figure.hit .label')].every((e) =>
          e.textContent?.startsWith('Goods'),
        ),
      );

      // 20 queries through the page's own path (Blob → pixels → model → search → placement)
      await useBackend('wasm');
      const index = await EmbeddingIndex.load(indexPath);
      const encoder = await openIndexEncoder(index);
      let maxDiff = 0;
      let sameTop10 = 0;
      let sameOrder = 0;
      const browserMs: number[] = [];
      try {
        for (const [q, file] of queryFiles.entries()) {
          const pixels = await decodeQueryImage(file, [28, 28, 1]);
          const nodeEmbedding = tf.tidy(() => encoder.embed(tf.tensor(pixels, [1, ...encoder.inputShape])));
          const nodeVector = Array.from(nodeEmbedding.dataSync());
          nodeEmbedding.dispose();
          const within = q % 4 === 3 ? 'Clothes' : undefined;
          const nodeHits = index.search({ vector: nodeVector }, { k: 10, within }).hits;
          const base64 = (await readFile(file)).toString('base64');
          const answer = (await page.evaluate(
            async ([data, scope]) => {
              const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
              const api = (
                globalThis as unknown as {
                  contrastivePage: { queryImage(b: Blob, o: object): Promise<unknown> };
                }
              ).contrastivePage;
              return api.queryImage(new Blob([bytes], { type: 'image/png' }), {
                k: 10,
                within: scope ?? undefined,
              });
            },
            [base64, within ?? null] as const,
          )) as PageAnswer;
          browserMs.push(answer.milliseconds);
          assert.equal(answer.embedding.length, nodeVector.length);
          for (let j = 0; j < nodeVector.length; j++)
            maxDiff = Math.max(maxDiff, Math.abs(answer.embedding[j] - nodeVector[j]));
          const nodeIds = nodeHits.map((h) => h.id);
          const pageIds = answer.hits.map((h) => h.id);
          if (new Set([...nodeIds, ...pageIds]).size === 10) sameTop10++;
          if (nodeIds.join() === pageIds.join()) sameOrder++;
          else {
            // only a near-tie may swap places: the scores rank for rank agree within 1e-4
            answer.hits.forEach((h, r) => {
              assert.ok(Math.abs(h.score - nodeHits[r].score) < 1e-4, `query ${q}: rank ${r + 1} differs`);
            });
          }
        }
      } finally {
        encoder.dispose();
        index.dispose();
      }
      t.diagnostic(
        `page ready in ${ready.milliseconds.toFixed(0)} ms (goto → ready ${loadMs.toFixed(0)} ms); embedding max |browser − Node| = ${maxDiff.toExponential(2)}; top-10 sets equal ${sameTop10}/${QUERIES}, same order ${sameOrder}/${QUERIES}; browser query ${median(browserMs).toFixed(1)} ms median`,
      );
      assert.ok(maxDiff <= 1e-4, `embeddings differ by ${maxDiff}`);
      assert.equal(sameTop10, QUERIES);

      await page.selectOption('#within', '');
      await page.setInputFiles('#file', queryFiles[1]);
      await page.waitForSelector('#results figure.hit:nth-child(10)');
      const shot = join(dir, 'page.png');
      await page.screenshot({ path: shot, fullPage: false });
      const stats = await sharp(shot).stats();
      assert.ok(stats.channels[0].stdev > 5, 'the screenshot is blank');
      if (process.env.CONTRASTIVE_UPDATE_SCREENSHOT)
        await copyFile(shot, join(REPO_ROOT, 'docs', 'web-page.png'));

      assert.deepEqual(consoleLines, [], 'the page logged to the console');
      assert.deepEqual(network, [], 'the page reached for the network');
    } finally {
      await browser.close();
    }
  });
});

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}
