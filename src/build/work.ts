// What only a step that really runs needs: snapshots, the process runner, COPY/ADD, layer
// commit, image creation and the registry. The builder loads this the first time a step
// misses the cache, so a fully cached build loads none of it (nor FUSE, runc or tar code).
export { commitLayer, createImage } from '../image/commit.js';
export { BUSYBOX_REF } from '../image/busybox.js';
export { ensureImage } from '../registry/ensure.js';
export { runProcess } from '../runtime/runner.js';
export { commit, prepare, remove, view } from '../snapshot/index.js';
export { copyEntries, isDirInRoot, writeFileInRoot } from './copy.js';
export { fetchUrl, isArchive, extractArchive } from './fetch.js';
export { mergeLayers, normalizeTimes } from './layerdirs.js';
