// Signal names as users write them: KILL, SIGKILL, kill, 9.
import os from 'node:os';
import { UfsError } from '../common/errors.js';

export function parseSignal(s: string): NodeJS.Signals {
  const t = s.trim().toUpperCase();
  if (/^\d+$/.test(t)) {
    const n = Number(t);
    const name = Object.entries(os.constants.signals).find(([, v]) => v === n)?.[0];
    if (name) return name as NodeJS.Signals;
  } else {
    const name = t.startsWith('SIG') ? t : `SIG${t}`;
    if (name in os.constants.signals) return name as NodeJS.Signals;
  }
  throw new UfsError(`invalid signal: ${s}`);
}
