/**
 * `contrastive serve` under load, with hostile clients mixed in: the real CLI process over an index
 * of every Fashion-MNIST image (70,000 with Debian's dataset-fashion-mnist; a seeded random
 * projection of the pixels, 64-d), hit over loopback by 2,000 requests at 8 and at 64 concurrent,
 * 5 % of them hostile (k = 1e8, a 2 MiB body, malformed JSON, a float32-infinite vector, a body
 * that trickles in slower than --request-timeout). Counts errors on the good ones, their latency
 * p50/p99, what the hostile ones got, and the worst latency of GET /health polled all along (from
 * a process of its own), next to the server's own event-loop delay.
 *
 *   node dist/bench/serve.js [--requests 2000] [--concurrency 8,64] [--dim 64]
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { useBackend } from '../src/engine/backend.js';
import { EmbeddingIndex } from '../src/search/index.js';
import { BIN } from '../test/helpers/cli.js';
import { projectedFashionMnist } from '../test/search/fixtures.js';

const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
};
const total = Number(arg('requests', '2000'));
const levels = arg('concurrency', '8,64').split(',').map(Number);
const dim = Number(arg('dim', '64'));
const REQUEST_TIMEOUT_S = 1;

await useBackend('wasm');
const data = await projectedFashionMnist(dim);
const dir = await mkdtemp(join(tmpdir(), 'serve-bench-'));
const indexPath = join(dir, 'fm.index');
{
  const index = EmbeddingIndex.create({ tree: data.tree, dim });
  index.add(
    Array.from({ length: data.count }, (_, i) => ({ id: i, label: data.paths[i] })),
    data.vectors,
  );
  await index.save(indexPath);
  index.dispose();
}

const child = spawn(
  process.execPath,
  [
    BIN,
    'serve',
    indexPath,
    '--port',
    '0',
    '--no-images',
    '--calibration-limit',
    '500',
    '--backend',
    'wasm',
    '--request-timeout',
    String(REQUEST_TIMEOUT_S),
  ],
  { stdio: ['ignore', 'pipe', 'inherit'] },
);
const port = await new Promise<number>((resolve, reject) => {
  let out = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (d: string) => {
    out += d;
    const m = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(out);
    if (m) resolve(Number(m[1]));
  });
  child.once('exit', (code) => reject(new Error(`contrastive serve exited with ${code}`)));
});
const base = `http://127.0.0.1:${port}`;
console.log(
  `serve bench: contrastive serve over ${data.count} Fashion-MNIST images (${data.source}), ${dim}-d exact, loopback; --request-timeout ${REQUEST_TIMEOUT_S} s`,
);

const vectorOf = (row: number) => Array.from(data.vectors.subarray(row * dim, (row + 1) * dim));

/** Writes raw HTTP on a fresh socket (chunks `gapMs` apart) and resolves with the status, or 0 when the connection dropped first. */
function raw(chunks: string[], gapMs = 0): Promise<number> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let text = '';
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      socket.destroy();
      const m = /^HTTP\/1\.1 (\d{3})/.exec(text);
      resolve(m ? Number(m[1]) : 0);
    };
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => {
      text += d;
      if (/\r\n\r\n/.test(text)) finish();
    });
    socket.on('close', finish);
    socket.on('error', finish);
    socket.on('connect', async () => {
      for (const [i, chunk] of chunks.entries()) {
        if (i > 0 && gapMs > 0) await new Promise((r) => setTimeout(r, gapMs));
        if (done) return;
        socket.write(chunk);
      }
    });
  });
}

const post = (body: string) =>
  `POST /search HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n`;

/** The hostile requests, in turn; each resolves with the status it got. */
const HOSTILE: { name: string; send: (row: number) => Promise<number> }[] = [
  {
    name: 'k = 1e8',
    send: (row) => {
      const body = JSON.stringify({ vector: vectorOf(row), k: 1e8 });
      return raw([post(body) + body]);
    },
  },
  {
    name: '2 MiB body',
    send: (row) => {
      const body = JSON.stringify({ vector: vectorOf(row), padding: 'x'.repeat(2 << 20) });
      return raw([post(body), body]);
    },
  },
  { name: 'malformed JSON', send: () => raw([`${post('{"vector": [1, 2')}{"vector": [1, 2`]) },
  {
    name: '1e39 in the vector',
    send: (row) => {
      const body = JSON.stringify({ vector: vectorOf(row).map((v, j) => (j === 0 ? 1e39 : v)) });
      return raw([post(body) + body]);
    },
  },
  {
    name: 'slow body',
    send: (row) => {
      const body = JSON.stringify({ vector: vectorOf(row), k: 10 });
      // 20 pieces 100 ms apart: 2 s, twice --request-timeout
      const pieces = Array.from({ length: 20 }, (_, i) =>
        body.slice(Math.floor((i * body.length) / 20), Math.floor(((i + 1) * body.length) / 20)),
      );
      return raw([post(body), ...pieces], 100);
    },
  },
];

/**
 * GET /health every 20 ms on a fresh connection, from a process of its own (so that this one's
 * 64 clients do not delay it), until `stop()`: the latencies in ms.
 */
function pollHealth(): { stop: () => Promise<number[]> } {
  const script = `
    const http = require('node:http');
    const latencies = [];
    let running = true;
    process.stdin.on('data', () => { running = false; });
    (async () => {
      while (running) {
        const t = performance.now();
        await new Promise((resolve) => {
          http.get({ host: '127.0.0.1', port: ${port}, path: '/health', agent: false }, (res) => {
            res.resume();
            res.on('end', resolve);
          }).on('error', resolve);
        });
        latencies.push(performance.now() - t);
        await new Promise((r) => setTimeout(r, 20));
      }
      process.stdout.write(JSON.stringify(latencies));
      process.exit(0);
    })();`;
  const poller = spawn(process.execPath, ['-e', script], { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  poller.stdout.setEncoding('utf8');
  poller.stdout.on('data', (d: string) => {
    out += d;
  });
  const exited = new Promise<void>((resolve) => poller.once('exit', () => resolve()));
  return {
    stop: async () => {
      poller.stdin.write('stop\n');
      await exited;
      return JSON.parse(out) as number[];
    },
  };
}

const pct = (sorted: number[], p: number) =>
  sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] : Number.NaN;

for (const concurrency of levels) {
  const latencies: number[] = [];
  const goodErrors = new Map<string, number>();
  const hostileStatus = new Map<string, Map<number, number>>();
  let next = 0;
  const poll = pollHealth();
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) {
        const i = next++;
        const row = (i * 104729) % data.count;
        if (i % 20 === 19) {
          // 5 % hostile, in turn
          const hostile = HOSTILE[Math.floor(i / 20) % HOSTILE.length];
          const status = await hostile.send(row);
          const counts = hostileStatus.get(hostile.name) ?? new Map<number, number>();
          counts.set(status, (counts.get(status) ?? 0) + 1);
          hostileStatus.set(hostile.name, counts);
          continue;
        }
        const t0 = performance.now();
        try {
          const response = await fetch(`${base}/search`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ vector: vectorOf(row), k: 10 }),
          });
          const answer = (await response.json()) as { hits?: unknown[] };
          latencies.push(performance.now() - t0);
          if (response.status !== 200 || answer.hits?.length !== 10) {
            const key = String(response.status);
            goodErrors.set(key, (goodErrors.get(key) ?? 0) + 1);
          }
        } catch (error) {
          const key = (error as Error).message;
          goodErrors.set(key, (goodErrors.get(key) ?? 0) + 1);
        }
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  const healthLatencies = await poll.stop();
  latencies.sort((a, b) => a - b);
  healthLatencies.sort((a, b) => a - b);
  const errors = [...goodErrors.values()].reduce((a, b) => a + b, 0);
  console.log('');
  console.log(
    `${concurrency} concurrent: ${total} requests in ${seconds.toFixed(1)} s; ${latencies.length} good: ${errors} errors${errors ? ` (${[...goodErrors].map(([k, n]) => `${k}: ${n}`).join(', ')})` : ''}, latency p50 ${pct(latencies, 0.5).toFixed(1)} ms, p99 ${pct(latencies, 0.99).toFixed(1)} ms`,
  );
  console.log(
    `  hostile: ${[...hostileStatus].map(([name, counts]) => `${name} → ${[...counts].map(([s, n]) => `${n}× ${s || 'dropped'}`).join(' ')}`).join('; ')}`,
  );
  const loop = (
    (await (await fetch(`${base}/health`)).json()) as { eventLoopDelayMs: { p99: number; max: number } }
  ).eventLoopDelayMs;
  console.log(
    `  GET /health (every 20 ms, ${healthLatencies.length} checks): p50 ${pct(healthLatencies, 0.5).toFixed(1)} ms, p99 ${pct(healthLatencies, 0.99).toFixed(1)} ms, worst ${healthLatencies.at(-1)?.toFixed(1)} ms; the server's event-loop delay since it started: p99 ${loop.p99.toFixed(1)} ms, worst ${loop.max.toFixed(1)} ms`,
  );
}

const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
child.kill('SIGTERM');
console.log('');
console.log(`contrastive serve exited with ${await exited} after SIGTERM`);
await rm(dir, { recursive: true, force: true });
