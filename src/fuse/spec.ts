// What the mounting side hands to the serving process, and the records both sides keep.
import path from 'node:path';

export interface MountSpec {
  lowers: string[]; // top first
  upper?: string; // absent: read-only mount
  mountpoint: string;
  fsname?: string;
  // setuid/setgid bits take effect (a container's root, as in Docker). Off for mounts a host
  // user might reach: a setuid file from an image must not grant anything on the host.
  suid?: boolean;
  // Renamed lower directories get a redirect instead of a full copy (UnionOptions.redirectDir):
  // for mounts whose upper is an overlay upper, never committed as an OCI layer.
  redirectDir?: boolean;
}

// One ufs mount, as recorded in <run dir>/mounts/<id>.json by its serving process.
export interface MountRecord {
  mountpoint: string;
  pid: number;
  startTime?: number; // the serving process's start time (/proc/PID/stat field 22)
  hosted?: boolean; // served by a thread of a process with other work (it outlives the mount)
  lowers: string[];
  upper?: string;
  fsname: string;
  started: string; // ISO 8601
  log: string; // the serving process's log file
  stale?: boolean; // listMounts: still mounted but its server is gone (ENOTCONN)
}

// The full spec given to server.js (argv[2], JSON): paths are absolute and canonical.
export interface ServerSpec {
  lowers: string[];
  upper?: string;
  mountpoint: string;
  fsname: string;
  suid?: boolean;
  redirectDir?: boolean;
  recordFile: string;
  log: string;
}

// Messages from the server over the IPC channel.
export type ServerMessage = { type: 'ready'; pid: number } | { type: 'error'; message: string };

export function runDir(): string {
  return path.resolve(process.env.UFS_RUN_DIR ?? '/run/ufs');
}

export function mountsDir(): string {
  return path.join(runDir(), 'mounts');
}
