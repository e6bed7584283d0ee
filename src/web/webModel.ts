/// <reference lib="dom" />
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { ContrastiveError } from '../errors.js';
import type { EmbeddingSpace, ModelIdentity } from '../search/embeddingIndex.js';
import { modelEmbedding } from '../search/modelEmbedding.js';
import { sha256Async, toHex } from './sha256.js';
import type { WebBackbone } from './webBackbone.js';

/**
 * A tfjs layers model folder as bytes: `model.json` and each weight file it lists, by the name
 * its `weightsManifest` gives (a run's `model/` folder: `model.json` + `weights.bin`).
 */
export interface ModelFiles {
  modelJson: Uint8Array;
  weights: Record<string, Uint8Array>;
}

interface ModelJson {
  modelTopology: object;
  weightsManifest: { paths: string[]; weights: tf.io.WeightsManifestEntry[] }[];
}

/** The index that a model must match: its recorded model (if any) and space. */
export interface IndexModelRecord {
  model: ModelIdentity | null;
  space: EmbeddingSpace;
  checkModel(model: ModelIdentity, where?: string): void;
}

/** A loaded model that embeds like `openRunEncoder` in Node: backbone, then the head for `'head'`. */
export interface WebEncoder {
  /** Shape of one input, e.g. `[28, 28, 1]` or `[784]`. */
  inputShape: number[];
  space: EmbeddingSpace;
  /** The SHA-256 of the model files, computed as Node computes it for an index. */
  identity: ModelIdentity;
  /**
   * `[N, ...inputShape]` inputs to `[N, D]` embeddings (inference mode); with a {@link pretrained}
   * backbone, its `[N, featureDim]` features.
   */
  embed(inputs: tf.Tensor): tf.Tensor2D;
  /** The run's frozen pretrained backbone, when it has one. */
  pretrained?: WebBackbone;
  dispose(): void;
}

function parseModelJson(files: ModelFiles, where: string, checkWeights = true): ModelJson {
  let json: ModelJson;
  try {
    json = JSON.parse(new TextDecoder().decode(files.modelJson));
  } catch (error) {
    throw new ContrastiveError(`${where}: model.json is not JSON (${(error as Error).message}).`);
  }
  if (!json || typeof json.modelTopology !== 'object' || !Array.isArray(json.weightsManifest))
    throw new ContrastiveError(
      `${where}: model.json is not a tfjs layers model (no modelTopology / weightsManifest).`,
    );
  for (const group of json.weightsManifest)
    for (const p of group.paths)
      if (checkWeights && !(p in files.weights))
        throw new ContrastiveError(
          `${where}: weight file ${JSON.stringify(p)} listed in model.json is missing (got ${
            Object.keys(files.weights)
              .map((k) => JSON.stringify(k))
              .join(', ') || 'none'
          }).`,
        );
  return json;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

/** The bytes a model's checksum covers, in Node's order (`runModel.ts`): model.json, then each weight file as listed. */
function checksummedBytes(files: ModelFiles, json: ModelJson): Uint8Array[] {
  return [files.modelJson, ...json.weightsManifest.flatMap((g) => g.paths.map((p) => files.weights[p]))];
}

/**
 * SHA-256 (hex) of model folders as an index records it: the backbone's files, then the head's
 * (for `'head'` indexes). Equal to Node's `openRunEncoder(...).identity.checksum`.
 */
export async function modelChecksum(models: readonly ModelFiles[], backboneSha256?: string): Promise<string> {
  const parts = models.flatMap((m, i) =>
    checksummedBytes(m, parseModelJson(m, `modelChecksum: models[${i}]`)),
  );
  // a run on a frozen pretrained backbone: Node adds the backbone's recorded checksum (hex text)
  if (backboneSha256 !== undefined) parts.push(new TextEncoder().encode(backboneSha256));
  return toHex(await sha256Async(concat(parts)));
}

/**
 * Fetches a model folder from the URL of its `model.json` (weight files are fetched beside it).
 * A failed request is a {@link ContrastiveError} naming the URL and the HTTP status.
 */
export async function fetchModelFiles(modelJsonUrl: string | URL): Promise<ModelFiles> {
  const url = new URL(modelJsonUrl, globalThis.location?.href);
  const modelJson = await fetchBytes(url, 'fetchModelFiles');
  const json = parseModelJson({ modelJson, weights: {} }, 'fetchModelFiles', false);
  const weights: Record<string, Uint8Array> = {};
  for (const group of json.weightsManifest)
    for (const p of group.paths) weights[p] = await fetchBytes(new URL(p, url), 'fetchModelFiles');
  return { modelJson, weights };
}

/** Fetches bytes; errors name the URL. */
export async function fetchBytes(url: string | URL, where: string): Promise<Uint8Array> {
  let response: Response;
  try {
    response = await fetch(url);
  } catch (error) {
    throw new ContrastiveError(`${where}: cannot fetch ${String(url)} (${(error as Error).message}).`);
  }
  if (!response.ok)
    throw new ContrastiveError(`${where}: cannot fetch ${String(url)}: HTTP ${response.status}.`);
  return new Uint8Array(await response.arrayBuffer());
}

async function buildModel(files: ModelFiles, where: string): Promise<tfl.LayersModel> {
  const json = parseModelJson(files, where);
  const weightData = concat(json.weightsManifest.flatMap((g) => g.paths.map((p) => files.weights[p])));
  try {
    return await tfl.loadLayersModel(
      tf.io.fromMemory({
        modelTopology: json.modelTopology,
        weightSpecs: json.weightsManifest.flatMap((g) => g.weights),
        weightData: weightData.buffer as ArrayBuffer,
      }),
    );
  } catch (error) {
    throw new ContrastiveError(`${where}: cannot build the model: ${(error as Error).message}`);
  }
}

/** Options of {@link openWebEncoder}. */
export interface WebEncoderOptions {
  /** The run's `model/` folder: its files, or the URL of its `model.json`. */
  backbone: ModelFiles | string | URL;
  /** The run's `head/` folder, for indexes of the projection head's space. */
  head?: ModelFiles | string | URL;
  /**
   * The index the queries will search: its recorded model checksum must equal these files' (a
   * different model would embed queries into another space), and a `'head'` index needs `head`.
   */
  index?: IndexModelRecord;
  /** Named in the identity and in messages. Default `'browser'`. */
  source?: string;
  /**
   * The run's frozen pretrained backbone (`backbone.json`), loaded: `backbone` is then the run's
   * trained MLP on its features, and the checksum covers the backbone's recorded SHA-256 as Node's does.
   */
  pretrained?: WebBackbone;
}

/**
 * Loads a trained run's model in the browser with stock tfjs (any registered backend), checked
 * against the index it will query, so queries are embedded exactly as Node embedded the items.
 */
export async function openWebEncoder(options: WebEncoderOptions): Promise<WebEncoder> {
  const fn = 'openWebEncoder';
  const space: EmbeddingSpace = options.index?.space ?? (options.head ? 'head' : 'backbone');
  if (space === 'head' && !options.head)
    throw new ContrastiveError(
      `${fn}: head must be given: the index holds projection-head embeddings (space 'head'), which need the run's head/ model.`,
    );
  const resolveFiles = (m: ModelFiles | string | URL) =>
    typeof m === 'string' || m instanceof URL ? fetchModelFiles(m) : Promise.resolve(m);
  const backboneFiles = await resolveFiles(options.backbone);
  const headFiles = space === 'head' && options.head ? await resolveFiles(options.head) : null;
  const identity: ModelIdentity = {
    checksum: await modelChecksum(
      headFiles ? [backboneFiles, headFiles] : [backboneFiles],
      options.pretrained?.record.sha256,
    ),
    source: options.source ?? 'browser',
  };
  options.index?.checkModel(identity, fn);
  const backbone = await buildModel(backboneFiles, `${fn}: backbone`);
  let head: tfl.LayersModel | null = null;
  if (headFiles) {
    try {
      head = await buildModel(headFiles, `${fn}: head`);
    } catch (error) {
      backbone.dispose();
      throw error;
    }
  }
  const inputShape = (backbone.inputs[0].shape as (number | null)[]).slice(1) as number[];
  const inner = modelEmbedding(backbone, head);
  const pretrained = options.pretrained;
  return {
    inputShape,
    space,
    identity,
    embed: inner.embed,
    pretrained,
    dispose: () => {
      inner.dispose();
      pretrained?.dispose();
    },
  };
}
