/**
 * The browser entry of tfjs-contrastive (`tfjs-contrastive/web`): the index files and trained
 * models Node writes, used in a web page with stock tfjs. No Node-only module is reachable from
 * here. Register a tfjs backend first (e.g. `import '@tensorflow/tfjs-backend-cpu'`).
 */

export {
  isPng,
  type ParsedPng,
  type PortableImageOptions,
  parsePng,
  pngToRgba,
  prepareImage,
  type RgbaImage,
} from '../data/portableImage.js';
export { ContrastiveError } from '../errors.js';
export type { LabelPath } from '../hierarchy/labelTree.js';
export { LabelTree } from '../hierarchy/labelTree.js';
export {
  EmbeddingIndex,
  type EmbeddingSpace,
  type IndexItem,
  type IndexSnapshot,
  type ModelIdentity,
  type SearchGroup,
  type SearchHit,
  type SearchOptions,
  type SearchQuery,
  type SearchResult,
} from '../search/embeddingIndex.js';
export { INDEX_FORMAT_VERSION, INDEX_MAGIC } from '../search/indexFormat.js';
export {
  type LevelPrediction,
  type PathCalibration,
  type PathPrediction,
  type PredictPathOptions,
  predictPath,
} from '../search/predictPath.js';
export { calibrationFromJSON, calibrationToJSON, type PathCalibrationJSON } from './calibrationJson.js';
export {
  type CatalogueAnswer,
  type TreeNodeOption,
  WebCatalogue,
  type WebCatalogueOptions,
} from './catalogue.js';
export {
  convertChannels,
  greyOf,
  type ImageInput,
  type ImageShape,
  modelInputFromPixels,
  type RawPixels,
  readImagePixels,
  readImageRgba,
  resizePixels,
} from './pixels.js';
export { sha256, sha256Async } from './sha256.js';
export {
  backboneFilesSha256,
  type OrtWeb,
  openWebBackbone,
  type WebBackbone,
  type WebBackboneOptions,
  type WebBackboneRecord,
} from './webBackbone.js';
export { type LoadWebIndexOptions, loadWebIndex } from './webIndex.js';
export {
  fetchModelFiles,
  type IndexModelRecord,
  type ModelFiles,
  modelChecksum,
  openWebEncoder,
  type WebEncoder,
  type WebEncoderOptions,
} from './webModel.js';
