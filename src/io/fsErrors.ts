/** `EACCES: permission denied` style text of a file-system error. */
export function describeFsError(error: unknown): string {
  const e = error as NodeJS.ErrnoException;
  const reasons: Record<string, string> = {
    EACCES: 'permission denied',
    EPERM: 'operation not permitted',
    EROFS: 'read-only file system',
    ENOSPC: 'no space left on device',
    EISDIR: 'is a folder',
    ENOTDIR: 'a part of the path is a file, not a folder',
    EEXIST: 'already exists',
    ENOENT: 'no such file or folder',
  };
  return e?.code ? `${reasons[e.code] ?? e.code} (${e.code})` : String(e?.message ?? error);
}
