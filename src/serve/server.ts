import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { ContrastiveError } from '../errors.js';
import type { LabelPath } from '../hierarchy/labelTree.js';
import type { EmbeddingIndex, SearchOptions, SearchResult } from '../search/embeddingIndex.js';
import { embedQueryImage } from '../search/embedInputs.js';
import { type PathCalibration, predictPath } from '../search/predictPath.js';
import type { RunEncoder } from '../search/runModel.js';
import { resolveLevel, resolveNode } from '../search/treeNodes.js';

/** Options of {@link createSearchServer}. */
export interface SearchServerOptions {
  /** The index's encoder, for queries given as images (`image`: base64). Without it, images are a 400. */
  encoder?: RunEncoder | null;
  /** From `calibrate`: `/predict` answers with calibrated confidences and thresholds. */
  calibration?: PathCalibration | null;
  /** Largest request body accepted, in bytes (a larger one is a 413). Default 1 MiB. */
  maxBodyBytes?: number;
  /** How long a search waits for others to share its matrix product, in ms. Default 2. */
  batchWindowMs?: number;
  /** Most queries in one batch. Default 256. */
  maxBatch?: number;
}

/** Counters shown by `/health`. */
export interface SearchServerStats {
  requests: number;
  /** Vector searches answered, and the batched products that answered them. */
  queries: number;
  batches: number;
  errors: number;
}

/** A request that cannot be answered: its status and the field to blame. */
class RequestError extends Error {
  constructor(
    readonly status: number,
    readonly field: string,
    message: string,
  ) {
    super(message);
  }
}

interface PendingSearch {
  vector: Float32Array;
  resolve: (result: SearchResult) => void;
  reject: (error: unknown) => void;
}

/**
 * An HTTP JSON API over an index, on Node's own `http` module:
 * - `GET /health` — status, size, space, model and counters;
 * - `GET /items/:id` — one item (404 naming the id when unknown);
 * - `POST /search` — `{ vector | id | image, k?, within?, groupBy?, groupSize?, exclude? }`;
 * - `POST /predict` — `{ vector | vectors | id | image, minConfidence? }`: the placement in the tree.
 * Bodies above `maxBodyBytes` get 413; bad JSON or a bad field gets 400 with `{ error, field }`.
 * Concurrent vector searches with the same options are answered by one batched matrix product.
 * The returned server is not listening yet: call `listen(port, host)`.
 */
export function createSearchServer(
  index: EmbeddingIndex,
  options: SearchServerOptions = {},
): Server & { stats: SearchServerStats } {
  const maxBodyBytes = options.maxBodyBytes ?? 1 << 20;
  const batchWindowMs = options.batchWindowMs ?? 2;
  const maxBatch = options.maxBatch ?? 256;
  const stats: SearchServerStats = { requests: 0, queries: 0, batches: 0, errors: 0 };
  const pending = new Map<
    string,
    { options: SearchOptions; queue: PendingSearch[]; timer: NodeJS.Timeout | null }
  >();

  const flush = (key: string) => {
    const group = pending.get(key);
    if (!group) return;
    pending.delete(key);
    if (group.timer) clearTimeout(group.timer);
    stats.batches++;
    stats.queries += group.queue.length;
    try {
      const results = index.searchBatch(
        group.queue.map((p) => p.vector),
        group.options,
      );
      group.queue.forEach((p, i) => {
        p.resolve(results[i]);
      });
    } catch (error) {
      for (const p of group.queue) p.reject(error);
    }
  };

  /** Queues a vector search; searches with equal options made within the window share one product. */
  const batchedSearch = (vector: Float32Array, searchOptions: SearchOptions) =>
    new Promise<SearchResult>((resolve, reject) => {
      const key = JSON.stringify(searchOptions);
      let group = pending.get(key);
      if (!group) {
        group = { options: searchOptions, queue: [], timer: null };
        pending.set(key, group);
        group.timer = setTimeout(() => flush(key), batchWindowMs);
      }
      group.queue.push({ vector, resolve, reject });
      if (group.queue.length >= maxBatch) flush(key);
    });

  const queryVector = async (body: Record<string, unknown>): Promise<Float32Array | { id: string }> => {
    const given = ['vector', 'id', 'image'].filter((f) => body[f] !== undefined);
    if (given.length !== 1)
      throw new RequestError(
        400,
        given[1] ?? 'vector',
        `give exactly one of vector, id and image, but got ${given.length ? given.join(' and ') : 'none'}.`,
      );
    if (body.id !== undefined) {
      if (typeof body.id !== 'string' && typeof body.id !== 'number')
        throw new RequestError(400, 'id', 'id must be a string or a number.');
      if (!index.has(body.id))
        throw new RequestError(
          400,
          'id',
          `id ${JSON.stringify(String(body.id))} is not an item of the index.`,
        );
      return { id: String(body.id) };
    }
    if (body.vector !== undefined) return checkVector(body.vector, index.dim, 'vector');
    if (typeof body.image !== 'string')
      throw new RequestError(400, 'image', 'image must be a base64 string (PNG, JPEG, ...).');
    const encoder = options.encoder;
    if (!encoder)
      throw new RequestError(
        400,
        'image',
        'this server has no model loaded, so it cannot embed images; send a vector or an id.',
      );
    let vector: Float32Array;
    try {
      vector = await embedQueryImage(encoder, Buffer.from(body.image, 'base64'), 'the image field');
    } catch (error) {
      if (!(error instanceof ContrastiveError)) throw error;
      throw new RequestError(400, 'image', error.message);
    }
    return vector;
  };

  const searchOptionsOf = (body: Record<string, unknown>): SearchOptions => {
    const out: SearchOptions = {};
    if (body.k !== undefined) {
      if (!(Number.isInteger(body.k) && (body.k as number) >= 1))
        throw new RequestError(400, 'k', `k must be an integer >= 1, but got ${JSON.stringify(body.k)}.`);
      out.k = body.k as number;
    }
    if (body.groupSize !== undefined) {
      if (!(Number.isInteger(body.groupSize) && (body.groupSize as number) >= 1))
        throw new RequestError(
          400,
          'groupSize',
          `groupSize must be an integer >= 1, but got ${JSON.stringify(body.groupSize)}.`,
        );
      out.groupSize = body.groupSize as number;
    }
    if (body.within !== undefined) {
      if (
        typeof body.within !== 'string' &&
        !(Array.isArray(body.within) && body.within.every((s) => typeof s === 'string'))
      )
        throw new RequestError(
          400,
          'within',
          'within must be a label path: a string like "Clothes/Tops" or an array of names.',
        );
      try {
        resolveNode(index.tree, body.within as LabelPath, 'within');
      } catch (error) {
        throw new RequestError(400, 'within', (error as Error).message);
      }
      out.within = body.within as LabelPath;
    }
    if (body.groupBy !== undefined) {
      try {
        resolveLevel(index.tree, body.groupBy as number | string, 'groupBy');
      } catch (error) {
        throw new RequestError(400, 'groupBy', (error as Error).message);
      }
      out.groupBy = body.groupBy as number | string;
    }
    if (body.exclude !== undefined) {
      if (
        !Array.isArray(body.exclude) ||
        !body.exclude.every((x) => typeof x === 'string' || typeof x === 'number')
      )
        throw new RequestError(400, 'exclude', 'exclude must be an array of ids.');
      out.exclude = body.exclude as (string | number)[];
    }
    return out;
  };

  const routes = async (req: IncomingMessage, url: URL): Promise<unknown> => {
    if (req.method === 'GET' && url.pathname === '/health') {
      return {
        status: 'ok',
        items: index.size,
        dim: index.dim,
        space: index.space,
        approximate: index.approximate,
        model: index.model,
        imageQueries: Boolean(options.encoder),
        calibrated: Boolean(options.calibration),
        stats,
      };
    }
    const item = /^\/items\/(.+)$/.exec(url.pathname);
    if (req.method === 'GET' && item) {
      const id = decodeURIComponent(item[1]);
      if (!index.has(id))
        throw new RequestError(404, 'id', `id ${JSON.stringify(id)} is not an item of the index.`);
      return {
        ...index.item(id),
        embedding: url.searchParams.get('embedding') === '1' ? Array.from(index.embedding(id)) : undefined,
      };
    }
    if (url.pathname === '/search' || url.pathname === '/predict') {
      if (req.method !== 'POST')
        throw new RequestError(405, 'method', `${url.pathname} takes POST with a JSON body.`);
      const body = await readJsonBody(req, maxBodyBytes);
      if (url.pathname === '/search') {
        const searchOptions = searchOptionsOf(body);
        const query = await queryVector(body);
        const result =
          query instanceof Float32Array
            ? await batchedSearch(query, searchOptions)
            : index.search(query, searchOptions);
        return result;
      }
      let vectors: Float32Array[];
      if (body.vectors !== undefined) {
        if (!Array.isArray(body.vectors) || body.vectors.length === 0)
          throw new RequestError(400, 'vectors', 'vectors must be a non-empty array of vectors.');
        vectors = body.vectors.map((v, i) => checkVector(v, index.dim, `vectors[${i}]`));
      } else {
        const query = await queryVector(body);
        vectors = [query instanceof Float32Array ? query : index.embedding(query.id)];
      }
      let minConfidence: number | undefined;
      if (body.minConfidence !== undefined) {
        if (typeof body.minConfidence !== 'number' || !Number.isFinite(body.minConfidence))
          throw new RequestError(
            400,
            'minConfidence',
            `minConfidence must be a number, but got ${JSON.stringify(body.minConfidence)}.`,
          );
        minConfidence = body.minConfidence;
      }
      const selfIds =
        typeof body.id === 'string' || typeof body.id === 'number' ? [String(body.id)] : undefined;
      const predictions = predictPath(index, vectors, {
        calibration: options.calibration ?? undefined,
        minConfidence,
        selfIds,
      });
      return { predictions };
    }
    throw new RequestError(
      404,
      'path',
      `no route ${req.method} ${url.pathname}; try GET /health, GET /items/:id, POST /search, POST /predict.`,
    );
  };

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    stats.requests++;
    const url = new URL(req.url ?? '/', 'http://localhost');
    routes(req, url)
      .then((payload) => send(res, 200, payload))
      .catch((error: unknown) => {
        stats.errors++;
        if (error instanceof RequestError && error.status === 413) {
          // the rest of an oversize body is drained, not read into memory, and the connection closed
          res.setHeader('connection', 'close');
          req.resume();
        }
        if (error instanceof RequestError)
          send(res, error.status, { error: error.message, field: error.field });
        else if (error instanceof ContrastiveError)
          send(res, 400, { error: error.message, field: fieldOf(error.message) });
        else send(res, 500, { error: `internal error: ${(error as Error).message ?? String(error)}` });
      });
  });
  return Object.assign(server, { stats });
}

function checkVector(value: unknown, dim: number, field: string): Float32Array {
  if (!Array.isArray(value))
    throw new RequestError(400, field, `${field} must be an array of ${dim} numbers.`);
  if (value.length !== dim)
    throw new RequestError(
      400,
      field,
      `${field} must have ${dim} values (the index's dimension), but got ${value.length}.`,
    );
  const out = new Float32Array(dim);
  let norm = 0;
  value.forEach((v, i) => {
    if (typeof v !== 'number' || !Number.isFinite(v))
      throw new RequestError(
        400,
        field,
        `${field}[${i}] must be a finite number, but got ${JSON.stringify(v)}.`,
      );
    out[i] = v;
    norm += v * v;
  });
  if (norm === 0) throw new RequestError(400, field, `${field} must not be all zeros.`);
  return out;
}

async function readJsonBody(req: IncomingMessage, maxBytes: number): Promise<Record<string, unknown>> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > maxBytes)
    throw new RequestError(413, 'body', `the body must be at most ${maxBytes} bytes, but is ${declared}.`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > maxBytes) throw new RequestError(413, 'body', `the body must be at most ${maxBytes} bytes.`);
    chunks.push(chunk as Buffer);
  }
  let value: unknown;
  try {
    value = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch (error) {
    throw new RequestError(
      400,
      'body',
      `the body must be JSON, but parsing failed: ${(error as Error).message}.`,
    );
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    throw new RequestError(400, 'body', 'the body must be a JSON object.');
  return value as Record<string, unknown>;
}

function send(res: ServerResponse, status: number, payload: unknown): void {
  const body = JSON.stringify(payload);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
  });
  res.end(body);
}

/** The field a library error message blames (`…: within must be …` → `within`). */
function fieldOf(message: string): string {
  const match = /: ([A-Za-z][\w.[\]]*) must /.exec(message);
  return match ? match[1] : 'body';
}
