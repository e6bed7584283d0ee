/// <reference lib="dom" />
import * as tfconv from '@tensorflow/tfjs-converter';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { type PortableImageOptions, prepareImage, type RgbaImage } from '../data/portableImage.js';
import { ContrastiveError } from '../errors.js';
import type { FrozenBackboneRecord } from '../models/featureExtractor.js';
import { modelInput, pool } from '../models/featurePipeline.js';
import { sha256Async, toHex } from './sha256.js';

/**
 * A run's frozen pretrained backbone in the page (`backbone.json` + its files): the same input
 * pipeline as Node's (`data/portableImage.ts` resize, `models/featurePipeline.ts` scaling and
 * pooling), with the model run by stock tfjs (layers), `@tensorflow/tfjs-converter` (graph) or
 * onnxruntime-web (ONNX).
 */

/** What the page needs of a run's `backbone.json` (the web site copies it into `site-config.js`). */
export type WebBackboneRecord = Pick<
  FrozenBackboneRecord,
  'kind' | 'sha256' | 'output' | 'pooling' | 'preprocessing' | 'featureDim'
>;

/** The parts of onnxruntime-web used here (`ort.wasm.min.mjs`). */
export interface OrtWeb {
  env: { wasm: { wasmPaths?: string | Record<string, string>; numThreads?: number; proxy?: boolean } };
  InferenceSession: {
    create(model: Uint8Array, options?: object): Promise<OrtWebSession>;
  };
  Tensor: new (
    type: 'float32',
    data: Float32Array,
    dims: readonly number[],
  ) => {
    data: unknown;
    dims: readonly number[];
  };
}
interface OrtWebSession {
  inputNames: readonly string[];
  outputNames: readonly string[];
  run(
    feeds: Record<string, unknown>,
    fetches?: readonly string[],
  ): Promise<Record<string, { data: unknown; dims: readonly number[] }>>;
  release(): Promise<void>;
}

/** A frozen backbone loaded in the page: pixels to features. */
export interface WebBackbone {
  record: WebBackboneRecord;
  /** The image steps before the model (composite, fit, resize), as Node's portable decoder. */
  prepare(image: RgbaImage): Uint8Array;
  /** `[n, h, w, 3]` bytes of {@link prepare} to `[n, featureDim]` features. */
  extract(pixels: Uint8Array, n: number): Promise<tf.Tensor2D>;
  dispose(): void;
}

/** Options of {@link openWebBackbone}. */
export interface WebBackboneOptions {
  record: WebBackboneRecord;
  /**
   * The model's files in the order its checksum covers them (`backboneFiles` in Node): `model.json`
   * then its weight files by the name the manifest gives (layers, graph), or `model.onnx`.
   */
  files: [string, Uint8Array][];
  /** onnxruntime-web, for an ONNX backbone (the page imports the copy beside it). */
  ort?: OrtWeb;
}

function weightData(fn: string, jsonBytes: Uint8Array, files: Record<string, Uint8Array>) {
  const json = JSON.parse(new TextDecoder().decode(jsonBytes)) as {
    modelTopology: object;
    weightsManifest: { paths: string[]; weights: tf.io.WeightsManifestEntry[] }[];
  };
  const parts: Uint8Array[] = [];
  for (const group of json.weightsManifest ?? [])
    for (const p of group.paths) {
      const bytes = files[p];
      if (!bytes)
        throw new ContrastiveError(`${fn}: the backbone's weight file ${JSON.stringify(p)} is missing.`);
      parts.push(bytes);
    }
  const all = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let at = 0;
  for (const p of parts) {
    all.set(p, at);
    at += p.length;
  }
  return {
    modelTopology: json.modelTopology,
    weightSpecs: (json.weightsManifest ?? []).flatMap((g) => g.weights),
    weightData: all.buffer as ArrayBuffer,
  };
}

/** SHA-256 (hex) of a backbone's files as Node's `backboneSha256` computes it (name, length, bytes of each). */
export async function backboneFilesSha256(files: readonly [string, Uint8Array][]): Promise<string> {
  const encoder = new TextEncoder();
  const parts = files.flatMap(([name, bytes]) => [
    encoder.encode(`${name.split('/').pop()}\u0000${bytes.length}\u0000`),
    bytes,
  ]);
  const all = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let at = 0;
  for (const p of parts) {
    all.set(p, at);
    at += p.length;
  }
  return toHex(await sha256Async(all));
}

/**
 * Loads a run's frozen backbone in the page. Its files must hash to `record.sha256` (the checksum
 * the run recorded): a changed file is a {@link ContrastiveError}.
 */
export async function openWebBackbone(options: WebBackboneOptions): Promise<WebBackbone> {
  const fn = 'openWebBackbone';
  const { record } = options;
  const got = await backboneFilesSha256(options.files);
  if (got !== record.sha256)
    throw new ContrastiveError(
      `${fn}: the backbone's files (${options.files.map(([n]) => n).join(', ')}) have SHA-256 ${got.slice(0, 12)}…, but the run recorded ${record.sha256.slice(0, 12)}…; export the site again from the run's own backbone.`,
    );
  if (options.files.length === 0) throw new ContrastiveError(`${fn}: the backbone has no files.`);
  const [, first] = options.files[0];
  const files = Object.fromEntries(options.files);
  const p = record.preprocessing;
  if (p.resampler !== 'portable')
    throw new ContrastiveError(
      `${fn}: this run's backbone resizes images with sharp (it was trained before the portable resampler), which the page cannot reproduce; train the run again.`,
    );
  const [h, w] = p.size;
  let run: (input: tf.Tensor) => Promise<tf.Tensor>;
  let release: () => void;
  if (record.kind === 'layers') {
    const loaded = await tfl.loadLayersModel(tf.io.fromMemory(weightData(fn, first, files)));
    let features = loaded.outputs[0];
    if (record.output) {
      const layer = loaded.layers.find((l) => l.name === record.output);
      if (!layer)
        throw new ContrastiveError(`${fn}: the backbone has no layer ${JSON.stringify(record.output)}.`);
      features = layer.output as tfl.SymbolicTensor;
    }
    const model =
      features === loaded.outputs[0] ? loaded : tfl.model({ inputs: loaded.inputs, outputs: features });
    run = async (input) => model.predict(input) as tf.Tensor;
    release = () => loaded.dispose();
  } else if (record.kind === 'graph') {
    const graph = await tfconv.loadGraphModel(tf.io.fromMemory(weightData(fn, first, files)));
    run = async (input) => {
      const out = graph.execute(input, record.output ?? undefined);
      if (!Array.isArray(out)) return out;
      tf.dispose(out.slice(1));
      return out[0];
    };
    release = () => graph.dispose();
  } else {
    const ort = options.ort;
    if (!ort) throw new ContrastiveError(`${fn}: an ONNX backbone needs onnxruntime-web (options.ort).`);
    const session = await ort.InferenceSession.create(first, { graphOptimizationLevel: 'all' });
    const output = record.output ?? session.outputNames[0];
    const inputName = session.inputNames[0];
    run = async (input) => {
      const data = (await input.data()) as Float32Array;
      const result = await session.run({ [inputName]: new ort.Tensor('float32', data, input.shape) }, [
        output,
      ]);
      const out = result[output];
      const values =
        out.data instanceof Float32Array ? out.data : Float32Array.from(out.data as ArrayLike<number>);
      return tf.tensor(values, [...out.dims]);
    };
    release = () => void session.release();
  }
  const fit: PortableImageOptions = { size: [h, w], fit: p.fit, background: p.background };
  return {
    record,
    prepare: (image) => prepareImage(image, fit),
    async extract(pixels, n) {
      // scaled as Node's decoder scales bytes (in doubles, then to float32)
      const images = tf.tensor4d(
        Float32Array.from(pixels, (v) => v / 255),
        [n, h, w, 3],
      );
      const input = modelInput(images, p);
      images.dispose();
      let raw: tf.Tensor;
      try {
        raw = await run(input);
      } finally {
        input.dispose();
      }
      return tf.tidy(() => pool(raw, record.pooling, p.layout)) as tf.Tensor2D;
    },
    dispose: release,
  };
}
