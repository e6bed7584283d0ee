import { BACKEND_OPTION, pickOptions } from '../../options.js';
import { TRAIN_OPTIONS } from '../../train/config.js';
import { defineCommand } from '../args.js';

/** Train options every arm of the study shares; the study sets its own defaults for some. */
const SHARED = pickOptions(TRAIN_OPTIONS, [
  'encoder',
  'epochs',
  'trainLimit',
  'testLimit',
  'batchSize',
  'learningRate',
  'temperature',
  'dataDir',
]);
const STUDY_DEFAULTS: Record<string, string | number> = { encoder: 'conv', epochs: 10 };

/** `contrastive study fashion-mnist`: every method, several seeds, one results page. */
export const studyCommand = defineCommand({
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
    { name: 'seeds', type: 'numbers', default: [0, 1, 2], min: 0, doc: 'seeds (integers)' },
    ...SHARED.map((o) => (o.name in STUDY_DEFAULTS ? { ...o, default: STUDY_DEFAULTS[o.name] } : o)),
    {
      name: 'tune',
      type: 'boolean',
      default: true,
      doc: 'first choose each method’s τ and learning rate on a validation split, by the same grid',
    },
    {
      name: 'tuneTemperatures',
      type: 'numbers',
      default: [0.07, 0.2, 0.5],
      min: 1e-6,
      doc: 'τ values tried',
    },
    {
      name: 'tuneLearningRates',
      type: 'numbers',
      default: [0.001, 0.003],
      min: 1e-9,
      doc: 'learning rates tried',
    },
    { name: 'tuneEpochs', type: 'integer', default: 1, min: 1, doc: 'epochs of each tuning run' },
    { name: 'probeEpochs', type: 'integer', default: 20, min: 0, doc: 'linear-probe epochs (0: skip)' },
    {
      name: 'labelNoiseLevels',
      type: 'numbers',
      default: [],
      min: 0,
      doc: "add arms supcon, himulcone, moco and sane trained with this fraction of the training labels flipped (train --label-noise; e.g. 0.2,0.4 adds supcon-noise20 ... sane-noise40), each with its parent's tuning",
    },
    {
      name: 'arms',
      type: 'list',
      default: [],
      doc: 'run only these arms (comma-separated names; default: every arm); finished runs of a study are reused either way',
    },
    BACKEND_OPTION,
  ],
  async run({ positionals, options }) {
    const { ContrastiveError } = await import('../../errors.js');
    if (positionals[0] !== 'fashion-mnist') {
      throw new ContrastiveError(
        `contrastive study: only 'fashion-mnist' is supported, but got ${JSON.stringify(positionals[0])}.`,
      );
    }
    const { labelNoiseArms, runStudy, selectArms, STUDY_ARMS } = await import('../../experiments/study.js');
    const o = options;
    const seeds = o.seeds;
    const notInteger = seeds.find((s) => !Number.isInteger(s));
    if (notInteger !== undefined) {
      throw new ContrastiveError(`contrastive study: --seeds must be integers, but got ${notInteger}.`);
    }
    const arms = selectArms([...STUDY_ARMS, ...labelNoiseArms(o.labelNoiseLevels)], o.arms);
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
      out: o.out,
      resultsPath: o.results,
      seeds: quick ? [0] : seeds,
      arms,
      shared,
      probeEpochs: quick ? 0 : o.probeEpochs,
      tune:
        o.tune === false
          ? undefined
          : {
              temperatures: quick ? [0.1, 0.2] : o.tuneTemperatures,
              learningRates: quick ? [0.001] : o.tuneLearningRates,
              epochs: quick ? 1 : o.tuneEpochs,
            },
      command: `contrastive study ${process.argv.slice(3).join(' ')}`,
      // each full run in its own process: the wasm heap never shrinks
      runCommand: quick ? undefined : runSelf,
    });
  },
});

/** Runs `contrastive <args>` in a child process of this same CLI; resolves to its exit status. */
async function runSelf(args: string[]): Promise<number> {
  const { spawn } = await import('node:child_process');
  const { fileURLToPath } = await import('node:url');
  const bin = fileURLToPath(new URL('../bin.js', import.meta.url));
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], { stdio: 'inherit' });
    child.on('error', reject);
    child.on('exit', (code) => resolve(code ?? 1));
  });
}
