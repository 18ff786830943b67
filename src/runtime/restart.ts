// `ufs restart`: stop (as `ufs stop` does, with its grace period) then start in the
// background on the same writable layer; a stopped container is just started, as Docker does.
import type { Store } from '../store/index.js';
import { startContainer, stopContainer } from './lifecycle.js';

export async function restartContainer(store: Store, ref: string, seconds?: number): Promise<void> {
  await stopContainer(store, ref, seconds);
  await startContainer(store, ref, { attach: false, interactive: false });
}
