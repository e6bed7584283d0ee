/**
 * No request can crash, freeze or poison the server (real HTTP on 127.0.0.1): sizes are capped,
 * each query is checked alone before it joins a batch, malformed targets and unexpected errors are
 * one request's 400/500, slow or huge requests are bounded, a full queue is a 503, /health answers
 * during a huge search, and drain() finishes open requests.
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { useBackend } from '../../src/engine/backend.js';
import type { EmbeddingIndex, RunEncoder } from '../../src/search/index.js';
import { post, randomIndex, rawRequest, startServer } from './fixtures.js';

const DIM = 16;

describe('search server under hostile requests', () => {
  let index: EmbeddingIndex;
  let base: string;
  let port: number;
  let close: () => Promise<void>;
  let server: Awaited<ReturnType<typeof startServer>>['server'];
  const vectorOf = (id: number) => Array.from(index.embedding(id));
  before(async () => {
    await useBackend('wasm');
    index = randomIndex(500, DIM);
    ({ base, port, close, server } = await startServer(index, { batchWindowMs: 20 }));
  });
  after(async () => {
    await close();
    index.dispose();
  });

  it('k and groupSize above --max-k are a 400 at once; above the index size they are the index size', async () => {
    let t = performance.now();
    const huge = await post(base, '/search', { vector: vectorOf(1), k: 1e8 });
    assert.equal(huge.status, 400);
    assert.equal(huge.json.field, 'k');
    assert.match(
      String(huge.json.error),
      /k must be at most 1000 \(this server's --max-k\), but got 100000000/,
    );
    const group = await post(base, '/search', { id: 1, groupBy: 1, groupSize: 1e9 });
    assert.equal(group.status, 400);
    assert.equal(group.json.field, 'groupSize');
    assert.ok(performance.now() - t < 1000);
    const all = await post(base, '/search', { vector: vectorOf(1), k: 1000 });
    assert.equal(all.status, 200);
    assert.equal((all.json.hits as unknown[]).length, 500);
    // the library caps too: a huge k or groupSize costs what the index size costs
    t = performance.now();
    assert.equal(index.search({ id: 2 }, { k: 1e9 }).hits.length, 499);
    const grouped = index.search({ id: 2 }, { k: 1e9, groupBy: 1, groupSize: 1e9 });
    assert.equal(grouped.hits.length, 499);
    assert.equal(grouped.groups?.length, 4);
    assert.ok(performance.now() - t < 1000, `${performance.now() - t} ms`);
  });

  it('400 concurrent valid searches with 20 hostile ones mixed in: all 400 answered 200, each hostile one a 400 naming its field', async () => {
    const tiny = Array(DIM).fill(1e-46); // every value rounds to zero as float32
    const overflow = vectorOf(3).map((v, i) => (i === 5 ? 1e39 : v)); // finite JSON, infinite float32
    const hostile: { body: unknown; raw?: string; field: string }[] = [
      { body: { vector: overflow, k: 5 }, field: 'vector' },
      { body: { vector: tiny, k: 5 }, field: 'vector' },
      { body: { vector: Array(DIM).fill(0), k: 5 }, field: 'vector' },
      { body: { vector: vectorOf(1).slice(1), k: 5 }, field: 'vector' },
      { body: { vector: [...vectorOf(1).slice(1), 'x'], k: 5 }, field: 'vector' },
      { body: { vector: [...vectorOf(1).slice(1), null], k: 5 }, field: 'vector' },
      { body: { vector: vectorOf(1), k: 1e8 }, field: 'k' },
      { body: { vector: vectorOf(1), k: -3 }, field: 'k' },
      { body: { vector: vectorOf(1), k: 2.5 }, field: 'k' },
      { body: { vector: vectorOf(1), k: '5' }, field: 'k' },
      { body: { vector: vectorOf(1), k: 5, groupBy: 1, groupSize: 1e9 }, field: 'groupSize' },
      { body: { vector: vectorOf(1), k: 5, within: 'Nowhere' }, field: 'within' },
      { body: { vector: vectorOf(1), k: 5, within: 'x'.repeat(5000) }, field: 'within' },
      { body: { vector: vectorOf(1), k: 5, groupBy: { level: 1 } }, field: 'groupBy' },
      { body: { vector: vectorOf(1), k: 5, exclude: Array(20_000).fill(1) }, field: 'exclude' },
      { body: { vector: vectorOf(1), k: 5, exclude: [{}] }, field: 'exclude[0]' },
      { body: { vector: vectorOf(1), id: 1, k: 5 }, field: 'id' },
      { body: { id: 'nope', k: 5 }, field: 'id' },
      { body: null, raw: '{"vector": [1e39', field: 'body' },
      {
        body: null,
        raw: '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]',
        field: 'body',
      },
    ];
    const ids = Array.from({ length: 400 }, (_, i) => (i * 7) % 500);
    const good = ids.map((id) => post(base, '/search', { vector: vectorOf(id), k: 5 }));
    // the hostile ones go out in the middle of the good ones, so they land in the same batches
    const bad = hostile.map((h) => post(base, '/search', h.body, h.raw));
    const batchesBefore = server.stats.batches;
    const goodAnswers = await Promise.all(good);
    const badAnswers = await Promise.all(bad);
    goodAnswers.forEach((a, i) => {
      assert.equal(a.status, 200, JSON.stringify(a.json));
      const hits = a.json.hits as { id: string; score: number }[];
      assert.equal(hits.length, 5);
      assert.equal(hits[0].id, String(ids[i]));
    });
    badAnswers.forEach((a, i) => {
      assert.equal(
        a.status,
        400,
        `${JSON.stringify(hostile[i].body)?.slice(0, 80)}: ${JSON.stringify(a.json)}`,
      );
      assert.equal(a.json.field, hostile[i].field, String(a.json.error));
    });
    assert.ok(server.stats.batches - batchesBefore < 400, 'the good searches were batched');
    assert.match(String(badAnswers[0].json.error), /vector\[5\] is 1e\+39, which is infinite as a float32/);
    assert.match(String(badAnswers[1].json.error), /must not be all zeros \(as float32/);
  });

  it('a malformed request target is a 400 or 404 and the server keeps answering', async () => {
    const slashes = await rawRequest(port, ['GET // HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n']);
    assert.equal(slashes.status, 404, slashes.text);
    const absolute = await rawRequest(port, [
      'GET http://[::1 HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n',
    ]);
    assert.equal(absolute.status, 400, absolute.text);
    assert.match(absolute.text, /"field":"url"/);
    const scheme = await rawRequest(port, ['GET ftp://a/b HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n']);
    assert.equal(scheme.status, 400, scheme.text);
    const proxied = await rawRequest(port, [
      'GET http://a/health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n',
    ]);
    assert.equal(proxied.status, 200, proxied.text);
    const percent = await rawRequest(port, [
      'GET /items/%E0%A4%A HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n',
    ]);
    assert.equal(percent.status, 400, percent.text);
    const garbage = await rawRequest(port, ['\x00\x01 nonsense\r\n\r\n']);
    assert.equal(garbage.status, 400, garbage.text);
    assert.equal((await fetch(`${base}/health`)).status, 200);
  });

  it('an unexpected error is a 500 for that request only', async () => {
    const item = index.item.bind(index);
    index.item = (id) => {
      if (String(id) === '7') throw new TypeError('boom');
      return item(id);
    };
    try {
      const broken = await fetch(`${base}/items/7`);
      assert.equal(broken.status, 500);
      assert.match(((await broken.json()) as { error: string }).error, /internal error: boom/);
      assert.equal((await fetch(`${base}/items/8`)).status, 200);
    } finally {
      index.item = item;
    }
  });

  it('bodies are bounded (413, also without content-length) and slow requests time out (408)', async () => {
    const { port: slowPort, close: closeSlow } = await startServer(index, {
      maxBodyBytes: 1000,
      requestTimeoutMs: 300,
    });
    try {
      const declared = await rawRequest(slowPort, [
        'POST /search HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 5000\r\n\r\n',
      ]);
      assert.equal(declared.status, 413, declared.text);
      const chunked = await rawRequest(slowPort, [
        'POST /search HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n',
        `800\r\n${'x'.repeat(0x800)}\r\n`,
        `800\r\n${'x'.repeat(0x800)}\r\n0\r\n\r\n`,
      ]);
      assert.equal(chunked.status, 413, chunked.text);
      // a body that trickles in, one byte every 50 ms: cut off near 300 ms
      const body = JSON.stringify({ id: 1 });
      const slowBody = await rawRequest(
        slowPort,
        [`POST /search HTTP/1.1\r\nhost: x\r\ncontent-length: ${body.length}\r\n\r\n`, ...body],
        { gapMs: 50 },
      );
      assert.equal(slowBody.status, 408, slowBody.text);
      assert.ok(slowBody.ms < 1500, `${slowBody.ms} ms`);
      // headers that never end
      const slowHeaders = await rawRequest(
        slowPort,
        ['GET /health HTTP/1.1\r\n', 'host: x\r\n', 'x-a: 1\r\n'],
        {
          gapMs: 100,
        },
      );
      assert.ok(slowHeaders.status === 408 || slowHeaders.text === '', slowHeaders.text);
      assert.ok(!slowHeaders.timedOut && slowHeaders.ms < 1500, `${slowHeaders.ms} ms`);
    } finally {
      await closeSlow();
    }
  });

  it('an image larger than maxImagePixels is refused from its header, before it is decoded', async () => {
    const { default: sharp } = await import('sharp');
    let embedded = 0;
    const encoder = {
      runDir: 'fake',
      inputShape: [28, 28, 1],
      imageDecode: { background: null, fit: 'stretch' },
      embedAsync: async () => {
        embedded++;
        return tf.ones([1, DIM]);
      },
    } as unknown as RunEncoder;
    const { base: imageBase, close: closeImages } = await startServer(index, {
      encoder,
      maxImagePixels: 1000 * 1000,
    });
    try {
      const png = (size: number) =>
        sharp({ create: { width: size, height: size, channels: 3, background: { r: 0, g: 0, b: 0 } } })
          .png()
          .toBuffer();
      const big = await post(imageBase, '/search', { image: (await png(1500)).toString('base64') });
      assert.equal(big.status, 400);
      assert.equal(big.json.field, 'image');
      assert.match(String(big.json.error), /at most 1000000 pixels, but is 1500 x 1500/);
      assert.equal(embedded, 0);
      const small = await post(imageBase, '/search', { image: (await png(28)).toString('base64'), k: 2 });
      assert.equal(small.status, 200, JSON.stringify(small.json));
      assert.equal(embedded, 1);
    } finally {
      await closeImages();
    }
  });

  it('a full queue is a 503 with Retry-After; the requests it took are answered', async () => {
    const {
      base: busyBase,
      server: busy,
      close: closeBusy,
    } = await startServer(index, {
      maxQueue: 4,
      batchWindowMs: 1000, // the first four wait a second for company: the queue stays full meanwhile
    });
    try {
      const answers = await Promise.all(
        Array.from({ length: 20 }, (_, i) => post(busyBase, '/search', { vector: vectorOf(i), k: 3 })),
      );
      const ok = answers.filter((a) => a.status === 200);
      const refused = answers.filter((a) => a.status === 503);
      assert.equal(ok.length + refused.length, 20);
      assert.ok(ok.length >= 4 && refused.length >= 8, `${ok.length} answered, ${refused.length} refused`);
      for (const r of refused) {
        assert.equal(r.headers.get('retry-after'), '1');
        assert.equal(r.json.field, 'queue');
      }
      assert.equal(busy.stats.rejected, refused.length);
      assert.equal((await post(busyBase, '/search', { vector: vectorOf(1), k: 3 })).status, 200);
    } finally {
      await closeBusy();
    }
  });
});

describe('search server: a huge search does not block /health; drain finishes open requests', () => {
  it('GET /health is answered while one /predict of 256 vectors runs over 40,000 items', async () => {
    await useBackend('wasm');
    const big = randomIndex(40_000, 32, 5);
    const { base, close } = await startServer(big);
    try {
      const vector = Array.from(big.embedding(0));
      await post(base, '/search', { vector, k: 10 }); // builds the search view
      const vectors = Array.from({ length: 256 }, (_, i) => vector.map((v, j) => (j === i % 32 ? v + 1 : v)));
      const started = performance.now();
      let searching = true;
      const huge = post(base, '/predict', { vectors }).finally(() => {
        searching = false;
      });
      const latencies: number[] = [];
      while (searching) {
        const t = performance.now();
        await (await fetch(`${base}/health`)).arrayBuffer();
        if (searching) latencies.push(performance.now() - t);
        await new Promise((r) => setTimeout(r, 5));
      }
      const answer = await huge;
      const took = performance.now() - started;
      assert.equal(answer.status, 200);
      assert.equal((answer.json.predictions as unknown[]).length, 256);
      latencies.sort((a, b) => a - b);
      const text = `${latencies.length} /health checks during a ${took.toFixed(0)} ms /predict: median ${latencies[latencies.length >> 1]?.toFixed(0)} ms, worst ${latencies.at(-1)?.toFixed(0)} ms`;
      // answered while the predict ran at all: the work yields between slices (latencies are the
      // bench's business, bench/serve.ts, not a test's)
      assert.ok(latencies.length >= 1, text);
    } finally {
      await close();
      big.dispose();
    }
  });

  it('drain() answers the open requests, refuses new connections and resolves', async () => {
    await useBackend('wasm');
    const index = randomIndex(300, DIM);
    const { server, port } = await startServer(index);
    const body = JSON.stringify({ vector: Array.from(index.embedding(1)), k: 2 });
    // ten requests whose bodies are half sent when the drain starts
    const open = Array.from({ length: 10 }, () => {
      const req = request({
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: '/search',
        headers: { 'content-length': body.length },
      });
      const answer = new Promise<number>((resolve, reject) => {
        req.on('response', (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        });
        req.on('error', reject);
      });
      answer.catch(() => {}); // awaited below; never an unhandled rejection if an assertion fails first
      req.write(body.slice(0, 10));
      return { req, answer };
    });
    while (server.stats.requests < 10) await new Promise((r) => setTimeout(r, 10));
    const drained = server.drain(5000);
    assert.equal(server.draining, true);
    await assert.rejects(fetch(`http://127.0.0.1:${port}/health`));
    for (const { req } of open) req.end(body.slice(10));
    assert.deepEqual(await Promise.all(open.map((o) => o.answer)), Array(10).fill(200));
    assert.deepEqual(await drained, { unanswered: 0 });
    index.dispose();
  });
});
