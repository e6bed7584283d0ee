// Whatever differentiates imports this: it loads tfjs-layers' gradients and the engine's kernels
// and gradient overrides (src/engine/registry.ts), once.
import './registry.js';
