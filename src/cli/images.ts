// load, save, import, images, tag, rmi, history, inspect, image prune, layers (issue 3):
// Docker's names, flags and columns; also under `ufs image ...` as Docker has them.
import fs from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline/promises';
import type { Readable, Writable } from 'node:stream';
import type { Command } from 'commander';
import { errnoCode, UfsError } from '../common/errors.js';
import { storeRoot } from '../common/paths.js';
import { ago, ellipsis, humanSize, table } from '../common/format.js';
import { pruneImages, removeImages } from '../image/gc.js';
import { importRootfs } from '../image/import.js';
import { layerDetail, layerRows, selectLayer } from '../image/layers.js';
import { withLease } from '../snapshot/index.js';
import { loadArchive } from '../image/load.js';
import { imageHistory, inspectImage, listImages } from '../image/present.js';
import { familiarName, normalizeTagged, parseReference, repoName, shortId } from '../image/reference.js';
import { setTag } from '../image/records.js';
import { describeImage, resolveImage, resolveImageId } from '../image/resolve.js';
import { type SaveFormat, saveImages } from '../image/save.js';
import { Store } from '../store/index.js';

function openStore(cmd: Command): Promise<Store> {
  return Store.open(storeRoot(cmd.optsWithGlobals().root as string | undefined));
}

function out(s: string): void {
  process.stdout.write(s);
}

const collect = (value: string, previous: string[]): string[] => [...previous, value];

function openInput(file: string | undefined, what: string): { stream: Readable; size?: number; source: string } {
  if (file === undefined || file === '-') {
    if (process.stdin.isTTY) throw new UfsError(`${what}: stdin is a terminal; give a file or pipe the archive in`);
    return { stream: process.stdin, source: '-' };
  }
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch (err) {
    throw new UfsError(`${what}: cannot open ${file}: ${errnoCode(err) === 'ENOENT' ? 'no such file' : (err as Error).message}`);
  }
  if (st.isDirectory()) throw new UfsError(`${what}: ${file} is a directory`);
  return { stream: fs.createReadStream(file, { highWaterMark: 1 << 20 }), size: st.size, source: file };
}

function flush(stream: Writable): Promise<void> {
  return new Promise((resolve) => stream.write('', () => resolve()));
}

// --- the commands (each added both at the top level and under `ufs image`) ---

function addLoad(parent: Command, name: string): void {
  parent
    .command(name)
    .description('load images from a docker-archive or OCI archive (a tar, plain or gzip) or stdin')
    .option('-i, --input <file>', 'read from a tar archive file instead of stdin')
    .option('-q, --quiet', 'suppress the progress output')
    .action(async (opts: { input?: string; quiet?: boolean }, cmd: Command) => {
      const store = await openStore(cmd);
      const input = openInput(opts.input, 'load');
      const result = await loadArchive(store, input.stream, { quiet: !!opts.quiet, ...(input.size !== undefined ? { totalBytes: input.size } : {}) });
      out(result.lines.map((l) => `${l}\n`).join(''));
    });
}

function addSave(parent: Command, name: string): void {
  parent
    .command(name)
    .description('save images to a tar archive (docker-archive by default, or an OCI archive)')
    .argument('<image...>')
    .option('-o, --output <file>', 'write to a file instead of stdout')
    .option('--format <format>', 'docker or oci', 'docker')
    .action(async (images: string[], opts: { output?: string; format: string }, cmd: Command) => {
      const format = opts.format.toLowerCase();
      if (format !== 'docker' && format !== 'oci') throw new UfsError(`unknown --format ${JSON.stringify(opts.format)}: use docker or oci`);
      const store = await openStore(cmd);
      if (!opts.output || opts.output === '-') {
        if (process.stdout.isTTY) throw new UfsError('cowardly refusing to save to a terminal. Use the -o flag or redirect');
        await saveImages(store, images, format as SaveFormat, process.stdout);
        await flush(process.stdout);
        return;
      }
      // Written beside the target and renamed: the file is complete or absent.
      const target = path.resolve(opts.output);
      const tmp = `${target}.ufs-${process.pid}.tmp`;
      const stream = fs.createWriteStream(tmp, { flags: 'wx', mode: 0o644 });
      try {
        await saveImages(store, images, format as SaveFormat, stream);
        await new Promise<void>((resolve, reject) => {
          stream.once('error', reject);
          stream.end(() => resolve());
        });
        const fd = fs.openSync(tmp, 'r');
        fs.fsyncSync(fd);
        fs.closeSync(fd);
        fs.renameSync(tmp, target);
      } catch (err) {
        stream.destroy();
        fs.rmSync(tmp, { force: true });
        if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'EACCES') throw new UfsError(`save: cannot write ${opts.output}: ${(err as Error).message}`);
        throw err;
      }
    });
}

function addImport(parent: Command, name: string): void {
  parent
    .command(name)
    .description('create an image from a root filesystem tar (plain or gzip; - for stdin)')
    .argument('<file>', 'the tar, or - for stdin')
    .argument('[reference]', 'REPOSITORY[:TAG] for the new image')
    .option('-c, --change <instruction>', 'apply a Dockerfile instruction (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME, WORKDIR)', collect, [] as string[])
    .option('-m, --message <text>', 'commit message for the imported image')
    .action(async (file: string, reference: string | undefined, opts: { change: string[]; message?: string }, cmd: Command) => {
      const store = await openStore(cmd);
      if (reference) normalizeTagged(reference); // bad names fail before reading anything
      const input = openInput(file, 'import');
      const id = await importRootfs(store, input.stream, {
        ...(reference ? { ref: reference } : {}),
        changes: opts.change,
        ...(opts.message !== undefined ? { message: opts.message } : {}),
        source: input.source,
        ...(input.size !== undefined ? { totalBytes: input.size } : {}),
      });
      out(`${id}\n`);
    });
}

function addImages(parent: Command, name: string, alias?: string): void {
  const c = parent
    .command(name)
    .description('list images')
    .argument('[reference]', 'only images of this REPOSITORY[:TAG]')
    .option('-a, --all', 'show all images (by default intermediate images, the untagged parents of others such as build steps, are hidden)')
    .option('-q, --quiet', 'only show image IDs')
    .option('--digests', 'show digests')
    .option('--no-trunc', 'do not truncate output')
    .option('--json', 'one JSON object per image (as docker images --format json)')
    .action(async (reference: string | undefined, opts: { all?: boolean; quiet?: boolean; digests?: boolean; trunc: boolean; json?: boolean }, cmd: Command) => {
      const store = await openStore(cmd);
      let rows = listImages(store);
      if (!opts.all) {
        // Docker's rule: an untagged image that is the parent of another is intermediate.
        const parents = new Set(Object.values(store.readImageDb().images).map((r) => r.parent).filter(Boolean));
        rows = rows.filter((r) => !(r.repository === '<none>' && parents.has(r.id)));
      }
      if (reference) {
        const r = parseReference(reference);
        const repo = familiarName(repoName(r));
        rows = rows.filter((x) => x.repository === repo && (r.tag === undefined || x.tag === r.tag));
      }
      const id = (full: string) => (opts.trunc ? shortId(full) : full);
      if (opts.quiet) {
        out([...new Set(rows.map((r) => id(r.id)))].map((i) => `${i}\n`).join(''));
        return;
      }
      if (opts.json) {
        for (const r of rows) {
          out(
            `${JSON.stringify({
              Containers: 'N/A',
              CreatedAt: r.created ? dockerTime(r.created) : '',
              CreatedSince: ago(r.created),
              Digest: r.digest,
              ID: id(r.id),
              Repository: r.repository,
              SharedSize: 'N/A',
              Size: humanSize(r.size),
              Tag: r.tag,
              UniqueSize: 'N/A',
              VirtualSize: humanSize(r.size),
            })}\n`,
          );
        }
        return;
      }
      const head = opts.digests ? ['REPOSITORY', 'TAG', 'DIGEST', 'IMAGE ID', 'CREATED', 'SIZE'] : ['REPOSITORY', 'TAG', 'IMAGE ID', 'CREATED', 'SIZE'];
      const body = rows.map((r) => [r.repository, r.tag, ...(opts.digests ? [r.digest] : []), id(r.id), ago(r.created), humanSize(r.size)]);
      out(table([head, ...body]));
    });
  if (alias) c.alias(alias);
}

// Docker's CreatedAt: 2024-01-02 03:04:05 +0000 UTC
function dockerTime(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  return `${d.toISOString().slice(0, 19).replace('T', ' ')} +0000 UTC`;
}

function addTag(parent: Command, name: string): void {
  parent
    .command(name)
    .description('create a tag TARGET_IMAGE that refers to SOURCE_IMAGE')
    .argument('<source>', 'SOURCE_IMAGE[:TAG]')
    .argument('<target>', 'TARGET_IMAGE[:TAG]')
    .action(async (source: string, target: string, _opts: unknown, cmd: Command) => {
      const full = normalizeTagged(target);
      const store = await openStore(cmd);
      const id = await resolveImageId(store, source);
      await store.withLock(async () => {
        store.updateImageDb((db) => {
          const rec = db.images[id];
          if (!rec) throw new UfsError(`No such image: ${source}`);
          setTag(db, full, id, rec.manifest);
        });
      });
    });
}

function addRmi(parent: Command, name: string, alias?: string): void {
  const c = parent
    .command(name)
    .description('remove images: untag, and delete layers nothing else uses')
    .argument('<image...>')
    .option('-f, --force', 'remove even if a container uses it, or by ID with several tags')
    .action(async (images: string[], opts: { force?: boolean }, cmd: Command) => {
      const store = await openStore(cmd);
      const result = await removeImages(store, images, !!opts.force);
      out(result.lines.map((l) => `${l}\n`).join(''));
      for (const e of result.errors) process.stderr.write(`ufs: ${e}\n`);
      if (result.errors.length) process.exitCode = 1;
    });
  if (alias) c.alias(alias);
}

function addHistory(parent: Command, name: string): void {
  parent
    .command(name)
    .description('show the history of an image')
    .argument('<image>')
    .option('--no-trunc', 'do not truncate output')
    .option('-q, --quiet', 'only show image IDs')
    .option('-H, --human [bool]', 'human readable sizes and dates (default true)', 'true')
    .action(async (image: string, opts: { trunc: boolean; quiet?: boolean; human: string | boolean }, cmd: Command) => {
      const store = await openStore(cmd);
      const id = await resolveImageId(store, image);
      const rows = imageHistory(store, id);
      const human = opts.human !== 'false' && opts.human !== false;
      const imageCol = (i: string) => (i === '<missing>' || !opts.trunc ? i : shortId(i));
      if (opts.quiet) {
        out(rows.map((r) => `${imageCol(r.image)}\n`).join(''));
        return;
      }
      const body = rows.map((r) => {
        const by = r.createdBy.replace(/\t/g, ' ');
        return [
          imageCol(r.image),
          human ? ago(r.created) : r.created,
          opts.trunc ? ellipsis(by, 45) : by,
          human ? humanSize(r.size) : String(r.size),
          r.comment,
        ];
      });
      out(table([['IMAGE', 'CREATED', 'CREATED BY', 'SIZE', 'COMMENT'], ...body]));
    });
}

// `-f '{{.Id}}'`, `{{json .Config}}`, `{{.Config.Cmd}}`: the common subset of Go templates.
function renderTemplate(tpl: string, obj: unknown): string {
  return tpl.replace(/\{\{\s*(json\s+)?\.([\w.]*)\s*\}\}/g, (_m, json: string | undefined, field: string) => {
    let v: unknown = obj;
    for (const k of field.split('.').filter(Boolean)) v = v && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined;
    if (json) return JSON.stringify(v ?? null);
    if (v === undefined || v === null) return '<no value>';
    if (Array.isArray(v)) return `[${v.join(' ')}]`;
    if (typeof v === 'object') return `map[${Object.entries(v).map(([k, x]) => `${k}:${typeof x === 'object' ? JSON.stringify(x) : String(x)}`).join(' ')}]`;
    return String(v);
  });
}

function addInspect(parent: Command, name: string): void {
  parent
    .command(name)
    .description('show the configuration of images as JSON (Docker shape)')
    .argument('<image...>')
    .option('-f, --format <template>', "format with a template, e.g. '{{.Id}}' or '{{json .Config}}'")
    .action(async (images: string[], opts: { format?: string }, cmd: Command) => {
      const store = await openStore(cmd);
      const results: Record<string, unknown>[] = [];
      const errors: string[] = [];
      for (const image of images) {
        try {
          const id = await resolveImageId(store, image);
          results.push(inspectImage(store, store.readImageDb(), id));
        } catch (err) {
          if (!(err instanceof UfsError)) throw err;
          errors.push(err.message);
        }
      }
      if (opts.format !== undefined) out(results.map((r) => `${renderTemplate(opts.format!, r)}\n`).join(''));
      else out(`${JSON.stringify(results, null, 4)}\n`);
      if (errors.length) {
        if (errors.length === images.length && errors.length === 1) throw new UfsError(errors[0]!);
        for (const e of errors) process.stderr.write(`ufs: ${e}\n`);
        process.exitCode = 1;
      }
    });
}

function addLayers(parent: Command, name: string): void {
  parent
    .command(name)
    .description('list an image layer by layer, or the changes of layer N (A/C/D) and the space it wastes')
    .argument('<image>')
    .argument('[layer]', 'layer index (0 = bottom) or diff_id')
    .option('--no-trunc', 'do not truncate diff_ids and history lines')
    .option('--json', 'print JSON')
    .action(async (image: string, layer: string | undefined, opts: { trunc: boolean; json?: boolean }, cmd: Command) => {
      const store = await openStore(cmd);
      const resolved = await resolveImage(store, image);
      // The layer directories are read while a snapshot lease keeps a prune from removing them.
      await withLease(store, resolved.diffIds, async () => {
      if (layer === undefined) {
        const rows = await layerRows(store, resolved);
        if (opts.json) {
          out(`${JSON.stringify(rows, null, 2)}\n`);
          return;
        }
        const body = rows.map((r) => [
          String(r.index),
          opts.trunc ? shortId(r.diffId) : r.diffId,
          humanSize(r.size),
          String(r.added),
          String(r.modified),
          String(r.deleted),
          opts.trunc ? ellipsis(r.createdBy.replace(/\t/g, ' '), 60) : r.createdBy,
        ]);
        out(table([['INDEX', 'DIFF ID', 'SIZE', 'ADDED', 'MODIFIED', 'DELETED', 'CREATED BY'], ...body]));
        return;
      }
      const index = selectLayer(resolved, layer);
      const detail = await layerDetail(store, resolved, index);
      if (opts.json) {
        out(`${JSON.stringify(detail, null, 2)}\n`);
        return;
      }
      out(detail.changes.map((c) => `${c.kind} ${c.path}\n`).join(''));
      if (detail.wasted.length === 0) {
        out(`\nWasted: 0B (no file of this layer is overwritten or deleted by a later layer)\n`);
        return;
      }
      out(`\nWasted: ${humanSize(detail.wastedBytes)} in ${detail.wasted.length} file${detail.wasted.length === 1 ? '' : 's'} overwritten or deleted by later layers\n`);
      out(table(detail.wasted.map((w) => [humanSize(w.size), w.path, `(hidden by layer ${w.by})`])));
      });
    });
}

function addPrune(parent: Command): void {
  parent
    .command('prune')
    .description('remove unused images (untagged ones; with -a, all that no container uses)')
    .option('-a, --all', 'remove all images no container uses, not just untagged ones')
    .option('-f, --force', 'do not prompt for confirmation')
    .action(async (opts: { all?: boolean; force?: boolean }, cmd: Command) => {
      if (!opts.force && process.stdin.isTTY) {
        const what = opts.all ? 'all images without at least one container associated to them' : 'all dangling images';
        const rl = createInterface({ input: process.stdin, output: process.stderr });
        const answer = await rl.question(`WARNING! This will remove ${what}.\nAre you sure you want to continue? [y/N] `);
        rl.close();
        if (!/^y(es)?$/i.test(answer.trim())) return;
      }
      const store = await openStore(cmd);
      const result = await pruneImages(store, !!opts.all);
      if (result.lines.length) out(`Deleted Images:\n${result.lines.map((l) => `${l}\n`).join('')}\n`);
      out(`Total reclaimed space: ${humanSize(result.bytes)}\n`);
    });
}

export function registerImageCommands(program: Command): void {
  addLoad(program, 'load');
  addSave(program, 'save');
  addImport(program, 'import');
  addImages(program, 'images');
  addTag(program, 'tag');
  addRmi(program, 'rmi');
  addHistory(program, 'history');
  addInspect(program, 'inspect');
  addLayers(program, 'layers');

  const image = program.command('image').description('manage images');
  addImages(image, 'ls', 'list');
  addRmi(image, 'rm', 'remove');
  addLoad(image, 'load');
  addSave(image, 'save');
  addImport(image, 'import');
  addTag(image, 'tag');
  addHistory(image, 'history');
  addInspect(image, 'inspect');
  addLayers(image, 'layers');
  addPrune(image);
}

// For `ufs mount IMAGE [MOUNTPOINT] [--layer N|DIGEST]` (src/cli/mount.ts): the layers
// (diff_ids, top first) of the image or of the filesystem as it stood after layer N.
export async function imageMountLayers(cmd: Command, ref: string, layer?: string): Promise<{ store: Store; layers: string[]; fsname: string }> {
  const store = await openStore(cmd);
  const id = await resolveImageId(store, ref);
  const image = describeImage(store, id);
  if (image.layerDirs.length === 0) throw new UfsError(`image ${ref} has no layers to mount`);
  const topFirst = [...image.diffIds].reverse();
  if (layer === undefined) return { store, layers: topFirst, fsname: `ufs-image-${shortId(id)}` };
  const index = selectLayer(image, layer);
  return { store, layers: image.diffIds.slice(0, index + 1).reverse(), fsname: `ufs-image-${shortId(id)}-layer${index}` };
}

// The store, if the one --root/UFS_ROOT names exists (umount must not create one).
export async function existingStore(cmd: Command): Promise<Store | undefined> {
  const root = storeRoot(cmd.optsWithGlobals().root as string | undefined);
  return fs.existsSync(root) ? Store.open(root) : undefined;
}
