export * from './store.js';
export { setLockWaitNotice, withFileLock } from './lock.js';
export { writeFileAtomicSync, fsyncDirSync, rmTreeSync, readJsonSync, spoolToFile } from './fsutil.js';
