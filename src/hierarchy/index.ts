export { escapeLabelSegment, formatLabelPath, parseLabelPath } from './labelPath.js';
export {
  type EncodeOptions,
  type FromPathsOptions,
  type LabelPath,
  LabelTree,
  type LabelTreeJSON,
  type NestedTree,
} from './labelTree.js';
