import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { type ImageFit, type ImageResampler, parseBackground } from '../data/imageDecode.js';
import { closeRunData } from '../data/runData.js';
import { ContrastiveError } from '../errors.js';
import type { LabelTree } from '../hierarchy/labelTree.js';
import { loadLayersModelFromDir } from '../models/modelIO.js';
import { RunFolder } from '../run/folder.js';
import { openRecordedBackbone } from '../run/frozenBackbone.js';
import { loadTrainedRun } from '../run/trainedRun.js';
import type { EmbeddingSpace, ModelIdentity } from './embeddingIndex.js';
import { modelEmbedding } from './modelEmbedding.js';

/** A trained run's encoder, ready to embed: what {@link embedInputs} and the CLI's search commands use. */
export interface RunEncoder {
  runDir: string;
  /** The run's label tree. */
  tree: LabelTree;
  /** Shape of one input, e.g. `[28, 28, 1]` or `[D]` (from the backbone's input layer). */
  inputShape: number[];
  space: EmbeddingSpace;
  /** The model's checksum and origin, stored in an index built with it. */
  identity: ModelIdentity;
  /**
   * How image files are decoded for this model: the background transparent pixels are composited
   * on and how images are fitted, exactly as training decoded them.
   */
  imageDecode: { background: [number, number, number] | null; fit: ImageFit; resampler?: ImageResampler };
  /**
   * `[N, ...inputShape]` inputs to `[N, D]` embeddings of the chosen space (inference mode). A run
   * on a frozen pretrained backbone (`backbone.json`) embeds only through {@link embedAsync}.
   */
  embed(inputs: tf.Tensor): tf.Tensor2D;
  /**
   * The same for every run, including frozen-backbone runs (an ONNX backbone runs asynchronously);
   * those also take `[N, h, w, 1 | 3]` images of another size (resized and made RGB as training did).
   */
  embedAsync(inputs: tf.Tensor): Promise<tf.Tensor2D>;
  /** True for a frozen pretrained backbone, which resizes images of any size (and grey ones) itself. */
  resizesImages?: boolean;
  dispose(): void;
}

/**
 * Loads a run's backbone (and, for `space: 'head'`, its projection head) and its label tree.
 * Run folders are read through `RunFolder` (the model's checksum is verified on load).
 */
export async function openRunEncoder(
  runDir: string,
  space: EmbeddingSpace = 'backbone',
): Promise<RunEncoder> {
  const fn = 'openRunEncoder';
  if (space !== 'backbone' && space !== 'head')
    throw new ContrastiveError(
      `${fn}: space must be 'backbone' or 'head', but got ${JSON.stringify(space)}.`,
    );
  const folder = new RunFolder(runDir);
  const config = await folder.readConfig(fn);
  const backbone = await folder.loadBackbone(fn);
  const head =
    space === 'head'
      ? await loadLayersModelFromDir(folder.path('head')).catch((error: Error) => {
          backbone.dispose();
          throw new ContrastiveError(`${fn}: ${runDir} has no trained projection head (${error.message}).`);
        })
      : null;
  let tree = await folder.readLabelTree(fn);
  if (!tree) {
    // runs written before labelTree.json existed: the tree of the run's data
    const run = await loadTrainedRun(runDir, { command: fn });
    run.model.dispose();
    await closeRunData(run.data);
    tree = run.data.tree;
  }
  const hash = createHash('sha256');
  for (const dir of space === 'head' ? ['model', 'head'] : ['model'])
    await hashModelFolder(hash, join(runDir, dir));
  const record = await folder.readBackbone(fn);
  const inner = modelEmbedding(backbone, head);
  if (!record) {
    return {
      runDir,
      tree,
      inputShape: (backbone.inputs[0].shape as (number | null)[]).slice(1) as number[],
      space,
      identity: { checksum: hash.digest('hex'), source: resolve(runDir) },
      imageDecode: { background: parseBackground(config.background ?? 'none'), fit: 'stretch' },
      embed: inner.embed,
      embedAsync: async (inputs) => inner.embed(inputs),
      dispose: inner.dispose,
    };
  }
  // a frozen pretrained backbone, then the trained head on its features
  const extractor = await openRecordedBackbone(runDir, record, fn).catch((error: unknown) => {
    inner.dispose();
    throw error;
  });
  hash.update(record.sha256);
  const [h, w] = record.preprocessing.size;
  return {
    runDir,
    tree,
    inputShape: [h, w, 3],
    space,
    identity: { checksum: hash.digest('hex'), source: resolve(runDir) },
    imageDecode: {
      background: record.preprocessing.background,
      fit: record.preprocessing.fit,
      resampler: record.preprocessing.resampler ?? 'libvips',
    },
    resizesImages: true,
    embed: () => {
      throw new ContrastiveError(
        `${fn}: ${runDir} embeds through its ${record.kind} backbone, which runs asynchronously; call embedAsync.`,
      );
    },
    embedAsync: async (inputs) => {
      const images = tf.tidy(() => {
        let x = inputs as tf.Tensor4D;
        if (x.shape[1] !== h || x.shape[2] !== w) x = tf.image.resizeBilinear(x, [h, w]);
        return x.shape[3] === 1 ? tf.tile(x, [1, 1, 1, 3]) : tf.clone(x);
      }) as tf.Tensor4D;
      const features = await extractor.extract(images).finally(() => images.dispose());
      try {
        return inner.embed(features);
      } finally {
        features.dispose();
      }
    },
    dispose: () => {
      inner.dispose();
      extractor.dispose();
    },
  };
}

/** Feeds a tfjs model folder (model.json and its weight files) into `hash`. */
async function hashModelFolder(hash: ReturnType<typeof createHash>, dir: string): Promise<void> {
  const json = await readFile(join(dir, 'model.json'));
  hash.update(json);
  const manifest = (JSON.parse(json.toString('utf8')) as { weightsManifest: { paths: string[] }[] })
    .weightsManifest;
  for (const group of manifest) for (const p of group.paths) hash.update(await readFile(join(dir, p)));
}

/**
 * The encoder that made `index` (its recorded run folder, or `runDir`), checked against the
 * index's model checksum, so queries are embedded exactly as the items were.
 */
export async function openIndexEncoder(
  index: {
    model: ModelIdentity | null;
    space: EmbeddingSpace;
    checkModel(model: ModelIdentity, where?: string): void;
  },
  runDir?: string,
): Promise<RunEncoder> {
  const dir = runDir ?? index.model?.source;
  if (!dir)
    throw new ContrastiveError(
      'openIndexEncoder: this index records no model (its vectors came from elsewhere); pass the run folder that made them, or query with a vector.',
    );
  const encoder = await openRunEncoder(dir, index.space);
  try {
    index.checkModel(encoder.identity, 'openIndexEncoder');
  } catch (error) {
    encoder.dispose();
    throw error;
  }
  return encoder;
}
