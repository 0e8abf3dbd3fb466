import { describe, expect, it } from 'vitest';
import { closeAll } from './close-all.js';

describe('closeAll', () => {
  it('every_closer_runs_even_if_another_throws', async () => {
    const ran: string[] = [];
    const others: string[] = [];
    const p = closeAll(
      [
        ['a', () => ran.push('a')],
        ['b', () => {
          ran.push('b');
          throw new Error('boom');
        }],
        undefined,
        ['c', async () => {
          ran.push('c');
          throw new Error('bang');
        }],
        ['d', async () => void ran.push('d')],
      ],
      (name) => others.push(name),
    );
    await expect(p).rejects.toThrow('closing b: boom');
    expect(ran).toEqual(['a', 'b', 'c', 'd']);
    expect(others).toEqual(['c']);
  });
});
