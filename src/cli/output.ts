import { constants } from 'node:fs';
import { access, mkdir, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { ContrastiveError } from '../errors.js';
import { describeFsError } from '../io/fsErrors.js';

/**
 * Checks, before any work, that `path` can be written as a file: not an existing folder, and in
 * a folder that exists (or can be made) and is writable. Errors name the path and the flag.
 */
export async function checkOutputFile(command: string, path: string, flag = '--out'): Promise<void> {
  const info = await stat(path).catch(() => null);
  if (info?.isDirectory()) {
    throw new ContrastiveError(`${command}: ${flag} ${path} is a folder; name a file to write.`);
  }
  const folder = dirname(path);
  try {
    await makeFolder(folder);
    await access(folder, constants.W_OK);
    if (info) await access(path, constants.W_OK);
  } catch (error) {
    throw new ContrastiveError(`${command}: cannot write ${flag} ${path}: ${describeFsError(error)}.`);
  }
}

/** Like {@link checkOutputFile}, for an output folder: an existing file there is an error. */
export async function checkOutputFolder(command: string, path: string, flag: string): Promise<void> {
  const info = await stat(path).catch(() => null);
  if (info && !info.isDirectory()) {
    throw new ContrastiveError(`${command}: ${flag} ${path} is a file; name a folder.`);
  }
  try {
    await makeFolder(path);
    await access(path, constants.W_OK);
  } catch (error) {
    throw new ContrastiveError(`${command}: cannot write to ${flag} ${path}: ${describeFsError(error)}.`);
  }
}

/** `mkdir -p`, where a file in the way reads as ENOTDIR (mkdir says EEXIST). */
async function makeFolder(path: string): Promise<void> {
  try {
    await mkdir(path, { recursive: true });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST')
      throw Object.assign(new Error('not a folder'), { code: 'ENOTDIR' });
    throw error;
  }
}

/**
 * Progress on stderr: one line redrawn on a terminal; when stderr is a file or a pipe (a log, a
 * CI job), a plain line at every tenth so a long run is never silent. `quiet` (--json) prints
 * nothing.
 */
export function progressLine(what: string, quiet = false): (done: number, total: number) => void {
  let shown = -1;
  return (done, total) => {
    if (quiet) return;
    if (process.stderr.isTTY) {
      process.stderr.write(`\r${what} ${done}/${total}${done === total ? '\n' : ''}`);
      return;
    }
    const tenth = Math.floor((10 * done) / Math.max(1, total));
    if (tenth === shown) return;
    shown = tenth;
    process.stderr.write(`${what} ${done}/${total}\n`);
  };
}
