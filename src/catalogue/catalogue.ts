import { ContrastiveError } from '../errors.js';
import { formatLabelPath, parseLabelPath } from '../hierarchy/labelPath.js';
import { type DuplicateReport, type FindDuplicatesOptions, findDuplicates } from '../search/duplicates.js';
import {
  EmbeddingIndex,
  type SearchOptions,
  type SearchQuery,
  type SearchResult,
} from '../search/embeddingIndex.js';
import {
  type EmbeddedInputs,
  type EmbedInputsOptions,
  embedInputs,
  type InputSource,
} from '../search/embedInputs.js';
import {
  type CalibrateOptions,
  calibrate,
  type PathCalibration,
  type PathPrediction,
  type PredictPathOptions,
  predictPath,
} from '../search/predictPath.js';
import { openIndexEncoder, type RunEncoder } from '../search/runModel.js';
import type { EmbeddingsLike } from '../search/vectors.js';
import { isStoreUrl } from '../store/sqlClient.js';
import {
  type CatalogueCalibration,
  calibrateLeaveOneOut,
  type LeaveOneOutOptions,
  vectorKey,
} from './calibration.js';
import { embedQueryImage } from './queryImage.js';

/** Options of {@link Catalogue.open} and {@link Catalogue.fromIndex}. */
export interface CatalogueOptions {
  /** Run folder of the model, for image queries and `predictData` (default: the one the index records). */
  run?: string;
  /** Open (and check) the model now rather than at the first image query. Default false. */
  loadModel?: boolean;
  /** An encoder already open (checked against the index); the catalogue disposes it. */
  encoder?: RunEncoder | null;
  /** A calibration for {@link Catalogue.predict} (e.g. from {@link Catalogue.calibrate}). */
  calibration?: PathCalibration | null;
}

/** A query: an image (file path or bytes), a vector, or the id of an item of the index. */
export type CatalogueQuery =
  | { image: string | Uint8Array; name?: string }
  | { vector: ArrayLike<number> }
  | { id: string | number };

/** {@link Catalogue.search}'s result: the hits, and the query item's label for an `{ id }` query. */
export interface CatalogueSearch extends SearchResult {
  /** The label path of the query item (`{ id }` queries of a labelled item), else null. */
  queryLabel: string[] | null;
}

/** Options of {@link Catalogue.calibrate}. */
export interface CatalogueCalibrateOptions extends LeaveOneOutOptions {
  /** Labelled data to calibrate on instead of the index's own items (each left out of its own neighbours). */
  on?: { embeddings: EmbeddingsLike; labels: readonly (readonly string[] | string)[]; name: string };
}

/** Options of {@link Catalogue.predictData}. */
export interface PredictDataOptions
  extends Pick<CalibrateOptions, 'targetPrecision' | 'confidence' | 'unseen'> {
  /** Labelled data to calibrate on (default: the index's labelled items, leave-one-out). */
  calibrateOn?: { source: InputSource; name: string; sameAsData?: boolean };
  /** Index items used for leave-one-out calibration. Default 5000. */
  calibrationLimit?: number;
  /** kNN neighbours. Default 200. */
  k?: number;
  method?: PredictPathOptions['method'];
  minConfidence?: number;
  /** Predict items that are also calibration items with a warning instead of refusing. */
  allowOverlap?: boolean;
  /** The first `limit` items of the data only. */
  limit?: number;
  /** Where image files are decoded once and streamed from (default: the run's `cache/`). */
  cacheDir?: string;
  onProgress?: (done: number, total: number) => void;
  onDecodeProgress?: (done: number, total: number) => void;
  onWarning?: (message: string) => void;
}

/** One predicted item of {@link Catalogue.predictData}. */
export interface PredictedItem {
  id: string;
  source: string | null;
  /** The item's own label path (joined), when the data has one. */
  label: string | null;
  /** The predicted path (joined), down to the deepest confident level. */
  path: string;
  depth: number;
  levels: { level: string; name: string; confidence: number; answered: boolean }[];
  /** Whether the predicted node is one the model never saw in training (a catalogue's own class or branch). */
  unseenInTraining: boolean;
}

/** Per level of {@link Catalogue.predictData}: thresholds, validation and what happened on the data. */
export interface PredictedLevel {
  level: string;
  threshold: number | null;
  validationCoverage: number;
  validationPrecision: number;
  /** Share of the items answered at this level. */
  answered: number;
  /** Accuracy of the answered, labelled items (null when none). */
  accuracy: number | null;
}

/** {@link Catalogue.predictData}'s result. */
export interface DataPrediction {
  items: PredictedItem[];
  levels: PredictedLevel[];
  calibration: PathCalibration;
  calibratedOn: string;
  method: string;
  /** What the placement can and cannot say, in words (printed with the predictions). */
  notes: string[];
}

/**
 * An index, the model that made it and the calibration placement uses, in Node: the twin of the
 * browser's `WebCatalogue`. Every use command (`search`, `predict`, `dedupe`, `serve`,
 * `export-web`) goes through it: a query (image, vector or id) becomes a vector here, placement
 * is calibrated here, duplicates are found here.
 *
 * @example
 * ```ts
 * await useBackend();
 * const catalogue = await Catalogue.open('catalogue.index');   // the model recorded in the index
 * const { hits } = await catalogue.search({ image: 'shoe.png' }, { k: 10, within: 'Shoes' });
 * catalogue.calibrate();                                       // leave-one-out on the index
 * const [place] = catalogue.predict([await catalogue.query({ image: 'shoe.png' })]);
 * catalogue.dispose();
 * ```
 */
export class Catalogue {
  private encoderOpen: Promise<RunEncoder> | null;
  private currentCalibration: PathCalibration | null;
  private currentCalibratedOn: string | null = null;

  private constructor(
    /** The searchable index. */
    readonly index: EmbeddingIndex,
    private readonly run: string | undefined,
    encoder: RunEncoder | null,
    calibration: PathCalibration | null,
  ) {
    this.encoderOpen = encoder ? Promise.resolve(encoder) : null;
    this.currentCalibration = calibration;
  }

  /**
   * Loads an index file (checksum verified), or a whole store given by its URL (`pglite:<dir>`,
   * `postgres://…`; it must be ready, not still being built), and, with `loadModel`, the model
   * that made it (the one the file or store records, unless `run` is given).
   */
  static async open(indexFile: string, options: CatalogueOptions = {}): Promise<Catalogue> {
    const index = isStoreUrl(indexFile) ? await loadStore(indexFile) : await EmbeddingIndex.load(indexFile);
    try {
      const catalogue = Catalogue.fromIndex(index, options);
      if (options.loadModel) await catalogue.encoder();
      return catalogue;
    } catch (error) {
      index.dispose();
      throw error;
    }
  }

  /** A catalogue over an index already in memory (`loadModel` is {@link open}'s; here call {@link encoder}). */
  static fromIndex(index: EmbeddingIndex, options: Omit<CatalogueOptions, 'loadModel'> = {}): Catalogue {
    if (options.encoder) index.checkModel(options.encoder.identity, 'Catalogue');
    return new Catalogue(index, options.run, options.encoder ?? null, options.calibration ?? null);
  }

  /** Whether the model is open (image queries answer without loading it first). */
  get hasModel(): boolean {
    return this.encoderOpen !== null;
  }

  /** The calibration {@link predict} uses, or null (raw confidences). */
  get calibration(): PathCalibration | null {
    return this.currentCalibration;
  }

  /** What the calibration was measured on, in words, or null. */
  get calibratedOn(): string | null {
    return this.currentCalibratedOn;
  }

  /** The model that made the index (opened once, its checksum checked against the index's). */
  encoder(): Promise<RunEncoder> {
    this.encoderOpen ??= openIndexEncoder(this.index, this.run).catch((error: unknown) => {
      this.encoderOpen = null;
      throw error;
    });
    return this.encoderOpen;
  }

  /**
   * The vector of a query: an image embedded with the index's model (decoded as the catalogue's
   * images were), a vector checked against the index's dimension, or an item's stored embedding.
   */
  async query(query: CatalogueQuery): Promise<Float32Array> {
    const fn = 'Catalogue.query';
    if (query !== null && typeof query === 'object' && 'image' in query)
      return embedQueryImage(await this.encoder(), query.image, query.name);
    if (query !== null && typeof query === 'object' && 'id' in query) return this.index.embedding(query.id);
    if (query !== null && typeof query === 'object' && 'vector' in query) {
      const vector = query.vector;
      if (vector === null || typeof vector !== 'object' || vector.length !== this.index.dim)
        throw new ContrastiveError(
          `${fn}: query vector must have ${this.index.dim} values (the index's dimension), but got ${vector?.length ?? typeof vector}.`,
        );
      const out = Float32Array.from(vector);
      out.forEach((v, i) => {
        if (!Number.isFinite(v))
          throw new ContrastiveError(
            `${fn}: query vector value ${i} must be a finite number, but got ${vector[i]}.`,
          );
      });
      return out;
    }
    throw new ContrastiveError(
      `${fn}: query must be { image }, { vector } or { id }, but got ${JSON.stringify(query)?.slice(0, 80)}.`,
    );
  }

  /**
   * Searches one query (an `{ id }` query leaves the item out of its own results): see
   * `EmbeddingIndex.search` for the options and their errors.
   */
  async search(query: CatalogueQuery, options: SearchOptions = {}): Promise<CatalogueSearch> {
    if (query !== null && typeof query === 'object' && 'id' in query) {
      const result = this.index.search({ id: query.id }, options);
      return { ...result, queryLabel: this.index.item(query.id).label };
    }
    // a vector is checked by the index (its messages name the query vector)
    const vector =
      query !== null && typeof query === 'object' && 'vector' in query
        ? query.vector
        : await this.query(query);
    return { ...this.index.search({ vector }, options), queryLabel: null };
  }

  /** Searches vectors or ids synchronously (what the server batches). */
  searchVector(query: SearchQuery, options: SearchOptions = {}): SearchResult {
    return this.index.search(query, options);
  }

  /** Searches many query vectors at once (one blocked matrix product per block of queries). */
  searchBatch(queries: EmbeddingsLike, options: SearchOptions = {}): SearchResult[] {
    return this.index.searchBatch(queries, options);
  }

  /**
   * Calibrates placement and keeps the calibration for {@link predict}: on the index's labelled
   * items, each left out of its own neighbours (a seeded sample of `limit`, default 2000), or on
   * labelled data given as `on`. Returns null (and keeps raw confidences) when the index has
   * fewer than 2 labelled items and no `on` was given.
   */
  calibrate(options: CatalogueCalibrateOptions = {}): CatalogueCalibration | null {
    const { on, ...settings } = options;
    let result: CatalogueCalibration | null;
    if (on) {
      const { limit: _limit, ...rest } = settings;
      result = { calibration: calibrate(this.index, on, rest), on: on.name };
    } else result = calibrateLeaveOneOut(this.index, settings);
    this.currentCalibration = result?.calibration ?? null;
    this.currentCalibratedOn = result?.on ?? null;
    return result;
  }

  /** Places embeddings in the tree, with the catalogue's calibration unless `options.calibration` is given. */
  predict(embeddings: EmbeddingsLike, options: PredictPathOptions = {}): PathPrediction[] {
    return predictPath(this.index, embeddings, {
      calibration: this.currentCalibration ?? undefined,
      ...options,
    });
  }

  /** Embeds data with the index's model (see `embedInputs`: image files stream from the image cache). */
  async embed(
    source: InputSource,
    options: Pick<EmbedInputsOptions, 'limit' | 'cacheDir' | 'onProgress' | 'onDecodeProgress'> = {},
  ): Promise<EmbeddedInputs> {
    return embedInputs(await this.encoder(), source, options);
  }

  /**
   * Embeds data, calibrates (on `calibrateOn`, else leave-one-out on the index) and places every
   * item, refusing (or, with `allowOverlap`, warning about) items that are also calibration items:
   * their calibrated precision would be measured on themselves.
   */
  async predictData(source: InputSource, options: PredictDataOptions = {}): Promise<DataPrediction> {
    const fn = 'Catalogue.predictData';
    const embedded = await this.embed(source, {
      limit: options.limit,
      cacheDir: options.cacheDir,
      onProgress: options.onProgress,
      onDecodeProgress: options.onDecodeProgress,
    });
    const settings = {
      k: options.k ?? 200,
      targetPrecision: options.targetPrecision,
      confidence: options.confidence,
      unseen: options.unseen,
    };
    const overlapWith = (ids: Set<string>, vectors: Set<string>, what: string) => {
      let shared = 0;
      embedded.items.forEach((it, i) => {
        const v = embedded.embeddings.subarray(i * embedded.dim, (i + 1) * embedded.dim);
        if (ids.has(String(it.id)) || vectors.has(vectorKey(v))) shared++;
      });
      if (shared === 0) return;
      const message = `${shared} of ${embedded.items.length} items to predict are also ${what} (same id or vector): their calibrated precision would be measured on themselves`;
      if (!options.allowOverlap)
        throw new ContrastiveError(
          `${fn}: ${message}; calibrate on other data (--calibrate-on), predict items outside the index, or pass --allow-overlap.`,
        );
      options.onWarning?.(`${message}; the guarantee does not hold for them.`);
    };
    let calibrated: CatalogueCalibration | null;
    const on = options.calibrateOn;
    if (on) {
      const labelled = await this.embed(on.source, { cacheDir: options.cacheDir });
      const rows = labelled.items.flatMap((it, i) => (it.label ? [i] : []));
      const rowOf = (i: number) => labelled.embeddings.subarray(i * labelled.dim, (i + 1) * labelled.dim);
      overlapWith(
        new Set(on.sameAsData ? labelled.items.map((it) => String(it.id)) : []),
        new Set(rows.map((i) => vectorKey(rowOf(i)))),
        `items of --calibrate-on ${on.name}`,
      );
      if (rows.length === 0)
        throw new ContrastiveError(
          `${fn}: --calibrate-on ${on.name} must be labelled, but has no label paths.`,
        );
      calibrated = this.calibrate({
        ...settings,
        on: {
          embeddings: rows.map(rowOf),
          labels: rows.map((i) => labelled.items[i].label!),
          name: `${rows.length} items of ${on.name}`,
        },
      });
    } else {
      if (this.index.items().filter((it) => it.label !== null).length < 2)
        throw new ContrastiveError(
          `${fn}: the index has fewer than 2 labelled items to calibrate on; pass --calibrate-on.`,
        );
      // the index's items are the calibration items and every query's neighbours
      overlapWith(
        new Set(),
        new Set(this.index.items().map((it) => vectorKey(this.index.embedding(it.id)))),
        'items of the index',
      );
      calibrated = this.calibrate({ ...settings, limit: options.calibrationLimit ?? 5000 });
    }
    const { calibration, on: calibratedOn } = calibrated!;
    const predictions = this.predict(embedded.embeddings, {
      method: options.method ?? 'auto',
      k: settings.k,
      minConfidence: options.minConfidence,
    });
    const tree = this.index.tree;
    const truths = embedded.items.map((item) =>
      item.label
        ? typeof item.label === 'string'
          ? parseLabelPath(item.label, tree.separator)
          : [...item.label]
        : null,
    );
    const items: PredictedItem[] = predictions.map((p, i) => ({
      id: String(embedded.items[i].id),
      source: embedded.items[i].source ?? null,
      label: truths[i] ? formatLabelPath(truths[i], tree.separator) : null,
      path: formatLabelPath(p.path, tree.separator),
      depth: p.depth,
      levels: p.levels.map((l) => ({
        level: l.levelName,
        name: l.name,
        confidence: l.confidence,
        answered: l.answered,
      })),
      unseenInTraining: p.depth > 0 && this.index.isUnseen(p.path),
    }));
    const levels = tree.levelNames.map((level, l): PredictedLevel => {
      const cal = calibration.levels[l];
      const answered = items.flatMap((r, i) => (r.depth > l ? [i] : []));
      const judged = answered.filter((i) => truths[i] !== null);
      const right = judged.filter((i) =>
        items[i].levels.slice(0, l + 1).every((x, j) => x.name === truths[i]![j]),
      ).length;
      return {
        level,
        threshold: Number.isFinite(cal.threshold) ? cal.threshold : null,
        validationCoverage: cal.coverage,
        validationPrecision: cal.precision,
        answered: answered.length / Math.max(1, items.length),
        accuracy: judged.length ? right / judged.length : null,
      };
    });
    const notes = [
      'placement answers only nodes the index holds examples of: an item of a class with no example in the index stops at a coarser node (its parent at best), never at its own class',
    ];
    const unseenNodes = this.index.unseenNodes;
    if (unseenNodes.length > 0) {
      const placed = items.filter((it) => it.unseenInTraining).length;
      notes.push(
        `${unseenNodes.length} nodes of the index were never seen by the model in training (${unseenNodes
          .slice(0, 5)
          .map((p) => formatLabelPath(p, tree.separator))
          .join(
            ', ',
          )}${unseenNodes.length > 5 ? ', ...' : ''}); ${placed} of ${items.length} items were placed at one: placement there rests on the catalogue's own examples, not on what training measured (contrastive index --report prints retrieval on them)`,
      );
    }
    return {
      items,
      levels,
      calibration,
      calibratedOn,
      method: predictions[0]?.method ?? calibration.method,
      notes,
    };
  }

  /** Near-duplicate pairs and clusters (see `findDuplicates`); default: a calibrated target precision of 0.99. */
  dedupe(options: FindDuplicatesOptions = {}): DuplicateReport {
    return findDuplicates(this.index, options);
  }

  /** Frees the model and the index's cached tensor. */
  dispose(): void {
    this.encoderOpen?.then((encoder) => encoder.dispose()).catch(() => {});
    this.encoderOpen = null;
    this.index.dispose();
  }
}

/** A ready store read whole into an index (the store is closed again before this resolves). */
async function loadStore(url: string): Promise<EmbeddingIndex> {
  const { PostgresStore } = await import('../store/postgresStore.js');
  const store = await PostgresStore.open(url);
  try {
    const info = await store.info();
    if (info && info.state !== 'ready')
      throw new ContrastiveError(
        `Catalogue.open: the store ${store.url} is still being built (${info.items} of ${info.expectedItems ?? '?'} items): finish the import or the workers (contrastive store import / contrastive worker) before using it.`,
      );
    return await store.loadIndex();
  } finally {
    await store.close();
  }
}
