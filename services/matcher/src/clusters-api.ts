/**
 * The recurring-stranger clusters over HTTP (issue 14 item 3), beside the gallery API on the matcher's ops
 * port and with its keys (FACEFLOW_GALLERY_API_KEYS_SHA256: none configured, every call refused):
 *
 *   GET  /v1/clusters               {clustering, clusters: [{id, members, firstSeen, lastSeen, cameras, mergedFrom}]}
 *   GET  /v1/clusters/<id>          one cluster (a merged-away id gives the cluster it went into)
 *   POST /v1/clusters/<id>/enrol    body {"name", "mode"?: "append"}: the cluster becomes identity NAME
 *
 * Never an embedding on the wire. Enrolment stores the cluster's KEPT MEMBER embeddings (each one unknown
 * track's mean, up to the clusterer's keepEmbeddings), not its centroid: the gallery names a face by its
 * nearest embedding of an identity, and separate tracks keep the views (pose, light, camera) the person was
 * seen in, while a mean of several tracks drifts towards the average face (cluster.ts). The write is the
 * gallery store's put, as PUT /v1/identities/<id>: the same checks, version and change notification (every
 * matcher names the person from then on); it is audited as `gallery.enroll` of NAME. An existing NAME is
 * refused unless mode is "append" (a stranger must not silently replace someone's templates). Then the
 * cluster leaves the clusterer. Clusters are this instance's memory only: other instances and a restart
 * have their own (docs/identity-events.md, "Recurring strangers").
 */
import type http from 'node:http';
import { apiKeyId, checkIdentityId, FaceflowError, isFaceflowError, type AuditTrail, type GalleryStore } from '@faceflow/shared';
import { keyMatches, type ClusterSummary, readBody, sendJson, type Logger } from '@faceflow/shared/ops';
import type { UnknownCluster, UnknownClusterer } from '@faceflow/engine/match';

export interface ClustersApiOptions {
  /** the matcher stage's clusterer; undefined: clustering is off (FACEFLOW_UNKNOWN_CLUSTER_RETENTION=0) */
  clusterer: Pick<UnknownClusterer, 'list' | 'get' | 'remove'> | undefined;
  store: GalleryStore | undefined;
  /** hex SHA-256 digests of the accepted API keys (the gallery API's) */
  keyDigests: string[];
  logger?: Logger;
  audit?: { trail: AuditTrail; gallery: string };
}

function summary(c: UnknownCluster): ClusterSummary {
  return { id: c.id, members: c.members, firstSeen: c.firstSeen, lastSeen: c.lastSeen, cameras: c.cameras, mergedFrom: c.mergedFrom };
}

function readName(body: Buffer): { name: string; append: boolean } {
  let o: { name?: unknown; mode?: unknown } | null;
  try {
    o = JSON.parse(body.toString('utf8')) as typeof o;
  } catch {
    o = null;
  }
  if (typeof o !== 'object' || o === null) throw new FaceflowError('INVALID_ARGUMENT', 'the body must be JSON {"name": "...", "mode"?: "append"} (Content-Type: application/json)');
  if (o.mode !== undefined && o.mode !== 'append') throw new FaceflowError('INVALID_ARGUMENT', `mode must be "append" when given; got ${JSON.stringify(o.mode)}`);
  try {
    return { name: checkIdentityId(o.name), append: o.mode === 'append' };
  } catch (e) {
    throw new FaceflowError('INVALID_ARGUMENT', `name: ${(e as Error).message}`, { details: { field: 'name' } });
  }
}

export function clustersApi(o: ClustersApiOptions): (req: http.IncomingMessage, res: http.ServerResponse) => Promise<boolean> {
  return async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname !== '/v1/clusters' && !url.pathname.startsWith('/v1/clusters/')) return false;
    const auth = /^Bearer (.+)$/.exec(req.headers.authorization ?? '');
    const parts = url.pathname.slice('/v1/clusters'.length).split('/').filter((p) => p.length > 0).map((p) => decodeURIComponent(p));
    const enrol = req.method === 'POST' && parts.length === 2 && parts[1] === 'enrol';
    const authorised = o.keyDigests.length > 0 && auth !== null && keyMatches(auth[1]!, o.keyDigests);
    if (!enrol) {
      if (!authorised) throw new FaceflowError('UNAUTHORIZED', 'a valid API key is required (Authorization: Bearer <key>)');
      if (req.method !== 'GET' || parts.length > 1) return false;
      if (parts.length === 0) {
        sendJson(res, 200, { clustering: o.clusterer !== undefined, clusters: (o.clusterer?.list() ?? []).map(summary) });
        return true;
      }
      const c = o.clusterer?.get(parts[0]!);
      if (!c) throw notFound(parts[0]!, o.clusterer === undefined);
      sendJson(res, 200, summary(c));
      return true;
    }
    // enrolment: audited as the gallery API's enrolment is, allowed or refused (issue 15 item 4)
    const base = { ...(auth ? { actorKind: 'api-key' as const, actor: apiKeyId(auth[1]!) } : { actorKind: 'anonymous' as const, actor: '-' }), source: req.socket.remoteAddress ?? 'unknown', gallery: o.audit?.gallery ?? '-' };
    let name: string | undefined;
    try {
      if (!authorised || !o.store) throw new FaceflowError('UNAUTHORIZED', 'a valid API key is required (Authorization: Bearer <key>)');
      const body = readName(await readBody(req, 64 * 1024));
      name = body.name;
      const c = o.clusterer?.get(parts[0]!);
      if (!c) throw notFound(parts[0]!, o.clusterer === undefined);
      if (!body.append && (await o.store.get(name)) !== undefined) {
        throw new FaceflowError('INVALID_ARGUMENT', `identity "${name}" is already enrolled: choose another name, or send "mode": "append" to add the cluster to it`, { details: { field: 'name' } });
      }
      const change = await o.store.put(name, c.embeddings.map((e) => Array.from(e)), { mode: body.append ? 'append' : 'replace' });
      o.clusterer!.remove(c.id);
      o.logger?.info('cluster enrolled', { cluster: c.id, identity: name, embeddings: c.embeddings.length, version: change.version });
      await o.audit?.trail.record({ ...base, action: 'gallery.enroll', outcome: 'ok', identity: name, version: change.version });
      sendJson(res, 200, { cluster: c.id, identity: name, embeddings: c.embeddings.length, version: change.version });
      return true;
    } catch (e) {
      const code = isFaceflowError(e) ? e.code : 'INTERNAL';
      await o.audit?.trail.record({ ...base, action: 'gallery.enroll', outcome: code === 'UNAUTHORIZED' ? 'denied' : 'failed', code, ...(name !== undefined ? { identity: name } : {}) });
      throw e;
    }
  };
}

function notFound(id: string, off: boolean): FaceflowError {
  return new FaceflowError('NOT_FOUND', off ? 'this matcher does not cluster unknown faces (FACEFLOW_UNKNOWN_CLUSTER_RETENTION=0)' : `no cluster "${id}" on this matcher: faceflow clusters list shows them (clusters are per matcher instance, and gone after a restart or once their members expire)`);
}
