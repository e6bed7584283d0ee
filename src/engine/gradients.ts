// tfjs-core's Node bundle registers no gradients; tfjs-layers' Node bundle registers all of them,
// into the global registry every copy of tfjs-core shares. Whatever differentiates imports this.
import '@tensorflow/tfjs-layers';
