// Runs a Dockerfile: each stage the target needs, each step on a snapshot of its parent
// (src/snapshot). RUN goes through the runtime's process runner, COPY/ADD are done here,
// metadata steps only change the config. Every step is an image (so history shows IDs and
// `ufs run ID` works) and is remembered in the build cache under a key of its parent image
// and its instruction after substitution (plus, for COPY/ADD, the sources' content hash).
// A failed step leaves no layer and no snapshot; tags move only when the build succeeded.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import { UfsError } from '../common/errors.js';
import { normalizeTagged } from '../image/reference.js';
import { lookupImage, setTag } from '../image/records.js';
import { resolveImageId } from '../image/resolve.js';
import { type ContainerConfig, DEFAULT_PATH, goArch, type HistoryEntry } from '../image/types.js';
import type { NetworkSpec } from '../runtime/ocispec.js';
import { rmTreeSync, type Store } from '../store/index.js';
import { BuildCache, cacheKey } from './cache.js';
import { BuildContext, hashEntries, matchSources, type Source, type SourceRoot, walkSource } from './context.js';
import { lexWord, lexWords, type Vars } from './lexer.js';
import { applyMetadata, shellOf } from './metadata.js';
import { DockerfileError, flagValue, type Instruction, parseDockerfile } from './parser.js';
import { argDecls, makePlan, type Plan, type Stage, stageRef } from './plan.js';
import { BuildNetworks, networkKey, parseBuildNetwork, stepNetwork, type BuildNetwork } from './network.js';
import { mkdirInRoot, resolveChown } from './rootpath.js';
import { planWorkdir, plainOwner, writeWorkdirLayer } from './workdir.js';
import type * as Work from './work.js';

export interface StepInfo {
  seq: number; // #N in plain output
  label: string; // "[2/7]" or "[builder 2/7]"
  text: string; // the instruction
}

export interface BuildEvents {
  step(s: StepInfo): void;
  cached(s: StepInfo): void;
  output(s: StepInfo, chunk: Buffer): void;
  done(s: StepInfo, ms: number): void;
  warn(message: string): void;
}

export interface BuildOptions {
  dockerfile: string; // its text
  dockerfileName: string; // for errors
  contextDir?: string; // none: `ufs build -`
  tags: string[];
  buildArgs: Map<string, string>;
  target?: string;
  noCache: boolean;
  pull: boolean;
  squash?: 'layers' | 'all';
  labels: [string, string][];
  network?: string; // default (the bridge), bridge, none, host or a user network
  signal?: AbortSignal;
  events: BuildEvents;
  sourceDateEpoch?: number;
}

export class StepFailed extends UfsError {}

const PROXY_ARGS = ['HTTP_PROXY', 'http_proxy', 'HTTPS_PROXY', 'https_proxy', 'FTP_PROXY', 'ftp_proxy', 'NO_PROXY', 'no_proxy', 'ALL_PROXY', 'all_proxy'];

function platformArgs(): Map<string, string> {
  const arch = goArch();
  const m = new Map<string, string>();
  for (const p of ['TARGET', 'BUILD']) {
    m.set(`${p}PLATFORM`, `linux/${arch}`);
    m.set(`${p}OS`, 'linux');
    m.set(`${p}ARCH`, arch);
    m.set(`${p}VARIANT`, '');
  }
  return m;
}

interface StageState {
  stage: Stage;
  imageId?: string;
  diffIds: string[]; // bottom first
  config: ContainerConfig;
  args: Map<string, string>; // declared ARGs with a value
  cmdSetInStage: boolean;
  author?: string;
  baseImageId?: string;
  baseLayers: number;
  baseHistory: number;
}

interface StageResult {
  imageId?: string;
  diffIds: string[];
}

function envMap(env: string[] | undefined): Map<string, string> {
  const m = new Map<string, string>();
  for (const e of env ?? []) {
    const i = e.indexOf('=');
    if (i > 0) m.set(e.slice(0, i), e.slice(i + 1));
  }
  return m;
}

// Variables for substitution: the stage's ARGs, overridden by ENV.
function varsOf(st: StageState): Map<string, string> {
  return new Map([...st.args, ...envMap(st.config.Env)]);
}

// Expands only $V / ${V} / ${V:-x} / ${V:+x} (a COPY here-document's content: quotes stay).
function expandText(s: string, vars: Vars): string {
  return s.replace(/\$(?:\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-+])([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))/g, (_m, b: string, op: string, word: string, plain: string) => {
    const name = b ?? plain;
    const v = vars.get(name);
    if (!op) return v ?? '';
    const empty = v === undefined || (op.startsWith(':') && v === '');
    return op.endsWith('-') ? (empty ? word : v!) : empty ? '' : word;
  });
}

export class Builder {
  private seq = 0;
  private results = new Map<number, StageResult>();
  private plan!: Plan;
  private ctx: BuildContext;
  private escape = '\\';
  private globalVars = new Map<string, string>();
  private consumed = new Set<string>();
  private epoch?: number;
  private cleanups: (() => Promise<void>)[] = [];
  private network: BuildNetwork;
  private networks: BuildNetworks;
  private w?: typeof Work;
  private cache: BuildCache;
  private runsLeft = 0; // RUN steps still to come; at 0 the build's networks are let go

  constructor(
    private readonly store: Store,
    private readonly opts: BuildOptions,
  ) {
    this.ctx = new BuildContext(opts.contextDir);
    this.network = parseBuildNetwork(opts.network);
    this.cache = new BuildCache(store);
    this.networks = new BuildNetworks(store, (fn) => this.cleanups.push(fn));
    const sde = opts.buildArgs.get('SOURCE_DATE_EPOCH') ?? (opts.sourceDateEpoch !== undefined ? String(opts.sourceDateEpoch) : undefined);
    if (sde !== undefined) {
      if (!/^\d+$/.test(sde)) throw new UfsError(`SOURCE_DATE_EPOCH must be a number of seconds, not ${JSON.stringify(sde)}`);
      this.epoch = Number(sde);
      this.consumed.add('SOURCE_DATE_EPOCH');
    }
  }

  // The modules a step that runs needs (src/build/work.ts), loaded on the first cache miss.
  private async work(): Promise<typeof Work> {
    return (this.w ??= await import('./work.js'));
  }

  private get file(): string {
    return this.opts.dockerfileName;
  }

  private bad(ins: Instruction, what: string): never {
    throw new DockerfileError(this.file, ins.line, what);
  }

  private created(): string {
    return this.epoch !== undefined ? new Date(this.epoch * 1000).toISOString() : new Date().toISOString();
  }

  async build(): Promise<string> {
    for (const t of this.opts.tags) normalizeTagged(t); // bad names fail before any work
    const df = parseDockerfile(this.opts.dockerfile, this.file);
    this.escape = df.escape;
    // Global scope: the platform ARGs, then the ARGs before the first FROM.
    const platform = platformArgs();
    const globals = new Map<string, string>(platform);
    const firstFrom = df.instructions.findIndex((i) => i.keyword === 'FROM');
    const globalArgs = df.instructions.slice(0, firstFrom < 0 ? df.instructions.length : firstFrom).filter((i) => i.keyword === 'ARG');
    for (const ins of globalArgs) {
      for (const d of this.decls(ins)) {
        const v = this.opts.buildArgs.get(d.name) ?? (d.value !== undefined ? lexWord(d.value, globals, this.escape) : platform.get(d.name));
        this.consumed.add(d.name);
        if (v !== undefined) globals.set(d.name, v);
      }
    }
    this.globalVars = globals;
    this.plan = makePlan(df, this.file, globals, this.opts.target);
    try {
      let final: StageState | undefined;
      for (const i of this.plan.needed) this.runsLeft += this.plan.stages[i]!.steps.filter((x) => x.keyword === 'RUN').length;
      for (const i of this.plan.needed) {
        final = await this.buildStage(this.plan.stages[i]!);
        this.results.set(i, { ...(final.imageId ? { imageId: final.imageId } : {}), diffIds: final.diffIds });
      }
      const st = final!;
      for (const [k, v] of this.opts.labels) {
        await this.metaStep(st, { keyword: 'LABEL', line: 0, rest: `${JSON.stringify(k)}=${JSON.stringify(v)}`, flags: [], heredocs: [], source: `LABEL ${k}=${v}` }, undefined);
      }
      if (!st.imageId) st.imageId = await this.emptyImage(st);
      let id = st.imageId;
      if (this.opts.squash) id = await this.squash(st, this.opts.squash);
      const unused = [...this.opts.buildArgs.keys()].filter((k) => !this.consumed.has(k) && !PROXY_ARGS.includes(k));
      if (unused.length) this.opts.events.warn(`one or more build-args [${unused.sort().join(' ')}] were not consumed`);
      await this.tag(id);
      return id;
    } finally {
      for (const c of this.cleanups.reverse()) await c().catch(() => {});
    }
  }

  private decls(ins: Instruction) {
    try {
      return argDecls(ins);
    } catch (err) {
      return this.bad(ins, (err as Error).message);
    }
  }

  private async tag(id: string): Promise<void> {
    if (this.opts.tags.length === 0) return;
    // A rebuild that changed nothing moves no tag: nothing to write, no lock to take.
    const now = this.store.readImageDb();
    if (this.opts.tags.every((t) => now.tags[normalizeTagged(t)]?.id === id)) return;
    await this.store.withLock(async () => {
      this.store.updateImageDb((db) => {
        const rec = db.images[id];
        if (!rec) throw new UfsError(`image ${id} vanished before it could be tagged`);
        for (const t of this.opts.tags) setTag(db, normalizeTagged(t), id, rec.manifest);
      });
    });
  }

  // FROM scratch with no step: an image with no layers.
  private async emptyImage(st: StageState): Promise<string> {
    return (await this.work()).createImage(this.store, { addDiffIds: [], history: [], config: st.config, created: this.created() });
  }

  private label(stage: Stage, n: number, total: number): string {
    const multi = this.plan.needed.length > 1;
    const name = stage.name ?? `stage-${stage.index}`;
    return multi ? `[${name} ${n}/${total}]` : `[${n}/${total}]`;
  }

  // A base image: the local one (busybox:latest is built in), else pulled by the registry
  // client (INTERFACES.md section 4); --pull always asks the registry.
  private async baseImage(ref: string, ins: Instruction): Promise<string> {
    try {
      if (!this.opts.pull) {
        const local = lookupImage(this.store.readImageDb(), ref);
        if (local.id) return await resolveImageId(this.store, ref);
      }
      const W = await this.work();
      if (!this.opts.pull && lookupImage(this.store.readImageDb(), ref).full === W.BUSYBOX_REF) return await resolveImageId(this.store, ref);
      return await W.ensureImage(this.store, ref, { pull: this.opts.pull ? 'always' : 'missing' });
    } catch (err) {
      if (err instanceof UfsError) this.bad(ins, `base image ${ref}: ${err.message}`);
      throw err;
    }
  }

  private async buildStage(stage: Stage): Promise<StageState> {
    const st: StageState = { stage, diffIds: [], config: {}, args: new Map(), cmdSetInStage: false, baseLayers: 0, baseHistory: 0 };
    const from = stage.from;
    let triggers: string[] = [];
    const t0 = Date.now();
    if (stage.base.toLowerCase() !== 'scratch') {
      const dep = stageRef(this.plan, stage.base, stage.index);
      const id = dep !== undefined && !/^\d+$/.test(stage.base) ? this.results.get(dep)?.imageId : await this.baseImage(stage.base, from);
      if (id) {
        const config = this.cache.config(id);
        st.imageId = id;
        st.baseImageId = id;
        st.diffIds = [...config.rootfs.diff_ids];
        st.baseLayers = st.diffIds.length;
        st.baseHistory = config.history?.length ?? 0;
        st.config = structuredClone(config.config ?? {});
        if (config.author) st.author = config.author;
        triggers = st.config.OnBuild ?? [];
        if (triggers.length) st.config.OnBuild = null;
      }
    }
    const fromInfo: StepInfo = { seq: ++this.seq, label: this.label(stage, 1, stage.steps.length + triggers.length + 1), text: `FROM ${stage.base}${stage.name ? ` AS ${stage.name}` : ''}` };
    this.opts.events.step(fromInfo);
    this.opts.events.done(fromInfo, Date.now() - t0);
    const steps: Instruction[] = [];
    for (const t of triggers) {
      const ins = parseDockerfile(t, `${this.file} (ONBUILD of ${stage.base})`).instructions[0];
      if (ins) steps.push({ ...ins, line: from.line });
    }
    this.runsLeft += steps.filter((x) => x.keyword === 'RUN').length; // ONBUILD's
    steps.push(...stage.steps);
    const all = steps.length + 1;
    let n = 1;
    for (const ins of steps) {
      n++;
      if (this.opts.signal?.aborted) throw new UfsError('build interrupted');
      const info: StepInfo = { seq: ++this.seq, label: this.label(stage, n, all), text: ins.source.split('\n')[0]!.length < ins.source.length ? `${ins.source.split('\n')[0]} ...` : ins.source };
      await this.step(st, ins, info);
    }
    return st;
  }

  private async step(st: StageState, ins: Instruction, info: StepInfo): Promise<void> {
    try {
      switch (ins.keyword) {
        case 'ARG':
          return await this.argStep(st, ins, info);
        case 'RUN':
          try {
            return await this.runStep(st, ins, info);
          } finally {
            // After the last RUN the networks come down beside the remaining steps.
            if (--this.runsLeft === 0) this.networks.release();
          }
        case 'COPY':
        case 'ADD':
          return await this.copyStep(st, ins, info);
        case 'WORKDIR':
          return await this.workdirStep(st, ins, info);
        case 'FROM':
          return this.bad(ins, 'unexpected FROM');
        default:
          return await this.metaStep(st, ins, info);
      }
    } catch (err) {
      if (err instanceof UfsError && !(err instanceof DockerfileError) && !(err instanceof StepFailed)) {
        throw new DockerfileError(this.file, ins.line, `${ins.keyword}: ${err.message}`);
      }
      throw err;
    }
  }

  // A step already made: its image takes over the stage.
  private adopt(st: StageState, id: string): void {
    const config = this.cache.config(id);
    st.imageId = id;
    st.diffIds = [...config.rootfs.diff_ids];
    st.config = structuredClone(config.config ?? {});
  }

  private lookup(key: string): string | undefined {
    return this.opts.noCache ? undefined : this.cache.lookup(key);
  }

  private async metaStep(st: StageState, ins: Instruction, info: StepInfo | undefined, argLine?: string): Promise<void> {
    const t0 = Date.now();
    if (info) this.opts.events.step(info);
    const meta = { config: st.config, cmdSetInStage: st.cmdSetInStage, ...(st.author ? { author: st.author } : {}) };
    const createdBy = argLine ?? applyMetadata(ins, meta, varsOf(st), this.escape);
    st.cmdSetInStage = meta.cmdSetInStage;
    if (meta.author) st.author = meta.author;
    const key = cacheKey(['meta', st.imageId ?? 'scratch', createdBy, st.config, st.author ?? '']);
    const hit = this.lookup(key);
    if (hit) {
      this.adopt(st, hit);
      if (info) this.opts.events.cached(info);
      return;
    }
    const id = await (await this.work()).createImage(this.store, {
      ...(st.imageId ? { parent: st.imageId } : {}),
      addDiffIds: [],
      history: [{ created_by: createdBy, empty_layer: true, created: this.created() }],
      config: st.config,
      ...(st.author ? { author: st.author } : {}),
      created: this.created(),
    });
    this.cache.remember(key, id);
    st.imageId = id;
    if (info) this.opts.events.done(info, Date.now() - t0);
  }

  private async argStep(st: StageState, ins: Instruction, info: StepInfo): Promise<void> {
    const parts: string[] = [];
    const vars = varsOf(st);
    for (const d of this.decls(ins)) {
      this.consumed.add(d.name);
      let v = this.opts.buildArgs.get(d.name);
      if (v === undefined && d.value !== undefined) v = lexWord(d.value, vars, this.escape);
      if (v === undefined) v = this.globalVars.get(d.name);
      if (v !== undefined) {
        st.args.set(d.name, v);
        vars.set(d.name, v);
      }
      parts.push(d.value !== undefined ? `${d.name}=${d.value}` : d.name);
    }
    // The values reach RUN's environment, and so its cache key; the ARG image is the same.
    await this.metaStep(st, ins, info, `ARG ${parts.join(' ')}`);
  }

  // A step that makes a layer: cache lookup, else a snapshot of the parent, `work` on its
  // mounted root, the timestamps fixed, committed and made an image.
  // `early` starts what can run beside the snapshot's mount (a RUN step's network).
  private async layerStep(st: StageState, info: StepInfo, keyParts: unknown[], createdBy: string, copyLike: { fallback: number } | undefined, work: (root: string, kept: Set<string>) => Promise<void>, early?: () => void, knownKey?: string): Promise<void> {
    const t0 = Date.now();
    const key = knownKey ?? cacheKey(['layer', st.imageId ?? 'scratch', ...keyParts, this.epoch ?? null]);
    const hit = knownKey ? undefined : this.lookup(key);
    if (hit) {
      this.adopt(st, hit);
      this.opts.events.cached(info);
      return;
    }
    early?.();
    const { prepare, commit, remove, normalizeTimes } = await this.work();
    const snapKey = `build/${process.pid}/${crypto.randomBytes(6).toString('hex')}`;
    const lowers = [...st.diffIds].reverse();
    const snap = await prepare(this.store, snapKey, lowers, { owner: process.pid, init: true });
    let diffId: string;
    const kept = new Set<string>();
    try {
      await work(snap.mountpoint, kept);
      ({ diffId } = await commit(this.store, snapKey, {
        beforeCommit: (upper) =>
          normalizeTimes(upper, {
            ...(this.epoch !== undefined ? { epoch: this.epoch } : {}),
            ...(copyLike ? { copy: { lowers: lowers.map((d) => this.store.layerDir(d)), fallback: copyLike.fallback, kept } } : {}),
          }),
      }));
    } catch (err) {
      await remove(this.store, snapKey).catch(() => {});
      throw err;
    }
    await this.addLayer(st, info, key, diffId, createdBy, t0);
  }

  // The image of a step that made layer `diffId`, remembered under `key`.
  private async addLayer(st: StageState, info: StepInfo, key: string, diffId: string, createdBy: string, t0: number): Promise<void> {
    const { createImage } = await this.work();
    const id = await createImage(this.store, {
      ...(st.imageId ? { parent: st.imageId } : {}),
      addDiffIds: [diffId],
      history: [{ created_by: createdBy, created: this.created() }],
      config: st.config,
      ...(st.author ? { author: st.author } : {}),
      created: this.created(),
    });
    this.cache.remember(key, id);
    st.imageId = id;
    st.diffIds = [...st.diffIds, diffId];
    this.opts.events.done(info, Date.now() - t0);
  }

  // WORKDIR: the config's working directory, and a layer that creates it (BuildKit's
  // mkdir -p, owned by USER); WORKDIR / changes only the config.
  private async workdirStep(st: StageState, ins: Instruction, info: StepInfo): Promise<void> {
    const config = structuredClone(st.config);
    const meta = { config, cmdSetInStage: st.cmdSetInStage };
    const createdBy = applyMetadata(ins, meta, varsOf(st), this.escape);
    const wd = config.WorkingDir ?? '/';
    if (path.posix.resolve(wd) === '/') return this.metaStep(st, ins, info);
    const t0 = Date.now();
    this.opts.events.step(info);
    st.config = config;
    const user = st.config.User ?? '';
    const keyParts = ['WORKDIR', wd, user];
    const key = cacheKey(['layer', st.imageId ?? 'scratch', ...keyParts, this.epoch ?? null]);
    const hit = this.lookup(key);
    if (hit) {
      this.adopt(st, hit);
      this.opts.events.cached(info);
      return;
    }
    const mtimeSec = this.epoch ?? Math.floor(Date.now() / 1000);
    const owner = plainOwner(user);
    const plan = owner ? planWorkdir([...st.diffIds].reverse().map((d) => this.store.layerDir(d)), wd) : undefined;
    if (owner && plan) {
      const { commitLayer } = await this.work();
      const out = this.store.tmpPath('workdir');
      fs.mkdirSync(out, { mode: 0o755 });
      let diffId: string;
      try {
        writeWorkdirLayer(out, plan, owner, mtimeSec);
        ({ diffId } = await commitLayer(this.store, out));
      } finally {
        rmTreeSync(out);
      }
      return this.addLayer(st, info, key, diffId, createdBy, t0);
    }
    // Through a mount: symlinks, whiteouts or a USER name to resolve in the image.
    await this.layerStep(st, info, keyParts, createdBy, { fallback: mtimeSec }, async (root) => {
      const o = user ? resolveChown(root, user) : { uid: 0, gid: 0 };
      mkdirInRoot(root, wd, o.uid, o.gid, mtimeSec);
    }, undefined, key);
  }

  private async runStep(st: StageState, ins: Instruction, info: StepInfo): Promise<void> {
    this.opts.events.step(info);
    const networkFlag = flagValue(ins, 'network');
    const network = stepNetwork(networkFlag, this.network);
    if (!network) return this.bad(ins, `RUN --network=${networkFlag}: only default, none and host are supported`);
    if (flagValue(ins, 'mount') !== undefined) this.bad(ins, 'RUN --mount is not supported');
    if (flagValue(ins, 'security') !== undefined) this.bad(ins, 'RUN --security is not supported');
    const shell = shellOf(st.config);
    let args: string[];
    let stdin: string | undefined;
    let shown: string;
    if (ins.json) {
      args = ins.json;
      shown = args.join(' ');
    } else if (ins.heredocs.length && /^<<-?["']?[A-Za-z0-9_.]+["']?$/.test(ins.rest.trim())) {
      // RUN <<EOF: the document is the script (with a #! line, its interpreter reads it).
      const script = ins.heredocs[0]!.content;
      const bang = /^#!\s*(\S+)(.*)\n/.exec(script);
      if (bang) {
        args = [bang[1]!, ...bang[2]!.trim().split(/\s+/).filter(Boolean)];
        stdin = script;
      } else args = [...shell, script];
      shown = `${shell.join(' ')} ${ins.source.replace(/^RUN\s+/, '')}`;
    } else {
      // Other here-documents go to the shell with the command, which reads them itself.
      const cmd = ins.heredocs.length ? ins.source.replace(/^RUN\s+/, '') : ins.rest;
      args = [...shell, cmd];
      shown = `${shell.join(' ')} ${cmd}`;
    }
    const env = new Map(envMap(st.config.Env));
    const argEnv: string[] = [];
    for (const [k, v] of st.args) {
      if (!env.has(k)) {
        env.set(k, v);
        argEnv.push(`${k}=${v}`);
      }
    }
    for (const p of PROXY_ARGS) {
      const v = this.opts.buildArgs.get(p);
      if (v !== undefined && !env.has(p)) env.set(p, v);
    }
    if (!env.has('PATH')) env.set('PATH', DEFAULT_PATH.slice(5));
    const envList = [...env].map(([k, v]) => `${k}=${v}`);
    const createdBy = `RUN ${argEnv.length ? `|${argEnv.length} ${argEnv.join(' ')} ` : ''}${shown}`;
    const keyParts = ['RUN', args, stdin ?? null, argEnv, st.config.Env ?? [], st.config.User ?? '', st.config.WorkingDir ?? '', networkKey(network)];
    let netSpec: Promise<NetworkSpec> | undefined;
    await this.layerStep(st, info, keyParts, createdBy, undefined, async (root) => {
      const out = new Writable({
        write: (chunk: Buffer, _enc, cb) => {
          this.opts.events.output(info, chunk);
          cb();
        },
      });
      const { Readable } = await import('node:stream');
      const r = await (await this.work()).runProcess({
        rootfs: root,
        args,
        env: envList,
        cwd: st.config.WorkingDir || '/',
        ...(st.config.User ? { user: st.config.User } : {}),
        hostname: crypto.randomBytes(6).toString('hex'),
        network: await netSpec!,
        stdin: stdin !== undefined ? Readable.from([Buffer.from(stdin)]) : 'null',
        stdout: out,
        stderr: out,
        ...(this.opts.signal ? { signal: this.opts.signal } : {}),
      });
      if (r.exitCode !== 0) {
        throw new StepFailed(`${info.label} ${info.text}: process "${args.join(' ').replace(/\n[\s\S]*/, ' ...')}" did not complete successfully: exit code: ${r.exitCode}`);
      }
    }, () => {
      netSpec = this.networks.spec(network);
      netSpec.catch(() => {}); // awaited in the step; a failed mount must not leave it unhandled
    });
  }

  private async sourceRootFor(st: StageState, ins: Instruction, from: string): Promise<{ imageId: string; diffIds: string[] }> {
    const ref = lexWord(from, varsOf(st), this.escape);
    const dep = stageRef(this.plan, ref, st.stage.index);
    if (dep !== undefined) {
      const r = this.results.get(dep);
      if (!r) this.bad(ins, `COPY --from=${ref}: stage not built`);
      if (!r.imageId) return { imageId: 'scratch', diffIds: [] };
      return { imageId: r.imageId, diffIds: r.diffIds };
    }
    const id = await this.baseImage(ref, ins);
    return { imageId: id, diffIds: [...this.cache.config(id).rootfs.diff_ids] };
  }

  private async copyStep(st: StageState, ins: Instruction, info: StepInfo): Promise<void> {
    this.opts.events.step(info);
    const isAdd = ins.keyword === 'ADD';
    for (const f of ['parents', 'exclude', 'keep-git-dir']) if (flagValue(ins, f) !== undefined) this.bad(ins, `${ins.keyword} --${f} is not supported`);
    const vars = varsOf(st);
    const chown = flagValue(ins, 'chown');
    const chownSpec = chown !== undefined ? lexWord(chown, vars, this.escape) : undefined;
    const chmodRaw = flagValue(ins, 'chmod');
    let chmod: number | undefined;
    if (chmodRaw !== undefined) {
      const c = lexWord(chmodRaw, vars, this.escape);
      if (!/^[0-7]{3,4}$/.test(c)) this.bad(ins, `invalid --chmod=${c}: an octal mode is expected`);
      chmod = parseInt(c, 8);
    }
    const checksum = flagValue(ins, 'checksum');
    const fromFlag = flagValue(ins, 'from');
    let words = ins.json ? ins.json.map((w) => lexWord(w, vars, this.escape)) : lexWords(ins.rest, vars, this.escape);
    const heredocNames = new Set(ins.heredocs.map((h) => h.name));
    const heredocs = ins.heredocs.filter((h) => words.some((w) => /^<<-?/.test(w) && w.replace(/^<<-?/, '') === h.name));
    words = words.filter((w) => !(/^<<-?/.test(w) && heredocNames.has(w.replace(/^<<-?/, ''))));
    if (words.length < 1 || words.length + heredocs.length < 2) this.bad(ins, `${ins.keyword} requires at least two arguments, but got ${words.length + heredocs.length}`);
    const srcArgs = words.slice(0, -1);
    const destRaw = words.at(-1)!;
    const dest = path.posix.resolve(st.config.WorkingDir || '/', destRaw);
    const endsDir = destRaw.endsWith('/') || destRaw === '.' || destRaw.endsWith('/.');

    // Sources: the context, another stage or image, URLs (ADD).
    let root: SourceRoot | undefined;
    let fromImage: { imageId: string; diffIds: string[] } | undefined;
    if (fromFlag !== undefined) {
      if (isAdd) this.bad(ins, 'ADD does not take --from');
      fromImage = await this.sourceRootFor(st, ins, fromFlag);
    } else if (srcArgs.some((s) => !/^https?:\/\//.test(s))) {
      if (!this.ctx.root) this.bad(ins, `${ins.keyword}: no build context (the Dockerfile came from stdin)`);
      root = { dir: this.ctx.root!, context: this.ctx };
    }
    const localSrcs: Source[] = [];
    const urls: { url: string; file: string; name: string; mtime: number }[] = [];
    const digests: string[] = [];
    let kind = 'file';
    if (fromImage) {
      digests.push(fromImage.imageId, ...srcArgs);
      kind = 'from';
    } else {
      for (const s of srcArgs) {
        if (/^https?:\/\//.test(s)) {
          if (!isAdd) this.bad(ins, `COPY cannot copy from a URL (${s}): use ADD`);
          const tmp = this.store.tmpPath('add-url');
          this.cleanups.push(async () => fs.rmSync(tmp, { force: true }));
          const got = await (await this.work()).fetchUrl(s, tmp, this.opts.signal);
          if (checksum !== undefined && checksum !== `sha256:${got.sha256}`) this.bad(ins, `ADD ${s}: checksum mismatch: expected ${checksum}, got sha256:${got.sha256}`);
          urls.push({ url: s, file: tmp, name: got.name, mtime: got.mtime ?? this.epoch ?? 0 });
          digests.push(`url:${s}:${got.sha256}:${got.mtime ?? ''}`);
          continue;
        }
        let matched: Source[];
        try {
          matched = matchSources(root!, s);
        } catch (err) {
          return this.bad(ins, `${ins.keyword} failed: ${(err as Error).message}`);
        }
        for (const m of matched) {
          localSrcs.push(m);
          if (m.st.isDirectory()) kind = 'dir';
          digests.push(`${m.name}:${hashEntries(walkSource(root!, m))}`);
        }
      }
      if (checksum !== undefined && urls.length === 0) this.bad(ins, 'ADD --checksum is only for URLs');
    }
    for (const h of heredocs) digests.push(`heredoc:${h.name}:${h.expand ? expandText(h.content, vars) : h.content}`);
    const count = localSrcs.length + urls.length + heredocs.length + (fromImage ? srcArgs.length : 0);
    if (count > 1 && !endsDir) this.bad(ins, `When using ${ins.keyword} with more than one source file, the destination must be a directory and end with a /`);
    if (count > 1) kind = 'multi';
    const hash = crypto.createHash('sha256').update(digests.join('\n')).digest('hex');
    const createdBy = fromImage
      ? `${ins.keyword} --from=${lexWord(fromFlag!, vars, this.escape)} ${srcArgs.join(' ')} ${dest}${endsDir ? '/' : ''}`.replace(/\/\/$/, '/')
      : `${ins.keyword} ${kind}:${hash} in ${dest}${endsDir && dest !== '/' ? '/' : ''}`;
    const keyParts = [ins.keyword, hash, dest, endsDir, chownSpec ?? null, chmod ?? null];
    // The newest source time: directories the step creates get it (deterministic inputs).
    const newest = Math.max(0, ...localSrcs.map((s) => Math.floor(s.st.mtimeMs / 1000)));
    await this.layerStep(st, info, keyParts, createdBy, { fallback: this.epoch ?? newest }, async (mnt, kept) => {
      const { copyEntries, isDirInRoot, writeFileInRoot, view, remove, isArchive, extractArchive } = await this.work();
      const owner = chownSpec !== undefined ? resolveChown(mnt, chownSpec) : { uid: 0, gid: 0 };
      const dirMtimeSec = this.epoch ?? newest;
      const base = { owner, ...(chmod !== undefined ? { chmod } : {}), dirMtimeSec, kept };
      const toDir = endsDir || count > 1 || isDirInRoot(mnt, dest);
      for (const h of heredocs) {
        const content = h.expand ? expandText(h.content, vars) : h.content;
        writeFileInRoot(mnt, toDir ? path.posix.join(dest, h.name) : dest, content, { ...base, mtimeSec: this.epoch ?? 0 });
      }
      for (const u of urls) {
        const target = toDir ? path.posix.join(dest, u.name) : dest;
        fs.chmodSync(u.file, chmod ?? 0o600);
        fs.utimesSync(u.file, u.mtime, u.mtime);
        copyEntries(mnt, [{ rel: '', abs: u.file, st: fs.statSync(u.file) }], target, base);
      }
      if (fromImage) {
        const vkey = `build/${process.pid}/from-${crypto.randomBytes(6).toString('hex')}`;
        const v = await view(this.store, vkey, [...fromImage.diffIds].reverse(), { owner: process.pid });
        try {
          const froot: SourceRoot = { dir: v.mountpoint };
          for (const s of srcArgs) {
            let matched: Source[];
            try {
              matched = matchSources(froot, s);
            } catch (err) {
              return this.bad(ins, `${ins.keyword} failed: ${(err as Error).message}`);
            }
            const many = toDir || matched.length > 1;
            for (const m of matched) this.copyOne(mnt, froot, m, dest, many, base);
          }
        } finally {
          await remove(this.store, vkey);
        }
      }
      for (const m of localSrcs) {
        if (isAdd && m.st.isFile() && isArchive(m.abs)) {
          const staging = this.store.tmpPath('add-extract');
          fs.mkdirSync(staging, { mode: 0o755 });
          try {
            await extractArchive(m.abs, staging);
            const sroot: SourceRoot = { dir: staging };
            const top: Source = { name: '', abs: staging, st: fs.lstatSync(staging) };
            const entries = walkSource(sroot, top);
            copyEntries(mnt, entries, dest, { ...base, keepOwner: chownSpec === undefined });
          } finally {
            rmTreeSync(staging);
          }
          continue;
        }
        this.copyOne(mnt, root!, m, dest, toDir, base);
      }
    });
  }

  private copyOne(mnt: string, root: SourceRoot, m: Source, dest: string, toDir: boolean, opts: Parameters<typeof Work.copyEntries>[3]): void {
    const { copyEntries } = this.w!;
    const entries = walkSource(root, m);
    if (m.st.isDirectory()) copyEntries(mnt, entries, dest, opts);
    else copyEntries(mnt, entries, toDir ? path.posix.join(dest, path.posix.basename(m.name || m.abs)) : dest, opts);
  }

  // --squash: the layers this build added as one, on the base image; --squash-all: one
  // layer for everything. Same tree either way.
  private async squash(st: StageState, mode: 'layers' | 'all'): Promise<string> {
    const config = this.cache.config(st.imageId!);
    const keepBase = mode === 'layers' ? st.baseLayers : 0;
    const added = config.rootfs.diff_ids.slice(keepBase);
    const { mergeLayers, commitLayer, createImage } = await this.work();
    const out = this.store.tmpPath('squash');
    fs.mkdirSync(out, { mode: 0o755 });
    let diffId: string;
    try {
      mergeLayers(added.map((d) => this.store.layerDir(d)), out, mode === 'layers' && keepBase > 0);
      ({ diffId } = await commitLayer(this.store, out));
    } finally {
      rmTreeSync(out);
    }
    const baseHistory = mode === 'layers' ? st.baseHistory : 0;
    const history: HistoryEntry[] = (config.history ?? []).slice(baseHistory).map((h) => ({ ...h, empty_layer: true }));
    history.push({ created: this.created(), created_by: '', comment: `merge ${st.imageId} to ${mode === 'layers' && st.baseImageId ? st.baseImageId : 'scratch'}` });
    return createImage(this.store, {
      ...(mode === 'layers' && st.baseImageId ? { parent: st.baseImageId } : {}),
      addDiffIds: [diffId],
      history,
      config: st.config,
      ...(st.author ? { author: st.author } : {}),
      created: this.created(),
    });
  }
}

// The image ID a build makes (every step an image, the last one tagged).
export async function buildImage(store: Store, opts: BuildOptions): Promise<string> {
  return new Builder(store, opts).build();
}
