/** Put trained embeddings to work: a hierarchy-aware index, search, placement in the tree, duplicates. */

export {
  type DuplicatePair,
  type DuplicateReport,
  type FindDuplicatesOptions,
  findDuplicates,
} from './duplicates.js';
export {
  EmbeddingIndex,
  type EmbeddingIndexOptions,
  type EmbeddingSpace,
  type IndexItem,
  type IndexItemInput,
  type IndexSnapshot,
  type ModelIdentity,
  type RowNeighbors,
  type SearchGroup,
  type SearchHit,
  type SearchOptions,
  type SearchQuery,
  type SearchResult,
} from './embeddingIndex.js';
export {
  decodeQueryImage,
  type EmbeddedInputs,
  type EmbedInputsOptions,
  embedInputs,
  type InputSource,
} from './embedInputs.js';
export type { HnswOptions } from './hnsw.js';
export { decodeIndexFile, encodeIndexFile, INDEX_FORMAT_VERSION, INDEX_MAGIC } from './indexFile.js';
export { checkSnapshot } from './indexSchema.js';
export {
  type CalibrateOptions,
  calibrate,
  type LabelledEmbeddings,
  type LevelCalibration,
  type LevelPrediction,
  type MethodCalibration,
  type PathCalibration,
  type PathPrediction,
  type PlacementMethod,
  type PredictPathOptions,
  predictPath,
} from './predictPath.js';
export { type NodePrototypes, nodePrototypes } from './prototypes.js';
export { openIndexEncoder, openRunEncoder, type RunEncoder } from './runModel.js';
export { resolveLevel, resolveNode, type TreeNodeRef } from './treeNodes.js';
export { type RowGroup, TreeOrderedSearch } from './treeSearch.js';
export type { EmbeddingsLike } from './vectors.js';
