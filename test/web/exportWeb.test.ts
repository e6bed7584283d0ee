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
import { copyFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
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
import { predictPath } from '../../src/search/predictPath.js';
import { openIndexEncoder } from '../../src/search/runModel.js';
import { calibrationFromJSON } from '../../src/web/calibrationJson.js';
import { CHROMIUM, launchChromium, serveFolder } from '../helpers/browser.js';
import { REPO_ROOT } from '../helpers/fixtures.js';
import { quietProgress, smallConfig, tempRuns } from '../helpers/train.js';

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
      'site-config.js',
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
    const browser = await launchChromium();
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
      assert.match((await page.locator('#meta').textContent()) ?? '', /index and model embedded/);

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

      // a file that is not an image: the page says so, naming it, and logs nothing
      const notes = join(dir, 'notes.txt');
      await writeFile(notes, 'not an image');
      await page.setInputFiles('#file', notes);
      await page.waitForSelector('#error:not([hidden])');
      assert.match(
        (await page.locator('#error').textContent()) ?? '',
        /cannot decode notes\.txt as an image/,
      );

      // grouping by a level: the results come in groups, one node each
      await page.selectOption('#within', '');
      await page.selectOption('#group-by', 'family');
      await page.waitForFunction(() =>
        document.querySelector('#results-title')?.textContent?.includes('groups'),
      );
      await page.selectOption('#group-by', '');
      // dropping a file works like picking one
      await page.evaluate(() => {
        document.querySelector<HTMLImageElement>('#query-preview')!.src = 'data:,';
      });
      const dropped = (await readFile(queryFiles[2])).toString('base64');
      const transfer = await page.evaluateHandle((data) => {
        const t = new DataTransfer();
        const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
        t.items.add(new File([bytes], 'dropped.png', { type: 'image/png' }));
        return t;
      }, dropped);
      await page.dispatchEvent('#drop', 'drop', { dataTransfer: transfer });
      await page.waitForFunction(() =>
        (document.querySelector<HTMLImageElement>('#query-preview')?.src ?? '').startsWith('blob:'),
      );
      await page.waitForSelector('#results figure.hit:nth-child(10)');

      // 20 queries through the page's own path (Blob → pixels → model → search → placement)
      await useBackend('wasm');
      const index = await EmbeddingIndex.load(indexPath);
      const encoder = await openIndexEncoder(index);
      // the calibration the site carries, as Node's predictPath uses it
      const configText = await readFile(join(site, 'site-config.js'), 'utf8');
      const config = JSON.parse(
        configText
          .slice(configText.indexOf('=') + 1)
          .trim()
          .replace(/;$/, ''),
      );
      const calibration = calibrationFromJSON(config.calibration);
      let samePath = 0;
      let maxConfidenceDiff = 0;
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
          const nodePrediction = predictPath(index, [nodeVector], { calibration })[0];
          if (nodePrediction.path.join('/') === answer.prediction.path.join('/')) samePath++;
          nodePrediction.levels.forEach((l, i) => {
            maxConfidenceDiff = Math.max(
              maxConfidenceDiff,
              Math.abs(l.confidence - answer.prediction.levels[i].confidence),
            );
          });
        }
      } finally {
        encoder.dispose();
        index.dispose();
      }
      t.diagnostic(
        `page ready in ${ready.milliseconds.toFixed(0)} ms (goto → ready ${loadMs.toFixed(0)} ms); embedding max |browser − Node| = ${maxDiff.toExponential(2)}; top-10 sets equal ${sameTop10}/${QUERIES}, same order ${sameOrder}/${QUERIES}; predicted path equal ${samePath}/${QUERIES} (confidences within ${maxConfidenceDiff.toExponential(1)}); browser query ${median(browserMs).toFixed(1)} ms median`,
      );
      assert.ok(maxDiff <= 1e-4, `embeddings differ by ${maxDiff}`);
      assert.equal(sameTop10, QUERIES);
      assert.equal(samePath, QUERIES);
      assert.ok(maxConfidenceDiff <= 1e-3, `confidences differ by ${maxConfidenceDiff}`);

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

  it('works from a static HTTP server too, where a web app loads the index and model by URL', async () => {
    const server = await serveFolder(site);
    const browser = await launchChromium();
    try {
      const context = await browser.newContext();
      const outside: string[] = [];
      await context.route(/^(?!file:|data:|blob:|http:\/\/127\.0\.0\.1:)/, (route) => {
        outside.push(route.request().url());
        return route.abort();
      });
      const page = await context.newPage();
      const requested: string[] = [];
      page.on('request', (r) => requested.push(r.url()));
      const consoleLines: string[] = [];
      page.on('console', (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
      page.on('pageerror', (e) => consoleLines.push(`pageerror: ${e.message}`));
      await page.goto(`${server.url}index.html`);
      const base64 = (await readFile(queryFiles[5])).toString('base64');
      const [embedded, byUrl] = (await page.evaluate(async (data) => {
        type Api = {
          contrastivePage: { ready: Promise<unknown>; queryImage(b: Blob, o: object): Promise<PageAnswer> };
          tfjsContrastive: {
            WebCatalogue: {
              open(o: object): Promise<{
                query(
                  b: Blob,
                  o: object,
                ): Promise<{ embedding: Float32Array; result: { hits: { id: string }[] } }>;
              }>;
            };
          };
        };
        const api = globalThis as unknown as Api;
        await api.contrastivePage.ready;
        const blob = new Blob([Uint8Array.from(atob(data), (c) => c.charCodeAt(0))], { type: 'image/png' });
        const fromPage = await api.contrastivePage.queryImage(blob, { k: 10 });
        // the library as any web app would use it: index and model fetched by URL
        const catalogue = await api.tfjsContrastive.WebCatalogue.open({
          index: 'catalogue.index',
          backbone: 'model/model.json',
        });
        const answer = await catalogue.query(blob, { k: 10 });
        return [
          { ids: fromPage.hits.map((h) => h.id), embedding: fromPage.embedding },
          { ids: answer.result.hits.map((h) => h.id), embedding: Array.from(answer.embedding) },
        ];
      }, base64)) as { ids: string[]; embedding: number[] }[];
      assert.match((await page.locator('#meta').textContent()) ?? '', /index and model fetched/);
      assert.ok(
        !requested.some((u) => u.endsWith('site-data.js')),
        'over http the page fetches the plain files',
      );
      assert.deepEqual(byUrl.ids, embedded.ids);
      assert.deepEqual(byUrl.embedding, embedded.embedding);
      assert.deepEqual(consoleLines, []);
      assert.deepEqual(outside, [], 'the page reached beyond the local server');
    } finally {
      await browser.close();
      await server.close();
    }
  });
  const exportWeb = (index: string, out: string, ...extra: string[]) =>
    spawnSync(
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
        ...extra,
      ],
      { encoding: 'utf8', timeout: 120_000 },
    );

  it("writes again over its own site, never over a folder of the user's", async () => {
    assert.equal(exportWeb(indexPath, site, '--calibration-limit', '0').status, 0);
    const mine = join(dir, 'my-site');
    await mkdir(mine, { recursive: true });
    await writeFile(join(mine, 'index.html'), 'my own page');
    const r = exportWeb(indexPath, mine);
    assert.equal(r.status, 1);
    assert.match(
      r.stderr,
      /is not empty and is not a site export-web wrote .*index\.html.*nothing was changed/s,
    );
    assert.equal(await readFile(join(mine, 'index.html'), 'utf8'), 'my own page');
  });

  it('reads no weight file outside the model folder and publishes no source image outside the catalogue root', async () => {
    // a forged run: its model.json names a weight file two folders up
    const forgedRun = join(dir, 'forged-run');
    await mkdir(join(forgedRun, 'model'), { recursive: true });
    await writeFile(join(dir, 'secret.bin'), 'private');
    for (const f of ['config.json', 'labelTree.json', '.contrastive-run'])
      await copyFile(join(dir, 'run', f), join(forgedRun, f)).catch(() => {});
    const json = JSON.parse(await readFile(join(dir, 'run', 'model', 'model.json'), 'utf8'));
    json.weightsManifest[0].paths = ['../../secret.bin'];
    await writeFile(join(forgedRun, 'model', 'model.json'), JSON.stringify(json));
    const r = exportWeb(indexPath, join(dir, 'site-forged'), '--run', forgedRun);
    assert.notEqual(r.status, 0);
    assert.match(
      r.stderr,
      /names weight file "\.\.\/\.\.\/secret\.bin", which is not a plain path inside its folder/,
    );
    assert.ok(!existsSync(join(dir, 'site-forged', 'secret.bin')));

    // an index whose items name a private file as their source: no thumbnail of it is published
    const index = await EmbeddingIndex.load(indexPath);
    const privateDir = join(dir, 'private');
    await mkdir(privateDir, { recursive: true });
    const privateImage = join(privateDir, 'me.png');
    await copyFile(queryFiles[0], privateImage);
    const catalogueDir = join(dir, 'catalogue');
    await mkdir(catalogueDir, { recursive: true });
    const forged = EmbeddingIndex.create({ tree: index.tree, dim: index.dim, model: index.model });
    const [first] = index.items();
    forged.add(
      [{ id: 'x', label: first.label ?? undefined, source: privateImage }],
      index.embedding(first.id),
    );
    const forgedIndex = join(catalogueDir, 'forged.index');
    await forged.save(forgedIndex);
    forged.dispose();
    index.dispose();
    const blocked = exportWeb(forgedIndex, join(dir, 'site-private'), '--calibration-limit', '0');
    assert.equal(blocked.status, 0, blocked.stderr);
    assert.equal(JSON.parse(blocked.stdout).sourcesOutsideRoot, 1);
    assert.equal(JSON.parse(blocked.stdout).thumbnails, 0);
    const allowed = exportWeb(
      forgedIndex,
      join(dir, 'site-allowed'),
      '--calibration-limit',
      '0',
      '--allow-outside-sources',
    );
    assert.equal(JSON.parse(allowed.stdout).thumbnails, 1);
  });
});

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}
