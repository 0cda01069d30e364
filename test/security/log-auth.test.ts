// Peer authentication as an embedder meets it: a log reachable over TCP must say how its
// peers prove who they are, before anything is created; secrets rotate without a restart.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ReplicatedLog } from '../../src/log/replicated-log.js';
import { validateCredentials } from '../../src/log/options.js';
import { RecordingLogger } from '../recording-logger.js';
import { RecordingMachine, appendSurely as appendToLeader, enc, freePorts, tempDir, waitFor } from '../log/helpers.js';

const OLD = 'the old secret of this cluster';
const NEW = 'the new secret of this cluster';

describe('ReplicatedLog peer authentication', () => {
  const cleanups: Array<() => unknown> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });
  const fresh = (): string => {
    const t = tempDir();
    cleanups.push(t.cleanup);
    return t.dir;
  };

  it('refuses peers without a secret, TLS or insecure, and a weak secret, before creating any file', async () => {
    const dir = join(fresh(), 'never');
    const peers = { 1: '127.0.0.1:7101', 2: '127.0.0.1:7102' };
    await expect(ReplicatedLog.open({ dataDir: dir, id: 1, peers })).rejects.toMatchObject({ code: 'TRANSPORT_INSECURE' });
    await expect(ReplicatedLog.open({ dataDir: dir, listen: '127.0.0.1:7101' })).rejects.toMatchObject({ code: 'TRANSPORT_INSECURE' });
    await expect(ReplicatedLog.open({ dataDir: dir, id: 1, peers, clusterSecret: 'short' })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: expect.stringMatching(/clusterSecret must be at least 16 bytes/),
    });
    await expect(ReplicatedLog.open({ dataDir: dir, id: 1, peers, clusterSecret: [OLD, 'short'] })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(ReplicatedLog.open({ dataDir: dir, id: 1, peers, clusterSecret: [] as string[] })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(ReplicatedLog.open({ dataDir: dir, id: 1, peers, insecure: 'yes' } as never)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(existsSync(dir)).toBe(false);
  });

  it('never quotes a clusterSecret or tls of the wrong type in the error refusing it', async () => {
    const dir = join(fresh(), 'never');
    const peers = { 1: '127.0.0.1:7101', 2: '127.0.0.1:7102' };
    const pem = '-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n';
    const wrong: Array<[string, unknown, string]> = [
      ['clusterSecret', 4816_2342_4238_6613, '4816'],
      ['clusterSecret', 48162342423866135512n, '4816'],
      ['tls', pem, 'MIIEvQ'],
    ];
    for (const [key, value, secret] of wrong) {
      const open = ReplicatedLog.open({ dataDir: dir, id: 1, peers, [key]: value } as never).then(
        () => expect.unreachable(),
        (err: unknown) => err as Error,
      );
      const err = await open;
      expect(err).toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringContaining(key) });
      expect(err.message).not.toContain(secret);
      const reload = (() => {
        try {
          validateCredentials({ [key]: value } as never);
        } catch (e) {
          return e as Error;
        }
        return undefined;
      })();
      expect(reload).toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringContaining(key) });
      expect(reload!.message).not.toContain(secret);
    }
    expect(existsSync(dir)).toBe(false);
  });

  it('runs without authentication only when told, and says so in its log', async () => {
    const [port] = await freePorts(1);
    const warnings = new RecordingLogger();
    const log = await ReplicatedLog.open({ dataDir: fresh(), listen: `127.0.0.1:${port}`, insecure: true, logger: warnings });
    cleanups.push(() => log.close());
    expect(warnings.lines.some((l) => l.level === 'warn' && /not authenticated/.test(l.message))).toBe(true);
    await log.append(enc('x'));
  });

  it('a log without a TCP transport has no credentials to reload', async () => {
    const log = await ReplicatedLog.open({ dataDir: fresh() });
    cleanups.push(() => log.close());
    expect(() => log.reloadCredentials({ clusterSecret: NEW })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });

  it('reloadCredentials refuses what it would not use: a misspelt key, nothing to reload, a tls without its material', async () => {
    const [port] = await freePorts(1);
    const log = await ReplicatedLog.open({ dataDir: fresh(), listen: `127.0.0.1:${port}`, clusterSecret: OLD });
    cleanups.push(() => log.close());
    const refused = (c: unknown, why: RegExp): void =>
      expect(() => log.reloadCredentials(c as never)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(why) }));
    // Each of these did nothing, and said nothing: the old secret stayed in force.
    refused({ clusterSecert: NEW }, /unknown option 'clusterSecert'/);
    refused({}, /needs clusterSecret or tls/);
    refused({ clusterSecret: undefined }, /needs clusterSecret or tls/);
    refused(null, /must be an object/);
    refused({ tls: {} }, /tls must have key, cert and ca/);
    log.reloadCredentials({ clusterSecret: [OLD, NEW] });
  });

  it('reloadCredentials on a closed log throws LOG_CLOSED: nothing would use them, and no rotation step may seem done', async () => {
    const [port] = await freePorts(1);
    const log = await ReplicatedLog.open({ dataDir: fresh(), listen: `127.0.0.1:${port}`, clusterSecret: OLD });
    await log.close();
    expect(() => log.reloadCredentials({ clusterSecret: [OLD, NEW] })).toThrow(expect.objectContaining({ code: 'LOG_CLOSED' }));
  });

  it('rotates the cluster secret without a restart; afterwards only the new secret is heard', async () => {
    const ports = await freePorts(3);
    const peers: Record<number, string> = { 1: `127.0.0.1:${ports[0]}`, 2: `127.0.0.1:${ports[1]}`, 3: `127.0.0.1:${ports[2]}` };
    const dirs = [fresh(), fresh(), fresh()];
    const open = (id: number, clusterSecret: string | string[], logger?: RecordingLogger): Promise<ReplicatedLog<number>> =>
      ReplicatedLog.open<number>({
        dataDir: dirs[id - 1]!,
        id,
        peers,
        clusterSecret,
        stateMachine: new RecordingMachine(),
        tickMs: 10,
        electionTicks: 20,
        heartbeatTicks: 2,
        ...(logger !== undefined ? { logger } : {}),
      });
    const loggers = [1, 2, 3].map(() => new RecordingLogger());
    const logs = await Promise.all([1, 2, 3].map((id) => open(id, OLD, loggers[id - 1])));
    cleanups.push(() => Promise.all(logs.map((l) => l.close())));
    const appendSurely = (text: string): Promise<{ index: number }> => appendToLeader(logs, enc(text));
    await appendSurely('before');

    // The rotation: every node accepts both, then proves with the new one, then forgets the old.
    // Only the last step closes anything: the connections the old secret proved.
    const retired = /no longer in the list/;
    for (const step of [[OLD, NEW], [NEW, OLD], [NEW]]) {
      for (const l of logs) l.reloadCredentials({ clusterSecret: step });
      if (step.length === 1) {
        await waitFor('every node to close the connections the old secret proved', () => loggers.every((r) => r.has(retired)), 15_000);
      }
      const { index } = await appendSurely(`during ${step.length}`);
      await waitFor('every node to apply it', () => logs.every((l) => l.status().applied >= index), 15_000);
      if (step.length > 1) expect(loggers.some((r) => r.has(retired))).toBe(false);
    }

    // Node 3 comes back knowing only the new secret: its new connections are the test.
    const follower = logs.find((l) => l.status().role !== 'leader')!;
    const id = follower.status().id;
    await follower.close();
    const back = await open(id, NEW);
    logs[id - 1] = back;
    const last = await appendSurely('after');
    await waitFor('the restarted node to apply the entry appended after it came back', () => back.status().applied >= last.index, 15_000);

    // And a node that kept only the old secret is refused.
    await back.close();
    const refusals = new RecordingLogger();
    const stale = await open(id, OLD, refusals);
    logs[id - 1] = stale;
    await waitFor('the node with the old secret to be refused', () => refusals.has(/TRANSPORT_AUTH_FAILED|not authenticated/), 15_000);
    const after = await appendSurely('still without it');
    expect(stale.status().applied).toBeLessThan(after.index);
  });
});
