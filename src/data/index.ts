/**
 * Datasets, file readers and splits (the label tree lives in `src/hierarchy/`). Samplers,
 * augmentations and image folders have their own modules.
 */

export {
  type BlurOptions,
  type ChannelStats,
  type ColorAugmentOptions,
  type ColorJitterOptions,
  colorAugment,
  measureChannelStats,
  SIMCLR_AUGMENT,
} from './colorAugment.js';
export {
  COLOR_AUGMENT_OPTIONS,
  type ColorAugmentOptionValues,
  colorAugmentOptionsFrom,
  DATA_OPTIONS,
} from './dataOptions.js';
export {
  type DataKind,
  dataKind,
  evenLabelPaths,
  type ImageListing,
  type ImageListingSplit,
  listTrainingImages,
  loadTrainingData,
  type TrainingData,
  type TrainingDataOptions,
  type TrainingSplit,
} from './dataset.js';
export {
  DEBIAN_FASHION_MNIST_DIR,
  EMBEDDED_FASHION_MNIST_DIR,
  FASHION_MNIST_CLASSES,
  type FashionMnistOptions,
  type FashionMnistSplit,
  fashionMnistFiles,
  fashionMnistTree,
  loadFashionMnist,
  locateFashionMnist,
} from './fashionMnist.js';
export {
  csvFields,
  type FeatureTable,
  type FeatureTableLabelsOptions,
  type FeatureTableOptions,
  featureTableLabels,
  readFeatureTable,
  readLabelPaths,
} from './featureTable.js';
export { encodeIdx, type IdxArray, type IdxData, type IdxDtype, parseIdx, readIdx, writeIdx } from './idx.js';
export { type CachedBatch, CachedBatchReader, ImageCache, type ImageCacheOptions } from './imageCache.js';
export {
  decodeImage,
  type ImageDecodeOptions,
  type ResolvedDecodeOptions,
  resolveDecodeOptions,
} from './imageDecode.js';
export { listImageFolder } from './imageFolder.js';
export {
  type ImageManifest,
  isImageManifest,
  type Manifest,
  type ManifestOptions,
  readImageManifest,
  readManifest,
} from './manifest.js';
export { encodeNpy, type NpyArray, type NpyMatrix, readNpy, readNpyMatrix, writeNpy } from './npy.js';
export {
  type CachedSplit,
  closeRunData,
  type DataSplit,
  isCachedSplit,
  isStreamed,
  loadRunData,
  type RunData,
  type RunDataOptions,
  readSplitRows,
  STREAM_AUTO_BYTES,
  type StreamMode,
} from './runData.js';
export {
  IN_MEMORY_IMAGES,
  openSourceRows,
  type SourceBatch,
  type SourceItem,
  type SourceRows,
  type SourceRowsOptions,
} from './sourceRows.js';
export {
  DATA_SOURCE_OPTIONS,
  type DataKindChoice,
  type DataSource,
  type DataSourceKind,
  type DataSourceOptions,
  type DataSourceSelection,
  dataSourceOptions,
  IMAGE_EXTENSIONS,
  resolveDataSource,
} from './sources.js';
export {
  type HoldoutOptions,
  type HoldoutResult,
  holdOutClasses,
  type Split,
  type TrainTestSplitOptions,
  takeRows,
  trainTestSplit,
} from './splits.js';
export {
  type FashionMnistSubsetOptions,
  type FashionMnistSubsetResult,
  makeFashionMnistSubset,
} from './tools/makeFashionMnistSubset.js';
export {
  CATALOGUE_CLASS_NAMES,
  type FashionCatalogue,
  type FashionCatalogueOptions,
  renderFashionCatalogue,
} from './tools/renderCatalogue.js';
