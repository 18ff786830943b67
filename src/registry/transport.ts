// HTTP(S) for the registry client on Node's own http/https: keep-alive agents, the system's
// CA bundle (Debian's /etc/ssl/certs) besides Node's own, redirects followed (credentials
// only to the same origin), and network failures turned into one-line errors.
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { Readable } from 'node:stream';
import tls from 'node:tls';
import { UfsError } from '../common/errors.js';

export interface Response {
  status: number;
  headers: http.IncomingHttpHeaders;
  url: URL; // after redirects
  body: http.IncomingMessage;
}

export interface RequestOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: Buffer | (() => Readable); // a function: the body can be sent again after a redirect
  insecureTls?: boolean; // an insecure registry over HTTPS: any certificate (as Docker does)
  contentLength?: number;
  signal?: AbortSignal;
  timeoutMs?: number; // no bytes for this long: fail (default 60 s)
}

const SYSTEM_BUNDLES = ['/etc/ssl/certs/ca-certificates.crt', '/etc/pki/tls/certs/ca-bundle.crt', '/etc/ssl/cert.pem'];

let caCache: string[] | undefined;
function systemCAs(): string[] {
  if (caCache) return caCache;
  const extra: string[] = [];
  for (const f of [process.env.SSL_CERT_FILE, ...SYSTEM_BUNDLES]) {
    if (!f) continue;
    try {
      extra.push(fs.readFileSync(f, 'utf8'));
      break;
    } catch {
      // next
    }
  }
  caCache = [...tls.rootCertificates, ...extra];
  return caCache;
}

const httpAgent = new http.Agent({ keepAlive: true, maxSockets: 16 });
let httpsAgent: https.Agent | undefined;
let insecureAgent: https.Agent | undefined;
function agentFor(url: URL, insecure: boolean): http.Agent {
  if (url.protocol === 'http:') return httpAgent;
  if (insecure) return (insecureAgent ??= new https.Agent({ keepAlive: true, maxSockets: 16, rejectUnauthorized: false }));
  httpsAgent ??= new https.Agent({ keepAlive: true, maxSockets: 16, ca: systemCAs() });
  return httpsAgent;
}

const TLS_CODES = /^(ERR_SSL_|ERR_TLS_|CERT_|UNABLE_TO_|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|HOSTNAME_MISMATCH|ERR_TLS_CERT_ALTNAME_INVALID|EPROTO)/;

export function isTlsError(err: unknown): boolean {
  const code = (err as { code?: string })?.code ?? '';
  return TLS_CODES.test(code) || /SSL|TLS|certificate/i.test((err as Error)?.message ?? '');
}

export class NetworkError extends UfsError {
  constructor(
    message: string,
    readonly code: string,
    readonly tls: boolean,
  ) {
    super(message);
  }
}

function describe(err: unknown, url: URL): NetworkError {
  const code = (err as { code?: string })?.code ?? '';
  const host = url.host;
  if (isTlsError(err)) return new NetworkError(`TLS error talking to ${host}: ${(err as Error).message}`, code, true);
  if (code === 'ECONNREFUSED') return new NetworkError(`registry ${host} is not answering (connection refused)`, code, false);
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return new NetworkError(`registry ${host} is not answering: cannot resolve ${url.hostname}`, code, false);
  if (code === 'ETIMEDOUT' || code === 'UFS_TIMEOUT') return new NetworkError(`registry ${host} is not answering (timed out)`, code, false);
  if (code === 'EHOSTUNREACH' || code === 'ENETUNREACH') return new NetworkError(`registry ${host} is not answering (${code})`, code, false);
  if (code === 'ABORT_ERR') return new NetworkError('aborted', code, false);
  return new NetworkError(`talking to ${host}: ${(err as Error)?.message ?? String(err)}`, code, false);
}

function once(url: URL, opts: RequestOptions): Promise<Response> {
  return new Promise((resolve, reject) => {
    const lib = url.protocol === 'https:' ? https : http;
    const headers: Record<string, string> = { 'User-Agent': 'ufs/0.1', ...(opts.headers ?? {}) };
    if (opts.contentLength !== undefined) headers['Content-Length'] = String(opts.contentLength);
    else if (Buffer.isBuffer(opts.body)) headers['Content-Length'] = String(opts.body.length);
    const req = lib.request(url, { method: opts.method ?? 'GET', headers, agent: agentFor(url, !!opts.insecureTls), ...(opts.signal ? { signal: opts.signal } : {}) });
    const timeout = opts.timeoutMs ?? 60_000;
    req.setTimeout(timeout, () => {
      const e = new Error(`no answer in ${timeout / 1000} s`) as Error & { code: string };
      e.code = 'UFS_TIMEOUT';
      req.destroy(e);
    });
    req.on('error', (err) => reject(describe(err, url)));
    req.on('response', (res) => {
      res.on('error', () => {}); // readers see errors through their iteration
      resolve({ status: res.statusCode ?? 0, headers: res.headers, url, body: res });
    });
    if (opts.body === undefined) req.end();
    else if (Buffer.isBuffer(opts.body)) req.end(opts.body);
    else {
      const src = opts.body();
      src.on('error', (e) => req.destroy(e));
      src.pipe(req);
    }
  });
}

// One request, following up to 5 redirects (Authorization dropped when the origin changes).
export async function request(url: URL, opts: RequestOptions = {}): Promise<Response> {
  let cur = url;
  let o = opts;
  for (let hops = 0; ; hops++) {
    const res = await once(cur, o);
    if (![301, 302, 303, 307, 308].includes(res.status) || !res.headers.location || hops >= 5) return res;
    res.body.resume();
    const next = new URL(res.headers.location, cur);
    if (next.origin !== cur.origin) {
      const { Authorization: _drop, ...rest } = o.headers ?? {};
      o = { ...o, headers: rest, insecureTls: false }; // elsewhere (blob storage): verified TLS, no credentials
    }
    if (res.status === 303) o = { ...o, method: 'GET' };
    cur = next;
  }
}

export async function readBody(res: Response, limit = 16 << 20): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of res.body) {
    n += (c as Buffer).length;
    if (n > limit) {
      res.body.destroy();
      throw new UfsError(`answer from ${res.url.host} is too large (over ${limit} bytes)`);
    }
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks);
}
