// Errors the union throws: plain Errors whose `code` is an errno name, as Node's fs errors
// are, so the FUSE glue maps every failure the same way (`-os.constants.errno[code]`).
import os from 'node:os';
import { errnoCode } from '../common/errors.js';

export class FsError extends Error {
  readonly errno: number;
  constructor(readonly code: string, detail?: string) {
    super(detail ? `${code}: ${detail}` : code);
    this.name = 'FsError';
    const n = (os.constants.errno as Record<string, number>)[code];
    this.errno = n === undefined ? -5 : -n;
  }
}

export function fsError(code: string, detail?: string): FsError {
  return new FsError(code, detail);
}

export function hasCode(err: unknown, ...codes: string[]): boolean {
  const code = errnoCode(err);
  return code !== undefined && codes.includes(code);
}

export { errnoCode };
