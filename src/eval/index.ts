export { type ConsistencyOptions, type HierarchyConsistency, hierarchyConsistency } from './consistency.js';
export { type KnnOptions, type KnnResult, knnClassify } from './knn.js';
export { type LinearProbeOptions, type LinearProbeResult, linearProbe } from './linearProbe.js';
export {
  forEachSimilarityRow,
  type Neighbors,
  nearestNeighbors,
  type SimilarityOptions,
  topK,
} from './neighbors.js';
export { type LevelRetrieval, type RetrievalOptions, retrievalMetrics } from './retrieval.js';
export { type MistakeSeverity, mistakeSeverity } from './severity.js';
