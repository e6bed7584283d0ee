import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type * as tf from '@tensorflow/tfjs-core';
import { closeRunData } from '../data/runData.js';
import { ContrastiveError } from '../errors.js';
import type { LabelTree } from '../hierarchy/labelTree.js';
import { loadLayersModelFromDir } from '../models/modelIO.js';
import { RunFolder } from '../run/folder.js';
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
  /** `[N, ...inputShape]` inputs to `[N, D]` embeddings of the chosen space (inference mode). */
  embed(inputs: tf.Tensor): tf.Tensor2D;
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
  await folder.readConfig(fn);
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
  const inputShape = (backbone.inputs[0].shape as (number | null)[]).slice(1) as number[];
  return {
    runDir,
    tree,
    inputShape,
    space,
    identity: { checksum: hash.digest('hex'), source: resolve(runDir) },
    ...modelEmbedding(backbone, head),
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
