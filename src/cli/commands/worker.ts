import { BACKEND_OPTION, defineCommand } from '../args.js';
import { QUEUE_OPTIONS, STORE_OPTION } from './store.js';

/** `contrastive worker runs/x --queue redis://host:6379 --store postgres://…`. */
export const workerCommand = defineCommand({
  name: 'worker',
  summary: 'Take embedding jobs from a queue (contrastive index --queue) and write the items into a store.',
  positionals: [{ name: 'run', doc: 'run folder of the model the jobs were queued for' }],
  options: [
    ...QUEUE_OPTIONS.map((o) => (o.name === 'queue' ? { ...o, doc: `${o.doc} (required)` } : o)),
    { ...STORE_OPTION, doc: `${STORE_OPTION.doc} (required; a server when several workers run)` },
    {
      name: 'lockSeconds',
      type: 'integer',
      default: 30,
      doc: "a job's lock: a worker that dies hands its job to another after about this long",
    },
    {
      name: 'exitWhenEmpty',
      type: 'boolean',
      default: false,
      doc: 'stop when no job is waiting or running (default: wait for more until SIGINT/SIGTERM)',
    },
    { name: 'json', type: 'boolean', default: false, doc: 'print one JSON line per job' },
    BACKEND_OPTION,
  ],
  async run({ positionals, options }) {
    const { ContrastiveError } = await import('../../errors.js');
    if (!options.queue || !options.store)
      throw new ContrastiveError(
        'contrastive worker: --queue (redis://…) and --store (where items go) are required.',
      );
    const { useBackend } = await import('../../engine/backend.js');
    const { openRunEncoder } = await import('../../search/runModel.js');
    const { PostgresStore } = await import('../../store/postgresStore.js');
    const { runWorker } = await import('../../store/queue.js');
    const { redactUrl } = await import('../../store/sqlClient.js');
    await useBackend(options.backend);
    const store = await PostgresStore.open(options.store);
    const stop = new AbortController();
    const onSignal = () => stop.abort();
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    try {
      const schema = await store.schema();
      const encoder = await openRunEncoder(positionals[0], schema?.space ?? 'backbone');
      try {
        if (schema) store.checkModel(encoder.identity, 'contrastive worker');
        const jobs = await runWorker(encoder, store, {
          queue: options.queue,
          queueName: options.queueName,
          lockSeconds: options.lockSeconds,
          exitWhenEmpty: options.exitWhenEmpty,
          signal: stop.signal,
          onReady: () =>
            console.error(
              `worker: waiting for jobs on ${options.queueName} at ${redactUrl(options.queue ?? '')}`,
            ),
          onJob: (job) =>
            console.log(
              options.json
                ? JSON.stringify({ job: job.id, rows: [job.start, job.end], written: job.written })
                : `job ${job.id}: rows ${job.start}-${job.end}, ${job.written} items written`,
            ),
        });
        if (!options.json) console.log(`worker done: ${jobs} jobs`);
      } finally {
        encoder.dispose();
      }
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      await store.close();
    }
    return 0;
  },
});
