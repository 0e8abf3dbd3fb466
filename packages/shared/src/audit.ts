/**
 * The audit trail (issue 15, item 4): one AuditEvent (schemas/audit-event.ts) per gallery access, written to
 * the service log (always) and published on the audit topic (when a bus is given). A publish that fails is
 * logged as an error with the event (the log line already holds it) and does not fail the call it audits:
 * the gallery stays usable while Kafka is down, and the log remains the record. Never pass a template.
 * A command (no service log) appends each event as one JSON line to a file instead (FACEFLOW_AUDIT_LOG).
 */
import { appendFile } from 'node:fs/promises';
import { createHash, randomUUID } from 'node:crypto';
import type { Bus } from './bus/types.js';
import type { Logger } from './observability.js';
import { AuditEventSchema, type AuditEvent } from './schemas/audit-event.js';

export interface AuditTrailOptions {
  logger: Logger;
  /** the process recording (AuditEvent.service) */
  service: string;
  bus?: Pick<Bus, 'publish'>;
  /** the audit topic (topicNames(prefix).audit) */
  topic?: string;
  /** a file the events are appended to, one JSON line each (created mode 0600) */
  file?: string;
}

/** The id an API key is audited under: the first 16 hex digits of its SHA-256 (the digest the service is configured with). */
export function apiKeyId(key: string): string {
  return createHash('sha256').update(key).digest('hex').slice(0, 16);
}

export type AuditRecord = Omit<AuditEvent, 'id' | 'ts' | 'service'>;

export class AuditTrail {
  constructor(private readonly o: AuditTrailOptions) {}

  /** Records one event; resolves once it is logged and (with a bus) published or its failure logged. */
  async record(r: AuditRecord): Promise<AuditEvent> {
    const event = AuditEventSchema.validate({ ...r, id: randomUUID(), ts: Date.now(), service: this.o.service });
    this.o.logger.info('audit', { audit: event });
    if (this.o.file) await appendFile(this.o.file, `${AuditEventSchema.encode(event).toString('utf8')}\n`, { mode: 0o600 });
    if (this.o.bus && this.o.topic) {
      try {
        await this.o.bus.publish(this.o.topic, [{ key: event.gallery, value: AuditEventSchema.encode(event) }]);
      } catch (e) {
        this.o.logger.error('audit event not published (it is in this log)', { auditId: event.id, topic: this.o.topic, err: e });
      }
    }
    return event;
  }
}
