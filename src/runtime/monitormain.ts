// The detached monitor of one container: its own process, started by spawnMonitor (detach.ts)
// as `node [heap flags] dist/src/runtime/monitormain.js --root ROOT --stdin none|hold
// --ready-fd 3 [--wait-attach] ID`, with stdout/stderr on the container's monitor.log.
// It owns the container until it exits (runMonitor): the union is served on this process's
// own event loop (fuse/host.ts), output goes to the json log.
import { pathToFileURL } from 'node:url';
import { shedAfterBursts, shedStartupMemory } from '../common/memory.js';
import { Store } from '../store/index.js';
import { reportReady } from './detach.js';
import { SignalRelay } from './launch.js';
import { runMonitor } from './monitor.js';

export async function monitorMain(root: string, id: string, stdin: 'none' | 'hold', readyFd?: number, waitAttach = false): Promise<number> {
  // SIGTERM/SIGINT/SIGHUP to the monitor reach the container, as they would a foreground run.
  const relay = new SignalRelay().install();
  // Once only: the fd number is free for reuse after the report closes it.
  let reported = false;
  const report = (err?: Error) => {
    if (reported) return;
    reported = true;
    reportReady(readyFd, err);
    if (!err) {
      setImmediate(() => {
        try {
          shedStartupMemory();
        } catch (e) {
          process.stderr.write(`ufs monitor: releasing start-up memory: ${(e as Error).message}\n`);
        }
        // The container's union is served here too: what a burst of its I/O leaves goes again.
        shedAfterBursts((m) => process.stderr.write(`ufs monitor: ${m}\n`));
      });
    }
  };
  try {
    const store = await Store.open(root);
    return await runMonitor(store, id, { attach: false, stdin, relay, onReady: report, waitAttach, warn: (m) => process.stderr.write(`ufs monitor: ${m}\n`) });
  } catch (err) {
    report(err instanceof Error ? err : new Error(String(err)));
    throw err;
  } finally {
    relay.dispose();
  }
}

export interface MonitorArgs { root: string; id: string; stdin: 'none' | 'hold'; readyFd?: number; waitAttach: boolean }

export function parseMonitorArgs(argv: string[]): MonitorArgs {
  const out: Partial<MonitorArgs> = { stdin: 'none', waitAttach: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--root') out.root = argv[++i];
    else if (a === '--stdin') out.stdin = argv[++i] === 'hold' ? 'hold' : 'none';
    else if (a === '--ready-fd') out.readyFd = Number(argv[++i]);
    else if (a === '--wait-attach') out.waitAttach = true;
    else if (!a.startsWith('-')) out.id = a;
    else throw new Error(`unknown argument ${a}`);
  }
  if (!out.root || !out.id) throw new Error('usage: monitormain.js --root ROOT [--stdin none|hold] [--ready-fd N] [--wait-attach] ID');
  return out as MonitorArgs;
}

// Run as a program (not imported): the process exits with the container's status.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  let status = 125;
  try {
    const a = parseMonitorArgs(process.argv.slice(2));
    status = await monitorMain(a.root, a.id, a.stdin, a.readyFd, a.waitAttach);
  } catch (err) {
    // stderr is the container's monitor.log
    process.stderr.write(`ufs monitor: ${err instanceof Error ? err.message : String(err)}\n`);
  }
  process.exit(status);
}
