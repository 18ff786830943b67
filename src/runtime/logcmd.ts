// `ufs logs [-f]`: a detached container's output from its json log, each line to the stream
// it came from; -f follows until the container stops.
import type { Store } from '../store/index.js';
import { containerPaths, findRecord, readRecord } from './container.js';
import { readLogFrom } from './logs.js';
import { sleep } from './proc.js';
import { monitorAlive } from './reconcile.js';

function write(stream: NodeJS.WriteStream, text: string): Promise<void> {
  return new Promise((resolve) => {
    if (stream.write(text)) resolve();
    else stream.once('drain', resolve);
  });
}

export async function showLogs(store: Store, ref: string, follow: boolean): Promise<void> {
  const rec = findRecord(store.containersDir(), ref);
  const file = containerPaths(store.containersDir(), rec.Id).log(rec.Id);
  let offset = 0;
  for (;;) {
    const now = readRecord(store.containersDir(), rec.Id);
    const live = !!now && monitorAlive(now);
    const { entries, next } = readLogFrom(file, offset);
    offset = next;
    for (const e of entries) await write(e.stream === 'stderr' ? process.stderr : process.stdout, e.log);
    // One more read after the container is gone picks up its last words.
    if (!follow || !live) return;
    await sleep(100);
  }
}
