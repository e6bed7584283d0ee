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
