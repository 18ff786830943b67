// Small facts about host processes and mounts, read from /proc.
import fs from 'node:fs';

// The kernel's start time of a process (field 22 of /proc/<pid>/stat, clock ticks since
// boot). A pid plus its start time names one process for good, even after pid reuse.
export function processStartTime(pid: number): number | undefined {
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  let stat: string;
  try {
    stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // comm (field 2) may hold spaces and parentheses: split after the last ')'.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state); field 22 is rest[19]. A zombie counts as gone.
  if (rest[0] === 'Z' || rest[0] === 'X') return undefined;
  const start = Number(rest[19]);
  return Number.isFinite(start) ? start : undefined;
}

// Is the process that had `startTime` when recorded still the one running at `pid`?
export function isAlive(pid: number | undefined, startTime?: number): boolean {
  if (!pid || pid <= 0) return false;
  const now = processStartTime(pid);
  if (now === undefined) return false;
  return startTime === undefined || startTime === 0 || now === startTime;
}

// Mount points in our mount namespace (mountinfo field 5, octal escapes decoded).
export function mountPoints(): Set<string> {
  const out = new Set<string>();
  let text: string;
  try {
    text = fs.readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return out;
  }
  for (const line of text.split('\n')) {
    const fields = line.split(' ');
    if (fields.length > 4) out.add(fields[4].replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))));
  }
  return out;
}

export function isMountPoint(dir: string): boolean {
  return mountPoints().has(dir);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// A bound on a wait (Promise.race with it) that does not itself keep the process alive: the
// builder's process ends on its own, and a pending sleep(2000) held it for two seconds.
export function bound(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
