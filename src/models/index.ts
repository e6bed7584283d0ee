/** Encoders and backbones: built-in architectures, pretrained tfjs models, freezing. */
export { BACKBONE_OPTIONS, type BackboneOptionValues, backboneOptionsFrom } from './backboneOptions.js';
export {
  type BackboneOptions,
  buildEncoder,
  builtInEncoder,
  type ColourEncoderOptions,
  type Encoder,
  type EncoderName,
  freezeLayer,
  type GraphModelLike,
  loadBackbone,
  mobileNetV2Encoder,
  resNet18Encoder,
} from './backbones.js';
export {
  type BackboneKind,
  backboneKind,
  backboneSha256,
  type FeatureExtractor,
  type FeatureExtractorOptions,
  type FeaturePooling,
  type FrozenBackboneRecord,
  openFeatureExtractor,
  type PixelScale,
  type Preprocessing,
} from './featureExtractor.js';
