import { readFile } from 'node:fs/promises';
import { COLOR_AUGMENT_OPTIONS, DATA_OPTIONS } from '../data/dataOptions.js';
import { ContrastiveError } from '../errors.js';
import { BACKBONE_OPTIONS } from '../models/backboneOptions.js';
import {
  BACKEND_OPTION,
  convertOption,
  flagName,
  kebab,
  type OptionSpec,
  type OptionValue,
  type OptionValues,
} from '../options.js';
import { METHODS, trainingMethod } from './methods/registry.js';

export { METHODS, type Method } from './methods/registry.js';

/** The methods that implement `--grad-cache-chunk`. */
export const GRAD_CACHE_METHODS = METHODS.filter((m) => trainingMethod(m).gradCache === true);

/**
 * Every training option, described once: the `train` command's flags and `--help`, the JSON
 * config file's keys and their validation all come from this table.
 */
export const TRAIN_OPTIONS = [
  { name: 'method', type: 'string', choices: METHODS, default: 'himulcone', doc: 'training method' },
  {
    name: 'data',
    type: 'string',
    default: 'fashion-mnist',
    doc: "'fashion-mnist', or a CSV/JSONL/.npy table or image folder",
  },
  ...DATA_OPTIONS.map((o) => (o.name === 'labelsPath' ? { ...o, flag: 'labels' } : o)),
  { name: 'delimiter', type: 'string', doc: 'CSV field delimiter (default: ,)' },
  {
    name: 'skipUnreadable',
    type: 'boolean',
    default: false,
    doc: 'image folders: skip files that cannot be decoded (default: an error naming the file)',
  },
  {
    name: 'allowSharedNames',
    type: 'boolean',
    default: false,
    doc: 'allow one node name under two parents in the label tree (default: an error naming both paths)',
  },
  {
    name: 'stream',
    type: 'string',
    choices: ['auto', 'on', 'off'],
    default: 'auto',
    doc: 'image folders and manifests: decode the images once into a uint8 cache file and read each batch from it (read ahead while the step runs) instead of holding the data in memory; auto: on when the training split would take more than 1 GiB as float32 (Fashion-MNIST and tables are always in memory)',
  },
  {
    name: 'cacheDir',
    type: 'string',
    doc: "where --stream keeps the decoded images (default: <out>/cache, so a run folder is whole on its own and deleting it frees the space; pass a shared folder to decode a catalogue once for many runs: caches are keyed by every file's path, size and mtime and the decode options, so runs never mix them up)",
  },
  {
    name: 'dataDir',
    type: 'string',
    doc: 'folder of the Fashion-MNIST IDX files (default: env, Debian, embedded subset)',
  },
  { name: 'out', type: 'string', doc: 'run folder (required)' },
  { name: 'epochs', type: 'integer', default: 20, doc: 'passes over the training set' },
  {
    name: 'batchSize',
    type: 'integer',
    default: 256,
    doc: 'samples per step (each with `views` views; the small CNN on wasm fits up to 512 × 2 in its 4 GiB heap)',
  },
  { name: 'views', type: 'integer', default: 2, doc: 'augmented views per sample (view trainer)' },
  {
    name: 'gradCacheChunk',
    type: 'integer',
    default: 0,
    min: 0,
    doc: `GradCache: run the encoder and head on N of the batch-size × views rows at a time, the loss still over the whole batch: the full batch's gradient in the memory of N rows, for one more forward pass per step. Batch norm normalises each chunk of N rows by its own statistics (exact for models without batch norm) and moves its averages once per chunk (0: off; ${GRAD_CACHE_METHODS.join(', ')}; fixed for a run, kept on --resume)`,
  },
  ...BACKBONE_OPTIONS,
  // normalisation and a crop smaller than the image would change what the saved model expects
  ...COLOR_AUGMENT_OPTIONS.filter(
    (o) => !['normalize', 'channelMean', 'channelStd', 'cropSize'].includes(o.name),
  ),
  {
    name: 'embeddingDim',
    type: 'integer',
    default: 128,
    doc: 'backbone output size (the embedding evaluated)',
  },
  {
    name: 'projectionDim',
    type: 'integer',
    default: 128,
    doc: 'projection head output size (the space the loss sees)',
  },
  {
    name: 'optimizer',
    type: 'string',
    choices: ['sgd', 'adam', 'adamw'],
    default: 'adamw',
    doc: 'optimiser',
  },
  { name: 'learningRate', type: 'number', default: 0.001, doc: 'peak learning rate' },
  {
    name: 'weightDecay',
    type: 'number',
    default: 0.0001,
    doc: 'weight decay (decoupled for adamw, L2 for sgd)',
  },
  { name: 'momentum', type: 'number', default: 0.9, doc: 'SGD momentum' },
  { name: 'nesterov', type: 'boolean', default: false, doc: 'Nesterov momentum for SGD' },
  { name: 'warmupEpochs', type: 'number', default: 1, doc: 'linear learning-rate warm-up' },
  {
    name: 'schedule',
    type: 'string',
    choices: ['cosine', 'constant'],
    default: 'cosine',
    doc: 'learning-rate schedule after warm-up',
  },
  { name: 'gradClip', type: 'number', default: 0, doc: 'clip the global gradient norm (0: off)' },
  { name: 'temperature', type: 'number', default: 0.1, doc: 'loss temperature τ' },
  { name: 'baseTemperature', type: 'number', doc: 'SupCon τ_base (default: = temperature, scale 1)' },
  {
    name: 'levelWeights',
    type: 'string',
    choices: ['pow2', 'exp'],
    default: 'pow2',
    doc: 'λ per level: 2^(1/l) or e^(1/l)',
  },
  {
    name: 'hierarchyMode',
    type: 'string',
    choices: ['paper', 'reference'],
    default: 'paper',
    doc: 'HiMulCon form',
  },
  { name: 'queueSize', type: 'integer', default: 4096, doc: 'MoCo/SANE queue length K' },
  { name: 'keyMomentum', type: 'number', default: 0.99, doc: 'EMA momentum of the key encoder' },
  { name: 'refinery', type: 'boolean', default: true, doc: 'SANE: self-labeling refinery (off = ablation)' },
  { name: 'mixup', type: 'boolean', default: true, doc: 'SANE: momentum mixup (off = ablation)' },
  { name: 'alpha', type: 'number', default: 0.5, doc: 'SANE: final α_t (weight of p)' },
  { name: 'beta', type: 'number', default: 0.3, doc: 'SANE: final β_t (weight of q)' },
  {
    name: 'rampEpochs',
    type: 'number',
    default: 2,
    doc: 'SANE: α_t, β_t rise linearly from 0 over these epochs',
  },
  { name: 'tauPrime', type: 'number', default: 0.5, doc: "SANE: refinery sharpening τ'" },
  { name: 'mixupBeta', type: 'number', default: 1, doc: 'SANE: θ ~ Beta(a, a)' },
  {
    name: 'refineWith',
    type: 'string',
    choices: ['key', 'online'],
    default: 'key',
    doc: 'SANE: embed the refinery views with the key or the online encoder',
  },
  {
    name: 'sampler',
    type: 'string',
    choices: ['random', 'balanced', 'hierarchical'],
    default: 'random',
    doc: 'batch sampler',
  },
  {
    name: 'holdoutClasses',
    type: 'list',
    default: [],
    doc: 'fine classes left out of training (unseen-class protocol)',
  },
  {
    name: 'labelNoise',
    type: 'number',
    default: 0,
    doc: 'flip exactly round(p·n) of the n training labels before training, chosen by --seed, each to another leaf class drawn uniformly among all the others (across branches, not only siblings), the whole label path with it; the test/validation split and evaluation keep the true labels (0 <= p < 1; 0: off)',
  },
  { name: 'trainLimit', type: 'integer', default: 0, doc: 'use only this many training samples (0: all)' },
  { name: 'testLimit', type: 'integer', default: 0, doc: 'use only this many test samples (0: all)' },
  {
    name: 'validationFraction',
    type: 'number',
    default: 0,
    doc: 'hold out this fraction of the training set (stratified, seeded) and evaluate on it instead of the test set: tuning without touching test data (0: off)',
  },
  { name: 'evalEvery', type: 'integer', default: 1, doc: 'quick kNN evaluation every N epochs (0: off)' },
  { name: 'logEvery', type: 'integer', default: 20, doc: 'log a metrics line every N steps' },
  { name: 'seed', type: 'integer', default: 0, doc: 'random seed: same seed, same backend, same run' },
  BACKEND_OPTION,
  {
    name: 'resume',
    type: 'boolean',
    default: false,
    doc: 'continue the run in --out from its last checkpoint',
  },
  {
    name: 'resumeFrom',
    type: 'string',
    doc: "with --resume: the run's checkpoint file to resume from (e.g. checkpoint.prev.bin) instead of the latest",
  },
  { name: 'config', type: 'string', doc: 'JSON file of options (flags given on the command line win)' },
] as const satisfies readonly OptionSpec[];

/** The resolved options of a training run (what `config.json` in the run folder holds). */
export type TrainConfig = OptionValues<typeof TRAIN_OPTIONS>;

/**
 * Resolves a training configuration: defaults, then the JSON `config` file, then the options
 * given explicitly (`given`). Unknown keys and bad values are errors naming the key.
 */
export async function resolveTrainConfig(
  options: Record<string, OptionValue>,
  given: ReadonlySet<string> = new Set(Object.keys(options)),
): Promise<TrainConfig> {
  const merged: Record<string, OptionValue> = {};
  for (const spec of TRAIN_OPTIONS as readonly OptionSpec[]) {
    if ('default' in spec && spec.default !== undefined) {
      merged[spec.name] = Array.isArray(spec.default) ? [...spec.default] : (spec.default as OptionValue);
    }
  }
  const configPath = options.config as string | undefined;
  if (configPath) Object.assign(merged, await readConfigFile(configPath));
  for (const name of given) merged[name] = options[name];
  for (const name of Object.keys(options)) if (!(name in merged)) merged[name] = options[name];
  const config = merged as unknown as TrainConfig;
  if (!config.out)
    throw new ContrastiveError(
      'train: --out is required: the run folder to write (e.g. --out runs/fm-hmce).',
    );
  checkRanges(config);
  return config;
}

/** Reads and validates a JSON config file: keys are option names (camelCase or kebab-case). */
export async function readConfigFile(path: string): Promise<Record<string, OptionValue>> {
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(path, 'utf8'));
  } catch (error) {
    throw new ContrastiveError(`train: cannot read config file ${path}: ${(error as Error).message}`);
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ContrastiveError(`train: config file ${path} must hold a JSON object of options.`);
  }
  const byName = new Map<string, OptionSpec>();
  for (const spec of TRAIN_OPTIONS as readonly OptionSpec[]) {
    byName.set(spec.name, spec);
    byName.set(flagName(spec), spec);
  }
  const out: Record<string, OptionValue> = {};
  for (const [key, value] of Object.entries(raw)) {
    const spec = byName.get(key);
    if (!spec || spec.name === 'config') {
      throw new ContrastiveError(
        `train: config file ${path}: unknown key "${key}". Known keys: ${TRAIN_OPTIONS.map((o) => o.name).join(', ')}.`,
      );
    }
    out[spec.name] = convertOption(`train: config file ${path}`, spec, value);
  }
  return out;
}

function checkRanges(c: TrainConfig): void {
  const positive: (keyof TrainConfig)[] = [
    'epochs',
    'batchSize',
    'learningRate',
    'temperature',
    'embeddingDim',
    'projectionDim',
    'queueSize',
    'tauPrime',
    'mixupBeta',
    'logEvery',
  ];
  for (const key of positive) {
    const v = c[key] as number;
    if (!(v > 0)) throw new ContrastiveError(`train: --${kebab(key)} must be > 0, but got ${v}.`);
  }
  const nonNegative: (keyof TrainConfig)[] = [
    'weightDecay',
    'momentum',
    'warmupEpochs',
    'gradClip',
    'rampEpochs',
    'trainLimit',
    'testLimit',
    'evalEvery',
    'alpha',
    'beta',
  ];
  for (const key of nonNegative) {
    const v = c[key] as number;
    if (!(v >= 0)) throw new ContrastiveError(`train: --${kebab(key)} must be >= 0, but got ${v}.`);
  }
  checkGradCache(c);
  const minViews = trainingMethod(c.method).minViews;
  if (c.views < minViews) {
    throw new ContrastiveError(
      `train: --views must be >= ${minViews} for method ${c.method}, but got ${c.views}.`,
    );
  }
  if (c.channels !== 1 && c.channels !== 3) {
    throw new ContrastiveError(`train: --channels must be 1 or 3, but got ${c.channels}.`);
  }
  if (!(c.testFraction > 0 && c.testFraction < 1)) {
    throw new ContrastiveError(`train: --test-fraction must be in (0, 1), but got ${c.testFraction}.`);
  }
  if (!(Number.isInteger(c.imageSize) && c.imageSize >= 1 && c.imageSize <= 4096)) {
    throw new ContrastiveError(
      `train: --image-size must be an integer in [1, 4096], but got ${c.imageSize}.`,
    );
  }
  if (!(c.validationFraction >= 0 && c.validationFraction < 1)) {
    throw new ContrastiveError(
      `train: --validation-fraction must be in [0, 1), but got ${c.validationFraction}.`,
    );
  }
  if (!(c.labelNoise >= 0 && c.labelNoise < 1)) {
    throw new ContrastiveError(`train: --label-noise must be in [0, 1), but got ${c.labelNoise}.`);
  }
  if (c.keyMomentum < 0 || c.keyMomentum >= 1) {
    throw new ContrastiveError(`train: --key-momentum must be in [0, 1), but got ${c.keyMomentum}.`);
  }
  if (c.alpha + c.beta > 1) {
    throw new ContrastiveError(`train: --alpha + --beta must be <= 1, but got ${c.alpha} + ${c.beta}.`);
  }
  if (c.baseTemperature !== undefined && !(c.baseTemperature > 0)) {
    throw new ContrastiveError(`train: --base-temperature must be > 0, but got ${c.baseTemperature}.`);
  }
}

/** `--grad-cache-chunk` is a positive integer, or 0 (off), and only for the methods that implement it. */
export function checkGradCache(c: Pick<TrainConfig, 'method' | 'gradCacheChunk'>): void {
  const chunk = c.gradCacheChunk ?? 0;
  if (!(Number.isInteger(chunk) && chunk >= 0)) {
    throw new ContrastiveError(
      `train: --grad-cache-chunk must be an integer >= 0 (0: off), but got ${chunk}.`,
    );
  }
  if (chunk > 0 && trainingMethod(c.method).gradCache !== true) {
    throw new ContrastiveError(
      `train: --grad-cache-chunk is implemented for ${GRAD_CACHE_METHODS.join(', ')}, not for ${c.method}${c.method === 'moco' || c.method === 'sane' ? ' (its loss contrasts with a queue of momentum keys, and the batch size does not set its negatives)' : ' (a cross-entropy loss is a mean over samples: it needs no cache)'}; drop the flag or pick one of those methods.`,
    );
  }
}
