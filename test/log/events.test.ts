// The log's events reach listeners after the turn that made the change: a listener that throws
// is the process's uncaught exception, never a failure of the node it listens to.
import { expect, it } from 'vitest';
import { runChild } from './helpers.js';

it("a 'leader' listener that throws leaves every node running: leadership moves, records commit and apply", async () => {
  const { code, stdout, stderr } = await runChild('./throwing-listener-child.ts');
  expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
  const out = JSON.parse(stdout.trim().split('\n').at(-1)!) as { thrown: number; roles: string[]; acked: number; leaderEvents: number; events: string[] };
  // Every node heard of the new leader, and each listener's throw was the process's, not the node's.
  expect(out.leaderEvents, out.events.join('\n')).toBeGreaterThanOrEqual(3);
  expect(out.thrown).toBe(out.events.length);
  expect(out.events.filter((e) => e.includes('fatal'))).toEqual([]);
  expect(out.roles.filter((r) => r === 'fatal')).toEqual([]);
  expect(out.acked).toBe(20);
}, 60_000);
