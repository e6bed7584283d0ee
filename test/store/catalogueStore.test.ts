/**
 * `predict`, `dedupe` and `serve` on a store URL (`Catalogue.open` reads the store into an index):
 * the same output as on the index file that `index --out` wrote beside it; a store still being
 * built is refused in one line.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { EMBEDDED_FASHION_MNIST_DIR } from '../../src/data/fashionMnist.js';
import { train } from '../../src/run/train.js';
import { PostgresStore } from '../../src/store/index.js';
import { BIN, cli, hasNoStack } from '../helpers/cli.js';
import { quietProgress, smallConfig } from '../helpers/train.js';
import { post } from '../serve/fixtures.js';

/** `contrastive serve <source> --port 0`: its address once it listens, and a way to stop it. */
async function startServe(source: string): Promise<{ base: string; stop(): Promise<void> }> {
  const child = spawn(
    process.execPath,
    [BIN, 'serve', source, '--port', '0', '--no-images', '--calibration-limit', '0', '--backend', 'wasm'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d: string) => {
    stderr += d;
  });
  const exited = new Promise<number | null>((done) => child.once('exit', done));
  const base = await new Promise<string>((done, fail) => {
    child.stdout.on('data', (d: string) => {
      stdout += d;
      const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(stdout);
      if (m) done(m[1]);
    });
    void exited.then((code) => fail(new Error(`serve ${source} exited with ${code}: ${stderr}`)));
  });
  return {
    base,
    async stop() {
      child.kill('SIGTERM');
      assert.equal(await exited, 0, stderr);
    },
  };
}

describe('predict, dedupe and serve on a store URL', () => {
  let dir: string;
  let indexPath: string;
  let url: string;
  const data = (split: string, limit: number) => [
    '--data',
    `fashion-mnist:${split}`,
    '--data-dir',
    EMBEDDED_FASHION_MNIST_DIR,
    '--limit',
    String(limit),
  ];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'store-catalogue-'));
    const runDir = join(dir, 'run');
    await train(await smallConfig(runDir, { epochs: 1, trainLimit: 256, testLimit: 120 }), {
      progress: quietProgress(),
    });
    indexPath = join(dir, 'catalogue.index');
    url = `pglite:${join(dir, 'catalogue.pg')}`;
    // one embedding pass writes both: the index file and the store
    const r = cli([
      'index',
      runDir,
      ...data('train', 200),
      '--out',
      indexPath,
      '--store',
      url,
      '--backend',
      'wasm',
    ]);
    assert.equal(r.status, 0, r.stderr);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('predict gives the same predictions on the store as on the index file', () => {
    const outputs = [indexPath, url].map((source) => {
      const r = cli(['predict', source, ...data('test', 30), '--backend', 'wasm', '--json']);
      assert.equal(r.status, 0, `${source}: ${r.stderr}`);
      return r.stdout;
    });
    assert.equal(outputs[0].trim().split('\n').length, 30);
    assert.equal(outputs[1], outputs[0]);
  });

  it('dedupe gives the same pairs on the store as on the index file', () => {
    for (const flags of [['--threshold', '0.99'], []]) {
      const outputs = [indexPath, url].map((source) => {
        const r = cli(['dedupe', source, ...flags, '--backend', 'wasm', '--json']);
        assert.equal(r.status, 0, `${source} ${flags.join(' ')}: ${r.stderr}`);
        return JSON.parse(r.stdout) as { pairs: unknown[] };
      });
      assert.ok(outputs[0].pairs.length > 0, 'some pairs to compare');
      assert.deepEqual(outputs[1], outputs[0], flags.join(' ') || 'calibrated threshold');
    }
  });

  it('serve answers /search with the same hits on the store as on the index file', async () => {
    const answers: unknown[][] = [];
    for (const source of [indexPath, url]) {
      const server = await startServe(source);
      try {
        const byId = await post(server.base, '/search', { id: '3', k: 10 });
        const within = await post(server.base, '/search', { id: '7', k: 5, within: 'Clothes' });
        assert.equal(byId.status, 200, JSON.stringify(byId.json));
        assert.equal(within.status, 200, JSON.stringify(within.json));
        assert.equal((byId.json.hits as unknown[]).length, 10);
        answers.push([byId.json.hits, within.json.hits]);
      } finally {
        await server.stop();
      }
    }
    assert.deepEqual(answers[1], answers[0]);
  });

  it('a store still being built is refused in one line', async () => {
    const store = await PostgresStore.open(url);
    try {
      await store.query("UPDATE contrastive_meta SET state = 'building', expected_items = 250");
    } finally {
      await store.close();
    }
    const r = cli(['dedupe', url, '--threshold', '0.99']);
    assert.equal(r.status, 1);
    assert.match(
      r.stderr,
      /^error: Catalogue\.open: the store pglite:\S+ is still being built \(200 of 250 items\): finish the import or the workers/,
    );
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.ok(hasNoStack(r.stderr));
  });
});
