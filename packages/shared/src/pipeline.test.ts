import { describe, expect, it } from 'vitest';
import { InProcessBus } from './bus/in-process-bus.js';
import type { StageBinding, StageOutput } from './bus/stage.js';
import { Pipeline, type Intake, type PipelineState } from './pipeline.js';

const text = (v: Buffer): string => v.toString('utf8');

/** A stage that forwards every message from `input` to `output`, upper-cased; `gate` holds each batch while set. */
function relay(input: string, output: string, opts: { gate?: () => Promise<void>; flush?: () => StageOutput[] } = {}): StageBinding {
  return {
    stage: {
      name: `relay-${input}`,
      async process(messages) {
        await opts.gate?.();
        return { outputs: [{ topic: output, messages: messages.map((m) => ({ key: m.key, value: Buffer.from(text(m.value).toUpperCase()) })) }] };
      },
    },
    input,
    groupId: `g-${input}`,
    ...(opts.flush ? { flush: opts.flush } : {}),
  };
}

/** An intake that publishes `n` messages (or, with n undefined, one every few ms until stopped). */
function intake(bus: InProcessBus, topic: string, n?: number): Intake<number> & { sent: number } {
  let stopped = false;
  const it = {
    sent: 0,
    async run() {
      while (!stopped && (n === undefined || it.sent < n)) {
        await bus.publish(topic, [{ key: 'cam1', value: Buffer.from(`m${it.sent}`) }]);
        it.sent++;
        if (n === undefined) await new Promise((r) => setTimeout(r, 5));
      }
      return it.sent;
    },
    stop() {
      stopped = true;
    },
  };
  return it;
}

function collect(bus: InProcessBus): { topic: string; groupId: string; handler: (b: { messages: { value: Buffer }[] }) => Promise<void> }[] & { got: string[] } {
  const got: string[] = [];
  const sinks = [{ topic: 'out', groupId: 'sink', handler: async (b: { messages: { value: Buffer }[] }) => void got.push(...b.messages.map((m) => text(m.value))) }];
  return Object.assign(sinks, { got });
}

describe('Pipeline', () => {
  it('runs_the_intake_to_its_end_then_drains_every_stage_and_publishes_their_flush', async () => {
    const bus = new InProcessBus();
    const states: PipelineState[] = [];
    const sinks = collect(bus);
    const p = await Pipeline.start({
      bus,
      stages: [relay('a', 'b'), relay('b', 'out', { flush: () => [{ topic: 'out', messages: [{ key: 'cam1', value: Buffer.from('FLUSHED') }] }] })],
      sinks,
      intake: intake(bus, 'a', 20),
      graceMs: 1000,
      onState: (s) => states.push(s),
    });
    const r = await p.run();
    await p.close();
    expect(r).toEqual({ intake: 20, drained: true, stopped: false });
    expect(sinks.got).toHaveLength(21);
    expect(sinks.got.at(-1)).toBe('FLUSHED');
    expect(states).toEqual(['draining', 'stopped']);
    expect(p.state).toBe('stopped');
  });

  it('stop_ends_intake_and_what_was_taken_still_goes_through', async () => {
    const bus = new InProcessBus();
    const states: PipelineState[] = [];
    const sinks = collect(bus);
    const feed = intake(bus, 'a');
    const p = await Pipeline.start({ bus, stages: [relay('a', 'out')], sinks, intake: feed, graceMs: 60_000, onState: (s) => states.push(s) });
    const running = p.run();
    while (feed.sent < 5) await new Promise((r) => setTimeout(r, 5));
    p.stop();
    const r = await running;
    await p.close();
    expect(r.stopped).toBe(true);
    expect(r.drained).toBe(true);
    expect(sinks.got).toHaveLength(feed.sent);
    expect(states).toEqual(['stopping', 'draining', 'stopped']);
  });

  it('a_second_stop_forces_the_drain_to_give_up', async () => {
    const bus = new InProcessBus();
    let release!: () => void;
    const never = new Promise<void>((r) => (release = r));
    const p = await Pipeline.start({ bus, stages: [relay('a', 'out', { gate: () => never })], intake: intake(bus, 'a', 3), graceMs: 3_600_000 });
    const running = p.run();
    await new Promise((r) => setTimeout(r, 20));
    p.stop();
    p.stop();
    const r = await running;
    expect(r.drained).toBe(false);
    release();
    await p.close({ graceMs: 0 });
    expect(p.state).toBe('stopped');
  });

  it('close_runs_every_closer_even_when_one_throws_and_reports_the_first', async () => {
    const bus = new InProcessBus();
    const p = await Pipeline.start({ bus, stages: [relay('a', 'out')], intake: intake(bus, 'a', 0), graceMs: 0 });
    await p.run();
    const closed: string[] = [];
    const others: string[] = [];
    await expect(
      p.close({
        more: [
          ['engine', () => { throw new Error('engine stuck'); }],
          ['gallery', () => void closed.push('gallery')],
          ['server', () => { throw new Error('port gone'); }],
          ['store', () => void closed.push('store')],
        ],
        onError: (name) => others.push(name),
      }),
    ).rejects.toThrow(/closing engine: engine stuck/);
    expect(closed).toEqual(['gallery', 'store']);
    expect(others).toEqual(['server']);
    expect(p.state).toBe('stopped');
  });
});
