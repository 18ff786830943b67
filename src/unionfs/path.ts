// Paths of the merged view: absolute, '/'-separated byte strings (hostfs.ts), as FUSE hands
// them over, of any length (the kernel limits what a process passes, not depth). Parsed into
// components once, so no component can ever be '..', '.', empty, or carry a '/' or NUL:
// a host path is always a layer root plus components checked one by one (lookup.ts).
import { fsError } from './errors.js';

export const NAME_MAX = 255;

export function splitPath(p: string): string[] {
  if (typeof p !== 'string' || !p.startsWith('/')) throw fsError('EINVAL', `not an absolute path: ${String(p)}`);
  const parts = p.split('/').filter((c) => c !== '');
  for (const c of parts) {
    if (c === '.' || c === '..' || c.includes('\0')) throw fsError('EINVAL', `bad path component in ${p}`);
    if (c.length > NAME_MAX) throw fsError('ENAMETOOLONG');
  }
  return parts;
}

export function joinParts(parts: readonly string[]): string {
  return '/' + parts.join('/');
}

// Parent components and last name of a non-root path.
export function splitParent(parts: readonly string[]): { parent: string[]; name: string } {
  if (parts.length === 0) throw fsError('EBUSY', 'the root has no parent');
  return { parent: parts.slice(0, -1), name: parts[parts.length - 1]! };
}

export function isSameOrUnder(parts: readonly string[], base: readonly string[]): boolean {
  if (parts.length < base.length) return false;
  for (let i = 0; i < base.length; i++) if (parts[i] !== base[i]) return false;
  return true;
}
