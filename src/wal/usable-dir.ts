// Whether a directory a layer keeps its files in can hold them, checked when the layer
// opens: a path that is a file, or a directory this process may not write (its owner, its
// mode, a read-only mount), is refused there with its reason, rather than at the first
// segment or snapshot the node writes, long after it reported itself ready.
import { constants } from 'node:fs';
import { access, readlink, stat } from 'node:fs/promises';

/** The file system calls the check makes (tests answer them). */
export interface DirProbe {
  stat(path: string): Promise<{ isDirectory(): boolean }>;
  access(path: string, mode: number): Promise<void>;
  readlink(path: string): Promise<string>;
}

const NODE_FS: DirProbe = { stat, access, readlink };

const errno = (err: unknown): string => (err as NodeJS.ErrnoException).code ?? (err as Error).message;

/**
 * True if `dir` is a directory this process can read, write and search; false if nothing is
 * there (the caller makes it). Anything else (a link to nothing included) throws `refuse(why)`,
 * `why` starting with `dir`.
 */
export async function usableDir(dir: string, refuse: (why: string) => Error, fs: DirProbe = NODE_FS): Promise<boolean> {
  let st: { isDirectory(): boolean };
  try {
    st = await fs.stat(dir);
  } catch (err) {
    const code = errno(err);
    // A link whose target is missing (a volume not mounted): what is made through it would not
    // be where the link points once the volume is back, and mkdir does not follow it anyway.
    if (code === 'ENOENT')
      return fs.readlink(dir).then(
        (target) => {
          throw refuse(`${dir} is a symbolic link to ${target}, which does not exist`);
        },
        () => false,
      );
    throw refuse(`${dir} cannot be looked up${code === 'ENOTDIR' ? ': a component of its path is not a directory' : ` (${code})`}`);
  }
  if (!st.isDirectory()) throw refuse(`${dir} is not a directory`);
  try {
    await fs.access(dir, constants.R_OK | constants.W_OK | constants.X_OK);
  } catch (err) {
    throw refuse(`${dir} cannot be read and written by this process (${errno(err)})`);
  }
  return true;
}
