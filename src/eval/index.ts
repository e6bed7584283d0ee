export { type ConsistencyOptions, type HierarchyConsistency, hierarchyConsistency } from './consistency.js';
export {
  type EmbeddedSplit,
  type EvaluateOptions,
  type EvaluationSummary,
  evaluateEmbeddings,
} from './evaluate.js';
export { type KnnOptions, type KnnResult, knnClassify } from './knn.js';
export { type LinearProbeOptions, type LinearProbeResult, linearProbe } from './linearProbe.js';
export {
  forEachSimilarityRow,
  type Neighbors,
  nearestNeighbors,
  type SimilarityOptions,
  topK,
} from './neighbors.js';
export { pca2d } from './projection.js';
export { type LevelRetrieval, type RetrievalOptions, retrievalMetrics } from './retrieval.js';
export { type MistakeSeverity, mistakeSeverity } from './severity.js';
