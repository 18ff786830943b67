// `ufs login` / `ufs logout`: credentials checked against the registry (a token for Bearer
// registries, GET /v2/ for Basic ones), then filed where Docker files them.
import { UfsError } from '../common/errors.js';
import type { RegistryOptions } from './hosts.js';
import { credentialKey } from './hosts.js';
import { RegistryClient } from './client.js';
import { apiHost } from './hosts.js';
import { type Credentials, eraseCredentials, storeCredentials } from './credentials.js';

export async function login(domain: string, creds: Credentials, opts: RegistryOptions = {}): Promise<{ helper?: string }> {
  if (!creds.username) throw new UfsError('login: a username is needed (-u)');
  if (!creds.password) throw new UfsError('login: a password is needed (-p or --password-stdin)');
  const client = await RegistryClient.connect(domain, apiHost(domain), { ...opts, credentials: creds });
  await client.checkLogin();
  return storeCredentials(credentialKey(domain), creds);
}

export async function logout(domain: string): Promise<boolean> {
  return eraseCredentials(credentialKey(domain));
}
