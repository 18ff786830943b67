// A readdir reply's entries packed for C (replyDir in binding.ts): the names and lower files
// as NUL-separated byte strings, the numbers in typed arrays that C reads in place. Reading
// a dozen properties of an object per entry through N-API cost more than the rest of a
// listing's reply; a typed array costs one call per reply.
import type { EntryAttr } from './binding.js';

// Per entry: mode, uid, gid, nlink, rdev, blksize, node id (0: none), the directory offset
// to continue after it.
export const DIR_NUMS = 8;
// Per entry: ino, size, blocks, atimeNs, mtimeNs, ctimeNs.
export const DIR_BIGS = 6;

export class DirPack {
  nums = new Float64Array(64 * DIR_NUMS);
  bigs = new BigInt64Array(64 * DIR_BIGS);
  names: string[] = [];
  lowerFiles: string[] = [];
  count = 0;

  // Empties the pack, with room for `entries`.
  reset(entries: number): void {
    if (entries * DIR_NUMS > this.nums.length) {
      this.nums = new Float64Array(entries * DIR_NUMS);
      this.bigs = new BigInt64Array(entries * DIR_BIGS);
    }
    this.names.length = 0;
    this.lowerFiles.length = 0;
    this.count = 0;
  }

  // A bare entry ({ ino, mode }) reports st_nlink 1 and zeros.
  add(name: string, attr: EntryAttr, nodeId: number, next: number, lowerFile: string | null): void {
    const n = this.count * DIR_NUMS;
    const b = this.count * DIR_BIGS;
    const nums = this.nums;
    const bigs = this.bigs;
    nums[n] = attr.mode;
    nums[n + 6] = nodeId;
    nums[n + 7] = next;
    bigs[b] = typeof attr.ino === 'bigint' ? attr.ino : BigInt(attr.ino);
    if ('nlink' in attr) {
      nums[n + 1] = attr.uid;
      nums[n + 2] = attr.gid;
      nums[n + 3] = attr.nlink;
      nums[n + 4] = attr.rdev;
      nums[n + 5] = attr.blksize;
      bigs[b + 1] = attr.size;
      bigs[b + 2] = attr.blocks;
      bigs[b + 3] = attr.atimeNs;
      bigs[b + 4] = attr.mtimeNs;
      bigs[b + 5] = attr.ctimeNs;
    } else {
      nums.fill(0, n + 1, n + 6);
      nums[n + 3] = 1;
      bigs.fill(0n, b + 1, b + 6);
    }
    this.names.push(name);
    this.lowerFiles.push(lowerFile ?? '');
    this.count++;
  }
}
