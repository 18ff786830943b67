// The embedded default image: busybox:latest, built on first use from the host's
// busybox-static, so `ufs run busybox sh` works on a machine that never downloaded anything.
// One layer: /bin/busybox with every applet hard-linked beside it (as Docker's busybox has
// them), a minimal /etc, and the usual empty directories. Deterministic: every time is the
// binary's mtime, so one host always builds the same image ID.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { UfsError } from '../common/errors.js';
import type { Store } from '../store/index.js';
import { ociManifest } from './commit.js';
import { discardPrepared, installLayer, prepareLayerFromTar } from './layer.js';
import { setTag } from './records.js';
import { encodeHeader, padding, TAR_END, type WriteHeader } from './tar/writer.js';
import { DEFAULT_PATH, goArch, type OciImageConfig } from './types.js';

export const BUSYBOX_REF = 'docker.io/library/busybox:latest';
const CANDIDATES = ['/bin/busybox', '/usr/bin/busybox'];

const PASSWD = `root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
bin:x:2:2:bin:/bin:/bin/false
sys:x:3:3:sys:/dev:/bin/false
sync:x:4:100:sync:/bin:/bin/sync
mail:x:8:8:mail:/var/spool/mail:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
operator:x:37:37:Operator:/var:/bin/false
nobody:x:65534:65534:nobody:/home:/bin/false
`;
const GROUP = `root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
adm:x:4:
tty:x:5:
disk:x:6:
lp:x:7:
mail:x:8:
kmem:x:9:
wheel:x:10:root
cdrom:x:11:
dialout:x:18:
floppy:x:19:
video:x:28:
audio:x:29:
tape:x:32:
www-data:x:33:
operator:x:37:
utmp:x:43:
plugdev:x:46:
staff:x:50:
lock:x:54:
netdev:x:82:
users:x:100:
nogroup:x:65534:
`;

// True when the ELF file has no PT_INTERP program header (no dynamic loader needed).
export function isStaticElf(file: string): boolean {
  const fd = fs.openSync(file, 'r');
  try {
    const head = Buffer.alloc(64);
    fs.readSync(fd, head, 0, 64, 0);
    if (head.readUInt32BE(0) !== 0x7f454c46) return false;
    const is64 = head[4] === 2;
    const le = head[5] === 1;
    const u16 = (b: Buffer, o: number) => (le ? b.readUInt16LE(o) : b.readUInt16BE(o));
    const u32 = (b: Buffer, o: number) => (le ? b.readUInt32LE(o) : b.readUInt32BE(o));
    const phoff = is64 ? Number(le ? head.readBigUInt64LE(32) : head.readBigUInt64BE(32)) : u32(head, 28);
    const phentsize = u16(head, is64 ? 54 : 42);
    const phnum = u16(head, is64 ? 56 : 44);
    const table = Buffer.alloc(phentsize * phnum);
    fs.readSync(fd, table, 0, table.length, phoff);
    for (let i = 0; i < phnum; i++) if (u32(table, i * phentsize) === 3) return false; // PT_INTERP
    return true;
  } finally {
    fs.closeSync(fd);
  }
}

function findBusybox(): string {
  for (const c of CANDIDATES) {
    try {
      if (fs.statSync(c).isFile() && isStaticElf(c)) return c;
    } catch {
      // try the next one
    }
  }
  throw new UfsError('busybox:latest is built from the host busybox-static, which is not installed (apt-get install busybox-static)');
}

async function* busyboxTar(bb: string, applets: string[], mtimeSec: number): AsyncGenerator<Buffer> {
  const d = (name: string, mode = 0o755): Buffer => encodeHeader({ name, type: 'dir', mode, uid: 0, gid: 0, mtimeSec });
  const f = (name: string, content: string, mode = 0o644): Buffer[] => {
    const data = Buffer.from(content);
    return [encodeHeader({ name, type: 'file', mode, uid: 0, gid: 0, mtimeSec, size: data.length }), data, padding(data.length)];
  };
  yield d('bin');
  const size = fs.statSync(bb).size;
  const h: WriteHeader = { name: 'bin/busybox', type: 'file', mode: 0o755, uid: 0, gid: 0, mtimeSec, size };
  yield encodeHeader(h);
  const data = fs.readFileSync(bb);
  if (data.length !== size) throw new UfsError(`${bb} changed while being read`);
  yield data;
  yield padding(size);
  for (const a of applets) yield encodeHeader({ name: `bin/${a}`, type: 'link', linkname: 'bin/busybox', mode: 0o755, uid: 0, gid: 0, mtimeSec });
  yield d('dev');
  yield d('etc');
  yield* f('etc/group', GROUP);
  yield* f('etc/nsswitch.conf', 'hosts: files dns\npasswd: files\ngroup: files\n');
  yield* f('etc/passwd', PASSWD);
  yield d('home');
  yield d('root', 0o700);
  yield d('tmp', 0o1777);
  yield d('usr');
  yield d('usr/sbin');
  yield d('var');
  yield d('var/spool');
  yield d('var/spool/mail');
  yield d('var/www');
  yield TAR_END;
}

// Builds busybox:latest unless it exists; returns its image id.
export async function ensureBusybox(store: Store): Promise<string> {
  const existing = store.readImageDb().tags[BUSYBOX_REF];
  if (existing) return existing.id;
  const bb = findBusybox();
  const applets = execFileSync(bb, ['--list'], { encoding: 'utf8' })
    .split('\n')
    .map((s) => s.trim())
    .filter((s) => /^[\w.[\]-]+$/.test(s) && s !== 'busybox')
    .sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  let version = 'BusyBox';
  try {
    version = /BusyBox v[\w.-]+/.exec(execFileSync(bb, ['--help'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }))?.[0] ?? version;
  } catch (err) {
    const out = String((err as { stdout?: unknown }).stdout ?? '');
    version = /BusyBox v[\w.-]+/.exec(out)?.[0] ?? version;
  }
  const mtimeSec = Math.floor(fs.statSync(bb).mtimeMs / 1000);
  const created = new Date(mtimeSec * 1000).toISOString().replace('.000Z', 'Z');
  const prepared = await prepareLayerFromTar(store, busyboxTar(bb, applets, mtimeSec));
  try {
    return await store.withLock(async () => {
      const again = store.readImageDb().tags[BUSYBOX_REF];
      if (again) return again.id; // another process built it meanwhile
      const meta = await installLayer(store, prepared);
      const config: OciImageConfig = {
        created,
        architecture: goArch(),
        os: 'linux',
        config: { Env: [DEFAULT_PATH], Cmd: ['sh'] },
        rootfs: { type: 'layers', diff_ids: [meta.diffId] },
        history: [
          { created, created_by: `ufs: ${version} from the host's ${bb}, ${applets.length} applets linked in /bin` },
          { created, created_by: '/bin/sh -c #(nop)  CMD ["sh"]', empty_layer: true },
        ],
      };
      const configBytes = Buffer.from(JSON.stringify(config));
      const id = store.writeBlob(configBytes);
      const manifest = store.writeBlob(
        Buffer.from(JSON.stringify(ociManifest(id, configBytes.length, [{ mediaType: meta.blob.mediaType, digest: meta.blob.digest, size: meta.blob.size }]))),
      );
      store.updateImageDb((db) => {
        db.images[id] = { manifest, added: new Date().toISOString() };
        setTag(db, BUSYBOX_REF, id, manifest);
      });
      return id;
    });
  } finally {
    discardPrepared(prepared);
  }
}
