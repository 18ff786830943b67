// A real registry for the tests: Debian's docker-registry (distribution 2.8) on 127.0.0.1 on
// a free port, with a temp storage dir and a config of the test's own, stopped by its pid at
// teardown (also on failure). With `tokenAuth`, a small token server of the test's own
// (distribution's `auth: token:`: realm, service, issuer, rootcertbundle) signs RS256 JWTs
// with a key made here by openssl; user alice/secret may push and pull anything, anonymous
// callers may pull only repositories under public/.
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';
import type { ExecutionContext } from 'ava';
import { must, tempDir } from './images.js';

export interface TestRegistry {
  host: string; // 127.0.0.1:PORT
  storage: string;
  tokenRequests: { scope: string[]; user?: string }[];
}

export const USER = 'alice';
export const PASSWORD = 'secret';

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

function b64url(b: Buffer | string): string {
  return Buffer.from(b).toString('base64url');
}

async function tokenServer(t: ExecutionContext, dir: string, service: string, issuer: string, tokenLife: number): Promise<{ realm: string; bundle: string; requests: TestRegistry['tokenRequests'] }> {
  const key = path.join(dir, 'key.pem');
  const cert = path.join(dir, 'cert.pem');
  await must('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=ufs-test-token']);
  const privateKey = crypto.createPrivateKey(fs.readFileSync(key));
  const der = new crypto.X509Certificate(fs.readFileSync(cert)).raw;
  const requests: TestRegistry['tokenRequests'] = [];
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const scope = url.searchParams.getAll('scope');
    let user: string | undefined;
    const auth = req.headers.authorization;
    if (auth?.startsWith('Basic ')) {
      const [u, p] = Buffer.from(auth.slice(6), 'base64').toString().split(':');
      if (u !== USER || p !== PASSWORD) {
        res.writeHead(401, { 'Content-Type': 'application/json' }).end('{"details":"incorrect username or password"}');
        return;
      }
      user = u;
    }
    requests.push({ scope, ...(user ? { user } : {}) });
    const access = scope.flatMap((s) => {
      const [type, name, actions] = s.split(':');
      if (type !== 'repository' || !name || !actions) return [];
      const want = actions.split(',');
      const granted = user ? want : name.startsWith('public/') ? want.filter((a) => a === 'pull') : [];
      return granted.length ? [{ type, name, actions: granted }] : [];
    });
    const now = Math.floor(Date.now() / 1000);
    const header = { typ: 'JWT', alg: 'RS256', x5c: [der.toString('base64')] };
    const claims = { iss: issuer, sub: user ?? '', aud: service, exp: now + tokenLife, nbf: now - 10, iat: now, jti: crypto.randomBytes(8).toString('hex'), access };
    const signing = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    const sig = crypto.sign('sha256', Buffer.from(signing), privateKey);
    const token = `${signing}.${b64url(sig)}`;
    res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ token, access_token: token, expires_in: tokenLife, issued_at: new Date().toISOString() }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  );
  const port = (server.address() as net.AddressInfo).port;
  return { realm: `http://127.0.0.1:${port}/token`, bundle: cert, requests };
}

// `tlsIp`: serve HTTPS on that address with a self-signed certificate for it (`cert`).
export async function startRegistry(t: ExecutionContext, opts: { tokenAuth?: boolean; tokenLife?: number; tlsIp?: string } = {}): Promise<TestRegistry & { cert?: string }> {
  const dir = await tempDir(t, 'registry');
  const storage = path.join(dir, 'storage');
  fs.mkdirSync(storage);
  const port = await freePort();
  let auth = '';
  let requests: TestRegistry['tokenRequests'] = [];
  if (opts.tokenAuth) {
    const ts = await tokenServer(t, dir, 'ufs-test-registry', 'ufs-test-issuer', opts.tokenLife ?? 300);
    requests = ts.requests;
    auth = `auth:\n  token:\n    realm: ${ts.realm}\n    service: ufs-test-registry\n    issuer: ufs-test-issuer\n    rootcertbundle: ${ts.bundle}\n`;
  }
  let tls = '';
  let cert: string | undefined;
  if (opts.tlsIp) {
    cert = path.join(dir, 'tls.crt');
    const key = path.join(dir, 'tls.key');
    await must('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', `/CN=${opts.tlsIp}`, '-addext', `subjectAltName=IP:${opts.tlsIp}`]);
    tls = `  tls:\n    certificate: ${cert}\n    key: ${key}\n`;
  }
  const ip = opts.tlsIp ?? '127.0.0.1';
  const config = path.join(dir, 'config.yml');
  fs.writeFileSync(
    config,
    `version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: ${storage}\n  delete:\n    enabled: true\n  cache:\n    blobdescriptor: inmemory\nhttp:\n  addr: ${ip}:${port}\n${tls}${auth}`,
  );
  const child = spawn('docker-registry', ['serve', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr = (stderr + c.toString()).slice(-4000)));
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const gone = new Promise<void>((r) => child.once('exit', () => r()));
      child.kill('SIGKILL');
      await gone;
    }
  });
  const host = `${ip}:${port}`;
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new Error(`docker-registry exited ${child.exitCode}: ${stderr}`);
    const ok = await new Promise<boolean>((resolve) => {
      const req = (opts.tlsIp ? https : http).get(`${opts.tlsIp ? 'https' : 'http'}://${host}/v2/`, { rejectUnauthorized: false }, (res) => {
        res.resume();
        resolve(true);
      });
      req.on('error', () => resolve(false));
    });
    if (ok) break;
    if (i > 100) throw new Error(`docker-registry did not start: ${stderr}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return { host, storage, tokenRequests: requests, ...(cert ? { cert } : {}) };
}

// skopeo copy into the test registry (plain HTTP), with its own creds if given.
export async function skopeoCopy(src: string, dest: string, extra: string[] = []): Promise<void> {
  await must('skopeo', ['--insecure-policy', 'copy', '-q', '--src-tls-verify=false', '--dest-tls-verify=false', ...extra, src, dest]);
}

// The files of a directory tree as "path type mode size sha" lines, for file-by-file compares.
export function treeListing(root: string): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    const p = rel ? path.join(root, rel) : root;
    const st = fs.lstatSync(p);
    const mode = (st.mode & 0o7777).toString(8);
    if (st.isDirectory()) {
      if (rel) out.push(`${rel} d ${mode}`);
      for (const n of fs.readdirSync(p).sort()) walk(rel ? `${rel}/${n}` : n);
    } else if (st.isSymbolicLink()) out.push(`${rel} l ${fs.readlinkSync(p)}`);
    else if (st.isFile()) out.push(`${rel} f ${mode} ${st.size} ${crypto.createHash('sha256').update(fs.readFileSync(p)).digest('hex').slice(0, 16)}`);
    else out.push(`${rel} ? ${mode}`);
  };
  walk('');
  return out;
}
