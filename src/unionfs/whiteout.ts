// The OCI whiteout form, as layer and upper directories keep it on disk (DESIGN.md, "The store"):
//   .wh.NAME        hides NAME in every layer beneath
//   .wh..wh..opq    in a directory: hides everything beneath in that directory
//   .wh..wh.*       other metadata names (never shown, never a whiteout of anything)
// The union's own temporary files live in `.wh..wh..ufs.work/` at the upper root: any
// `.wh..wh..ufs.*` name is hidden by the whiteout rule from the merged view and skipped by
// commit and diff.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import { hasCode } from './errors.js';

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

export function newTempName(): string {
  return `tmp.${randomBytes(8).toString('hex')}`;
}

// Whiteouts and markers are empty regular files with no permissions, as OCI tars carry them.
async function makeMarker(file: string): Promise<void> {
  try {
    const fd = await new Promise<number>((resolve, reject) =>
      fs.open(file, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0, (e, f) => (e ? reject(e) : resolve(f))),
    );
    await new Promise<void>((resolve, reject) => fs.close(fd, (e) => (e ? reject(e) : resolve())));
  } catch (err) {
    if (!hasCode(err, 'EEXIST')) throw err;
  }
}

// `dirHost` must be a real directory of the upper layer. A name of more than 251 bytes
// cannot have a whiteout on disk (ENAMETOOLONG): such a lower name cannot be deleted.
export async function makeWhiteout(dirHost: string, name: string): Promise<void> {
  await makeMarker(`${dirHost}/${whiteoutName(name)}`);
}

export async function removeWhiteout(dirHost: string, name: string): Promise<void> {
  await fsp.unlink(`${dirHost}/${whiteoutName(name)}`).catch((err) => {
    if (!hasCode(err, 'ENOENT', 'ENAMETOOLONG')) throw err; // too long: there can be none
  });
}

export async function makeOpaque(dirHost: string): Promise<void> {
  await makeMarker(`${dirHost}/${OPAQUE_MARKER}`);
}
