/**
 * Consumer lag as a metric: every `intervalMs`, for each (topic, group) a service consumes, the end offset
 * of each partition minus the group's committed offset -> faceflow_consumer_lag_messages{topic,group,partition}.
 * The embedder's lag is what an autoscaler (KEDA, an HPA on an external metric) scales on.
 */
import type { Metrics } from '../observability.js';
import type { Logger } from '../observability.js';
import type { KafkaBus } from './kafka-bus.js';

export function pollConsumerLag(bus: KafkaBus, metrics: Metrics, subs: { topic: string; groupId: string }[], intervalMs = 5000, logger?: Logger): () => void {
  const gauge = metrics.gauge({ name: 'consumer_lag_messages', help: 'Messages not yet committed by a consumer group, per partition', labelNames: ['topic', 'group', 'partition'] as const });
  let running = false;
  const poll = async (): Promise<void> => {
    if (running) return;
    running = true;
    try {
      for (const s of subs) {
        const [ends, committed] = await Promise.all([bus.endOffsets(s.topic), bus.committedOffsets(s.groupId, s.topic)]);
        for (const e of ends) {
          const c = committed.find((x) => x.partition === e.partition)?.offset ?? '-1';
          const lag = Number(e.offset) - Math.max(0, Number(c));
          gauge.set({ topic: s.topic, group: s.groupId, partition: e.partition }, Math.max(0, lag));
        }
      }
    } catch (e) {
      logger?.debug('consumer lag poll failed', { err: e });
    } finally {
      running = false;
    }
  };
  const timer = setInterval(() => void poll(), intervalMs);
  timer.unref();
  void poll();
  return () => clearInterval(timer);
}
