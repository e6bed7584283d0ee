/** The HTTP API on a free local port, with real requests: answers, status codes, named fields, batching; and the CLI. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { EMBEDDED_FASHION_MNIST_DIR, loadFashionMnist } from '../../src/data/fashionMnist.js';
import { useBackend } from '../../src/engine/backend.js';
import { train } from '../../src/run/train.js';
import {
  calibrate,
  EmbeddingIndex,
  embedInputs,
  openRunEncoder,
  type RunEncoder,
} from '../../src/search/index.js';
import { createSearchServer } from '../../src/serve/index.js';
import { REPO_ROOT } from '../helpers/fixtures.js';
import { quietProgress, smallConfig, tempRuns } from '../helpers/train.js';

describe('createSearchServer (real HTTP on 127.0.0.1)', () => {
  let dir: string;
  let runDir: string;
  let indexPath: string;
  let index: EmbeddingIndex;
  let encoder: RunEncoder;
  let server: ReturnType<typeof createSearchServer>;
  let base: string;
  let pngBase64: string;
  const post = async (path: string, body: unknown, raw?: string) => {
    const response = await fetch(`${base}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: raw ?? JSON.stringify(body),
    });
    return { status: response.status, json: (await response.json()) as Record<string, unknown> };
  };
  before(async () => {
    await useBackend('wasm');
    dir = await tempRuns();
    runDir = join(dir, 'run');
    await train(await smallConfig(runDir, { epochs: 1, trainLimit: 256, testLimit: 120 }), {
      progress: quietProgress(),
    });
    encoder = await openRunEncoder(runDir);
    const embedded = await embedInputs(encoder, {
      kind: 'fashion-mnist',
      split: 'train',
      dataDir: EMBEDDED_FASHION_MNIST_DIR,
      limit: 800,
    });
    index = EmbeddingIndex.create({ tree: encoder.tree, dim: embedded.dim, model: encoder.identity });
    index.add(embedded.items, embedded.embeddings);
    indexPath = join(dir, 'catalogue.index');
    await index.save(indexPath);
    const sample = index.items().slice(0, 300);
    const calibration = calibrate(
      index,
      {
        embeddings: sample.map((it) => index.embedding(it.id)),
        labels: sample.map((it) => it.label!),
        selfIds: sample.map((it) => it.id),
      },
      { k: 20 },
    );
    server = createSearchServer(index, { encoder, calibration, maxBodyBytes: 64 * 1024, batchWindowMs: 20 });
    await new Promise<void>((done) => server.listen(0, '127.0.0.1', () => done()));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const test = await loadFashionMnist({ split: 'train', dataDir: EMBEDDED_FASHION_MNIST_DIR, limit: 1 });
    const raw = Buffer.from(Array.from(test.images, (v) => Math.round(v * 255)));
    pngBase64 = (
      await sharp(raw, { raw: { width: 28, height: 28, channels: 1 } })
        .png()
        .toBuffer()
    ).toString('base64');
  });
  after(async () => {
    await new Promise<void>((done) => server.close(() => done()));
    encoder.dispose();
    await rm(dir, { recursive: true, force: true });
  });

  it('GET /health and /items/:id answer; an unknown id is a 404 naming it', async () => {
    const health = (await (await fetch(`${base}/health`)).json()) as Record<string, unknown>;
    assert.equal(health.status, 'ok');
    assert.equal(health.items, 800);
    assert.equal(health.imageQueries, true);
    const item = await fetch(`${base}/items/12?embedding=1`);
    assert.equal(item.status, 200);
    const body = (await item.json()) as { id: string; label: string[]; embedding: number[] };
    assert.equal(body.id, '12');
    assert.equal(body.label.length, 3);
    assert.equal(body.embedding.length, 64);
    const missing = await fetch(`${base}/items/nope`);
    assert.equal(missing.status, 404);
    assert.deepEqual(await missing.json(), { error: 'id "nope" is not an item of the index.', field: 'id' });
    assert.equal((await fetch(`${base}/nowhere`)).status, 404);
  });

  it('POST /search by vector, id and image gives the library results', async () => {
    const vector = Array.from(index.embedding('5'));
    const byVector = await post('/search', { vector, k: 4, within: 'Clothes' });
    assert.equal(byVector.status, 200);
    assert.deepEqual(
      byVector.json,
      JSON.parse(JSON.stringify(index.search({ vector }, { k: 4, within: 'Clothes' }))),
    );
    const byId = await post('/search', { id: '5', k: 3 });
    assert.deepEqual(byId.json, JSON.parse(JSON.stringify(index.search({ id: '5' }, { k: 3 }))));
    const byImage = await post('/search', { image: pngBase64, k: 1 });
    assert.equal(byImage.status, 200);
    // the image is item 0 of the training split: its own row comes back first
    assert.equal((byImage.json.hits as { id: string }[])[0].id, '0');
    const grouped = await post('/search', { id: '5', k: 2, groupBy: 'family' });
    assert.equal((grouped.json.groups as unknown[]).length, 2);
  });

  it('bad requests are 400s naming the field; an oversize body is a 413', async () => {
    const fails = async (body: unknown, field: string, pattern: RegExp, raw?: string) => {
      const r = await post('/search', body, raw);
      assert.equal(r.status, 400, JSON.stringify(r.json));
      assert.equal(r.json.field, field);
      assert.match(String(r.json.error), pattern);
    };
    await fails(null, 'body', /must be JSON, but parsing failed/, '{"vector": [1, 2');
    await fails([1, 2], 'body', /must be a JSON object/);
    await fails(
      { vector: [1, 2, 3] },
      'vector',
      /vector must have 64 values \(the index's dimension\), but got 3/,
    );
    await fails(
      { vector: Array(64).fill('x') },
      'vector',
      /vector\[0\] must be a finite number, but got "x"/,
    );
    await fails({ id: 'nope' }, 'id', /id "nope" is not an item of the index/);
    await fails({ id: '1', k: 0 }, 'k', /k must be an integer >= 1, but got 0/);
    await fails({ id: '1', within: 'Clothes/Topps' }, 'within', /did you mean "Clothes\/Tops"\?/);
    await fails({ id: '1', groupBy: 'colour' }, 'groupBy', /groupBy must be a level/);
    await fails(
      { image: Buffer.from('not an image').toString('base64') },
      'image',
      /cannot decode the image field as an image/,
    );
    await fails({}, 'vector', /give exactly one of vector, id and image, but got none/);
    const big = await post('/search', { vector: Array(64).fill(1), padding: 'x'.repeat(100 * 1024) });
    assert.equal(big.status, 413);
    assert.equal(big.json.field, 'body');
    assert.equal((await fetch(`${base}/search`)).status, 405);
  });

  it('concurrent searches are batched and each gets its own answer', async () => {
    const before = { ...server.stats };
    const ids = Array.from({ length: 24 }, (_, i) => String(i * 7));
    const answers = await Promise.all(
      ids.map((id) => post('/search', { vector: Array.from(index.embedding(id)), k: 5 })),
    );
    const batches = server.stats.batches - before.batches;
    assert.equal(server.stats.queries - before.queries, 24);
    assert.ok(batches < 24, `${batches} batches for 24 concurrent queries`);
    answers.forEach((a, i) => {
      assert.equal(a.status, 200);
      assert.deepEqual(
        a.json,
        JSON.parse(JSON.stringify(index.search({ vector: index.embedding(ids[i]) }, { k: 5 }))),
      );
    });
  });

  it('POST /predict places vectors and ids in the tree with calibrated confidences', async () => {
    const r = await post('/predict', {
      vectors: [Array.from(index.embedding('3')), Array.from(index.embedding('4'))],
    });
    assert.equal(r.status, 200);
    const predictions = r.json.predictions as {
      path: string[];
      depth: number;
      levels: { confidence: number }[];
    }[];
    assert.equal(predictions.length, 2);
    for (const p of predictions) {
      assert.equal(p.path.length, p.depth);
      assert.equal(p.levels.length, 3);
    }
    const strict = await post('/predict', { id: '3', minConfidence: 2 });
    assert.equal((strict.json.predictions as { depth: number }[])[0].depth, 0);
    const bad = await post('/predict', { vectors: [[1, 2]] });
    assert.equal(bad.status, 400);
    assert.equal(bad.json.field, 'vectors[0]');
  });

  it('contrastive serve listens, answers and stops on SIGTERM', async () => {
    const bin = resolve(REPO_ROOT, 'dist/src/cli/bin.js');
    const child = spawn(
      process.execPath,
      [bin, 'serve', indexPath, '--port', '0', '--calibration-limit', '100', '--backend', 'wasm'],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stderr = '';
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    const address = await new Promise<string>((done, fail) => {
      let stdout = '';
      child.stdout.on('data', (d) => {
        stdout += d;
        const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(stdout);
        if (m) done(m[1]);
      });
      child.once('exit', (code) => fail(new Error(`serve exited with ${code}: ${stderr}`)));
    });
    const health = (await (await fetch(`${address}/health`)).json()) as {
      items: number;
      calibrated: boolean;
    };
    assert.equal(health.items, 800);
    assert.equal(health.calibrated, true);
    const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
    child.kill('SIGTERM');
    assert.equal(await exited, 0, stderr);
  });
});
