import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Catalogue } from '../catalogue/catalogue.js';
import { ContrastiveError } from '../errors.js';
import type { LabelPath } from '../hierarchy/labelTree.js';
import type { EmbeddingIndex, SearchOptions, SearchResult } from '../search/embeddingIndex.js';
import type { PathCalibration, PathPrediction } from '../search/predictPath.js';
import type { RunEncoder } from '../search/runModel.js';
import { resolveLevel, resolveNode } from '../search/treeNodes.js';

/** Options of {@link createSearchServer}. */
export interface SearchServerOptions {
  /**
   * With an index (not a {@link Catalogue}): its encoder, for queries given as images (`image`:
   * base64). A server answers images only when its catalogue has its model open; else a 400.
   */
  encoder?: RunEncoder | null;
  /** From `calibrate` (default: the catalogue's): `/predict` answers with calibrated confidences and thresholds. */
  calibration?: PathCalibration | null;
  /** Largest request body accepted, in bytes (a larger one is a 413). Default 1 MiB. */
  maxBodyBytes?: number;
  /** How long a search waits for others to share its matrix product, in ms. Default 2. */
  batchWindowMs?: number;
  /** Most queries in one batch, and most vectors in one `/predict`. Default 256. */
  maxBatch?: number;
  /** Largest `k` and `groupSize` accepted (larger: a 400 naming the field). Default 1000. */
  maxK?: number;
  /** Searches and predictions accepted and not yet answered; one more is a 503 with `Retry-After`. Default 1024. */
  maxQueue?: number;
  /** The headers and body of a request must arrive within this many ms (slower: 408). Default 10,000. */
  requestTimeoutMs?: number;
  /** Largest image accepted, in pixels (width x height; larger: a 400). Default 4096 x 4096. */
  maxImagePixels?: number;
  /** Largest `exclude` list accepted. Default 10,000. */
  maxExclude?: number;
  /**
   * Time a batch may hold the event loop, in ms: large searches and predictions run in slices of
   * about this length (at least one query each), with other requests (`/health`) answered between
   * them. Default 10.
   */
  sliceMs?: number;
}

/** Counters shown by `/health`. */
export interface SearchServerStats {
  requests: number;
  /** Vector searches answered, and the batched products that answered them. */
  queries: number;
  batches: number;
  errors: number;
  /** Requests turned away with a 503 because the queue was full. */
  rejected: number;
  /** Searches and predictions accepted and not answered yet. */
  queued: number;
}

/** What {@link SearchServer.drain} did. */
export interface DrainResult {
  /** Requests still open when the timeout cut them off (0: every request was answered). */
  unanswered: number;
}

/** The server {@link createSearchServer} returns. */
export type SearchServer = Server & {
  stats: SearchServerStats;
  /** Whether {@link drain} has been called. */
  readonly draining: boolean;
  /**
   * Stops accepting connections, lets the open requests finish (their responses close their
   * connections), and after `timeoutMs` closes whatever is still open. Resolves once the server
   * is closed. Calling it again returns the same promise.
   */
  drain(timeoutMs: number): Promise<DrainResult>;
};

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

interface SearchGroup {
  options: SearchOptions;
  queue: PendingSearch[];
  timer: NodeJS.Timeout | null;
}

/** Longest string accepted in a label path, an id or a level name. */
const MAX_NAME_LENGTH = 1024;

/**
 * An HTTP JSON API over an index, on Node's own `http` module:
 * - `GET /health` — status, size, space, model and counters;
 * - `GET /items/:id` — one item (404 naming the id when unknown);
 * - `POST /search` — `{ vector | id | image, k?, within?, groupBy?, groupSize?, exclude? }`;
 * - `POST /predict` — `{ vector | vectors | id | image, minConfidence? }`: the placement in the tree.
 *
 * No request can crash, freeze or poison it: every request is validated alone before it joins a
 * batch (a bad one is a 400 with `{ error, field }` and never touches the others); every size is
 * bounded (`k`, `groupSize` by `maxK`; bodies by `maxBodyBytes`, 413; slow requests by
 * `requestTimeoutMs`, 408; pending work by `maxQueue`, 503 + `Retry-After`); large searches yield
 * between slices so `/health` answers during them; an unexpected error is a 500 for that request
 * alone. Concurrent vector searches with the same options are answered by one batched matrix
 * product. The returned server is not listening yet: call `listen(port, host)`; stop it with
 * `drain(timeoutMs)`.
 */
export function createSearchServer(
  source: Catalogue | EmbeddingIndex,
  options: SearchServerOptions = {},
): SearchServer {
  const catalogue =
    source instanceof Catalogue
      ? source
      : Catalogue.fromIndex(source, { encoder: options.encoder, calibration: options.calibration });
  const index = catalogue.index;
  const calibration = options.calibration ?? catalogue.calibration ?? undefined;
  const maxBodyBytes = options.maxBodyBytes ?? 1 << 20;
  const batchWindowMs = options.batchWindowMs ?? 2;
  const maxBatch = Math.max(1, options.maxBatch ?? 256);
  const maxK = Math.max(1, options.maxK ?? 1000);
  const maxQueue = Math.max(1, options.maxQueue ?? 1024);
  const requestTimeoutMs = Math.max(1, options.requestTimeoutMs ?? 10_000);
  const maxImagePixels = options.maxImagePixels ?? 4096 * 4096;
  const maxExclude = options.maxExclude ?? 10_000;
  const sliceMs = Math.max(0, options.sliceMs ?? 10);
  const stats: SearchServerStats = {
    requests: 0,
    queries: 0,
    batches: 0,
    errors: 0,
    rejected: 0,
    queued: 0,
  };
  const pending = new Map<string, SearchGroup>();
  // how long callbacks wait for the event loop: what slicing the work keeps small
  const loopDelay = monitorEventLoopDelay({ resolution: 10 });
  loopDelay.enable();

  // --- one worker: batches and predictions run one at a time, each in slices with yields between
  const jobs: (() => Promise<void>)[] = [];
  let working = false;
  const work = async () => {
    working = true;
    try {
      while (jobs.length > 0) {
        await yieldToEvents();
        await jobs.shift()!();
      }
    } finally {
      working = false;
    }
  };
  /** Runs `job` after the jobs queued before it; never runs two at once. */
  const serial = <T>(job: () => Promise<T>) =>
    new Promise<T>((resolve, reject) => {
      jobs.push(() => job().then(resolve, reject));
      if (!working) void work();
    });
  const searchSlices = new Slicer(sliceMs, maxBatch);
  const predictSlices = new Slicer(sliceMs, maxBatch);

  const runGroup = async (group: SearchGroup) => {
    stats.batches++;
    stats.queries += group.queue.length;
    for (let first = 0; first < group.queue.length; ) {
      if (first > 0) await yieldToEvents();
      const slice = group.queue.slice(first, first + searchSlices.size());
      first += slice.length;
      let results: SearchResult[] | null = null;
      try {
        const started = performance.now();
        results = catalogue.searchBatch(
          slice.map((p) => p.vector),
          group.options,
        );
        searchSlices.record(slice.length, performance.now() - started);
      } catch {
        // every query was checked alone, so this should not happen; if it does, each query is
        // answered on its own and only the one that fails gets the error
      }
      slice.forEach((p, i) => {
        if (results) {
          p.resolve(results[i]);
          return;
        }
        try {
          p.resolve(catalogue.searchBatch([p.vector], group.options)[0]);
        } catch (error) {
          p.reject(error);
        }
      });
    }
  };

  const flush = (key: string) => {
    const group = pending.get(key);
    if (!group) return;
    pending.delete(key);
    if (group.timer) clearTimeout(group.timer);
    serial(() => runGroup(group)).catch((error: unknown) => {
      for (const p of group.queue) p.reject(error); // those already answered ignore it
    });
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

  /** Placement of many vectors, in slices with yields between. */
  const slicedPredict = (vectors: Float32Array[], selfIds: string[] | undefined, minConfidence?: number) =>
    serial(async () => {
      const out: PathPrediction[] = [];
      for (let first = 0; first < vectors.length; ) {
        if (first > 0) await yieldToEvents();
        const per = predictSlices.size();
        const started = performance.now();
        out.push(
          ...catalogue.predict(vectors.slice(first, first + per), {
            calibration,
            minConfidence,
            selfIds: selfIds?.slice(first, first + per),
          }),
        );
        predictSlices.record(Math.min(per, vectors.length - first), performance.now() - started);
        first += per;
      }
      return out;
    });

  /** Counts a search or prediction as queued while `task` runs; a full queue is a 503. */
  const admitted = async <T>(task: () => Promise<T>): Promise<T> => {
    if (stats.queued >= maxQueue) {
      stats.rejected++;
      throw new RequestError(
        503,
        'queue',
        `the server is busy (${stats.queued} searches waiting, at most ${maxQueue}); retry in a moment.`,
      );
    }
    stats.queued++;
    try {
      return await task();
    } finally {
      stats.queued--;
    }
  };

  const queryVector = async (body: Record<string, unknown>): Promise<Float32Array | { id: string }> => {
    const given = ['vector', 'id', 'image'].filter((f) => body[f] !== undefined);
    if (given.length !== 1)
      throw new RequestError(
        400,
        given[1] ?? 'vector',
        `give exactly one of vector, id and image, but got ${given.length ? given.join(' and ') : 'none'}.`,
      );
    if (body.id !== undefined) {
      const id = checkId(body.id, 'id');
      if (!index.has(id)) throw new RequestError(400, 'id', `id ${preview(id)} is not an item of the index.`);
      return { id };
    }
    if (body.vector !== undefined) return checkVector(body.vector, index.dim, 'vector');
    if (typeof body.image !== 'string')
      throw new RequestError(400, 'image', 'image must be a base64 string (PNG, JPEG, ...).');
    if (!catalogue.hasModel)
      throw new RequestError(
        400,
        'image',
        'this server has no model loaded, so it cannot embed images; send a vector or an id.',
      );
    const bytes = Buffer.from(body.image, 'base64');
    await checkImageSize(bytes, maxImagePixels);
    let vector: Float32Array;
    try {
      vector = await catalogue.query({ image: bytes, name: 'the image field' });
    } catch (error) {
      if (!(error instanceof ContrastiveError)) throw error;
      throw new RequestError(400, 'image', error.message);
    }
    return checkVector(Array.from(vector), index.dim, 'image');
  };
  const sizeOf = (body: Record<string, unknown>, field: 'k' | 'groupSize'): number | undefined => {
    const value = body[field];
    if (value === undefined) return undefined;
    if (!(typeof value === 'number' && Number.isInteger(value) && value >= 1))
      throw new RequestError(400, field, `${field} must be an integer >= 1, but got ${preview(value)}.`);
    if (value > maxK)
      throw new RequestError(
        400,
        field,
        `${field} must be at most ${maxK} (this server's --max-k), but got ${preview(value)}.`,
      );
    return value;
  };

  const searchOptionsOf = (body: Record<string, unknown>): SearchOptions => {
    const out: SearchOptions = {};
    const k = sizeOf(body, 'k');
    if (k !== undefined) out.k = k;
    const groupSize = sizeOf(body, 'groupSize');
    if (groupSize !== undefined) out.groupSize = groupSize;
    if (body.within !== undefined) {
      const within = body.within;
      if (
        !(typeof within === 'string' && within.length <= MAX_NAME_LENGTH) &&
        !(
          Array.isArray(within) &&
          within.length <= 64 &&
          within.every((s) => typeof s === 'string' && s.length <= MAX_NAME_LENGTH)
        )
      )
        throw new RequestError(
          400,
          'within',
          'within must be a label path: a string like "Clothes/Tops" or an array of names.',
        );
      try {
        resolveNode(index.tree, within as LabelPath, 'within');
      } catch (error) {
        throw new RequestError(400, 'within', (error as Error).message);
      }
      out.within = within as LabelPath;
    }
    if (body.groupBy !== undefined) {
      const groupBy = body.groupBy;
      if (
        !(typeof groupBy === 'number' || (typeof groupBy === 'string' && groupBy.length <= MAX_NAME_LENGTH))
      )
        throw new RequestError(400, 'groupBy', 'groupBy must be a level: its number or its name.');
      try {
        resolveLevel(index.tree, groupBy, 'groupBy');
      } catch (error) {
        throw new RequestError(400, 'groupBy', (error as Error).message);
      }
      out.groupBy = groupBy;
    }
    if (body.exclude !== undefined) {
      if (!Array.isArray(body.exclude))
        throw new RequestError(400, 'exclude', 'exclude must be an array of ids.');
      if (body.exclude.length > maxExclude)
        throw new RequestError(
          400,
          'exclude',
          `exclude must hold at most ${maxExclude} ids, but holds ${body.exclude.length}.`,
        );
      out.exclude = body.exclude.map((x, i) => checkId(x, `exclude[${i}]`));
    }
    return out;
  };

  const search = async (body: Record<string, unknown>): Promise<SearchResult> => {
    const searchOptions = searchOptionsOf(body);
    const query = await queryVector(body);
    if (query instanceof Float32Array) return admitted(() => batchedSearch(query, searchOptions));
    // an id query is the item's own vector, the item left out of its results
    const vector = Float32Array.from(index.embedding(query.id));
    const withoutSelf = { ...searchOptions, exclude: [...(searchOptions.exclude ?? []), query.id] };
    return admitted(() => batchedSearch(vector, withoutSelf));
  };

  const predict = async (body: Record<string, unknown>): Promise<{ predictions: PathPrediction[] }> => {
    let vectors: Float32Array[];
    let selfIds: string[] | undefined;
    if (body.vectors !== undefined) {
      if (!Array.isArray(body.vectors) || body.vectors.length === 0)
        throw new RequestError(400, 'vectors', 'vectors must be a non-empty array of vectors.');
      if (body.vectors.length > maxBatch)
        throw new RequestError(
          400,
          'vectors',
          `vectors must hold at most ${maxBatch} vectors, but holds ${body.vectors.length}.`,
        );
      vectors = body.vectors.map((v, i) => checkVector(v, index.dim, `vectors[${i}]`));
    } else {
      const query = await queryVector(body);
      vectors = [query instanceof Float32Array ? query : Float32Array.from(index.embedding(query.id))];
      if (!(query instanceof Float32Array)) selfIds = [query.id];
    }
    let minConfidence: number | undefined;
    if (body.minConfidence !== undefined) {
      if (typeof body.minConfidence !== 'number' || !Number.isFinite(body.minConfidence))
        throw new RequestError(
          400,
          'minConfidence',
          `minConfidence must be a number, but got ${preview(body.minConfidence)}.`,
        );
      minConfidence = body.minConfidence;
    }
    const predictions = await admitted(() => slicedPredict(vectors, selfIds, minConfidence));
    return { predictions };
  };

  const routes = async (req: IncomingMessage, target: RequestTarget): Promise<unknown> => {
    const { pathname } = target;
    if (req.method === 'GET' && pathname === '/health') {
      return {
        status: draining ? 'draining' : 'ok',
        items: index.size,
        dim: index.dim,
        space: index.space,
        approximate: index.approximate,
        model: index.model,
        imageQueries: catalogue.hasModel,
        calibrated: Boolean(calibration),
        limits: { maxK, maxBatch, maxQueue, maxBodyBytes, requestTimeoutMs },
        stats,
        eventLoopDelayMs: {
          p50: loopDelay.percentile(50) / 1e6,
          p99: loopDelay.percentile(99) / 1e6,
          max: loopDelay.max / 1e6,
        },
      };
    }
    const item = /^\/items\/(.+)$/.exec(pathname);
    if (req.method === 'GET' && item) {
      let id: string;
      try {
        id = decodeURIComponent(item[1]);
      } catch {
        throw new RequestError(400, 'id', `the id in ${preview(pathname)} is not valid percent-encoding.`);
      }
      if (!index.has(id)) throw new RequestError(404, 'id', `id ${preview(id)} is not an item of the index.`);
      return {
        ...index.item(id),
        embedding: target.params.get('embedding') === '1' ? Array.from(index.embedding(id)) : undefined,
      };
    }
    if (pathname === '/search' || pathname === '/predict') {
      if (req.method !== 'POST')
        throw new RequestError(405, 'method', `${pathname} takes POST with a JSON body.`);
      const body = await readJsonBody(req, maxBodyBytes);
      return pathname === '/search' ? search(body) : predict(body);
    }
    throw new RequestError(
      404,
      'path',
      `no route ${req.method} ${preview(pathname)}; try GET /health, GET /items/:id, POST /search, POST /predict.`,
    );
  };

  // --- connections: requests open now, and draining
  let draining = false;
  let openRequests = 0;
  let drained: Promise<DrainResult> | null = null;
  let onIdle: (() => void) | null = null;

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    try {
      const target = parseTarget(req.url);
      send(res, 200, await routes(req, target));
    } catch (error) {
      stats.errors++;
      if (error instanceof RequestError && error.status === 413) {
        // the rest of an oversize body is drained, not read into memory, and the connection closed
        res.setHeader('connection', 'close');
        req.resume();
      }
      if (error instanceof RequestError && error.status === 503) res.setHeader('retry-after', '1');
      if (error instanceof RequestError)
        send(res, error.status, { error: error.message, field: error.field });
      else if (error instanceof ContrastiveError)
        send(res, 400, { error: error.message, field: fieldOf(error.message) });
      else send(res, 500, { error: `internal error: ${(error as Error)?.message ?? String(error)}` });
    }
  };
  const send = (res: ServerResponse, status: number, payload: unknown) => {
    if (res.headersSent || res.destroyed) return;
    // while draining every answer closes its connection, so keep-alive clients move on
    if (draining) res.setHeader('connection', 'close');
    const body = JSON.stringify(payload);
    res.writeHead(status, {
      'content-type': 'application/json; charset=utf-8',
      'content-length': Buffer.byteLength(body),
    });
    res.end(body);
  };

  const server = createServer(
    {
      requestTimeout: requestTimeoutMs,
      headersTimeout: requestTimeoutMs,
      // how often the two timeouts above are checked (Node's default is every 30 s)
      connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(requestTimeoutMs / 4))),
    },
    (req: IncomingMessage, res: ServerResponse) => {
      stats.requests++;
      openRequests++;
      res.once('close', () => {
        openRequests--;
        if (draining) {
          server.closeIdleConnections();
          if (openRequests === 0) onIdle?.();
        }
      });
      // an error on either stream ends this request only
      req.on('error', () => {});
      res.on('error', () => {});
      handle(req, res).catch(() => {
        if (!res.destroyed) res.destroy();
      });
    },
  );

  // a malformed request line, headers over the limit or a timeout: an answer, then the connection closes
  server.on('clientError', (error: NodeJS.ErrnoException, socket: Socket) => {
    if (error.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    const [status, reason, message] =
      error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? [408, 'Request Timeout', `the request did not arrive within ${requestTimeoutMs} ms.`]
        : error.code === 'HPE_HEADER_OVERFLOW'
          ? [431, 'Request Header Fields Too Large', 'the request headers are too large.']
          : [400, 'Bad Request', `the request is not valid HTTP (${error.code ?? error.message}).`];
    const body = JSON.stringify({ error: message, field: 'request' });
    socket.end(
      `HTTP/1.1 ${status} ${reason}\r\nconnection: close\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
  });

  const drain = (timeoutMs: number): Promise<DrainResult> => {
    drained ??= new Promise<DrainResult>((resolve) => {
      draining = true;
      let unanswered = 0;
      const closed = new Promise<void>((done) => server.close(() => done()));
      server.closeIdleConnections();
      const idle = new Promise<void>((done) => {
        onIdle = done;
        if (openRequests === 0) done();
      });
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<void>((done) => {
        timer = setTimeout(() => {
          unanswered = openRequests;
          done();
        }, timeoutMs);
      });
      void Promise.race([idle, timeout]).then(async () => {
        clearTimeout(timer);
        server.closeAllConnections();
        await closed;
        resolve({ unanswered });
      });
    });
    return drained;
  };

  server.once('close', () => loopDelay.disable());
  Object.defineProperty(server, 'draining', { get: () => draining, enumerable: true });
  return Object.assign(server, { stats, drain }) as SearchServer;
}

/**
 * How many queries fit in a slice of `targetMs`: measured, not guessed (a query's cost depends on
 * the index size, k, the machine and its load). One query until the first measurement.
 */
class Slicer {
  private msPerQuery = Number.NaN;
  constructor(
    private readonly targetMs: number,
    private readonly most: number,
  ) {}

  size(): number {
    if (!(this.msPerQuery > 0)) return 1;
    return Math.max(1, Math.min(this.most, Math.floor(this.targetMs / this.msPerQuery)));
  }

  record(queries: number, ms: number): void {
    const perQuery = ms / Math.max(1, queries);
    // a moving average, quick to follow a slower machine
    this.msPerQuery = Number.isNaN(this.msPerQuery) ? perQuery : 0.5 * this.msPerQuery + 0.5 * perQuery;
  }
}

/** The path and query of a request's target; anything but an origin-form or http(s) URL is a 400. */
interface RequestTarget {
  pathname: string;
  params: URLSearchParams;
}

function parseTarget(raw: string | undefined): RequestTarget {
  const target = raw ?? '/';
  if (target.startsWith('/')) {
    // origin-form, parsed by hand: `new URL('//x', base)` reads `x` as a host, or throws
    const end = target.search(/[?#]/);
    const pathname = end < 0 ? target : target.slice(0, end);
    const query = end >= 0 && target[end] === '?' ? target.slice(end + 1).split('#')[0] : '';
    return { pathname, params: new URLSearchParams(query) };
  }
  // absolute-form (`GET http://host/path`), as a proxy sends it
  let url: URL | null = null;
  try {
    url = new URL(target);
  } catch {
    // reported below
  }
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:'))
    throw new RequestError(400, 'url', `the request target ${preview(target)} is not a path or an http URL.`);
  return { pathname: url.pathname, params: url.searchParams };
}

/** Lets the event loop run (timers, sockets) before the next slice of work. */
const yieldToEvents = () => new Promise<void>((resolve) => setImmediate(resolve));

/** A short JSON preview of a value for an error message (a hostile value can be a megabyte). */
function preview(value: unknown): string {
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  return truncate(text);
}

function truncate(text: string, length = 80): string {
  return text.length > length ? `${text.slice(0, length - 3)}...` : text;
}

function checkId(value: unknown, field: string): string {
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  if (typeof value === 'string' && value.length <= MAX_NAME_LENGTH) return value;
  throw new RequestError(
    400,
    field,
    `${field} must be a string (at most ${MAX_NAME_LENGTH} characters) or a number, but got ${preview(value)}.`,
  );
}

/**
 * A query vector as the index will see it: `dim` numbers, each finite once rounded to float32, not
 * all zero after that rounding (so normalising it cannot fail). Checked per request, before any batch.
 */
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
  for (let i = 0; i < dim; i++) {
    const v = value[i];
    if (typeof v !== 'number' || !Number.isFinite(v))
      throw new RequestError(400, field, `${field}[${i}] must be a finite number, but got ${preview(v)}.`);
    out[i] = v;
    if (!Number.isFinite(out[i]))
      throw new RequestError(
        400,
        field,
        `${field}[${i}] is ${v}, which is infinite as a float32 (at most about ±3.4e38).`,
      );
    norm += out[i] * out[i];
  }
  if (!(norm > 0 && Number.isFinite(norm)))
    throw new RequestError(
      400,
      field,
      `${field} must not be all zeros (as float32: values below about 1.4e-45 round to zero).`,
    );
  return out;
}

/** An image larger than `maxPixels` is refused from its header, before it is decoded. */
async function checkImageSize(bytes: Buffer, maxPixels: number): Promise<void> {
  const { default: sharp } = await import('sharp');
  let width = 0;
  let height = 0;
  try {
    ({ width = 0, height = 0 } = await sharp(bytes).metadata());
  } catch {
    return; // not an image: decodeQueryImage reports it
  }
  if (width * height > maxPixels)
    throw new RequestError(
      400,
      'image',
      `the image must have at most ${maxPixels} pixels, but is ${width} x ${height}.`,
    );
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
      `the body must be JSON, but parsing failed: ${truncate((error as Error).message)}.`,
    );
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    throw new RequestError(400, 'body', 'the body must be a JSON object.');
  return value as Record<string, unknown>;
}

/** The field a library error message blames (`…: within must be …` → `within`). */
function fieldOf(message: string): string {
  const match = /: ([A-Za-z][\w.[\]]*) must /.exec(message);
  return match ? match[1] : 'body';
}
