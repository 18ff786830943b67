// The container runtime: create/run, the monitor, lifecycle, exec, logs, diff, commit.
export { runContainer, type RunOptions, type RunResult } from './run.js';
export { startContainer, stopContainer, killContainer, removeContainer, findContainer, attachContainer } from './lifecycle.js';
export { execInContainer, type ExecOptions } from './exec.js';
export { showLogs } from './logcmd.js';
export type { CommitOptions } from './commit.js';
export { listContainers, formatPs } from './ps.js';
export { listRecords, readRecord, shortId, type ContainerRecord } from './container.js';
export { pauseContainer, unpauseContainer, topContainer, statsContainers, waitContainer, type ContainerStats } from './control.js';
export { runProcess, type RunProcessOptions } from './runner.js';
export { publishedPorts } from './network.js';

// Commit loads the image writer (tar, compression): only when a commit runs, not on every `ufs run`.
export async function commitContainer(...args: Parameters<typeof import('./commit.js').commitContainer>): ReturnType<typeof import('./commit.js').commitContainer> {
  return (await import('./commit.js')).commitContainer(...args);
}

// Diff loads the union's change walker: only when a diff runs.
export async function diffContainer(...args: Parameters<typeof import('./diff.js').diffContainer>): ReturnType<typeof import('./diff.js').diffContainer> {
  return (await import('./diff.js')).diffContainer(...args);
}
