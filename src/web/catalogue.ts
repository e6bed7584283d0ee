/// <reference lib="dom" />
import * as tf from '@tensorflow/tfjs-core';
import { ContrastiveError } from '../errors.js';
import { EmbeddingIndex, type SearchOptions, type SearchResult } from '../search/embeddingIndex.js';
import {
  type PathCalibration,
  type PathPrediction,
  type PredictPathOptions,
  predictPath,
} from '../search/predictPath.js';
import { childLists } from '../search/treeNodes.js';
import { calibrationFromJSON, type PathCalibrationJSON } from './calibrationJson.js';
import {
  type ImageInput,
  type ImageShape,
  modelInputFromPixels,
  readImagePixels,
  readImageRgba,
} from './pixels.js';
import { openWebBackbone, type WebBackboneOptions } from './webBackbone.js';
import { loadWebIndex } from './webIndex.js';
import { type ModelFiles, openWebEncoder, type WebEncoder } from './webModel.js';

/** A node of the label tree, as a `<select>` lists them (depth-first, parents before children). */
export interface TreeNodeOption {
  /** Segments, coarsest first: pass `formatLabelPath(path, separator)` as `within` (names may hold the separator). */
  path: string[];
  level: number;
  levelName: string;
  /** Items of the index under this node. */
  count: number;
}

/** Options of {@link WebCatalogue.open}. */
export interface WebCatalogueOptions {
  /** The index: loaded, its file's bytes, or its URL. */
  index: EmbeddingIndex | ArrayBuffer | Uint8Array | string | URL;
  /** The run's `model/` folder: its files, or the URL of its `model.json`. */
  backbone: ModelFiles | string | URL;
  /** The run's `head/` folder, for a `'head'` index. */
  head?: ModelFiles | string | URL;
  /** From `calibrate` (e.g. as `contrastive export-web` stores it): calibrated confidences and thresholds. */
  calibration?: PathCalibration | PathCalibrationJSON;
  /**
   * A run on a frozen pretrained backbone: its `backbone.json` record and files (checked against
   * the recorded SHA-256); `backbone` is then the run's `model/` (the MLP on the features).
   */
  pretrained?: WebBackboneOptions;
}

/** What {@link WebCatalogue.query} returns. */
export interface CatalogueAnswer {
  /** The query's embedding (as the model outputs it, not normalised). */
  embedding: Float32Array;
  result: SearchResult;
  prediction: PathPrediction;
}

/**
 * An index and the model that made it, in the browser: embed an image exactly as Node does, search
 * (exact, within a subtree, grouped by a level) and place it in the tree with per-level confidences.
 *
 * @example
 * ```ts
 * import '@tensorflow/tfjs-backend-cpu';
 * import { WebCatalogue } from 'tfjs-contrastive/web';
 * const catalogue = await WebCatalogue.open({ index: 'catalogue.index', backbone: 'model/model.json' });
 * const { result, prediction } = await catalogue.query(file, { k: 10, within: 'Clothes/Tops' });
 * ```
 */
export class WebCatalogue {
  private constructor(
    /** The searchable index. */
    readonly index: EmbeddingIndex,
    /** The model that made it (checksum verified). */
    readonly encoder: WebEncoder,
    /** Calibration for {@link predict}, when given. */
    readonly calibration: PathCalibration | undefined,
  ) {}

  /** Loads the index and the model, and checks that this model made this index. */
  static async open(options: WebCatalogueOptions): Promise<WebCatalogue> {
    const index = options.index instanceof EmbeddingIndex ? options.index : await loadWebIndex(options.index);
    const pretrained = options.pretrained ? await openWebBackbone(options.pretrained) : undefined;
    const encoder = await openWebEncoder({
      backbone: options.backbone,
      head: options.head,
      index,
      pretrained,
    }).catch((error: unknown) => {
      pretrained?.dispose();
      throw error;
    });
    // a PathCalibration passes through unchanged (its Infinity thresholds are kept); JSON's nulls become Infinity
    const calibration = options.calibration
      ? calibrationFromJSON(options.calibration as PathCalibrationJSON)
      : undefined;
    return new WebCatalogue(index, encoder, calibration);
  }

  /** The model's input as an image `[height, width, channels]` (an MLP on 784 features reads 28×28 grey). */
  get imageShape(): ImageShape {
    const pretrained = this.encoder.pretrained;
    if (pretrained) return [...pretrained.record.preprocessing.size, 3] as const;
    const shape = this.encoder.inputShape;
    if (shape.length === 3) return shape as unknown as ImageShape;
    if (shape.length === 1 && shape[0] === 784) return [28, 28, 1];
    throw new ContrastiveError(
      `WebCatalogue: the model takes feature vectors [${shape}], not images; query with a vector.`,
    );
  }

  /** Embeds one image as Node's `decodeQueryImage` + the run's encoder do. */
  async embedImage(image: ImageInput): Promise<Float32Array> {
    if (this.encoder.pretrained) return (await this.embedPretrained(image)).embedding;
    const input = modelInputFromPixels(await readImagePixels(image), this.imageShape);
    return this.embedInput(input);
  }

  /**
   * Embeds one image through the run's frozen pretrained backbone, as Node does: decoded (PNG
   * exactly), composited, fitted and resized by the portable pipeline, run through the backbone,
   * pooled, then the trained MLP. Also returns the backbone's input bytes `[h, w, 3]`.
   */
  async embedPretrained(image: ImageInput): Promise<{ embedding: Float32Array; pixels: Uint8Array }> {
    const backbone = this.encoder.pretrained;
    if (!backbone)
      throw new ContrastiveError('WebCatalogue.embedPretrained: this run has no frozen pretrained backbone.');
    const pixels = backbone.prepare(await readImageRgba(image));
    const features = await backbone.extract(pixels, 1);
    const out = tf.tidy(() => this.encoder.embed(features));
    features.dispose();
    const embedding = Float32Array.from(await out.data());
    out.dispose();
    return { embedding, pixels };
  }

  /** Embeds one model input (`inputShape` floats, e.g. pixels in [0, 1]). */
  embedInput(input: Float32Array): Float32Array {
    const size = this.encoder.inputShape.reduce((a, b) => a * b, 1);
    if (input.length !== size)
      throw new ContrastiveError(
        `WebCatalogue.embedInput: input must have ${size} values (shape [${this.encoder.inputShape}]), but got ${input.length}.`,
      );
    const out = tf.tidy(() => this.encoder.embed(tf.tensor(input, [1, ...this.encoder.inputShape])));
    const vector = Float32Array.from(out.dataSync());
    out.dispose();
    return vector;
  }

  /** Searches with an embedding (see `EmbeddingIndex.search` for the options and errors). */
  search(embedding: ArrayLike<number>, options: SearchOptions = {}): SearchResult {
    return this.index.search({ vector: embedding }, options);
  }

  /** Places an embedding in the tree (calibrated when the catalogue has a calibration). */
  predict(embedding: ArrayLike<number>, options: PredictPathOptions = {}): PathPrediction {
    return predictPath(this.index, [Array.from(embedding)], { calibration: this.calibration, ...options })[0];
  }

  /** Embeds an image (or takes an embedding), searches and predicts its path. */
  async query(
    image: ImageInput | Float32Array,
    options: SearchOptions = {},
    predictOptions: PredictPathOptions = {},
  ): Promise<CatalogueAnswer> {
    const embedding = image instanceof Float32Array ? image : await this.embedImage(image);
    return {
      embedding,
      result: this.search(embedding, options),
      prediction: this.predict(embedding, predictOptions),
    };
  }

  /** Every node of the tree, depth-first, with how many items of the index sit under it. */
  nodes(): TreeNodeOption[] {
    const tree = this.index.tree;
    const children = childLists(tree);
    const leafCounts = new Int32Array(tree.numClasses());
    for (let row = 0; row < this.index.size; row++) {
      const leaf = this.index.leafAt(row);
      if (leaf >= 0) leafCounts[leaf]++;
    }
    const out: TreeNodeOption[] = [];
    const walk = (level: number, id: number): number => {
      const entry: TreeNodeOption = {
        path: tree.path(level, id),
        level,
        levelName: tree.levelNames[level],
        count: 0,
      };
      out.push(entry);
      entry.count =
        level === tree.depth - 1
          ? leafCounts[id]
          : children[level][id].reduce((s, c) => s + walk(level + 1, c), 0);
      return entry.count;
    };
    for (let id = 0; id < tree.levelSizes[0]; id++) walk(0, id);
    return out;
  }

  /** Frees the model and the index's cached tensor. */
  dispose(): void {
    this.encoder.dispose();
    this.index.dispose();
  }
}
