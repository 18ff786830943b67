// A distribution-spec client for one registry: ping (which scheme, which auth), requests
// with the right Authorization for a scope (retried once with a fresh token on a 401), and
// the registry's JSON errors turned into one-line messages.
import type { Readable } from 'node:stream';
import { UfsError } from '../common/errors.js';
import { basicHeader, type Challenge, parseChallenge, TokenCache } from './auth.js';
import { type Credentials, getCredentials } from './credentials.js';
import { credentialKey, isInsecure, type RegistryOptions } from './hosts.js';
import { NetworkError, readBody, request, type Response } from './transport.js';

export interface ClientOptions extends RegistryOptions {
  signal?: AbortSignal;
  credentials?: Credentials | null; // given (login); null: anonymous; undefined: from config.json
}

export class RegistryError extends UfsError {
  constructor(
    message: string,
    readonly status: number,
    readonly codes: string[],
  ) {
    super(message);
  }
}

export class RegistryClient {
  private challenge: Challenge | undefined;
  private readonly tokens: TokenCache;
  private creds: Credentials | undefined;
  private credsLoaded = false;

  private readonly insecureTls: boolean;

  private constructor(
    readonly domain: string, // as in references (docker.io, localhost:5000)
    readonly base: URL, // scheme://host[:port][/prefix] the API is under
    private readonly opts: ClientOptions,
  ) {
    this.insecureTls = base.protocol === 'https:' && isInsecure(base.host, opts);
    this.tokens = new TokenCache(domain);
    if (opts.credentials !== undefined) {
      this.creds = opts.credentials ?? undefined;
      this.credsLoaded = true;
    }
  }

  // Pings `host` (HTTPS; plain HTTP too if the registry may be insecure) and learns its auth.
  static async connect(domain: string, host: string, opts: ClientOptions, base?: URL): Promise<RegistryClient> {
    const tries = base ? [base] : [new URL(`https://${host}`), ...(isInsecure(host, opts) ? [new URL(`http://${host}`)] : [])];
    let last: unknown;
    for (const b of tries) {
      const c = new RegistryClient(domain, b, opts);
      try {
        await c.ping();
        return c;
      } catch (err) {
        last = err;
        if (!(err instanceof NetworkError)) throw err;
      }
    }
    throw last;
  }

  private url(path: string): URL {
    const prefix = this.base.pathname.replace(/\/+$/, '');
    return new URL(`${this.base.protocol}//${this.base.host}${prefix}${path}`);
  }

  async ping(): Promise<void> {
    const res = await request(this.url('/v2/'), { timeoutMs: 20_000, insecureTls: this.insecureTls, ...(this.opts.signal ? { signal: this.opts.signal } : {}) });
    res.body.resume();
    if (res.status === 401) {
      this.challenge = parseChallenge(res.headers['www-authenticate'] as string | undefined);
      if (!this.challenge) throw new UfsError(`registry ${this.domain} wants an authentication ufs does not know: ${res.headers['www-authenticate'] ?? '(none named)'}`);
      return;
    }
    if (res.status === 200) return;
    throw new UfsError(`${this.base.host} does not answer as a registry (GET /v2/ gave ${res.status})`);
  }

  get authScheme(): 'none' | 'basic' | 'bearer' {
    return this.challenge?.scheme ?? 'none';
  }

  private async credentials(): Promise<Credentials | undefined> {
    if (!this.credsLoaded) {
      this.creds = await getCredentials(credentialKey(this.domain));
      this.credsLoaded = true;
    }
    return this.creds;
  }

  private async authHeader(scopes: string[]): Promise<Record<string, string>> {
    const ch = this.challenge;
    if (!ch) return {};
    const creds = await this.credentials();
    if (ch.scheme === 'basic') return creds ? { Authorization: basicHeader(creds) } : {};
    return { Authorization: `Bearer ${await this.tokens.get(ch, scopes, creds, this.opts.signal)}` };
  }

  // Checks credentials the way `docker login` does: a token (Bearer) or /v2/ (Basic).
  async checkLogin(): Promise<void> {
    const ch = this.challenge;
    if (!ch) return;
    if (ch.scheme === 'bearer') {
      await this.tokens.get(ch, [], await this.credentials(), this.opts.signal);
      return;
    }
    const res = await this.send('GET', '/v2/', []);
    res.body.resume();
    if (res.status === 401) throw new UfsError(`unauthorized: incorrect username or password for ${this.domain}`);
  }

  // One API request. `scopes`: e.g. ["repository:library/busybox:pull"].
  async send(
    method: string,
    path: string,
    scopes: string[],
    o: { headers?: Record<string, string>; body?: Buffer | (() => Readable); contentLength?: number; absolute?: URL; timeoutMs?: number } = {},
  ): Promise<Response> {
    const target = o.absolute ?? this.url(path);
    for (let attempt = 0; ; attempt++) {
      const auth = target.origin === this.base.origin ? await this.authHeader(scopes) : {};
      const res = await request(target, {
        method,
        headers: { ...(o.headers ?? {}), ...auth },
        insecureTls: this.insecureTls,
        ...(o.body !== undefined ? { body: o.body } : {}),
        ...(o.contentLength !== undefined ? { contentLength: o.contentLength } : {}),
        ...(o.timeoutMs !== undefined ? { timeoutMs: o.timeoutMs } : {}),
        ...(this.opts.signal ? { signal: this.opts.signal } : {}),
      });
      if (res.status !== 401 || attempt > 0 || this.challenge?.scheme !== 'bearer') return res;
      // expired or too narrow a token: ask again, with the scope the registry names
      res.body.resume();
      const ch = parseChallenge(res.headers['www-authenticate'] as string | undefined);
      this.tokens.forget(scopes);
      if (ch?.scheme === 'bearer') {
        this.challenge = { scheme: 'bearer', params: { ...this.challenge.params, ...ch.params } };
        const extra = ch.params.scope?.split(' ').filter((s) => s && !scopes.includes(s)) ?? [];
        scopes = [...scopes, ...extra];
      }
    }
  }

  // The registry's error for a failed answer, as one line.
  async fail(res: Response, what: string, repo?: string): Promise<never> {
    let codes: string[] = [];
    let detail = '';
    try {
      const body = await readBody(res, 1 << 20);
      const j = JSON.parse(body.toString('utf8')) as { errors?: { code?: string; message?: string }[] };
      codes = (j.errors ?? []).map((e) => e.code ?? '').filter(Boolean);
      detail = (j.errors ?? []).map((e) => `${(e.code ?? '').toLowerCase().replace(/_/g, ' ')}: ${e.message ?? ''}`).join('; ');
    } catch {
      // not JSON
    }
    const s = res.status;
    if (s === 401 || s === 403 || codes.includes('UNAUTHORIZED') || codes.includes('DENIED')) {
      const creds = await this.credentials().catch(() => undefined);
      throw new RegistryError(
        `${what}: access denied${repo ? ` to ${repo}` : ''} (${detail || s})${creds ? '' : `: the repository does not exist or needs \`ufs login ${this.domain}\``}`,
        s,
        codes,
      );
    }
    if (codes.includes('NAME_UNKNOWN')) throw new RegistryError(`${what}: repository ${repo ?? ''} not found on ${this.domain}`, s, codes);
    throw new RegistryError(`${what}: ${detail || `${this.domain} answered ${s}`}`, s, codes);
  }
}
