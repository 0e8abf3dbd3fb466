/**
 * The HTTP surface every process shares (node:http, no framework): GET /metrics (Prometheus text),
 * GET /livez (alias /healthz: the process is alive; it never looks at dependencies, so that an outage of
 * Kafka or Redis restarts nothing), GET /readyz (200 only when `ready()` says the process can do its work:
 * broker and Redis answering, gallery loaded...; its body carries what `ready()` reports, e.g. per-dependency
 * and per-source state). A service adds its own routes with `handle`, which returns true when it answered.
 *
 * An error answered 429 or 503 carries Retry-After (issue 12: pushes during an outage got a bare 503): the
 * error's `details.retryAfterS` when it gives one, else 1 s for 429 and RETRY_AFTER_UNAVAILABLE_S for 503.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { FaceflowError } from './errors.js';
import type { Logger } from './logger.js';
import type { Metrics } from './metrics.js';

/** Retry-After (seconds) of a 503 whose error does not say. */
export const RETRY_AFTER_UNAVAILABLE_S = 5;

/** What a readiness check may answer: a boolean, or a report whose `ready` decides and whose rest is shown. */
export type ReadyReport = { ready: boolean } & Record<string, unknown>;

export interface OpsServerOptions {
  port: number;
  host?: string;
  metrics: Metrics;
  /** Readiness; a throw counts as not ready. */
  ready?: () => boolean | ReadyReport | Promise<boolean | ReadyReport>;
  /** Extra routes; resolve true when the request was answered. */
  handle?: (req: http.IncomingMessage, res: http.ServerResponse) => boolean | Promise<boolean>;
  logger?: Logger;
}

export interface OpsServer {
  readonly port: number;
  readonly url: string;
  close(): Promise<void>;
}

export function sendJson(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

/** HTTP status of a FaceflowError code. */
export function httpStatus(e: FaceflowError): number {
  switch (e.code) {
    case 'UNAUTHORIZED':
      return 401;
    case 'NOT_FOUND':
      return 404;
    case 'IMAGE_TOO_LARGE':
      return 413;
    case 'UNSUPPORTED_FORMAT':
      return 415;
    case 'OVERLOADED':
      return 429;
    case 'BACKEND_UNAVAILABLE':
    case 'STORE_UNAVAILABLE':
    case 'TRANSPORT':
      return 503;
    case 'TIMEOUT':
      return 504;
    case 'INTERNAL':
      return 500;
    default:
      return 400;
  }
}

/** The Retry-After header of an error's answer (429 and 503 only). */
export function retryAfter(e: FaceflowError): Record<string, string> {
  const status = httpStatus(e);
  if (status !== 429 && status !== 503) return {};
  const given = Number(e.details.retryAfterS);
  const s = Number.isFinite(given) && given > 0 ? Math.ceil(given) : status === 429 ? 1 : RETRY_AFTER_UNAVAILABLE_S;
  return { 'retry-after': String(s) };
}

export async function startOpsServer(o: OpsServerOptions): Promise<OpsServer> {
  const server = http.createServer((req, res) => {
    void (async () => {
      const path = (req.url ?? '/').split('?')[0];
      try {
        if (req.method === 'GET' && path === '/metrics') {
          const text = await o.metrics.metricsText();
          res.writeHead(200, { 'content-type': o.metrics.contentType });
          res.end(text);
          return;
        }
        if (req.method === 'GET' && (path === '/healthz' || path === '/livez')) return sendJson(res, 200, { status: 'ok' });
        if (req.method === 'GET' && path === '/readyz') {
          let report: ReadyReport;
          try {
            const r = o.ready ? await o.ready() : true;
            report = typeof r === 'boolean' ? { ready: r } : r;
          } catch (e) {
            report = { ready: false, error: (e as Error)?.message ?? String(e) };
          }
          const { ready, ...rest } = report;
          return sendJson(res, ready ? 200 : 503, { status: ready ? 'ready' : 'not ready', ...rest });
        }
        if (o.handle && (await o.handle(req, res))) return;
        sendJson(res, 404, { error: { code: 'NOT_FOUND', message: `no route ${req.method} ${path}` } });
      } catch (e) {
        const err = e instanceof FaceflowError ? e : new FaceflowError('INTERNAL', (e as Error)?.message ?? String(e));
        if (err.code === 'INTERNAL') o.logger?.error('http handler failed', { path, err: e });
        if (!res.headersSent) sendJson(res, httpStatus(err), { error: { code: err.code, message: err.message } }, retryAfter(err));
        else res.destroy();
      }
    })();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host ?? '0.0.0.0', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    url: `http://${o.host === '0.0.0.0' || !o.host ? '127.0.0.1' : o.host}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections?.();
      }),
  };
}

/**
 * An HTTP request body, refused with IMAGE_TOO_LARGE as soon as it is over `maxBytes`: by its declared
 * Content-Length before anything is read, else while it streams, before the rest is buffered.
 */
export async function readBody(req: http.IncomingMessage, maxBytes: number, what = 'body'): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBytes) throw new FaceflowError('IMAGE_TOO_LARGE', `${what} of ${declared} bytes is over the limit of ${maxBytes}`);
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of req as AsyncIterable<Buffer>) {
    n += c.length;
    if (n > maxBytes) throw new FaceflowError('IMAGE_TOO_LARGE', `${what} is over the limit of ${maxBytes} bytes`);
    chunks.push(c);
  }
  return Buffer.concat(chunks);
}
