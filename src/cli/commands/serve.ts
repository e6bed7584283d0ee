import { BACKEND_OPTION, defineCommand } from '../args.js';

/** `contrastive serve catalogue.index --port 8080`: the HTTP JSON API until Ctrl-C. */
export const serveCommand = defineCommand({
  name: 'serve',
  summary:
    'Serve an index over HTTP: /search, /predict, /items/:id, /health (JSON; batches concurrent queries).',
  positionals: [
    {
      name: 'index',
      doc: 'index file written by contrastive index, or a store URL (pglite:./catalogue.pg, postgres://…)',
    },
  ],
  options: [
    {
      name: 'port',
      type: 'integer',
      default: 8080,
      min: 0,
      max: 65535,
      doc: 'TCP port (0: any free port; the address is printed)',
    },
    {
      name: 'host',
      type: 'string',
      default: '127.0.0.1',
      doc: 'address to listen on (0.0.0.0: every interface)',
    },
    {
      name: 'run',
      type: 'string',
      doc: 'run folder of the model, for image queries (default: the one recorded in the index or store)',
    },
    {
      name: 'images',
      type: 'boolean',
      default: true,
      doc: 'load the model so that queries can be images (--no-images: vectors and ids only)',
    },
    {
      name: 'calibrationLimit',
      type: 'integer',
      default: 2000,
      min: 0,
      doc: 'labelled index items used to calibrate /predict (0: uncalibrated confidences)',
    },
    {
      name: 'maxBodyBytes',
      type: 'integer',
      default: 1048576,
      min: 1,
      doc: 'largest request body accepted (larger: 413)',
    },
    {
      name: 'maxK',
      type: 'integer',
      default: 1000,
      min: 1,
      doc: 'largest k and groupSize a request may ask for (larger: 400; above the index size: the index size)',
    },
    {
      name: 'maxQueue',
      type: 'integer',
      default: 1024,
      min: 1,
      doc: 'searches accepted and not yet answered; one more gets 503 with Retry-After',
    },
    {
      name: 'requestTimeout',
      type: 'number',
      default: 10,
      min: 0.05,
      doc: 'seconds for the headers and body of a request to arrive (slower: 408)',
    },
    {
      name: 'drainTimeout',
      type: 'number',
      default: 10,
      min: 0,
      doc: 'on SIGTERM/SIGINT, seconds to finish open requests before closing them (a second signal: at once); SIGHUP is ignored',
    },
    BACKEND_OPTION,
  ],
  async run({ positionals, options }) {
    const port = options.port;
    const host = options.host;
    // signals: installed first, so that none kills the process while the index loads
    const signals = stopSignals();
    try {
      await checkAddress(port, host);
      const { useBackend } = await import('../../engine/backend.js');
      const { Catalogue } = await import('../../catalogue/catalogue.js');
      const { createSearchServer } = await import('../../serve/server.js');
      await useBackend(options.backend);
      const catalogue = await Catalogue.open(positionals[0], {
        run: options.run,
        loadModel: options.images,
      });
      const calibration = catalogue.calibrate({ limit: options.calibrationLimit })?.calibration;
      const index = catalogue.index;
      if (signals.stopped) {
        console.log('stopped before serving (a signal arrived while the index loaded)');
        catalogue.dispose();
        return 0;
      }
      const server = createSearchServer(catalogue, {
        maxBodyBytes: options.maxBodyBytes,
        maxK: options.maxK,
        maxQueue: options.maxQueue,
        requestTimeoutMs: Math.round(options.requestTimeout * 1000),
      });
      await listen(server, port, host);
      // an accept error later (too many open files, ...) is reported, never fatal
      server.on('error', (error: Error) => console.error(`serve: ${error.message}`));
      const address = server.address();
      const bound = typeof address === 'object' && address ? address.port : port;
      console.log(
        `listening on http://${host}:${bound} (${index.size} items, ${index.dim}-d ${index.space}; images ${catalogue.hasModel ? 'on' : 'off'}; /predict ${calibration ? `calibrated on ${calibration.validationSize} items (${calibration.method})` : 'uncalibrated'}); Ctrl-C or SIGTERM stops`,
      );
      await signals.stop;
      const drainTimeout = options.drainTimeout;
      console.log(
        `${signals.stopped}: not accepting new connections; finishing open requests (at most ${drainTimeout} s; a second signal stops at once)`,
      );
      const { unanswered } = await server.drain(drainTimeout * 1000);
      console.log(
        unanswered === 0
          ? 'stopped: every open request was answered'
          : `stopped: ${unanswered} requests still open after --drain-timeout ${drainTimeout} were closed unanswered`,
      );
      catalogue.dispose();
      return 0;
    } finally {
      signals.remove();
    }
  },
});

/**
 * SIGINT/SIGTERM: the first resolves `stop` (the command then drains), a second exits at once.
 * SIGHUP is ignored (with a line on stderr): a closed terminal never takes the server down.
 * The handlers only record the signal; the work happens in the command.
 */
function stopSignals(): {
  stop: Promise<void>;
  readonly stopped: NodeJS.Signals | null;
  remove(): void;
} {
  let stopped: NodeJS.Signals | null = null;
  let resolveStop!: () => void;
  const stop = new Promise<void>((resolve) => {
    resolveStop = resolve;
  });
  const onStop = (signal: NodeJS.Signals) => {
    if (stopped) {
      console.error(`${signal} again: exiting now, open requests unanswered`);
      process.exit(signal === 'SIGINT' ? 130 : 143);
    }
    stopped = signal;
    resolveStop();
  };
  const onHup = () =>
    console.error('SIGHUP ignored (the server keeps running; restart it to load a new index)');
  process.on('SIGINT', onStop);
  process.on('SIGTERM', onStop);
  process.on('SIGHUP', onHup);
  return {
    stop,
    get stopped() {
      return stopped;
    },
    remove() {
      process.off('SIGINT', onStop);
      process.off('SIGTERM', onStop);
      process.off('SIGHUP', onHup);
    },
  };
}

/** Listens, turning a failure into one line naming the flag. */
async function listen(server: import('node:net').Server, port: number, host: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException) => reject(error);
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  }).catch(async (error: NodeJS.ErrnoException) => {
    throw await addressError(error, port, host);
  });
}

/** Binds and releases `host:port` before anything loads, so a bad address fails in a moment. */
async function checkAddress(port: number, host: string): Promise<void> {
  const { ContrastiveError } = await import('../../errors.js');
  if (host.trim() === '')
    throw new ContrastiveError('contrastive serve: --host must be an address or a host name, but got "".');
  const { createServer } = await import('node:net');
  const probe = createServer();
  await listen(probe, port, host);
  await new Promise<void>((resolve) => probe.close(() => resolve()));
}

/** One line for a failure to listen: which flag, and what to do. */
async function addressError(error: NodeJS.ErrnoException, port: number, host: string): Promise<Error> {
  const { ContrastiveError } = await import('../../errors.js');
  const where = 'contrastive serve';
  switch (error.code) {
    case 'EADDRINUSE': {
      const free = await freePortNear(port, host);
      return new ContrastiveError(
        `${where}: --port ${port}: port ${port} on ${host} is already in use (another server?); try ${free ? `--port ${free}, which is free, or ` : ''}--port 0 for any free port.`,
      );
    }
    case 'EACCES':
      return new ContrastiveError(
        `${where}: --port ${port}: not allowed to listen on port ${port} on ${host} (ports below 1024 need privileges); pick one above 1023.`,
      );
    case 'EADDRNOTAVAIL':
      return new ContrastiveError(
        `${where}: --host ${host}: not an address of this machine; use 127.0.0.1 (local only) or 0.0.0.0 (every interface).`,
      );
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EAI_NONAME':
      return new ContrastiveError(
        `${where}: --host ${JSON.stringify(host)}: not an IP address nor a name that resolves; use 127.0.0.1 or 0.0.0.0.`,
      );
    default:
      return new ContrastiveError(
        `${where}: cannot listen on --host ${host} --port ${port}: ${error.code ?? ''} ${error.message}`.trim(),
      );
  }
}

/** The first of the ten ports after `port` that is free on `host`, or null. */
async function freePortNear(port: number, host: string): Promise<number | null> {
  const { createServer } = await import('node:net');
  for (let candidate = port + 1; candidate <= Math.min(65535, port + 10); candidate++) {
    const free = await new Promise<boolean>((resolve) => {
      const probe = createServer();
      probe.once('error', () => resolve(false));
      probe.listen(candidate, host, () => probe.close(() => resolve(true)));
    });
    if (free) return candidate;
  }
  return null;
}
