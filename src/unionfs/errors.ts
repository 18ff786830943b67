// Errors the union throws: plain Errors whose `code` is an errno name, as Node's fs errors
// are, so the FUSE glue maps every failure the same way (`-os.constants.errno[code]`).
import os from 'node:os';
import { errnoCode } from '../common/errors.js';

export class FsError extends Error {
  readonly errno: number;
  // No stack trace: these are answers (ENOENT for a lookup, EEXIST, ...), thrown thousands
  // of times a second, and capturing a stack costs more than the rest of a request.
  constructor(readonly code: string, detail?: string) {
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(detail ? `${code}: ${detail}` : code);
    Error.stackTraceLimit = limit;
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
