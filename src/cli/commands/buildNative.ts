import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ContrastiveError } from '../../errors.js';
import { defineCommand } from '../args.js';

/** The package's build script, from dist/src/cli/commands/ (the path the compiled file runs at). */
const BUILD_SCRIPT = fileURLToPath(new URL('../../../../scripts/build-native.mjs', import.meta.url));

/**
 * `contrastive build-native`: builds the native engine into the installed package (its
 * `native/build/`), from wherever the user runs it. npm 11 skips a dependency's install script
 * unless the project approves it, so `npm install tfjs-contrastive` leaves the engine unbuilt;
 * this is the one command that builds it (system compiler, Debian's `libopenblas-dev`, and
 * `libdnnl-dev` for oneDNN convolutions when installed).
 */
export const buildNativeCommand = defineCommand({
  name: 'build-native',
  summary: 'Build the native engine (OpenBLAS, oneDNN when installed) into the installed package.',
  options: [],
  async run() {
    if (!existsSync(BUILD_SCRIPT)) {
      throw new ContrastiveError(
        `build-native: the build script ${BUILD_SCRIPT} is missing from this installation.`,
      );
    }
    const build = spawnSync(process.execPath, [BUILD_SCRIPT, '--strict'], { encoding: 'utf8' });
    process.stdout.write(build.stdout);
    if (build.status !== 0) {
      const why = `${build.stdout}${build.stderr}`.trim().split('\n').pop() ?? `exit code ${build.status}`;
      throw new ContrastiveError(
        `build-native: the native engine was not built: ${why}. Install a C compiler and libopenblas-dev (and libdnnl-dev for oneDNN convolutions), then run this command again.`,
      );
    }
    // load what was just built, as every later run will, and say what it does
    const { loadNative, nativeStatus, retryNativeLoad } = await import('../../engine/native.js');
    retryNativeLoad();
    const engine = loadNative();
    if (!engine)
      throw new ContrastiveError(
        `build-native: the engine was built but does not load: ${nativeStatus().detail}`,
      );
    console.log(`native engine: ${nativeStatus().detail}; convolutions: ${engine.convPath()}`);
    console.log('`contrastive doctor` lists the path each kernel family takes.');
  },
});
