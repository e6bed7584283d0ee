import * as tf from '@tensorflow/tfjs-core';
import { loadFashionMnist } from '../data/fashionMnist.js';
import { ContrastiveError } from '../errors.js';
import { faultPoint } from '../io/faults.js';
import type { IndexItemInput } from '../search/embeddingIndex.js';
import { embedInputs, type InputSource } from '../search/embedInputs.js';
import type { RunEncoder } from '../search/runModel.js';
import type { PostgresStore } from './postgresStore.js';
import { redactUrl } from './sqlClient.js';

/**
 * Embedding a catalogue on many machines: {@link enqueueCatalogue} splits a source into jobs of
 * `jobSize` rows on a BullMQ queue in Redis, any number of {@link runWorker}s (on any machine that
 * reaches Redis and the store) embed them with the run's model and write the items into the
 * store with `INSERT … ON CONFLICT DO NOTHING`, and {@link waitForCatalogue} follows the jobs,
 * checks the final count and finishes the store. A worker killed mid-job leaves part of its items
 * written; BullMQ hands the stalled job to another worker, which writes the rest (the ones already
 * there are skipped): every item lands exactly once.
 */

/** The default queue name. */
export const DEFAULT_QUEUE_NAME = 'contrastive-index';

/** One job: rows `[start, end)` of a source, embedded by the model with `checksum`. */
export interface IndexJobData {
  source: InputSource;
  start: number;
  end: number;
  space: 'backbone' | 'head';
  /** The model the jobs were made for: a worker with another one refuses them. */
  checksum: string;
  /** The run folder on the machine that queued the jobs (for messages). */
  run: string;
}

/** BullMQ connection options from a `redis://[user:password@]host:port[/db]` URL. */
export function redisConnection(url: string, where: string) {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    parsed = new URL('invalid://');
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:')
    throw new ContrastiveError(
      `${where}: --queue must be a Redis URL like redis://127.0.0.1:6379, but got ${JSON.stringify(redactUrl(url))}.`,
    );
  const db = parsed.pathname.length > 1 ? Number(parsed.pathname.slice(1)) : 0;
  return {
    host: parsed.hostname || '127.0.0.1',
    port: parsed.port ? Number(parsed.port) : 6379,
    username: parsed.username ? decodeURIComponent(parsed.username) : undefined,
    password: parsed.password ? decodeURIComponent(parsed.password) : undefined,
    db: Number.isInteger(db) ? db : 0,
    tls: parsed.protocol === 'rediss:' ? {} : undefined,
    maxRetriesPerRequest: null,
    // give up reconnecting after ~10 s: the caller reports a Redis that went away in one line
    retryStrategy: (times: number) => (times > 20 ? null : 500),
  };
}

function queueGone(url: string, error: unknown, where: string): ContrastiveError {
  const e = error as { code?: string; message?: string };
  return new ContrastiveError(
    `${where}: the queue ${redactUrl(url)} does not answer (${e?.code ?? String(e?.message ?? error).split('\n')[0]}); start Redis or fix --queue (jobs not finished stay queued and are retried).`,
  );
}

/** Opens a BullMQ queue and checks Redis answers (a one-line error when it does not). */
async function openQueue(url: string, name: string, where: string) {
  const { Queue } = await import('bullmq');
  const queue = new Queue<IndexJobData>(name, { connection: redisConnection(url, where) });
  // connection errors arrive as events: keep the last one to name the cause (ECONNREFUSED, …)
  let lastError: unknown = null;
  queue.on('error', (error) => {
    lastError = error;
  });
  try {
    const client = (await queue.client) as unknown as { ping(): Promise<string> };
    await client.ping();
  } catch (error) {
    await queue.close().catch(() => {});
    throw queueGone(url, lastError ?? error, where);
  }
  return queue;
}

/** How many items a source holds, without embedding it (the sources a queue can split). */
export async function countSourceItems(source: InputSource, where: string): Promise<number> {
  if (source.kind === 'fashion-mnist')
    return (
      await loadFashionMnist({
        split: source.split,
        dataDir: source.dataDir,
        limit: 'limit' in source ? source.limit : undefined,
      })
    ).shape[0];
  if (source.kind === 'images') return source.files.length;
  throw new ContrastiveError(
    `${where}: --queue splits Fashion-MNIST and lists of image files into jobs; a ${source.kind} is embedded in one process (drop --queue).`,
  );
}

/**
 * Embeds rows `[start, end)` of a source: the same ids, labels and sources as `embedInputs` gives
 * those rows of the whole source.
 */
export async function embedSourceRange(
  encoder: RunEncoder,
  source: InputSource,
  start: number,
  end: number,
): Promise<{ items: IndexItemInput[]; embeddings: Float32Array; dim: number }> {
  if (source.kind === 'images') {
    const out = await embedInputs(encoder, { kind: 'images', files: source.files.slice(start, end) });
    return { items: out.items, embeddings: out.embeddings, dim: out.dim };
  }
  if (source.kind !== 'fashion-mnist') await countSourceItems(source, 'embedSourceRange');
  const fm = source as Extract<InputSource, { kind: 'fashion-mnist' }>;
  const split = await loadFashionMnist({ split: fm.split, dataDir: fm.dataDir, limit: end });
  const shape = encoder.resizesImages ? [28, 28, 1] : encoder.inputShape;
  const rows = end - start;
  const batch = tf.tensor(split.images.subarray(start * 784, end * 784), [rows, ...shape]);
  const out = await encoder.embedAsync(batch).finally(() => batch.dispose());
  const embeddings = Float32Array.from((await out.data()) as Float32Array);
  const dim = out.shape[1];
  out.dispose();
  const items = Array.from({ length: rows }, (_, r) => ({
    id: String(start + r),
    label: split.tree.path(2, split.classIds[start + r]),
    source: `fashion-mnist:${fm.split}#${start + r}`,
  }));
  return { items, embeddings, dim };
}

/** Options of {@link enqueueCatalogue}. */
export interface EnqueueOptions {
  /** Redis URL of the queue. */
  queue: string;
  /** Queue name. Default {@link DEFAULT_QUEUE_NAME}. */
  queueName?: string;
  /** Rows per job. Default 1000. */
  jobSize?: number;
  /** Tries per job (a worker that dies counts as one). Default 5. */
  attempts?: number;
}

/**
 * Prepares the store for the encoder's model (a new store records it; another model's store is
 * refused) and queues the source as jobs of `jobSize` rows. Job ids are derived from the rows and
 * the model, so queuing the same catalogue twice adds no job twice. Resolves to the job and item counts.
 */
export async function enqueueCatalogue(
  encoder: RunEncoder,
  source: InputSource,
  store: PostgresStore,
  options: EnqueueOptions,
): Promise<{ jobs: number; items: number }> {
  const fn = 'enqueueCatalogue';
  const jobSize = options.jobSize ?? 1000;
  if (!(Number.isInteger(jobSize) && jobSize >= 1))
    throw new ContrastiveError(`${fn}: jobSize must be an integer >= 1, but got ${jobSize}.`);
  const total = await countSourceItems(source, fn);
  // one row tells the dimension, so the store records it before any worker writes
  const probe = await embedSourceRange(encoder, source, 0, Math.min(1, total));
  const existing = await store.info();
  if (existing && existing.items > 0 && existing.state === 'ready')
    throw new ContrastiveError(
      `${fn}: the store ${store.url} already holds ${existing.items} items; queue a catalogue into an empty store (add later items with PostgresStore.add).`,
    );
  await store.prepare(
    { dim: probe.dim, space: encoder.space, model: encoder.identity, tree: encoder.tree },
    total,
  );
  await store.query('UPDATE contrastive_meta SET expected_items = $1', [total]);
  const queue = await openQueue(options.queue, options.queueName ?? DEFAULT_QUEUE_NAME, fn);
  try {
    const jobs = [];
    for (let start = 0; start < total; start += jobSize) {
      const end = Math.min(total, start + jobSize);
      const data: IndexJobData = {
        source,
        start,
        end,
        space: encoder.space,
        checksum: encoder.identity.checksum,
        run: encoder.runDir,
      };
      jobs.push({
        name: 'embed',
        data,
        opts: {
          jobId: `${encoder.identity.checksum.slice(0, 16)}-${start}-${end}`,
          attempts: options.attempts ?? 5,
          backoff: { type: 'fixed', delay: 1000 },
          removeOnComplete: false,
          removeOnFail: false,
        },
      });
    }
    await queue.addBulk(jobs).catch((error) => {
      throw queueGone(options.queue, error, fn);
    });
    return { jobs: jobs.length, items: total };
  } finally {
    await queue.close().catch(() => {});
  }
}

/**
 * Follows the queue until no job is waiting or running, then checks the store holds every item
 * (else an error saying how many are missing) and finishes it (HNSW index, prototypes, ready).
 * A failed job (one that used up its tries) is an error naming it.
 */
export async function waitForCatalogue(
  store: PostgresStore,
  options: Pick<EnqueueOptions, 'queue' | 'queueName'> & {
    onProgress?: (done: number, total: number) => void;
    /** Build the HNSW index at the end. Default true. */
    approximate?: boolean;
  },
): Promise<number> {
  const fn = 'waitForCatalogue';
  const queue = await openQueue(options.queue, options.queueName ?? DEFAULT_QUEUE_NAME, fn);
  try {
    for (;;) {
      let counts: Record<string, number>;
      try {
        counts = await queue.getJobCounts(
          'waiting',
          'active',
          'delayed',
          'prioritized',
          'paused',
          'completed',
          'failed',
        );
      } catch (error) {
        throw queueGone(options.queue, error, fn);
      }
      const pending = counts.waiting + counts.active + counts.delayed + counts.prioritized + counts.paused;
      options.onProgress?.(counts.completed, counts.completed + counts.failed + pending);
      if (counts.failed > 0) {
        const [failed] = await queue.getFailed(0, 0);
        throw new ContrastiveError(
          `${fn}: ${counts.failed} job(s) failed on the queue ${redactUrl(options.queue)}, e.g. ${failed?.id}: ${failed?.failedReason ?? '(no reason)'}; fix it and queue the catalogue again (items already stored are kept).`,
        );
      }
      if (pending === 0) break;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  } finally {
    await queue.close().catch(() => {});
  }
  return store.finish({ approximate: options.approximate ?? true });
}

/** Options of {@link runWorker}. */
export interface WorkerOptions {
  queue: string;
  queueName?: string;
  /** Items per INSERT inside a job (each its own transaction). Default 64. */
  chunk?: number;
  /** Seconds a job's lock lasts without renewal: a worker that dies gives its job back after about this long. Default 30. */
  lockSeconds?: number;
  /** Stop when no job is waiting or running (instead of waiting for more). Default false. */
  exitWhenEmpty?: boolean;
  /** Stops the worker (after the job in hand is written). */
  signal?: AbortSignal;
  /** Called once the worker is connected and waiting for jobs. */
  onReady?: () => void;
  /** Called after every job. */
  onJob?: (job: { id: string; start: number; end: number; written: number }) => void;
}

/**
 * Takes jobs from the queue and writes their items into the store, until `signal` aborts (or the
 * queue is empty, with `exitWhenEmpty`). Jobs made for another model are failed, not retried.
 * Resolves to the number of jobs done; a Redis that goes away is a one-line error.
 */
export async function runWorker(
  encoder: RunEncoder,
  store: PostgresStore,
  options: WorkerOptions,
): Promise<number> {
  const fn = 'runWorker';
  const chunk = options.chunk ?? 64;
  const lockSeconds = options.lockSeconds ?? 30;
  if (!(Number.isInteger(chunk) && chunk >= 1))
    throw new ContrastiveError(`${fn}: chunk must be an integer >= 1, but got ${chunk}.`);
  if (!(Number.isFinite(lockSeconds) && lockSeconds >= 1))
    throw new ContrastiveError(`${fn}: lockSeconds must be a number >= 1, but got ${lockSeconds}.`);
  const name = options.queueName ?? DEFAULT_QUEUE_NAME;
  const queue = await openQueue(options.queue, name, fn);
  const { Worker, UnrecoverableError } = await import('bullmq');
  let done = 0;
  let failure: ContrastiveError | null = null;
  const worker = new Worker<IndexJobData>(
    name,
    async (job) => {
      const data = job.data;
      if (data.checksum !== encoder.identity.checksum || data.space !== encoder.space)
        throw new UnrecoverableError(
          `the job was queued for the model from ${data.run} (checksum ${data.checksum.slice(0, 12)}, ${data.space}), but this worker runs ${encoder.runDir} (checksum ${encoder.identity.checksum.slice(0, 12)}, ${encoder.space}); start the worker with that run`,
        );
      let written = 0;
      for (let start = data.start; start < data.end; start += chunk) {
        const end = Math.min(data.end, start + chunk);
        const { items, embeddings } = await embedSourceRange(encoder, data.source, start, end);
        written += await store.add(items, embeddings, { ifExists: 'skip' });
        await job.updateProgress(Math.round((100 * (end - data.start)) / (data.end - data.start)));
        faultPoint('worker-chunk');
      }
      done++;
      options.onJob?.({ id: String(job.id), start: data.start, end: data.end, written });
      return { written };
    },
    {
      connection: redisConnection(options.queue, fn),
      concurrency: 1,
      lockDuration: lockSeconds * 1000,
      stalledInterval: Math.max(1000, (lockSeconds * 1000) / 2),
      maxStalledCount: 3,
      autorun: false,
    },
  );
  worker.on('error', (error) => {
    const e = error as { code?: string };
    if (
      ['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'ETIMEDOUT'].includes(e?.code ?? '') ||
      /Connection is closed/.test(String(error))
    )
      failure ??= queueGone(options.queue, error, fn);
  });
  const running = worker.run();
  try {
    await worker.waitUntilReady().catch((error) => {
      throw queueGone(options.queue, error, fn);
    });
    options.onReady?.();
    for (;;) {
      if (failure) throw failure;
      if (options.signal?.aborted) break;
      if (options.exitWhenEmpty) {
        let counts: Record<string, number>;
        try {
          counts = await queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized');
        } catch (error) {
          throw queueGone(options.queue, error, fn);
        }
        if (counts.waiting + counts.active + counts.delayed + counts.prioritized === 0) break;
      }
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  } finally {
    // with Redis gone these may never settle, and a promise with nothing left to wake it lets
    // node exit with status 13 (an unsettled top-level await) before the error is reported
    const atMost = (promise: Promise<unknown>) =>
      Promise.race([promise.catch(() => {}), new Promise((resolve) => setTimeout(resolve, 5000))]);
    await atMost(worker.close(failure !== null));
    await atMost(running);
    await atMost(queue.close());
  }
  return done;
}
