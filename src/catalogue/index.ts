/** The use side in one object: an index, the model that made it and the calibration placement uses. */

export { type BuildIndexOptions, buildIndex } from './build.js';
export { type CatalogueCalibration, calibrateLeaveOneOut, type LeaveOneOutOptions } from './calibration.js';
export {
  Catalogue,
  type CatalogueCalibrateOptions,
  type CatalogueOptions,
  type CatalogueQuery,
  type CatalogueSearch,
  type DataPrediction,
  type PredictDataOptions,
  type PredictedItem,
  type PredictedLevel,
} from './catalogue.js';
export {
  type CatalogueTree,
  catalogueTree,
  type NewClassRetrieval,
  newClassRetrieval,
} from './newClasses.js';
export { embedQueryImage, encoderImageShape } from './queryImage.js';
