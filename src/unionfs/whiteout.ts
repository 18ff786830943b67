// The OCI whiteout form, as layer and upper directories keep it on disk (DESIGN.md, "The store"):
//   .wh.NAME        hides NAME in every layer beneath
//   .wh..wh..opq    in a directory: hides everything beneath in that directory
//   .wh..wh.*       other metadata names (never shown, never a whiteout of anything)
// The union's own temporary files live in `.wh..wh..ufs.work/` at the upper root: any
// `.wh..wh..ufs.*` name is hidden by the whiteout rule from the merged view and skipped by
// commit and diff.
import { randomBytes } from 'node:crypto';
import { hfs as fs } from './hostfs.js';
import { hasCode } from './errors.js';
import { lstatOrNull } from './hostfs.js';

export const WH_PREFIX = '.wh.';
export const WH_META_PREFIX = '.wh..wh.';
export const OPAQUE_MARKER = '.wh..wh..opq';
export const TEMP_PREFIX = '.wh..wh..ufs.';
export const WORK_DIR = `${TEMP_PREFIX}work`;

// Any name the merged view must never show nor let anyone create.
export function isReservedName(name: string): boolean {
  return name.startsWith(WH_PREFIX);
}

export function whiteoutName(name: string): string {
  return WH_PREFIX + name;
}

// `.wh.X` -> X; null for names that are not whiteouts of something (metadata, plain names).
export function whitedOutName(entry: string): string | null {
  if (!entry.startsWith(WH_PREFIX) || entry.startsWith(WH_META_PREFIX)) return null;
  const name = entry.slice(WH_PREFIX.length);
  return name === '' || name === '.' || name === '..' ? null : name;
}

export function isTempName(name: string): boolean {
  return name.startsWith(TEMP_PREFIX);
}

// Unique within the work dir: a random prefix per process and a counter (the work dir is
// emptied at every start, and one mount is the only user of its upper).
// (Made at first use: crypto loads only in a process that makes temporary names.)
let tempPrefixRun: string | undefined;
let tempCounter = 0;
export function newTempName(): string {
  tempPrefixRun ??= `tmp.${process.pid}.${randomBytes(4).toString('hex')}.`;
  return `${tempPrefixRun}${(tempCounter++).toString(36)}`;
}

// Whiteouts and markers are empty regular files with no permissions, as OCI tars carry them.
function makeMarker(file: string): void {
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0);
  } catch (err) {
    if (hasCode(err, 'EEXIST')) return;
    throw err;
  }
  fs.closeSync(fd);
}

// `dirHost` must be a real directory of the upper layer. A name of more than 251 bytes
// cannot have a whiteout on disk (ENAMETOOLONG): such a lower name cannot be deleted.
export function makeWhiteout(dirHost: string, name: string): void {
  makeMarker(`${dirHost}/${whiteoutName(name)}`);
}

// Looked up first: most names have no whiteout, and a failed unlink costs an exception.
export function removeWhiteout(dirHost: string, name: string): void {
  const file = `${dirHost}/${whiteoutName(name)}`;
  if (lstatOrNull(file) === null) return; // none (or too long to exist)
  try {
    fs.unlinkSync(file);
  } catch (err) {
    if (!hasCode(err, 'ENOENT')) throw err;
  }
}

export function makeOpaque(dirHost: string): void {
  makeMarker(`${dirHost}/${OPAQUE_MARKER}`);
}
