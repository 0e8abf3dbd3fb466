/**
 * The client of the matcher's recurring-stranger clusters API (issue 14 item 3; the routes are the matcher's
 * clusters-api.ts): list, show and enrol-as-identity, one HTTP call each, with a gallery API key. Failures are
 * one FaceflowError each: the server's own code and message where it sent one, UNAUTHORIZED for a refused
 * key, BACKEND_UNAVAILABLE for a matcher that cannot be reached. The key is sent, never put in a message.
 */
import { readFileSync } from 'node:fs';
import { ERROR_CODES, FaceflowError, type ErrorCode } from './errors.js';

/** One cluster on the wire: never an embedding (the API serves counts and times only). */
export interface ClusterSummary {
  id: string;
  members: number;
  /** ms since the epoch (capture time) of the oldest and newest member */
  firstSeen: number;
  lastSeen: number;
  /** members per camera ("" for members without one) */
  cameras: Record<string, number>;
  /** ids of clusters merged into this one */
  mergedFrom: string[];
}

export interface ClusterList {
  /** false: this matcher does not cluster (FACEFLOW_UNKNOWN_CLUSTER_RETENTION=0) */
  clustering: boolean;
  clusters: ClusterSummary[];
}

export interface ClusterEnrolment {
  cluster: string;
  identity: string;
  /** the embeddings enrolled (the cluster's kept members) */
  embeddings: number;
  version: number;
}

/** A gallery API key from a file (one line), read once: a missing or empty file is one INVALID_CONFIG line. */
export function readApiKeyFile(file: string): string {
  let key: string;
  try {
    key = readFileSync(file, 'utf8').trim();
  } catch (e) {
    throw new FaceflowError('INVALID_CONFIG', `cannot read the API key file ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  if (key.length === 0 || key.includes('\n')) throw new FaceflowError('INVALID_CONFIG', `the API key file ${file} must hold one line, the key`);
  return key;
}

export function clustersClient(baseUrl: string, apiKey: string, timeoutMs = 10_000) {
  const call = async <T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> => {
    const url = new URL(path, baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`);
    let res: Response;
    try {
      res = await fetch(url, {
        method,
        headers: { authorization: `Bearer ${apiKey}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (e) {
      const why = (e as Error).name === 'TimeoutError' ? `no answer in ${timeoutMs} ms` : ((e as { cause?: { code?: string } }).cause?.code ?? (e as Error).message);
      throw new FaceflowError('BACKEND_UNAVAILABLE', `cannot reach the matcher at ${url.origin} (${why}): check the URL (its ops port, FACEFLOW_HTTP_PORT) and that it runs`);
    }
    const text = await res.text();
    let json: { error?: { code?: string; message?: string } } | undefined;
    try {
      json = JSON.parse(text) as typeof json;
    } catch {
      json = undefined;
    }
    if (res.ok && json !== undefined) return json as T;
    const code = json?.error?.code;
    if (res.status === 401) throw new FaceflowError('UNAUTHORIZED', 'the matcher refused the API key: give a key whose SHA-256 is in its FACEFLOW_GALLERY_API_KEYS_SHA256');
    if (code !== undefined && code in ERROR_CODES) throw new FaceflowError(code as ErrorCode, json!.error!.message ?? `HTTP ${res.status}`);
    throw new FaceflowError(res.status === 404 ? 'NOT_FOUND' : 'INTERNAL', `the matcher answered HTTP ${res.status} to ${method} ${url.pathname} (is ${url.origin} a matcher that serves /v1/clusters?)`);
  };
  const at = (id: string): string => `v1/clusters/${encodeURIComponent(id)}`;
  return {
    list: () => call<ClusterList>('GET', 'v1/clusters'),
    show: (id: string) => call<ClusterSummary>('GET', at(id)),
    /** enrols the cluster as identity `name` (append: add to an existing identity) and removes the cluster */
    enrol: (id: string, name: string, append = false) => call<ClusterEnrolment>('POST', `${at(id)}/enrol`, { name, ...(append ? { mode: 'append' } : {}) }),
  };
}
