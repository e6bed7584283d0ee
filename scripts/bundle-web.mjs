// Bundles the exported page (src/web/page.ts, the browser entry and stock tfjs) into one classic
// script, dist/src/web/app.bundle.js, that `contrastive export-web` copies as app.js. Runs in
// `npm run build`; esbuild is a dev dependency, so installing the package downloads nothing.
import { build } from 'esbuild';

await build({
  entryPoints: ['src/web/page.ts'],
  outfile: 'dist/src/web/app.bundle.js',
  bundle: true,
  format: 'iife',
  platform: 'browser',
  target: 'es2022',
  minify: true,
  legalComments: 'none',
  // no externals: a Node-only import reachable from the browser entry fails the build here
  // (EmbeddingIndex.save/load and usearch are imported through variables, which bundlers leave alone)
  // the engine looks for its native addon through node:module; in a page that lookup fails
  // (this stub) and the stock tfjs kernels run
  alias: { 'node:module': './src/web/stubs/nodeModule.ts' },
  logLevel: 'warning',
});
