// The image side of ufs (Contract 5): resolve, commit, create, load/save/import, inspect.
export { resolveImage, resolveImageId, describeImage, type ResolvedImage } from './resolve.js';
export { commitLayer, createImage, type CreateImageOptions } from './commit.js';
export { imageUsedByContainers, containerImages, collectGarbage, removeImages, pruneImages } from './gc.js';
export { applyChange, applyChanges, CHANGE_INSTRUCTIONS } from './changes.js';
export { ensureBusybox, BUSYBOX_REF } from './busybox.js';
export { loadArchive, type LoadResult } from './load.js';
export { parseReference, normalizeTagged, familiarName, shortId } from './reference.js';
export { lookupImage, imageTags, readImageConfig } from './records.js';
export * from './types.js';
