import { BACKEND_OPTION, type CommandSpec } from '../args.js';

/** `contrastive study fashion-mnist`: every method, several seeds, one results page. */
export const studyCommand: CommandSpec = {
  name: 'study',
  summary:
    "Reproduce the papers' comparisons on Fashion-MNIST: every method x seeds, results.md + report.html.",
  positionals: [{ name: 'dataset', doc: "'fashion-mnist'" }],
  options: [
    {
      name: 'quick',
      type: 'boolean',
      default: false,
      doc: 'a few-minute smoke version (tiny subset, 1 epoch, 1 seed)',
    },
    { name: 'out', type: 'string', default: 'runs/study', doc: 'folder of the study runs' },
    { name: 'results', type: 'string', doc: 'where to write results.md (default: <out>/results.md)' },
    { name: 'seeds', type: 'list', default: ['0', '1', '2'], doc: 'seeds' },
    {
      name: 'encoder',
      type: 'string',
      choices: ['conv', 'mlp'],
      default: 'conv',
      doc: 'backbone of every arm',
    },
    { name: 'epochs', type: 'integer', default: 10, doc: 'epochs per run' },
    { name: 'trainLimit', type: 'integer', default: 0, doc: 'training images (0: all)' },
    { name: 'testLimit', type: 'integer', default: 0, doc: 'test images (0: all)' },
    { name: 'batchSize', type: 'integer', default: 256, doc: 'batch size' },
    {
      name: 'learningRate',
      type: 'number',
      default: 0.001,
      doc: 'peak learning rate (with --no-tune; tuning chooses one per method)',
    },
    {
      name: 'temperature',
      type: 'number',
      default: 0.1,
      doc: 'loss temperature (with --no-tune; tuning chooses one per method)',
    },
    {
      name: 'tune',
      type: 'boolean',
      default: true,
      doc: 'first choose each method’s τ and learning rate on a validation split, by the same grid',
    },
    { name: 'tuneTemperatures', type: 'list', default: ['0.07', '0.2', '0.5'], doc: 'τ values tried' },
    { name: 'tuneLearningRates', type: 'list', default: ['0.001', '0.003'], doc: 'learning rates tried' },
    { name: 'tuneEpochs', type: 'integer', default: 1, doc: 'epochs of each tuning run' },
    { name: 'probeEpochs', type: 'integer', default: 20, doc: 'linear-probe epochs (0: skip)' },
    { name: 'dataDir', type: 'string', doc: 'Fashion-MNIST folder' },
    BACKEND_OPTION,
  ],
  async run({ positionals, options }) {
    const { ContrastiveError } = await import('../../errors.js');
    if (positionals[0] !== 'fashion-mnist') {
      throw new ContrastiveError(
        `contrastive study: only 'fashion-mnist' is supported, but got ${JSON.stringify(positionals[0])}.`,
      );
    }
    const { runStudy } = await import('../../study/study.js');
    const numbers = (value: unknown, flag: string) =>
      (value as string[]).map((text) => {
        const n = Number(text);
        if (!(n > 0))
          throw new ContrastiveError(
            `contrastive study: ${flag}: ${JSON.stringify(text)} is not a number > 0.`,
          );
        return n;
      });
    const o = options as Record<string, unknown>;
    const quick = o.quick === true;
    const shared = {
      encoder: quick ? 'mlp' : o.encoder,
      epochs: quick ? 1 : o.epochs,
      trainLimit: quick ? 256 : o.trainLimit,
      testLimit: quick ? 200 : o.testLimit,
      batchSize: quick ? 64 : o.batchSize,
      learningRate: o.learningRate,
      temperature: o.temperature,
      queueSize: quick ? 256 : 4096,
      evalEvery: 0,
      logEvery: 10,
      backend: o.backend,
      ...(o.dataDir ? { dataDir: o.dataDir } : {}),
    };
    await runStudy({
      out: o.out as string,
      resultsPath: o.results as string | undefined,
      seeds: quick ? [0] : (o.seeds as string[]).map(Number),
      shared: shared as never,
      probeEpochs: quick ? 0 : (o.probeEpochs as number),
      tune:
        o.tune === false
          ? undefined
          : {
              temperatures: quick ? [0.1, 0.2] : numbers(o.tuneTemperatures, '--tune-temperatures'),
              learningRates: quick ? [0.001] : numbers(o.tuneLearningRates, '--tune-learning-rates'),
              epochs: quick ? 1 : (o.tuneEpochs as number),
            },
      command: `contrastive study ${process.argv.slice(3).join(' ')}`,
      isolate: !quick,
    });
  },
};
