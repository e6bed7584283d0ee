/**
 * The store from the CLI: `store import` + `search --store` (plan in --json, same hits as the
 * index file), one-line errors; and the queue: `index --queue` + two `worker`s on a real Redis and
 * a pglite-socket server, one SIGKILLed mid-job: every item lands exactly once, the job is retried.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PGlite } from '@electric-sql/pglite';
import { ltree } from '@electric-sql/pglite/contrib/ltree';
import { vector } from '@electric-sql/pglite/vector';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import { EMBEDDED_FASHION_MNIST_DIR } from '../../src/data/fashionMnist.js';
import { useBackend } from '../../src/engine/backend.js';
import { train } from '../../src/run/train.js';
import { EmbeddingIndex } from '../../src/search/index.js';
import { PostgresStore } from '../../src/store/index.js';
import { BIN, hasNoStack } from '../helpers/cli.js';
import { quietProgress, smallConfig } from '../helpers/train.js';
import { projectedFashionMnist } from '../search/fixtures.js';

/** Runs `contrastive <args>` without blocking this process (the socket server lives here). */
function run(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ status: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env } });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (t: string) => {
    stdout += t;
  });
  child.stderr.setEncoding('utf8').on('data', (t: string) => {
    stderr += t;
  });
  return new Promise((done) =>
    child.on('close', (status, signal) => done({ status, signal, stdout, stderr })),
  );
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'store-cli-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe('contrastive store import / search --store', () => {
  let index: EmbeddingIndex;
  let indexPath: string;
  let url: string;
  before(async () => {
    await useBackend('wasm');
    const data = await projectedFashionMnist(8, 3, 300);
    index = EmbeddingIndex.create({ tree: data.tree, dim: data.dim });
    index.add(
      Array.from({ length: data.count }, (_, i) => ({ id: i, label: data.paths[i] })),
      data.vectors,
    );
    indexPath = join(dir, 'catalogue.index');
    await index.save(indexPath);
    url = `pglite:${join(dir, 'catalogue.pg')}`;
  });

  it('imports an index file, then searches the store like the file, saying which plan ran', async () => {
    const imported = await run(['store', 'import', indexPath, '--store', url, '--json']);
    assert.equal(imported.status, 0, imported.stderr);
    const summary = JSON.parse(imported.stdout);
    assert.equal(summary.inserted, index.size);
    assert.equal(summary.state, 'ready');
    const r = await run(['search', '--store', url, '--id', '5', '--within', 'Clothes/Tops', '--json']);
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.plan, 'exact');
    assert.ok(out.scopeSize > 0);
    const expected = index.search({ id: '5' }, { k: 10, within: 'Clothes/Tops', approximate: false }).hits;
    assert.deepEqual(out.results.map((h: { id: string }) => h.id).sort(), expected.map((h) => h.id).sort());
    const info = await run(['store', 'info', '--store', url]);
    assert.equal(info.status, 0, info.stderr);
    assert.match(info.stdout, new RegExp(`${index.size} items, 8-d backbone embeddings`));
  });

  it('a store that does not answer, or no store at all, is one line', async () => {
    const port = await freePort();
    const r = await run(['search', '--store', `postgres://u:secret@127.0.0.1:${port}/db`, '--id', '1']);
    assert.equal(r.status, 1);
    assert.match(
      r.stderr,
      /^error: PostgresStore.open: the store postgres:\/\/u:\*\*\*@127.0.0.1:\d+\/db does not answer \(ECONNREFUSED\)/,
    );
    assert.ok(hasNoStack(r.stderr));
    const both = await run(['search', indexPath, '--store', url, '--id', '1']);
    assert.match(both.stderr, /give either an index file or --store/);
  });
});

describe('contrastive index --queue + contrastive worker (Redis, a pglite-socket server)', () => {
  const redisPath = spawnSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' }).stdout.trim();
  let redis: ReturnType<typeof spawn> | null = null;
  let redisUrl: string;
  let db: PGlite;
  let server: PGLiteSocketServer;
  let storeUrl: string;
  let runDir: string;

  before(async () => {
    runDir = join(dir, 'run');
    await train(await smallConfig(runDir, { epochs: 1, trainLimit: 256, testLimit: 120 }), {
      progress: quietProgress(),
    });
    if (!redisPath) return;
    const port = await freePort();
    redis = spawn(
      redisPath,
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    await new Promise<void>((resolve, reject) => {
      let text = '';
      redis!.stdout!.setEncoding('utf8').on('data', (t: string) => {
        text += t;
        if (/Ready to accept connections/.test(text)) resolve();
      });
      redis!.on('exit', (code) => reject(new Error(`redis-server exited with ${code}: ${text}`)));
    });
    redisUrl = `redis://127.0.0.1:${port}`;
    db = await PGlite.create('memory://', { extensions: { vector, ltree } });
    server = new PGLiteSocketServer({ db, port: 0, host: '127.0.0.1', maxConnections: 32 });
    await server.start();
    storeUrl = `postgres://postgres:pw@${server.getServerConn()}/postgres`;
  });
  after(async () => {
    redis?.kill('SIGTERM');
    if (server) await server.stop();
    if (db) await db.close();
  });

  it('index --store embeds a catalogue straight into an embedded store', async () => {
    const url = `pglite:${join(dir, 'direct.pg')}`;
    const args = ['--data', 'fashion-mnist:test', '--data-dir', EMBEDDED_FASHION_MNIST_DIR, '--limit', '100'];
    const r = await run(['index', runDir, ...args, '--store', url, '--backend', 'wasm', '--json']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).items, 100);
    const store = await PostgresStore.open(url);
    try {
      const info = (await store.info())!;
      assert.deepEqual([info.items, info.state, info.model?.source], [100, 'ready', runDir]);
    } finally {
      await store.close();
    }
  });

  it('two workers, one killed with SIGKILL mid-job: every item exactly once, the job retried', async (t) => {
    if (!redisPath) {
      t.skip('redis-server is not installed (scripts/setup.sh installs it)');
      return;
    }
    const data = ['--data', 'fashion-mnist:test', '--data-dir', EMBEDDED_FASHION_MNIST_DIR, '--limit', '300'];
    const queued = await run([
      'index',
      runDir,
      ...data,
      '--store',
      storeUrl,
      '--queue',
      redisUrl,
      '--job-size',
      '150',
      '--no-wait',
      '--json',
    ]);
    assert.equal(queued.status, 0, queued.stderr);
    assert.deepEqual(
      { jobs: JSON.parse(queued.stdout).jobs, state: JSON.parse(queued.stdout).state },
      { jobs: 2, state: 'building' },
    );
    // worker 1 kills itself (SIGKILL) after writing its first chunk of 64 items of its first job
    const killed = await run(
      ['worker', runDir, '--queue', redisUrl, '--store', storeUrl, '--lock-seconds', '2', '--json'],
      { CONTRASTIVE_FAULT: 'worker-chunk:1' },
    );
    assert.equal(killed.signal, 'SIGKILL', killed.stderr);
    // worker 2 takes the other job and, once the dead worker's lock lapses, the stalled one
    const survivor = await run([
      'worker',
      runDir,
      '--queue',
      redisUrl,
      '--store',
      storeUrl,
      '--lock-seconds',
      '2',
      '--exit-when-empty',
      '--json',
    ]);
    assert.equal(survivor.status, 0, survivor.stderr);
    const jobs = survivor.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { job: string; rows: number[]; written: number });
    assert.equal(jobs.length, 2, survivor.stdout);
    assert.deepEqual(
      jobs.map((j) => j.written).sort((a, b) => a - b),
      [150 - 64, 150],
      'the retried job wrote only what was missing',
    );
    // finishing: the count check, the HNSW index, the prototypes
    const finished = await run([
      'index',
      runDir,
      ...data,
      '--store',
      storeUrl,
      '--queue',
      redisUrl,
      '--job-size',
      '150',
      '--json',
    ]);
    assert.equal(finished.status, 0, finished.stderr);
    assert.equal(JSON.parse(finished.stdout).items, 300);
    const store = await PostgresStore.open(storeUrl);
    try {
      const [row] = await store.query<{ n: number; distinct: number; lo: number; hi: number }>(
        'SELECT count(*)::int AS n, count(DISTINCT id)::int AS distinct, min(id::int) AS lo, max(id::int) AS hi FROM contrastive_items',
      );
      assert.deepEqual(row, { n: 300, distinct: 300, lo: 0, hi: 299 });
      const info = (await store.info())!;
      assert.equal(info.state, 'ready');
      assert.equal(info.prototypesStale, false);
      assert.equal((await store.search({ id: '0' }, { k: 5 })).hits.length, 5);
    } finally {
      await store.close();
    }
  });

  it('a Redis that goes away under a running worker is one line naming --queue', async (t) => {
    if (!redisPath) {
      t.skip('redis-server is not installed');
      return;
    }
    const port = await freePort();
    const own = spawn(
      redisPath,
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    await new Promise<void>((resolve) => {
      let text = '';
      own.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
        text += chunk;
        if (/Ready to accept connections/.test(text)) resolve();
      });
    });
    const child = spawn(process.execPath, [
      BIN,
      'worker',
      runDir,
      '--queue',
      `redis://127.0.0.1:${port}`,
      '--store',
      storeUrl,
    ]);
    let stderr = '';
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    await new Promise<void>((resolve) => {
      child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
        stderr += chunk;
        if (/waiting for jobs/.test(stderr)) resolve();
      });
    });
    own.kill('SIGKILL');
    assert.equal(await exited, 1, stderr);
    const lines = stderr.trim().split('\n');
    assert.match(
      lines.at(-1)!,
      /^error: runWorker: the queue redis:\/\/127.0.0.1:\d+ does not answer \((ECONNREFUSED|ECONNRESET)\); start Redis or fix --queue/,
    );
    assert.ok(hasNoStack(stderr), stderr);
  });

  it('a Redis that is gone is one line naming --queue', async (t) => {
    if (!redisPath) {
      t.skip('redis-server is not installed');
      return;
    }
    const port = await freePort();
    const r = await run(['worker', runDir, '--queue', `redis://127.0.0.1:${port}`, '--store', storeUrl]);
    assert.equal(r.status, 1);
    assert.match(
      r.stderr,
      /the queue redis:\/\/127.0.0.1:\d+ does not answer \(ECONNREFUSED\); start Redis or fix --queue/,
    );
    assert.ok(hasNoStack(r.stderr));
  });
});
