// Registry auth as the distribution spec and Docker Hub do it: the WWW-Authenticate challenge
// of GET /v2/ says Basic (send the credentials) or Bearer (ask the realm for a token for a
// scope, with the credentials if there are any, anonymously otherwise). Tokens are cached per
// scope set and asked for again shortly before they expire.
import { UfsError } from '../common/errors.js';
import type { Credentials } from './credentials.js';
import { readBody, request } from './transport.js';

export interface Challenge {
  scheme: 'basic' | 'bearer';
  params: Record<string, string>;
}

export function parseChallenge(header: string | undefined): Challenge | undefined {
  if (!header) return undefined;
  const m = /^\s*(\w+)\s*(.*)$/s.exec(header);
  if (!m) return undefined;
  const scheme = m[1]!.toLowerCase();
  if (scheme !== 'basic' && scheme !== 'bearer') return undefined;
  const params: Record<string, string> = {};
  for (const p of m[2]!.matchAll(/(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))/g)) params[p[1]!.toLowerCase()] = (p[2] ?? p[3] ?? '').replace(/\\(.)/g, '$1');
  return { scheme, params };
}

export function basicHeader(c: Credentials): string {
  return `Basic ${Buffer.from(`${c.username}:${c.password}`).toString('base64')}`;
}

interface Token {
  token: string;
  expires: number; // ms since epoch
}

export class TokenCache {
  private tokens = new Map<string, Token>();

  constructor(private readonly registry: string) {}

  forget(scopes: string[]): void {
    this.tokens.delete(scopes.join(' '));
  }

  async get(ch: Challenge, scopes: string[], creds: Credentials | undefined, signal?: AbortSignal): Promise<string> {
    const key = scopes.join(' ');
    const have = this.tokens.get(key);
    if (have && have.expires > Date.now()) return have.token;
    const realm = ch.params.realm;
    if (!realm) throw new UfsError(`registry ${this.registry} asks for a token but names no realm`);
    let url: URL;
    try {
      url = new URL(realm);
    } catch {
      throw new UfsError(`registry ${this.registry} names a bad token realm ${JSON.stringify(realm)}`);
    }
    if (ch.params.service) url.searchParams.set('service', ch.params.service);
    for (const s of scopes) url.searchParams.append('scope', s);
    if (creds && creds.username === '<token>') {
      // an identity token (refresh token): OAuth2 POST, as Docker does
      throw new UfsError(`registry ${this.registry}: identity-token logins are not supported; log in with a password`);
    }
    const res = await request(url, { headers: creds ? { Authorization: basicHeader(creds) } : {}, ...(signal ? { signal } : {}) });
    const body = await readBody(res, 1 << 20);
    if (res.status === 401 || res.status === 403) {
      throw new UfsError(creds ? `unauthorized: incorrect username or password for ${this.registry}` : `unauthorized: ${this.registry} wants a login: run \`ufs login ${this.registry}\``);
    }
    if (res.status !== 200) throw new UfsError(`token server ${url.host} answered ${res.status} for ${this.registry}`);
    let j: { token?: string; access_token?: string; expires_in?: number; issued_at?: string };
    try {
      j = JSON.parse(body.toString('utf8'));
    } catch {
      throw new UfsError(`token server ${url.host} answered no JSON`);
    }
    const token = j.token ?? j.access_token;
    if (!token) throw new UfsError(`token server ${url.host} gave no token`);
    const issued = j.issued_at ? Date.parse(j.issued_at) : NaN;
    const start = Number.isFinite(issued) && Math.abs(issued - Date.now()) < 3600_000 ? issued : Date.now();
    const life = (typeof j.expires_in === 'number' && j.expires_in > 0 ? j.expires_in : 60) * 1000;
    this.tokens.set(key, { token, expires: start + life - Math.min(10_000, life / 4) });
    return token;
  }
}
