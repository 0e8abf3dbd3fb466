/**
 * Why a connection to Kafka or Redis failed, when the reason is its security (issue 15): refused credentials,
 * a server certificate this process does not trust, a client certificate the server refused, or a client
 * and a listener that do not speak the same protocol (plaintext against TLS, or the reverse). Each is a
 * FaceflowError('TRANSPORT_SECURITY'), not retriable (the same settings fail the same way), whose message
 * is one line naming the problem and the variable to fix; never a secret (only user names and file paths).
 *
 * Used by the two adapters (bus/kafka-bus.ts, gallery-store/redis-gallery-store.ts) on their connect paths.
 */
import tls from 'node:tls';
import type { KafkaSecurity, RedisSecurity } from './config.js';
import { FaceflowError } from './errors.js';

export type SecurityProblem = 'credentials' | 'certificate' | 'client-certificate' | 'protocol';

interface Context {
  system: 'kafka' | 'redis';
  /** "Kafka at host:port", "Redis at rediss://host:port": no password */
  where: string;
  /** the operation that failed, for the details */
  what: string;
  security?: KafkaSecurity | RedisSecurity | undefined;
  /** Redis: whether the URL is rediss:// */
  tls?: boolean;
}

interface Cause {
  name?: string;
  code?: string;
  message: string;
}

/** The error and what it wraps (kafkajs: originalError, errors; Node: cause). */
function causes(e: unknown, out: Cause[] = [], depth = 0): Cause[] {
  if (e === null || e === undefined || depth > 6) return out;
  const o = e as { name?: unknown; code?: unknown; message?: unknown; originalError?: unknown; cause?: unknown; errors?: unknown };
  out.push({
    ...(typeof o.name === 'string' ? { name: o.name } : {}),
    ...(typeof o.code === 'string' ? { code: o.code } : {}),
    message: typeof o.message === 'string' ? o.message : String(e),
  });
  causes(o.originalError, out, depth + 1);
  causes(o.cause, out, depth + 1);
  if (Array.isArray(o.errors)) for (const x of o.errors.slice(0, 4)) causes(x, out, depth + 1);
  return out;
}

// Node's (OpenSSL's) verification failures of the server's certificate
const UNTRUSTED = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_UNTRUSTED',
  'CERT_SIGNATURE_FAILURE',
  'CERT_REJECTED',
  'INVALID_CA',
]);
const EXPIRED = new Set(['CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID']);

function env(ctx: Context, name: string): string {
  return `FACEFLOW_${ctx.system.toUpperCase()}_${name}`;
}

function make(ctx: Context, problem: SecurityProblem, message: string, cause: unknown, code?: string): FaceflowError {
  return new FaceflowError('TRANSPORT_SECURITY', `${ctx.where}: ${message}`, {
    cause,
    details: { system: ctx.system, problem, operation: ctx.what, ...(code ? { tlsError: code } : {}) },
  });
}

/** The security failure in `e`, or undefined when it is not one (then it is the caller's usual error). */
export function securityError(e: unknown, ctx: Context): FaceflowError | undefined {
  if (e instanceof FaceflowError) return e.code === 'TRANSPORT_SECURITY' ? e : undefined;
  const all = causes(e);
  const sasl = ctx.system === 'kafka' ? (ctx.security as KafkaSecurity | undefined)?.sasl : undefined;
  const redisSec = ctx.system === 'redis' ? (ctx.security as RedisSecurity | undefined) : undefined;
  for (const c of all) {
    if (c.name === 'KafkaJSSASLAuthenticationError') {
      const unsupported = /mechanism is not supported|UNSUPPORTED_SASL_MECHANISM|not enabled/i.test(c.message);
      if (unsupported) return make(ctx, 'credentials', `the broker does not offer SASL mechanism ${sasl?.mechanism ?? '?'}: set ${env(ctx, 'SASL_MECHANISM')} to one its listener enables (sasl.enabled.mechanisms)`, e);
      return make(
        ctx,
        'credentials',
        `the broker refused the SASL login of user ${JSON.stringify(sasl?.username ?? '?')} (${sasl?.mechanism ?? '?'}): check ${env(ctx, 'SASL_USERNAME')} and the password in ${env(ctx, 'SASL_PASSWORD_FILE')}${sasl ? ` (${sasl.password.source})` : ''} against the broker's credentials (docs/security.md)`,
        e,
      );
    }
    if (ctx.system === 'redis' && /^WRONGPASS|invalid username-password pair/i.test(c.message)) {
      const user = redisSec?.username ?? 'default';
      return make(
        ctx,
        'credentials',
        `Redis refused the login of ACL user ${JSON.stringify(user)}: check FACEFLOW_REDIS_USERNAME and the password in FACEFLOW_REDIS_PASSWORD_FILE${redisSec?.password ? ` (${redisSec.password.source})` : ''} against the server's ACL (docs/security.md)`,
        e,
      );
    }
    if (ctx.system === 'redis' && /^NOAUTH/i.test(c.message)) {
      return make(ctx, 'credentials', 'Redis requires a login: set FACEFLOW_REDIS_USERNAME and FACEFLOW_REDIS_PASSWORD_FILE (an ACL user and its password)', e);
    }
    if (ctx.system === 'redis' && /^NOPERM/i.test(c.message)) {
      return make(ctx, 'credentials', `the ACL user ${JSON.stringify(redisSec?.username ?? 'default')} may not do this (${c.message.split('\n')[0]}): grant it the gallery's keys and commands (ACL SETUSER, docs/security.md)`, e);
    }
    const code = c.code ?? '';
    if (UNTRUSTED.has(code)) {
      return make(ctx, 'certificate', `its TLS certificate is not trusted (${code}): set ${env(ctx, 'CA_FILE')} to the CA that signed it`, e, code);
    }
    if (EXPIRED.has(code)) return make(ctx, 'certificate', `its TLS certificate is not valid now (${code}): the server needs a current certificate`, e, code);
    if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
      return make(ctx, 'certificate', `its TLS certificate does not name the host connected to (${code}): connect by a name or address the certificate holds`, e, code);
    }
    if (/ALERT_CERTIFICATE_REQUIRED|ALERT_BAD_CERTIFICATE|ALERT_UNKNOWN_CA|ALERT_CERTIFICATE_UNKNOWN|ALERT_HANDSHAKE_FAILURE/.test(code) || /certificate required|alert bad certificate|alert unknown ca/i.test(c.message)) {
      const shown = code || all.find((x) => x.code)?.code || (/alert [a-z ]+/i.exec(c.message)?.[0] ?? 'alert');
      return make(ctx, 'client-certificate', `the server refused the TLS handshake (${shown}): it wants a client certificate it trusts: set ${env(ctx, 'CERT_FILE')} and ${env(ctx, 'KEY_FILE')}`, e, code || undefined);
    }
    if (code === 'ERR_SSL_WRONG_VERSION_NUMBER' || /wrong version number|packet length too long|before secure TLS connection was established/i.test(c.message)) {
      const fix = ctx.system === 'kafka' ? 'set FACEFLOW_KAFKA_SECURITY=plaintext, or give the address of its TLS listener' : 'use a redis:// URL, or the port of its TLS listener (tls-port)';
      return make(ctx, 'protocol', `the TLS handshake failed (${code || 'connection closed'}): the port does not speak TLS? ${fix}`, e, code || undefined);
    }
  }
  return undefined;
}

const TCP_LEVEL = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT']);

/** Whether a TLS server answers at host:port (any certificate): a few seconds at most. */
export function speaksTls(address: string, timeoutMs = 2_000): Promise<boolean> {
  const sep = address.lastIndexOf(':');
  const host = address.slice(0, sep).replace(/^\[|\]$/g, '');
  const port = Number(address.slice(sep + 1));
  return new Promise((resolve) => {
    // only the handshake is looked at: nothing is sent, so no certificate check is needed
    const sock = tls.connect({ host, port, rejectUnauthorized: false, ...(/^[\d.]+$|:/.test(host) ? {} : { servername: host }) });
    const done = (ok: boolean): void => {
      clearTimeout(timer);
      sock.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    sock.once('secureConnect', () => done(true));
    sock.once('error', () => done(false));
  });
}

/**
 * After a plaintext connection broke without a reason (a TLS listener drops what is not a handshake): asks
 * the first address for a TLS handshake; when it answers one, the client's protocol is the wrong one.
 */
export async function diagnoseTransport(e: unknown, ctx: Context & { addresses: string[]; tls: boolean }): Promise<FaceflowError | undefined> {
  if (ctx.tls || !ctx.addresses.length) return undefined;
  if (causes(e).some((c) => TCP_LEVEL.has(c.code ?? ''))) return undefined;
  if (!(await speaksTls(ctx.addresses[0]!))) return undefined;
  const fix =
    ctx.system === 'kafka'
      ? 'set FACEFLOW_KAFKA_SECURITY=sasl_ssl (or ssl) and FACEFLOW_KAFKA_CA_FILE, or give the address of a plaintext listener'
      : 'use a rediss:// URL (and FACEFLOW_REDIS_CA_FILE), or the plaintext port';
  return make(ctx, 'protocol', `the server speaks TLS, this client plaintext: ${fix}`, e);
}
