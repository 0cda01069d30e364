/// <reference lib="dom" />
// The status page in a real browser (headless Chromium, the Debian package that
// .ci/run installs): it renders the members of a 3-node cluster with the leader
// highlighted, follows a leadership transfer, and asks for the token it was given.
import { existsSync } from 'node:fs';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { serveAdmin, type AdminServer } from '../../src/admin/index.js';
import { isRemoved, removalReason } from '../../src/admin/removal.js';
import type { LogStatus } from '../../src/log/index.js';
import { ReplicatedLog } from '../../src/log/replicated-log.js';
import { appendSurely, enc, freePorts, tempDir } from '../log/helpers.js';

const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';

let browser: Browser;
beforeAll(async () => {
  // Not skipped when missing: the browser is part of the test set-up, and a missing one is a failure to see.
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: .ci/run installs it (Debian package chromium)`);
  browser = await puppeteer.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
}, 60_000);
afterAll(async () => {
  await browser?.close();
});

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** The rows the page shows: member id, role, and whether the row is highlighted as the leader. */
async function rows(page: Page): Promise<Array<{ id: number; role: string; leader: boolean }>> {
  return page.$$eval('#members tr', (trs) =>
    trs.map((tr) => ({ id: Number(tr.children[0]!.textContent), role: tr.children[2]!.textContent ?? '', leader: tr.classList.contains('leader') })),
  );
}

describe('the status page', () => {
  it('shows the members with the leader highlighted, and follows a leadership transfer', async () => {
    const ports = await freePorts(3);
    const peers = { 1: `127.0.0.1:${ports[0]}`, 2: `127.0.0.1:${ports[1]}`, 3: `127.0.0.1:${ports[2]}` };
    const logs: ReplicatedLog[] = [];
    const admins: AdminServer[] = [];
    for (const id of [1, 2, 3]) {
      const t = tempDir();
      cleanups.push(t.cleanup);
      const log = await ReplicatedLog.open({
        dataDir: t.dir,
        id,
        peers,
        clusterSecret: 'the status page test secret',
        tickMs: 10,
        electionTicks: 40,
        heartbeatTicks: 2,
      });
      cleanups.push(() => log.close());
      logs.push(log);
      const admin = await serveAdmin({ log, address: '127.0.0.1:0', ...(id === 1 ? { token: 'page-token' } : {}) });
      cleanups.push(() => admin.close());
      admins.push(admin);
    }
    for (let i = 0; i < 20; i++) await appendSurely(logs, enc(`r${i}`));
    const leader = logs.find((l) => l.status().role === 'leader')!;

    // The leader's own page: it knows every member's progress.
    const page = await browser.newPage();
    cleanups.push(() => page.close());
    const at = admins[leader.status().id - 1]!;
    await page.goto(`http://${at.address}/${leader.status().id === 1 ? '#token=page-token' : ''}`);
    await page.waitForFunction(() => document.querySelectorAll('#members tr').length === 3, { timeout: 15_000 });
    const before = await rows(page);
    expect(before.map((r) => r.id)).toEqual([1, 2, 3]);
    expect(before.filter((r) => r.leader).map((r) => r.id)).toEqual([leader.status().id]);
    expect(before.filter((r) => !r.leader).map((r) => r.role)).toEqual(['follower', 'follower']);
    if (process.env.SCREENSHOT !== undefined) {
      // For the picture in docs/: some seconds of writes, so the charts have a line to draw.
      const until = Date.now() + 8_000;
      while (Date.now() < until) await Promise.all(Array.from({ length: 50 }, (_, i) => appendSurely(logs, enc(`s${i}`))));
      await page.screenshot({ path: process.env.SCREENSHOT });
    }

    const target = before.find((r) => !r.leader)!.id;
    await leader.transferLeadership(target);
    expect(logs[target - 1]!.status().role).toBe('leader');
    await page.waitForFunction((id) => document.querySelector('#members tr.leader td')?.textContent === String(id), { timeout: 15_000 }, target);
    const after = await rows(page);
    expect(after.filter((r) => r.leader).map((r) => r.id)).toEqual([target]);
  });

  it("shows this node's health as /health answers it: knowing a leader is not serving a linearizable read", async () => {
    const t = tempDir();
    cleanups.push(t.cleanup);
    const log = await ReplicatedLog.open({ dataDir: t.dir });
    cleanups.push(() => log.close());
    // A node that names a leader but whose linearizable reads never come back (a follower the
    // leader cannot hear, say): /health answers 503 TIMEOUT after its 2 s.
    const stale = {
      status: () => ({ ...log.status(), role: 'follower', lead: 2 }),
      metrics: () => log.metrics(),
      barrier: () => new Promise<void>(() => undefined),
    } as unknown as ReplicatedLog;
    const admin = await serveAdmin({ log: stale, address: '127.0.0.1:0' });
    cleanups.push(() => admin.close());
    const page = await browser.newPage();
    cleanups.push(() => page.close());
    await page.goto(`http://${admin.address}/`);
    await page.waitForFunction(() => document.querySelectorAll('#members tr').length === 1, { timeout: 15_000 });
    const cell = (): Promise<{ text: string; cls: string }> =>
      page.$eval('#members tr td:last-child', (td) => ({ text: td.textContent ?? '', cls: td.className }));
    await page.waitForFunction(() => document.querySelector('#members tr td:last-child')?.textContent !== '', { timeout: 15_000 });
    expect(await cell()).toMatchObject({ text: expect.stringMatching(/TIMEOUT/), cls: 'bad' });

    // The same page on a node that serves such reads says so.
    const healthy = await serveAdmin({ log, address: '127.0.0.1:0' });
    cleanups.push(() => healthy.close());
    await page.goto(`http://${healthy.address}/`);
    await page.waitForFunction(() => document.querySelector('#members tr td:last-child')?.textContent === 'healthy', { timeout: 15_000 });
    expect(await cell()).toEqual({ text: 'healthy', cls: 'ok' });
  });

  it('says plainly that this node was removed from the cluster, and what to do, rather than show its stale view as the cluster', async () => {
    const t = tempDir();
    cleanups.push(t.cleanup);
    const log = await ReplicatedLog.open({ dataDir: t.dir });
    cleanups.push(() => log.close());
    const members = { 1: '127.0.0.1:7101', 2: '127.0.0.1:7102', 3: '127.0.0.1:7103' };
    // Cut off when its removal committed: still in the configuration it applied, naming the
    // leader it last heard, and refused by node 2, which applied the change.
    const removed = {
      status: () => ({ ...log.status(), role: 'follower', lead: 2, members, conf: { voters: [1, 2, 3], learners: [] }, removedBy: 2 }),
      metrics: () => log.metrics(),
      barrier: () => new Promise<void>(() => undefined),
    } as unknown as ReplicatedLog;
    const admin = await serveAdmin({ log: removed, address: '127.0.0.1:0' });
    cleanups.push(() => admin.close());
    const page = await browser.newPage();
    cleanups.push(() => page.close());
    await page.goto(`http://${admin.address}/`);
    await page.waitForFunction(() => document.querySelectorAll('#members tr').length === 3, { timeout: 15_000 });
    const banner = await page.$eval('#removed', (d) => ({ hidden: (d as HTMLElement).hidden, text: d.textContent ?? '' }));
    expect(banner.hidden).toBe(false);
    expect(banner.text).toMatch(/removed from the cluster \(node 2 refuses it as removed\)/);
    expect(banner.text).toMatch(/Stop it, or add it back: raftlog member add 1 127\.0\.0\.1:7101/);
    expect(await page.$eval('#summary', (d) => d.textContent ?? '')).toMatch(/^role removed · term \d+ · leader unknown/);
    // The leader it last heard is not highlighted as the cluster's, and its own row says removed.
    expect(await rows(page)).toEqual([
      { id: 1, role: 'removed', leader: false },
      { id: 2, role: 'voter', leader: false },
      { id: 3, role: 'voter', leader: false },
    ]);

    // A member's page shows no such banner.
    const member = await serveAdmin({ log, address: '127.0.0.1:0' });
    cleanups.push(() => member.close());
    await page.goto(`http://${member.address}/`);
    await page.waitForFunction(() => document.querySelectorAll('#members tr').length === 1, { timeout: 15_000 });
    expect(await page.$eval('#removed', (d) => (d as HTMLElement).hidden)).toBe(true);
  });

  it("tells a removed node, and why it is one, as the endpoint's isRemoved and removalReason do, on the same statuses", async () => {
    const t = tempDir();
    cleanups.push(t.cleanup);
    const log = await ReplicatedLog.open({ dataDir: t.dir });
    cleanups.push(() => log.close());
    const admin = await serveAdmin({ log, address: '127.0.0.1:0' });
    cleanups.push(() => admin.close());
    const page = await browser.newPage();
    cleanups.push(() => page.close());
    await page.goto(`http://${admin.address}/`);
    await page.waitForFunction(() => typeof (window as unknown as { isRemoved?: unknown }).isRemoved === 'function', { timeout: 15_000 });
    type Case = Pick<LogStatus, 'id' | 'conf' | 'removedBy'>;
    const cases: Case[] = [];
    const confs: Array<LogStatus['conf']> = [
      { voters: [], learners: [] },
      { voters: [1, 2, 3], learners: [] },
      { voters: [2, 3], learners: [] },
      { voters: [2, 3], learners: [1] },
      { voters: [2, 3], learners: [], learnersNext: [1] },
      { voters: [2, 3], learners: [], votersOutgoing: [1, 2, 3] },
      { voters: [1, 2], learners: [], votersOutgoing: [2, 3] },
      { voters: [2, 3], learners: [4], votersOutgoing: [2, 3, 4], learnersNext: [5] },
    ];
    for (const conf of confs) for (const removedBy of [undefined, 2]) cases.push({ id: 1, conf, ...(removedBy === undefined ? {} : { removedBy }) });
    const onPage = await page.evaluate((cs) => cs.map((c) => (window as unknown as { isRemoved: (s: unknown) => boolean }).isRemoved(c)), cases);
    const shared = cases.map((c) => isRemoved(c));
    // Both answers occur, so the comparison can tell the two apart.
    expect(new Set(shared)).toEqual(new Set([true, false]));
    expect(onPage).toEqual(shared);
    // Why, for each removed one: the page's banner and the CLI's lines say it in the same words.
    const removed = cases.filter((c) => isRemoved(c));
    const reasonsOnPage = await page.evaluate(
      (cs) => cs.map((c) => (window as unknown as { removalReason: (s: unknown) => string }).removalReason(c)),
      removed,
    );
    const reasons = removed.map((c) => removalReason(c));
    expect(new Set(reasons).size).toBeGreaterThan(1);
    expect(reasonsOnPage).toEqual(reasons);
  });

  it('a token-protected endpoint serves the page, and its data only with the token', async () => {
    const t = tempDir();
    cleanups.push(t.cleanup);
    const log = await ReplicatedLog.open({ dataDir: t.dir });
    cleanups.push(() => log.close());
    const admin = await serveAdmin({ log, address: '127.0.0.1:0', token: 'secret-token' });
    cleanups.push(() => admin.close());
    const page = await browser.newPage();
    cleanups.push(() => page.close());
    await page.goto(`http://${admin.address}/`);
    await page.waitForFunction(() => /does not answer.*401/.test(document.getElementById('error')?.textContent ?? ''), { timeout: 15_000 });
    expect(await rows(page)).toEqual([]);
    await page.goto(`http://${admin.address}/#token=secret-token`);
    await page.reload();
    await page.waitForFunction(() => document.querySelectorAll('#members tr').length === 1, { timeout: 15_000 });
    expect(await rows(page)).toEqual([{ id: 1, role: 'leader', leader: true }]);
  });

  it('is served with a content-security policy its own script and style pass, and refuses to be framed', async () => {
    const t = tempDir();
    cleanups.push(t.cleanup);
    const log = await ReplicatedLog.open({ dataDir: t.dir });
    cleanups.push(() => log.close());
    const admin = await serveAdmin({ log, address: '127.0.0.1:0' });
    cleanups.push(() => admin.close());
    const res = await fetch(`http://${admin.address}/`);
    await res.text();
    expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.headers.get('x-frame-options')).toBe('DENY');
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toMatch(/default-src 'none'/);
    expect(csp).toMatch(/frame-ancestors 'none'/);
    const page = await browser.newPage();
    cleanups.push(() => page.close());
    const refused: string[] = [];
    page.on('console', (m) => {
      if (/Content Security Policy/i.test(m.text())) refused.push(m.text());
    });
    await page.goto(`http://${admin.address}/`);
    await page.waitForFunction(() => document.querySelectorAll('#members tr').length === 1, { timeout: 15_000 });
    expect(refused).toEqual([]);
  });

  it('measures rates by a monotonic clock: a wall clock that stands still draws commits/s, not Infinity', async () => {
    const t = tempDir();
    cleanups.push(t.cleanup);
    const log = await ReplicatedLog.open({ dataDir: t.dir });
    cleanups.push(() => log.close());
    const admin = await serveAdmin({ log, address: '127.0.0.1:0' });
    cleanups.push(() => admin.close());
    const page = await browser.newPage();
    cleanups.push(() => page.close());
    // A wall clock stepped back (NTP, a VM resumed) gives the same or an earlier time a second later.
    await page.evaluateOnNewDocument(() => {
      const frozen = Date.now();
      Date.now = () => frozen;
    });
    await page.goto(`http://${admin.address}/`);
    const shown = (): Promise<string> => page.$eval('#commits-now', (d) => d.textContent ?? '');
    let text = '';
    let appended = 0;
    for (const until = performance.now() + 30_000; performance.now() < until;) {
      await log.append(enc(`r${appended++}`));
      text = await shown();
      if (text !== '' && !/^0 now$/.test(text)) break;
    }
    expect(text).toMatch(/^[1-9]\d* now$/);
  }, 60_000);
});
