// Docker's reference grammar (distribution/reference): [domain/]path[:tag][@digest], with
// Docker Hub's normalisation: `busybox` is docker.io/library/busybox:latest internally and
// printed back in the short ("familiar") form.
import { UfsError } from '../common/errors.js';

export const DEFAULT_DOMAIN = 'docker.io';
export const DEFAULT_TAG = 'latest';

const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const DOMAIN_COMPONENT = /^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-fA-F0-9]{32,}$/;

export interface Reference {
  domain: string;
  path: string; // library/busybox
  tag?: string;
  digest?: string;
}

function invalid(ref: string, why?: string): never {
  throw new UfsError(`invalid reference format${why ? `: ${why}` : ''}: ${JSON.stringify(ref)}`);
}

function isDomain(s: string): boolean {
  const m = /^(\[[a-fA-F0-9:]+\]|[^:]+)(?::(\d+))?$/.exec(s);
  if (!m) return false;
  if (m[1]!.startsWith('[')) return true;
  return m[1]!.split('.').every((c) => DOMAIN_COMPONENT.test(c));
}

// Parses and normalises; `tag` stays undefined unless given (see withDefaultTag).
export function parseReference(ref: string): Reference {
  if (ref === '' || ref.length > 512) invalid(ref);
  let rest = ref;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) invalid(ref, 'bad digest');
    if (digest.startsWith('sha256:') && !/^sha256:[a-f0-9]{64}$/.test(digest)) invalid(ref, 'bad sha256 digest');
  }
  let tag: string | undefined;
  const lastColon = rest.lastIndexOf(':');
  if (lastColon > rest.lastIndexOf('/')) {
    tag = rest.slice(lastColon + 1);
    rest = rest.slice(0, lastColon);
    if (!TAG.test(tag)) invalid(ref, 'bad tag');
  }
  let domain = DEFAULT_DOMAIN;
  let path = rest;
  const slash = rest.indexOf('/');
  if (slash >= 0) {
    const first = rest.slice(0, slash);
    if ((first.includes('.') || first.includes(':') || first === 'localhost' || first.toLowerCase() !== first) && isDomain(first)) {
      domain = first;
      path = rest.slice(slash + 1);
    }
  }
  if (domain === 'index.docker.io') domain = DEFAULT_DOMAIN;
  if (path.toLowerCase() !== path) invalid(ref, 'repository name must be lowercase');
  const parts = path.split('/');
  if (parts.some((p) => !COMPONENT.test(p))) invalid(ref);
  if (domain === DEFAULT_DOMAIN && parts.length === 1) path = `library/${path}`;
  if (`${domain}/${path}`.length > 255) invalid(ref, 'repository name too long');
  if (/^[a-f0-9]{64}$/.test(rest)) invalid(ref, 'cannot use a 64-character hexadecimal string as a name');
  return { domain, path, ...(tag !== undefined ? { tag } : {}), ...(digest !== undefined ? { digest } : {}) };
}

export function repoName(r: Reference): string {
  return `${r.domain}/${r.path}`;
}

// docker.io/library/busybox:latest from `busybox`; keeps an explicit digest.
export function normalizeTagged(ref: string): string {
  const r = parseReference(ref);
  if (r.digest) invalid(ref, 'a tag is needed here, not a digest');
  return `${repoName(r)}:${r.tag ?? DEFAULT_TAG}`;
}

// The short form Docker prints: docker.io/library/x -> x, docker.io/u/x -> u/x.
export function familiarName(full: string): string {
  if (full.startsWith(`${DEFAULT_DOMAIN}/library/`)) {
    const rest = full.slice(DEFAULT_DOMAIN.length + 9);
    if (!rest.includes('/')) return rest;
  }
  if (full.startsWith(`${DEFAULT_DOMAIN}/`)) return full.slice(DEFAULT_DOMAIN.length + 1);
  return full;
}

// Splits a stored full name:tag (or name@digest) into repository and tag/digest.
export function splitStoredRef(full: string): { repo: string; tag?: string; digest?: string } {
  const at = full.indexOf('@');
  if (at >= 0) return { repo: full.slice(0, at), digest: full.slice(at + 1) };
  const colon = full.lastIndexOf(':');
  if (colon > full.lastIndexOf('/')) return { repo: full.slice(0, colon), tag: full.slice(colon + 1) };
  return { repo: full };
}

export function shortId(id: string): string {
  return id.replace(/^sha256:/, '').slice(0, 12);
}
