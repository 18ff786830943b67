// Registry credentials where Docker keeps them: $DOCKER_CONFIG/config.json or
// ~/.docker/config.json (mode 0600), `auths` entries with base64 "user:password", or a
// credential helper (`credHelpers` per registry, `credsStore` for all): the program
// docker-credential-NAME speaking get/store/erase on stdin/stdout.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { errnoCode, UfsError } from '../common/errors.js';
import { writeFileAtomicSync } from '../store/fsutil.js';

export interface Credentials {
  username: string;
  password: string; // or an identity token when username is <token>
}

interface DockerConfig {
  auths?: Record<string, { auth?: string; username?: string; password?: string; identitytoken?: string }>;
  credsStore?: string;
  credHelpers?: Record<string, string>;
  [key: string]: unknown;
}

export function configPath(): string {
  const dir = process.env.DOCKER_CONFIG || path.join(os.homedir(), '.docker');
  return path.join(dir, 'config.json');
}

function readConfig(): DockerConfig {
  const file = configPath();
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return {};
    throw new UfsError(`cannot read ${file}: ${(err as Error).message}`);
  }
  try {
    const c = JSON.parse(text) as DockerConfig;
    return c && typeof c === 'object' ? c : {};
  } catch {
    throw new UfsError(`${file} is not valid JSON`);
  }
}

function writeConfig(c: DockerConfig): void {
  const file = configPath();
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  writeFileAtomicSync(`${file}.ufs-${process.pid}.tmp`, file, `${JSON.stringify(c, null, '\t')}\n`);
  fs.chmodSync(file, 0o600);
}

// Entries may be keyed by host or by a URL (https://host/v1/): match either.
function findKey(auths: Record<string, unknown>, key: string): string | undefined {
  if (key in auths) return key;
  const host = (k: string) => k.replace(/^https?:\/\//, '').replace(/\/.*$/, '');
  return Object.keys(auths).find((k) => host(k) === host(key));
}

function helperFor(c: DockerConfig, key: string): string | undefined {
  const host = key.replace(/^https?:\/\//, '').replace(/\/.*$/, '');
  return c.credHelpers?.[key] ?? c.credHelpers?.[host] ?? (c.credsStore || undefined);
}

function runHelper(name: string, action: 'get' | 'store' | 'erase', input: string): Promise<{ code: number; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(`docker-credential-${name}`, [action], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.on('error', (e) => reject(new UfsError(`credential helper docker-credential-${name}: ${e.message}`)));
    child.on('close', (code) => resolve({ code: code ?? 1, out: out || err }));
    child.stdin.on('error', () => {});
    child.stdin.end(input);
  });
}

export async function getCredentials(key: string): Promise<Credentials | undefined> {
  const c = readConfig();
  const helper = helperFor(c, key);
  if (helper) {
    const r = await runHelper(helper, 'get', key);
    if (r.code !== 0) {
      if (/credentials not found/i.test(r.out)) return undefined;
      throw new UfsError(`credential helper docker-credential-${helper} get failed: ${r.out.trim().split('\n')[0]}`);
    }
    try {
      const j = JSON.parse(r.out) as { Username?: string; Secret?: string };
      if (!j.Secret) return undefined;
      return { username: j.Username ?? '', password: j.Secret };
    } catch {
      throw new UfsError(`credential helper docker-credential-${helper} answered no JSON`);
    }
  }
  const k = findKey(c.auths ?? {}, key);
  const e = k ? c.auths![k] : undefined;
  if (!e) return undefined;
  if (e.identitytoken) return { username: '<token>', password: e.identitytoken };
  if (e.auth) {
    const s = Buffer.from(e.auth, 'base64').toString('utf8');
    const i = s.indexOf(':');
    if (i < 0) throw new UfsError(`${configPath()}: the auth entry for ${k} is malformed`);
    return { username: s.slice(0, i), password: s.slice(i + 1) };
  }
  if (e.username && e.password) return { username: e.username, password: e.password };
  return undefined;
}

export async function storeCredentials(key: string, creds: Credentials): Promise<{ helper?: string }> {
  const c = readConfig();
  const helper = helperFor(c, key);
  if (helper) {
    const r = await runHelper(helper, 'store', JSON.stringify({ ServerURL: key, Username: creds.username, Secret: creds.password }));
    if (r.code !== 0) throw new UfsError(`credential helper docker-credential-${helper} store failed: ${r.out.trim().split('\n')[0]}`);
    c.auths ??= {};
    c.auths[findKey(c.auths, key) ?? key] = {};
    writeConfig(c);
    return { helper };
  }
  c.auths ??= {};
  const k = findKey(c.auths, key) ?? key;
  c.auths[k] = { auth: Buffer.from(`${creds.username}:${creds.password}`).toString('base64') };
  writeConfig(c);
  return {};
}

// True if something was removed.
export async function eraseCredentials(key: string): Promise<boolean> {
  const c = readConfig();
  const helper = helperFor(c, key);
  let found = false;
  if (helper) {
    const r = await runHelper(helper, 'erase', key);
    if (r.code === 0) found = true;
    else if (!/credentials not found/i.test(r.out)) throw new UfsError(`credential helper docker-credential-${helper} erase failed: ${r.out.trim().split('\n')[0]}`);
  }
  const k = c.auths ? findKey(c.auths, key) : undefined;
  if (k) {
    delete c.auths![k];
    writeConfig(c);
    found = true;
  }
  return found;
}
