/**
 * EnginePool.start's failure path, with a stand-in Worker whose timing the test controls: a real worker's
 * load takes whatever the machine gives it, which is how the bug below hid (CI, 1 run in 10).
 */
import { describe, expect, it, vi } from 'vitest';

interface Script {
  /** ms until this worker answers its load */
  after: number;
  /** what it answers: an error code, or nothing for a loaded engine; 'exit' to exit without answering */
  fails?: string | 'exit';
}
const world = vi.hoisted(() => ({
  scripts: [] as Script[],
  log: [] as string[],
}));

vi.mock('node:worker_threads', async () => {
  // the factory is hoisted above every import, so it fetches its own
  const { EventEmitter } = await import('node:events');
  class FakeWorker extends EventEmitter {
    private readonly index: number;
    private timer: NodeJS.Timeout;
    constructor() {
      super();
      this.index = world.log.filter((l) => l.startsWith('spawn')).length;
      world.log.push(`spawn ${this.index}`);
      const script = world.scripts[this.index]!;
      this.timer = setTimeout(() => {
        world.log.push(`answer ${this.index}`);
        if (script.fails === 'exit') this.emit('exit', 1);
        else if (script.fails) this.emit('message', { type: 'ready', error: { code: script.fails, message: `worker ${this.index} failed` } });
        else this.emit('message', { type: 'ready', runtime: {}, embedder: {}, models: {} });
      }, script.after);
    }
    postMessage(): void {}
    async terminate(): Promise<number> {
      clearTimeout(this.timer);
      world.log.push(`terminate ${this.index}`);
      return 0;
    }
  }
  return { Worker: FakeWorker };
});

// imported after the mock is in place (vi.mock is hoisted above this import)
const { EnginePool } = await import('./pool.js');

function run(scripts: Script[]): Promise<unknown> {
  world.scripts = scripts;
  world.log = [];
  return EnginePool.start({}, scripts.length);
}

describe('EnginePool.start', () => {
  it('a_failed_start_terminates_no_worker_before_every_worker_answered_its_load', async () => {
    // worker 0 fails at once; worker 1 is still loading (in a real worker: ONNX Runtime creating a session,
    // where a terminate aborts the process from the addon)
    await expect(run([{ after: 0, fails: 'NOT_FOUND' }, { after: 150 }])).rejects.toMatchObject({ code: 'NOT_FOUND' });
    const firstTerminate = world.log.findIndex((l) => l.startsWith('terminate'));
    expect(world.log.indexOf('answer 1')).toBeGreaterThan(-1);
    expect(world.log.indexOf('answer 1')).toBeLessThan(firstTerminate);
    expect(world.log.filter((l) => l.startsWith('terminate')).sort()).toEqual(['terminate 0', 'terminate 1']);
  });

  it('a_worker_that_exits_before_answering_fails_the_start_instead_of_hanging_it', async () => {
    await expect(run([{ after: 0, fails: 'exit' }, { after: 20 }])).rejects.toMatchObject({ code: 'MODEL_LOAD', message: expect.stringMatching(/exited with code 1 before its engine loaded/) });
  }, 5000);
});
