import { BACKEND_OPTION, type CommandSpec } from '../args.js';

/** `contrastive serve catalogue.index --port 8080`: the HTTP JSON API until Ctrl-C. */
export const serveCommand: CommandSpec = {
  name: 'serve',
  summary:
    'Serve an index over HTTP: /search, /predict, /items/:id, /health (JSON; batches concurrent queries).',
  positionals: [{ name: 'index', doc: 'index file written by contrastive index' }],
  options: [
    {
      name: 'port',
      type: 'integer',
      default: 8080,
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
      doc: 'run folder of the model, for image queries (default: the one recorded in the index)',
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
      doc: 'labelled index items used to calibrate /predict (0: uncalibrated confidences)',
    },
    {
      name: 'maxBodyBytes',
      type: 'integer',
      default: 1048576,
      doc: 'largest request body accepted (larger: 413)',
    },
    BACKEND_OPTION,
  ],
  async run({ positionals, options }) {
    const { useBackend } = await import('../../engine/backend.js');
    const { EmbeddingIndex } = await import('../../search/embeddingIndex.js');
    const { calibrate } = await import('../../search/predictPath.js');
    const { openIndexEncoder } = await import('../../search/runModel.js');
    const { createSearchServer } = await import('../../serve/server.js');
    const { Rng } = await import('../../random.js');
    await useBackend(options.backend as 'auto');
    const index = await EmbeddingIndex.load(positionals[0]);
    const encoder = options.images ? await openIndexEncoder(index, options.run as string | undefined) : null;
    const limit = options.calibrationLimit as number;
    const labelled = limit > 0 ? index.items().filter((it) => it.label !== null) : [];
    let calibration = null;
    if (labelled.length >= 2) {
      const order = new Rng(0).permutation(labelled.length);
      const sample = Array.from(order.subarray(0, Math.min(limit, labelled.length)), (i) => labelled[i]);
      calibration = calibrate(index, {
        embeddings: sample.map((it) => index.embedding(it.id)),
        labels: sample.map((it) => it.label!),
        selfIds: sample.map((it) => it.id),
      });
    }
    const server = createSearchServer(index, {
      encoder,
      calibration,
      maxBodyBytes: options.maxBodyBytes as number,
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port as number, options.host as string, () => resolve());
    });
    const address = server.address();
    const port = typeof address === 'object' && address ? address.port : options.port;
    console.log(
      `listening on http://${options.host}:${port} (${index.size} items, ${index.dim}-d ${index.space}; images ${encoder ? 'on' : 'off'}; /predict ${calibration ? `calibrated on ${calibration.validationSize} items (${calibration.method})` : 'uncalibrated'}); Ctrl-C stops`,
    );
    await new Promise<void>((resolve) => {
      const stop = () => {
        server.close(() => resolve());
        server.closeAllConnections();
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
    encoder?.dispose();
    index.dispose();
  },
};
