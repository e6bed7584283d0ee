/** Helpers of the serve tests: a random index, a server on a free port, raw HTTP over a socket. */
import type { AddressInfo } from 'node:net';
import { connect } from 'node:net';
import { LabelTree } from '../../src/hierarchy/labelTree.js';
import { Rng } from '../../src/random.js';
import { EmbeddingIndex } from '../../src/search/index.js';
import { createSearchServer, type SearchServer, type SearchServerOptions } from '../../src/serve/index.js';

export const CLASSES = ['Clothes/Tops', 'Clothes/Pants', 'Shoes/Sneaker', 'Shoes/Boot'];

/** `n` items of `dim` Gaussian values, ids `0..n-1`, labels cycling over {@link CLASSES}. */
export function randomIndex(n: number, dim = 16, seed = 3): EmbeddingIndex {
  const rng = new Rng(seed);
  const index = EmbeddingIndex.create({ tree: LabelTree.fromPaths(CLASSES), dim });
  const vectors = Float32Array.from({ length: n * dim }, () => rng.normal());
  index.add(
    Array.from({ length: n }, (_, i) => ({ id: i, label: CLASSES[i % CLASSES.length] })),
    vectors,
  );
  return index;
}

/** A server over `index` listening on a free port of 127.0.0.1. */
export async function startServer(
  index: EmbeddingIndex,
  options: SearchServerOptions = {},
): Promise<{ server: SearchServer; base: string; port: number; close: () => Promise<void> }> {
  const server = createSearchServer(index, options);
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', () => done()));
  const port = (server.address() as AddressInfo).port;
  return {
    server,
    base: `http://127.0.0.1:${port}`,
    port,
    close: async () => {
      await server.drain(1000);
    },
  };
}

/** `POST path` with a JSON body (or `raw` text): status, JSON answer and headers. */
export async function post(
  base: string,
  path: string,
  body: unknown,
  raw?: string,
): Promise<{ status: number; json: Record<string, unknown>; headers: Headers }> {
  const response = await fetch(`${base}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: raw ?? JSON.stringify(body),
  });
  return {
    status: response.status,
    json: (await response.json()) as Record<string, unknown>,
    headers: response.headers,
  };
}

/**
 * Writes `chunks` to a fresh socket (waiting `gapMs` between them) and resolves with what came back
 * once the server closes the connection, or after `timeoutMs` (with `timedOut`).
 */
export function rawRequest(
  port: number,
  chunks: readonly string[],
  { gapMs = 0, timeoutMs = 5000 } = {},
): Promise<{ text: string; status: number | null; ms: number; timedOut: boolean }> {
  return new Promise((resolve) => {
    const started = performance.now();
    const socket = connect(port, '127.0.0.1');
    let text = '';
    let done = false;
    const finish = (timedOut: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      const m = /^HTTP\/1\.1 (\d{3})/.exec(text);
      resolve({ text, status: m ? Number(m[1]) : null, ms: performance.now() - started, timedOut });
    };
    const timer = setTimeout(() => finish(true), timeoutMs);
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => {
      text += d;
    });
    socket.on('close', () => finish(false));
    socket.on('error', () => finish(false));
    socket.on('connect', async () => {
      for (const [i, chunk] of chunks.entries()) {
        if (i > 0 && gapMs > 0) await new Promise((r) => setTimeout(r, gapMs));
        if (done || socket.destroyed) return;
        socket.write(chunk);
      }
    });
  });
}
