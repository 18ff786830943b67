// Host stat -> the union's Attr.
import { hfs as fs, type HostStat } from './hostfs.js';
import type { Node } from './lookup.js';
import type { Attr } from './types.js';

// `ino` is the union's number (inode.ts). A directory merged from several layers reports
// st_nlink 1, as overlayfs does: its real link count is unknown, and 1 tells find(1) not to
// use the link count to skip subdirectories.
export function toAttr(st: HostStat, ino: bigint, merged = false): Attr {
  const mode = st.mode;
  return {
    mode,
    uid: st.uid,
    gid: st.gid,
    size: st.size,
    dev: st.dev,
    nlink: merged && (mode & fs.constants.S_IFMT) === fs.constants.S_IFDIR ? 1 : st.nlink,
    ino,
    rdev: st.rdev,
    blksize: st.blksize,
    blocks: st.blocks,
    atimeNs: st.atimeNs,
    mtimeNs: st.mtimeNs,
    ctimeNs: st.ctimeNs,
  };
}

export function nodeAttr(st: HostStat, node: Node): Attr {
  return toAttr(st, node.ino, node.dirs.length > 1);
}
