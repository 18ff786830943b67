// The container runtime: create/run, the monitor, lifecycle, exec, logs, diff, commit.
export { runContainer, type RunOptions, type RunResult } from './run.js';
export { startContainer, stopContainer, killContainer, removeContainer, findContainer, attachContainer } from './lifecycle.js';
export { execInContainer, type ExecOptions } from './exec.js';
export { showLogs } from './logcmd.js';
export { diffContainer } from './diff.js';
export { commitContainer, type CommitOptions } from './commit.js';
export { listContainers, formatPs } from './ps.js';
export { monitorMain } from './monitormain.js';
export { listRecords, readRecord, shortId, type ContainerRecord } from './container.js';
export { pauseContainer, unpauseContainer, topContainer, statsContainers, waitContainer, type ContainerStats } from './control.js';
export { runProcess, type RunProcessOptions } from './runner.js';
export { publishedPorts } from './network.js';
