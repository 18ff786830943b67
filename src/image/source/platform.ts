// Platforms (os/arch[/variant]) and picking one image out of an index, as Docker does: the
// host's unless asked otherwise; variants compared where both sides name one.
import os from 'node:os';
import { UfsError } from '../../common/errors.js';
import { type Descriptor, goArch } from '../types.js';

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

export function hostPlatform(): Platform {
  const arch = goArch();
  if (arch === 'arm64') return { os: 'linux', architecture: arch, variant: 'v8' };
  if (arch === 'arm') {
    const v = /^armv(\d)/.exec(os.machine?.() ?? '')?.[1];
    return { os: 'linux', architecture: arch, variant: `v${v ?? '7'}` };
  }
  return { os: 'linux', architecture: arch };
}

export function parsePlatform(s: string): Platform {
  const parts = s.trim().toLowerCase().split('/');
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => !/^[a-z0-9_.-]+$/.test(p))) {
    throw new UfsError(`invalid platform ${JSON.stringify(s)}: use OS/ARCH[/VARIANT], e.g. linux/arm64`);
  }
  const arch = parts[1] === 'x86_64' ? 'amd64' : parts[1] === 'aarch64' ? 'arm64' : parts[1]!;
  return { os: parts[0]!, architecture: arch, ...(parts[2] ? { variant: parts[2] } : {}) };
}

export function formatPlatform(p: { os?: string; architecture?: string; variant?: string } | undefined): string {
  if (!p) return 'unknown';
  return [p.os ?? '?', p.architecture ?? '?', ...(p.variant ? [p.variant] : [])].join('/');
}

function matches(want: Platform, have: Descriptor['platform']): boolean {
  if (!have || have.os !== want.os || have.architecture !== want.architecture) return false;
  if (!want.variant || !have.variant) return true;
  return want.variant === have.variant;
}

// The manifest for `want` in an index's list; a clear error naming the platforms there are.
export function choosePlatform(manifests: Descriptor[], want: Platform, what: string): Descriptor {
  const exact = manifests.find((m) => m.platform && m.platform.os === want.os && m.platform.architecture === want.architecture && m.platform.variant === want.variant);
  const hit = exact ?? manifests.find((m) => matches(want, m.platform));
  if (hit) return hit;
  const there = manifests.filter((m) => m.platform && m.platform.architecture !== 'unknown').map((m) => formatPlatform(m.platform));
  throw new UfsError(`no matching manifest for ${formatPlatform(want)} in ${what}: it has ${there.length ? [...new Set(there)].join(', ') : 'no platforms'}`);
}
