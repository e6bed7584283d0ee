export { type FromPathsOptions, LabelTree, type LabelTreeJSON, type NestedTree } from './labelTree.js';
