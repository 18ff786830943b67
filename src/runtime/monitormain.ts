// The detached monitor process (`ufs container-monitor`, hidden): owns one container until
// it exits, writing its output to the json log.
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
  };
  try {
    const store = await Store.open(root);
    return await runMonitor(store, id, { attach: false, stdin, relay, onReady: report, waitAttach });
  } catch (err) {
    report(err instanceof Error ? err : new Error(String(err)));
    throw err;
  } finally {
    relay.dispose();
  }
}
