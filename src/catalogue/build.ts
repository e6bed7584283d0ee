import { EmbeddingIndex, type EmbeddingSpace } from '../search/embeddingIndex.js';
import { embedInputs, type InputSource } from '../search/embedInputs.js';
import { openRunEncoder } from '../search/runModel.js';
import { catalogueTree } from './newClasses.js';

/** Options of {@link buildIndex}. */
export interface BuildIndexOptions {
  /** Which model output to index. Default `'backbone'`. */
  space?: EmbeddingSpace;
  /** Also build an HNSW graph. Default false. */
  approximate?: boolean;
  /** Store a small PNG of every image. Default false. */
  thumbnails?: boolean;
  /** The first `limit` items only. */
  limit?: number;
  /** Where image files are decoded once and streamed from (default: the run's `cache/`). */
  cacheDir?: string;
  /** Called after every embedded batch. */
  onProgress?: (done: number, total: number) => void;
  /** Called while the image cache is built (images decoded, total). */
  onDecodeProgress?: (done: number, total: number) => void;
}

/**
 * Embeds data with a trained run and makes its index. Labels the run's tree does not hold are new
 * classes, welcome: the index holds the catalogue's own tree (the run's tree plus the new nodes,
 * each marked unseen in training; see `EmbeddingIndex.unseenNodes`), so search `within` and
 * `groupBy` cover them and placement can answer them.
 *
 * @example
 * ```ts
 * const index = await buildIndex('runs/supcon', { kind: 'image-folder', path: 'catalogue/' });
 * console.log(index.unseenNodes);   // e.g. [['Goods', 'Accessories', 'Backpack']]
 * await index.save('catalogue.index');
 * ```
 */
export async function buildIndex(
  run: string,
  source: InputSource,
  options: BuildIndexOptions = {},
): Promise<EmbeddingIndex> {
  const encoder = await openRunEncoder(run, options.space ?? 'backbone');
  try {
    const embedded = await embedInputs(encoder, source, {
      limit: options.limit,
      cacheDir: options.cacheDir,
      onProgress: options.onProgress,
      onDecodeProgress: options.onDecodeProgress,
      thumbnails: options.thumbnails ?? false,
    });
    const { tree, unseen } = catalogueTree(
      encoder.tree,
      embedded.items.map((it) => it.label),
      'buildIndex',
    );
    const index = EmbeddingIndex.create({
      tree,
      dim: embedded.dim,
      space: encoder.space,
      model: encoder.identity,
      unseen,
    });
    index.add(embedded.items, embedded.embeddings);
    if (options.approximate) await index.buildApproximate();
    return index;
  } finally {
    encoder.dispose();
  }
}
