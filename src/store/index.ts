export * from './store.js';
export { withFileLock } from './lock.js';
export { writeFileAtomicSync, fsyncDirSync, rmTreeSync, readJsonSync, spoolToFile } from './fsutil.js';
