/**
 * The real `contrastive serve` process: start-up failures are one line naming the flag (before the
 * index loads), SIGTERM drains the open requests and exits 0, a second signal exits at once, SIGHUP
 * is ignored, --drain-timeout cuts off what is left; and `contrastive search` with a huge --k.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { type ClientRequest, get, request } from 'node:http';
import { connect, createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { useBackend } from '../../src/engine/backend.js';
import { BIN, cli, hasNoStack } from '../helpers/cli.js';
import { tempRuns } from '../helpers/train.js';
import { randomIndex } from './fixtures.js';

const ITEMS = 600;

/** `contrastive serve <index> --port 0 ...` until it prints its address. */
async function startServe(indexPath: string, extra: string[] = []) {
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
      '0',
      '--backend',
      'wasm',
      ...extra,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  child.stdout.on('data', (d: string) => {
    stdout += d;
  });
  child.stderr.on('data', (d: string) => {
    stderr += d;
  });
  let signalledAt = 0;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }>((done) => {
    child.once('exit', (code, signal) => done({ code, signal, ms: performance.now() - signalledAt }));
  });
  const base = await new Promise<string>((done, fail) => {
    const check = () => {
      const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(stdout);
      if (m) done(m[1]);
    };
    child.stdout.on('data', check);
    void exited.then(({ code }) => fail(new Error(`serve exited with ${code}: ${stderr}`)));
  });
  return {
    child,
    base,
    port: Number(new URL(base).port),
    exited,
    out: () => stdout,
    err: () => stderr,
    /** Sends `signal` and notes when, for `exited`'s `ms`. */
    signal(signal: NodeJS.Signals) {
      signalledAt = performance.now();
      child.kill(signal);
    },
  };
}

/** A POST /search whose body is half sent: it stays open until `finish()`. */
function halfSentSearch(
  port: number,
  body: string,
): { req: ClientRequest; status: Promise<number>; finish(): void } {
  const req = request({
    host: '127.0.0.1',
    port,
    method: 'POST',
    path: '/search',
    agent: false,
    headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
  });
  const status = new Promise<number>((resolve, reject) => {
    req.on('response', (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
  });
  status.catch(() => {}); // awaited by the test; never an unhandled rejection
  req.write(body.slice(0, 8));
  return { req, status, finish: () => req.end(body.slice(8)) };
}

/** `GET /health` on a fresh connection: the server's request counter. */
const requestsSeen = (port: number) =>
  new Promise<number>((resolve, reject) => {
    get({ host: '127.0.0.1', port, path: '/health', agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        text += d;
      });
      res.on('end', () => resolve((JSON.parse(text) as { stats: { requests: number } }).stats.requests));
    }).on('error', reject);
  });

/** Waits until the server has received `n` requests besides these polls. */
async function waitForRequests(port: number, n: number): Promise<void> {
  for (let polls = 1; (await requestsSeen(port)) - polls < n; polls++)
    await new Promise((r) => setTimeout(r, 20));
}

/** Whether a new connection to the port is refused. */
const refused = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(true));
  });

describe('contrastive serve (real process)', () => {
  let dir: string;
  let indexPath: string;
  let body: string;
  const children: ChildProcess[] = [];
  before(async () => {
    await useBackend('wasm');
    dir = await tempRuns();
    indexPath = join(dir, 'random.index');
    const index = randomIndex(ITEMS, 16);
    body = JSON.stringify({ vector: Array.from(index.embedding(4)), k: 3 });
    await index.save(indexPath);
    index.dispose();
  });
  after(async () => {
    for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  });

  it('a bad --port or --host, or a port in use, is one line naming the flag, before the index loads', async () => {
    const busy: Server = createServer();
    await new Promise<void>((done) => busy.listen(0, '127.0.0.1', () => done()));
    const busyPort = (busy.address() as { port: number }).port;
    // the index does not exist: had it been read first, that would be the error
    const missing = join(dir, 'missing.index');
    const run = (args: string[]) =>
      new Promise<{ status: number | null; stderr: string }>((done) => {
        const child = spawn(process.execPath, [BIN, 'serve', missing, '--no-images', ...args], {
          stdio: ['ignore', 'ignore', 'pipe'],
        });
        let stderr = '';
        child.stderr.setEncoding('utf8');
        child.stderr.on('data', (d: string) => {
          stderr += d;
        });
        child.on('exit', (status) => done({ status, stderr }));
      });
    try {
      const cases: [string[], RegExp][] = [
        [['--port', '70000'], /^error: contrastive serve: --port must be <= 65535, but got "70000"\.$/],
        [['--port', '-1'], /^error: contrastive serve: --port must be >= 0, but got "-1"\.$/],
        [
          ['--host', 'no-such-host.invalid'],
          /^error: contrastive serve: --host "no-such-host\.invalid": not an IP address nor a name that resolves/,
        ],
        [
          ['--host', '192.0.2.1'],
          /^error: contrastive serve: --host 192\.0\.2\.1: not an address of this machine/,
        ],
        [
          ['--port', String(busyPort)],
          new RegExp(
            `^error: contrastive serve: --port ${busyPort}: port ${busyPort} on 127\\.0\\.0\\.1 is already in use.*--port 0 for any free port\\.$`,
          ),
        ],
      ];
      const results = await Promise.all(cases.map(([args]) => run(args)));
      results.forEach((r, i) => {
        assert.equal(r.status, 1, r.stderr);
        assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
        assert.match(r.stderr.trim(), cases[i][1]);
        assert.ok(hasNoStack(r.stderr));
      });
    } finally {
      busy.close();
    }
  });

  it('contrastive search --k 1000000000 answers at once with at most the index size', () => {
    const started = performance.now();
    const r = cli(['search', indexPath, '--id', '4', '--k', '1000000000', '--json', '--backend', 'wasm']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).results.length, ITEMS - 1);
    const grouped = cli([
      'search',
      indexPath,
      '--id',
      '4',
      '--k',
      '1000000000',
      '--group-by',
      '1',
      '--group-size',
      '1000000000',
      '--json',
      '--backend',
      'wasm',
    ]);
    assert.equal(grouped.status, 0, grouped.stderr);
    assert.equal(JSON.parse(grouped.stdout).results.length, ITEMS - 1);
    // two process starts; an uncapped k allocated for 11 s
    assert.ok(performance.now() - started < 30_000);
  });

  it('SIGTERM with 50 requests in flight: all 50 answered, new connections refused, exit 0', async () => {
    const serve = await startServe(indexPath, ['--request-timeout', '30']);
    children.push(serve.child);
    const open = Array.from({ length: 50 }, () => halfSentSearch(serve.port, body));
    await waitForRequests(serve.port, 50);
    serve.signal('SIGTERM');
    while (!/not accepting new connections/.test(serve.out())) await new Promise((r) => setTimeout(r, 20));
    assert.ok(await refused(serve.port), 'a new connection while draining is refused');
    for (const o of open) o.finish();
    assert.deepEqual(await Promise.all(open.map((o) => o.status)), Array(50).fill(200));
    const { code } = await serve.exited;
    assert.equal(code, 0, serve.err());
    assert.match(serve.out(), /stopped: every open request was answered/);
    assert.equal(serve.err(), '');
  });

  it('SIGHUP is ignored; after --drain-timeout a request still open is closed and the exit is 0', async () => {
    const serve = await startServe(indexPath, ['--request-timeout', '30', '--drain-timeout', '0.5']);
    children.push(serve.child);
    serve.child.kill('SIGHUP');
    while (!/SIGHUP ignored/.test(serve.err())) await new Promise((r) => setTimeout(r, 20));
    assert.equal((await fetch(`${serve.base}/health`)).status, 200);
    const stuck = halfSentSearch(serve.port, body);
    await waitForRequests(serve.port, 2);
    serve.signal('SIGTERM');
    const { code, ms } = await serve.exited;
    assert.equal(code, 0, serve.err());
    assert.ok(ms < 5000, `${ms} ms`);
    assert.match(
      serve.out(),
      /stopped: 1 requests still open after --drain-timeout 0\.5 were closed unanswered/,
    );
    await assert.rejects(stuck.status);
  });

  it('a second signal while draining exits at once, with one line and no stack', async () => {
    const serve = await startServe(indexPath, ['--request-timeout', '30', '--drain-timeout', '60']);
    children.push(serve.child);
    const stuck = halfSentSearch(serve.port, body);
    await waitForRequests(serve.port, 1);
    serve.signal('SIGINT');
    while (!/not accepting new connections/.test(serve.out())) await new Promise((r) => setTimeout(r, 20));
    serve.signal('SIGINT');
    const { code, signal, ms } = await serve.exited;
    assert.equal(signal, null);
    assert.equal(code, 130);
    assert.ok(ms < 3000, `${ms} ms`);
    assert.equal(serve.err().trim(), 'SIGINT again: exiting now, open requests unanswered');
    await assert.rejects(stuck.status);
  });

  it('--help documents the limits and the signals', () => {
    const r = cli(['serve', '--help']);
    assert.equal(r.status, 0);
    for (const flag of ['--max-k', '--max-queue', '--request-timeout', '--drain-timeout', '--max-body-bytes'])
      assert.match(r.stdout, new RegExp(flag));
    assert.match(r.stdout, /SIGHUP is ignored/);
  });
});
