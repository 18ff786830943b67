// load, save, import, images, tag, rmi, history, inspect, image prune, layers (issue 3):
// Docker's names, flags and columns; also under `ufs image ...` as Docker has them.
import fs from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import type { Command } from 'commander';
import { openStore } from './store.js';
import { startProgress } from './progress.js';
import { errnoCode, UfsError } from '../common/errors.js';
import { ago, compileListFormat, ellipsis, humanSize, parseTemplate, renderList, table } from '../common/format.js';
import type { Store } from '../store/index.js';
import type { ImageRow } from '../image/present.js';
import { cleanUpOnInterrupt, out } from './output.js';


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
      cleanUpOnInterrupt(store.root);
      const { loadArchive } = await import('../image/load.js');
      const result = await loadArchive(store, input.stream, { progress: startProgress('Loading', undefined, { quiet: !!opts.quiet }), ...(input.size !== undefined ? { totalBytes: input.size } : {}) });
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
      const { saveImages } = await import('../image/save.js');
      if (!opts.output || opts.output === '-') {
        if (process.stdout.isTTY) throw new UfsError('cowardly refusing to save to a terminal. Use the -o flag or redirect');
        cleanUpOnInterrupt(store.root);
        await saveImages(store, images, format, process.stdout, startProgress('Saving'));
        await new Promise<void>((resolve) => process.stdout.write('', () => resolve()));
        return;
      }
      // Written beside the target and renamed: the file is complete or absent.
      const target = path.resolve(opts.output);
      const tmp = `${target}.ufs-${process.pid}.tmp`;
      cleanUpOnInterrupt(store.root, () => [tmp]);
      const stream = fs.createWriteStream(tmp, { flags: 'wx', mode: 0o644 });
      try {
        await saveImages(store, images, format, stream, startProgress('Saving'));
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
      const { normalizeTagged } = await import('../image/reference.js');
      if (reference) normalizeTagged(reference); // bad names fail before reading anything
      const input = openInput(file, 'import');
      cleanUpOnInterrupt(store.root);
      const { importRootfs } = await import('../image/import.js');
      const id = await importRootfs(store, input.stream, {
        ...(reference ? { ref: reference } : {}),
        changes: opts.change,
        ...(opts.message !== undefined ? { message: opts.message } : {}),
        source: input.source,
        ...(input.size !== undefined ? { totalBytes: input.size } : {}),
        progress: startProgress('Importing'),
      });
      out(`${id}\n`);
    });
}

// ---- images: Docker's columns, --format fields and --filter keys

// The fields `ufs images --format` knows, as Docker's image formatting context has them.
interface ImageLine {
  ID: string;
  Repository: string;
  Tag: string;
  Digest: string;
  CreatedSince: string;
  CreatedAt: string;
  Size: string;
  Containers: string;
  SharedSize: string;
  UniqueSize: string;
  VirtualSize: string;
}

const IMAGE_HEADERS: Record<keyof ImageLine, string> = {
  ID: 'IMAGE ID',
  Repository: 'REPOSITORY',
  Tag: 'TAG',
  Digest: 'DIGEST',
  CreatedSince: 'CREATED',
  CreatedAt: 'CREATED AT',
  Size: 'SIZE',
  Containers: 'CONTAINERS',
  SharedSize: 'SHARED SIZE',
  UniqueSize: 'UNIQUE SIZE',
  VirtualSize: 'VIRTUAL SIZE',
};

// Docker's CreatedAt: 2024-01-02 03:04:05 +0000 UTC
export function dockerTime(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  return `${d.toISOString().slice(0, 19).replace('T', ' ')} +0000 UTC`;
}

// path.Match-style globs as Docker's reference filter uses them: * and ? within a component.
function globMatch(pattern: string, s: string): boolean {
  const re = pattern.replace(/[.+^${}()|\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]');
  return new RegExp(`^${re}$`).test(s);
}

interface ImageFilter {
  dangling?: boolean;
  references: string[];
  before?: string; // created before this image's creation
  since?: string;
  labels: { key: string; value?: string }[];
}

function parseImageFilters(filters: string[]): ImageFilter {
  const f: ImageFilter = { references: [], labels: [] };
  for (const spec of filters) {
    const eq = spec.indexOf('=');
    if (eq < 0) throw new UfsError(`bad format of filter (expected name=value): ${spec}`);
    const key = spec.slice(0, eq).toLowerCase();
    const value = spec.slice(eq + 1);
    switch (key) {
      case 'dangling':
        if (!/^(true|false|1|0)$/i.test(value)) throw new UfsError(`invalid filter 'dangling=${value}'`);
        f.dangling = /^(true|1)$/i.test(value);
        break;
      case 'reference':
        f.references.push(value);
        break;
      case 'before':
        f.before = value;
        break;
      case 'since':
        f.since = value;
        break;
      case 'label': {
        const i = value.indexOf('=');
        f.labels.push(i < 0 ? { key: value } : { key: value.slice(0, i), value: value.slice(i + 1) });
        break;
      }
      default:
        throw new UfsError(`invalid filter '${key}'`);
    }
  }
  return f;
}

// The rows `ufs images` shows, after the reference argument, -a and the filters.
async function imageRows(store: Store, reference: string | undefined, all: boolean, filter: ImageFilter): Promise<ImageRow[]> {
  const { listImages } = await import('../image/present.js');
  const { familiarName, parseReference, repoName } = await import('../image/reference.js');
  const { readImageConfig } = await import('../image/records.js');
  let rows = listImages(store);
  if (reference) {
    const r = parseReference(reference);
    const repo = familiarName(repoName(r));
    rows = rows.filter((x) => x.repository === repo && (r.tag === undefined || x.tag === r.tag));
  }
  const db = store.readImageDb();
  if (!all) {
    // Docker hides untagged intermediate images: the parents of other images
    const parents = new Set(Object.values(db.images).map((r) => r.parent).filter((p): p is string => !!p));
    rows = rows.filter((r) => !(r.repository === '<none>' && r.tag === '<none>' && parents.has(r.id)));
  }
  if (filter.dangling !== undefined) rows = rows.filter((r) => (r.repository === '<none>' && r.tag === '<none>') === filter.dangling);
  if (filter.references.length) {
    rows = rows.filter((r) => filter.references.some((p) => globMatch(p, r.repository) || (r.tag !== '<none>' && globMatch(p, `${r.repository}:${r.tag}`))));
  }
  const createdOf = async (ref: string) => {
    const { resolveImageId } = await import('../image/resolve.js');
    const id = await resolveImageId(store, ref);
    return readImageConfig(store, id).created ?? '';
  };
  if (filter.before !== undefined) {
    const t = await createdOf(filter.before);
    rows = rows.filter((r) => r.created < t);
  }
  if (filter.since !== undefined) {
    const t = await createdOf(filter.since);
    rows = rows.filter((r) => r.created > t);
  }
  if (filter.labels.length) {
    const labelsOf = new Map<string, Record<string, string>>();
    rows = rows.filter((r) => {
      if (!labelsOf.has(r.id)) labelsOf.set(r.id, readImageConfig(store, r.id).config?.Labels ?? {});
      const labels = labelsOf.get(r.id)!;
      return filter.labels.every((l) => Object.hasOwn(labels, l.key) && (l.value === undefined || labels[l.key] === l.value));
    });
  }
  return rows;
}

function addImages(parent: Command, name: string, alias?: string): void {
  const c = parent
    .command(name)
    .description('list images')
    .argument('[reference]', 'only images of this REPOSITORY[:TAG]')
    .option('-a, --all', 'show all images (by default untagged intermediate images are hidden)')
    .option('-q, --quiet', 'only show image IDs')
    .option('--digests', 'show digests')
    .option('--no-trunc', 'do not truncate output')
    .option('-f, --filter <filter>', 'filter: dangling=true|false, reference=PATTERN, before=IMAGE, since=IMAGE, label=KEY[=VALUE]', collect, [] as string[])
    .option('--format <format>', "format: 'table', 'table TEMPLATE', 'json' or a Go template")
    .option('--json', 'one JSON object per image (as --format json)')
    .action(async (reference: string | undefined, opts: { all?: boolean; quiet?: boolean; digests?: boolean; trunc: boolean; filter: string[]; format?: string; json?: boolean }, cmd: Command) => {
      const filter = parseImageFilters(opts.filter);
      if (opts.format !== undefined && opts.format !== 'json' && opts.format !== 'table') await compileListFormat(opts.format); // bad templates fail first
      const store = await openStore(cmd);
      const { shortId } = await import('../image/reference.js');
      const rows = await imageRows(store, reference, !!opts.all, filter);
      const id = (full: string) => (opts.trunc ? shortId(full) : full);
      if (opts.quiet) {
        out([...new Set(rows.map((r) => id(r.id)))].map((i) => `${i}\n`).join(''));
        return;
      }
      const lines: ImageLine[] = rows.map((r) => ({
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
      }));
      const defaultTable = opts.digests
        ? 'table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}'
        : 'table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}';
      out(await renderList(opts.json ? 'json' : opts.format, lines, { table: defaultTable, headers: IMAGE_HEADERS }));
    });
  if (alias) c.alias(alias);
}

function addTag(parent: Command, name: string): void {
  parent
    .command(name)
    .description('create a tag TARGET_IMAGE that refers to SOURCE_IMAGE')
    .argument('<source>', 'SOURCE_IMAGE[:TAG]')
    .argument('<target>', 'TARGET_IMAGE[:TAG]')
    .action(async (source: string, target: string, _opts: unknown, cmd: Command) => {
      const { normalizeTagged } = await import('../image/reference.js');
      const { resolveImageId } = await import('../image/resolve.js');
      const { setTag } = await import('../image/records.js');
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
      const { removeImages } = await import('../image/gc.js');
      const result = await removeImages(store, images, !!opts.force);
      out(result.lines.map((l) => `${l}\n`).join(''));
      for (const e of result.errors) process.stderr.write(`ufs: ${e}\n`);
      if (result.errors.length) process.exitCode = 1;
    });
  if (alias) c.alias(alias);
}

interface HistoryLine {
  ID: string;
  CreatedSince: string;
  CreatedAt: string;
  CreatedBy: string;
  Size: string;
  Comment: string;
}

const HISTORY_HEADERS: Record<keyof HistoryLine, string> = {
  ID: 'IMAGE',
  CreatedSince: 'CREATED',
  CreatedAt: 'CREATED AT',
  CreatedBy: 'CREATED BY',
  Size: 'SIZE',
  Comment: 'COMMENT',
};

// Docker's boolean flags take their value after '=': -H=false, --human=false.
function boolFlag(v: string | boolean | undefined, name: string): boolean {
  if (v === undefined || v === true) return true;
  const s = String(v).replace(/^=/, '').toLowerCase();
  if (/^(true|1|t)$/.test(s)) return true;
  if (/^(false|0|f)$/.test(s)) return false;
  throw new UfsError(`invalid argument "${v}" for "${name}" flag: strconv.ParseBool: parsing "${s}": invalid syntax`);
}

function addHistory(parent: Command, name: string): void {
  parent
    .command(name)
    .description('show the history of an image')
    .argument('<image>')
    .option('--no-trunc', 'do not truncate output')
    .option('-q, --quiet', 'only show image IDs')
    .option('-H, --human [bool]', 'human readable sizes and dates (-H=false for bytes and RFC 3339 times)')
    .option('--format <format>', "format: 'table', 'table TEMPLATE', 'json' or a Go template")
    .action(async (image: string, opts: { trunc: boolean; quiet?: boolean; human?: string | boolean; format?: string }, cmd: Command) => {
      const human = boolFlag(opts.human, '-H, --human');
      if (opts.format !== undefined && opts.format !== 'json' && opts.format !== 'table') await compileListFormat(opts.format);
      const store = await openStore(cmd);
      const { resolveImageId } = await import('../image/resolve.js');
      const { imageHistory } = await import('../image/present.js');
      const { shortId } = await import('../image/reference.js');
      const id = await resolveImageId(store, image);
      const rows = imageHistory(store, id);
      const imageCol = (i: string) => (i === '<missing>' || !opts.trunc ? i : shortId(i));
      if (opts.quiet) {
        out(rows.map((r) => `${imageCol(r.image)}\n`).join(''));
        return;
      }
      const lines: HistoryLine[] = rows.map((r) => {
        const by = r.createdBy.replace(/\t/g, ' ');
        const rfc3339 = r.created && !Number.isNaN(Date.parse(r.created)) ? new Date(r.created).toISOString().replace(/\.000Z$/, 'Z') : r.created;
        return {
          ID: imageCol(r.image),
          CreatedSince: human ? ago(r.created) : rfc3339,
          CreatedAt: rfc3339,
          CreatedBy: opts.trunc ? ellipsis(by, 45) : by,
          Size: human ? humanSize(r.size) : String(r.size),
          Comment: r.comment,
        };
      });
      out(await renderList(opts.format, lines, { table: 'table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}', headers: HISTORY_HEADERS }));
    });
}

// Docker's inspect output: the JSON array, or the template once per object. A bad template
// fails before anything is looked up.
export async function renderInspect(results: unknown[], format: string | undefined): Promise<string> {
  if (format === undefined) return `${JSON.stringify(results, null, 4)}\n`;
  if (format === 'json') return `${JSON.stringify(results)}\n`;
  const tpl = await parseTemplate(format);
  return results.map((r) => `${tpl.execute(r)}\n`).join('');
}

// Each reference in turn; the ones not found are reported after what was found is printed.
export async function inspectEach(refs: string[], format: string | undefined, lookup: (ref: string) => Promise<unknown>): Promise<void> {
  if (format !== undefined && format !== 'json') await parseTemplate(format);
  const results: unknown[] = [];
  const errors: string[] = [];
  for (const ref of refs) {
    try {
      results.push(await lookup(ref));
    } catch (err) {
      if (!(err instanceof UfsError)) throw err;
      errors.push(err.message);
    }
  }
  if (results.length || format === undefined) out(await renderInspect(results, format));
  if (errors.length) {
    if (errors.length === refs.length && errors.length === 1 && format !== undefined) throw new UfsError(errors[0]!);
    for (const e of errors) process.stderr.write(`ufs: ${e}\n`);
    process.exitCode = 1;
  }
}

export async function lookupImageForInspect(store: Store, ref: string): Promise<Record<string, unknown>> {
  const { resolveImageId } = await import('../image/resolve.js');
  const { inspectImage } = await import('../image/present.js');
  const id = await resolveImageId(store, ref);
  return inspectImage(store, store.readImageDb(), id);
}

function addInspect(parent: Command, name: string): void {
  parent
    .command(name)
    .description('show the configuration of images as JSON (Docker shape)')
    .argument('<image...>')
    .option('-f, --format <template>', "format with a Go template, e.g. '{{.Id}}' or '{{json .Config}}'")
    .action(async (images: string[], opts: { format?: string }, cmd: Command) => {
      if (opts.format !== undefined && opts.format !== 'json') await parseTemplate(opts.format);
      const store = await openStore(cmd);
      await inspectEach(images, opts.format, (ref) => lookupImageForInspect(store, ref));
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
      const { resolveImage } = await import('../image/resolve.js');
      const { layerDetail, layerRows, selectLayer } = await import('../image/layers.js');
      const { shortId } = await import('../image/reference.js');
      const resolved = await resolveImage(store, image);
      // The layer directories are read while a snapshot lease keeps a prune from removing them.
      const { withLease } = await import('../snapshot/index.js');
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

// Docker's prune prompt; true when the user agreed (or -f, or no terminal to ask on).
export async function confirm(force: boolean | undefined, warning: string): Promise<boolean> {
  if (force || !process.stdin.isTTY) return true;
  const { createInterface } = await import('node:readline/promises');
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  const answer = await rl.question(`WARNING! This will remove ${warning}.\nAre you sure you want to continue? [y/N] `);
  rl.close();
  return /^y(es)?$/i.test(answer.trim());
}

function addPrune(parent: Command): void {
  parent
    .command('prune')
    .description('remove unused images (untagged ones; with -a, all that no container uses)')
    .option('-a, --all', 'remove all images no container uses, not just untagged ones')
    .option('-f, --force', 'do not prompt for confirmation')
    .action(async (opts: { all?: boolean; force?: boolean }, cmd: Command) => {
      if (!(await confirm(opts.force, opts.all ? 'all images without at least one container associated to them' : 'all dangling images'))) return;
      const store = await openStore(cmd);
      const { pruneImages } = await import('../image/gc.js');
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
  const { resolveImageId, describeImage } = await import('../image/resolve.js');
  const { selectLayer } = await import('../image/layers.js');
  const { shortId } = await import('../image/reference.js');
  const id = await resolveImageId(store, ref);
  const image = describeImage(store, id);
  if (image.layerDirs.length === 0) throw new UfsError(`image ${ref} has no layers to mount`);
  const topFirst = [...image.diffIds].reverse();
  if (layer === undefined) return { store, layers: topFirst, fsname: `ufs-image-${shortId(id)}` };
  const index = selectLayer(image, layer);
  return { store, layers: image.diffIds.slice(0, index + 1).reverse(), fsname: `ufs-image-${shortId(id)}-layer${index}` };
}

