import path from 'node:path';
import { fileURLToPath } from 'node:url';

// The project checkout (or installed package) root: dist/src/common -> ../../..
export const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

export const DEFAULT_STORE_ROOT = '/var/lib/ufs';

// --root beats UFS_ROOT beats the default.
export function storeRoot(flag?: string): string {
  return path.resolve(flag ?? process.env.UFS_ROOT ?? DEFAULT_STORE_ROOT);
}

// The ufs entry point, for spawning ourselves (mount servers, container monitors).
export const CLI_ENTRY = path.join(PROJECT_ROOT, 'dist', 'src', 'cli', 'main.js');
