// The log's metrics() as Prometheus metrics, on a registry of the log's own (never the
// process-global one: two logs in one process must not collide). Every value is read
// when the registry is scraped, from one metrics() call per scrape.
import { Counter, Gauge, Registry } from 'prom-client';
import { FORWARDED_PROPOSAL_FAULTS } from '../log/forwarded-proposal.js';
import type { HistogramData, LogMetrics } from '../log/metrics.js';
import { OTHER_CODE, REFUSAL_CODES, UNPROVEN_CODE } from '../transport/errors.js';

export interface MetricsSource {
  metrics(): LogMetrics;
}

/** A prom-client metric whose buckets were counted elsewhere (by the log, or the WAL's writer thread). */
class CountedHistogram {
  readonly type = 'histogram';
  constructor(
    readonly name: string,
    readonly help: string,
    private readonly read: () => HistogramData | null,
  ) {}

  get(): {
    name: string;
    help: string;
    type: string;
    aggregator: string;
    values: Array<{ value: number; labels: Record<string, string | number>; metricName: string }>;
  } {
    const h = this.read();
    const values: Array<{ value: number; labels: Record<string, string | number>; metricName: string }> = [];
    if (h !== null) {
      let cumulative = 0;
      h.bounds.forEach((le, i) => {
        cumulative += h.counts[i] ?? 0;
        values.push({ metricName: `${this.name}_bucket`, labels: { le }, value: cumulative });
      });
      values.push({ metricName: `${this.name}_bucket`, labels: { le: '+Inf' }, value: h.count });
      values.push({ metricName: `${this.name}_sum`, labels: {}, value: h.sum });
      values.push({ metricName: `${this.name}_count`, labels: {}, value: h.count });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: 'sum', values };
  }
}

/**
 * Gauges and counters on `registry` whose values are read from `source`, called once per scrape
 * however many of them read it: prom-client runs every collect of a scrape in one synchronous
 * pass, so the figures are of one instant. Counters are kept by the source: prom-client's own is
 * reset and set to its total.
 */
function readers<T>(registry: Registry, source: () => T) {
  let cached: { v: T } | null = null;
  const m = (): T => {
    if (cached === null) {
      cached = { v: source() };
      queueMicrotask(() => (cached = null));
    }
    return cached.v;
  };
  return {
    m,
    gauge(name: string, help: string, read: (x: T) => number): void {
      new Gauge({
        name,
        help,
        registers: [registry],
        collect() {
          this.set(read(m()));
        },
      });
    },
    counter(name: string, help: string, read: (x: T) => number): void {
      new Counter({
        name,
        help,
        registers: [registry],
        collect() {
          this.reset();
          this.inc(read(m()));
        },
      });
    },
    // Label values come from the node's own codes only (a peer's are folded into OTHER where they
    // are counted), so each of these has a bounded set of series. Those in `known` are there at 0
    // from the start: a series that first appears at 1 shows no increase().
    byLabel(name: string, help: string, label: string, read: (x: T) => Record<string, number>, known: readonly string[] = []): void {
      new Counter({
        name,
        help,
        labelNames: [label],
        registers: [registry],
        collect() {
          this.reset();
          for (const value of known) this.inc({ [label]: value }, 0);
          for (const [value, v] of Object.entries(read(m()))) this.inc({ [label]: value }, v);
        },
      });
    },
  };
}

/** A registry whose metrics read `log` at each scrape. */
export function logRegistry(log: MetricsSource): Registry {
  const registry = new Registry();
  const { m, gauge, counter, byLabel } = readers(registry, () => log.metrics());
  const perPeer = (name: string, help: string, kind: 'gauge' | 'counter', read: (m: LogMetrics) => Record<number, number>): void => {
    const collect = function (this: Gauge<'peer'> | Counter<'peer'>): void {
      this.reset();
      for (const [peer, v] of Object.entries(read(m()))) {
        if (this instanceof Gauge) this.set({ peer }, v);
        else this.inc({ peer }, v);
      }
    };
    if (kind === 'gauge') new Gauge({ name, help, labelNames: ['peer'], registers: [registry], collect });
    else new Counter({ name, help, labelNames: ['peer'], registers: [registry], collect });
  };
  gauge('raftlog_term', 'The current Raft term on this node.', (x) => x.term);
  gauge('raftlog_commit_index', 'The highest log index this node knows to be committed.', (x) => x.commitIndex);
  gauge('raftlog_applied_index', 'The highest log index applied to the state machine on this node.', (x) => x.appliedIndex);
  gauge('raftlog_is_leader', '1 if this node is the leader, else 0.', (x) => (x.isLeader ? 1 : 0));
  gauge('raftlog_has_leader', '1 if this node knows a leader, else 0.', (x) => (x.hasLeader ? 1 : 0));
  gauge('raftlog_fatal', '1 once this node stopped after a failure (status role fatal): it serves nothing until reopened.', (x) => (x.fatal ? 1 : 0));
  counter('raftlog_leader_changes_total', 'Leaders this node came to know: a new leader, or the same one at a new term.', (x) => x.leaderChanges);
  counter('raftlog_proposals_committed_total', 'Appends on this node that committed.', (x) => x.proposalsCommitted);
  byLabel('raftlog_proposals_failed_total', 'Appends on this node that failed, by error code.', 'reason', (x) => x.proposalsFailed);
  byLabel(
    'raftlog_proposals_refused_total',
    'Proposals forwarded by peers that this node refused (PROPOSAL_REFUSED), by the fault found.',
    'reason',
    (x) => x.proposalsRefused,
    FORWARDED_PROPOSAL_FAULTS,
  );
  byLabel('raftlog_reads_refused_total', 'Read barriers refused at once on this node, by error code.', 'reason', (x) => x.readsRefused, ['OVERLOADED']);
  byLabel('raftlog_transport_refused_total', "Connections and frames refused for a peer's fault, by code.", 'code', (x) => x.transportRefused, REFUSAL_CODES);
  byLabel(
    'raftlog_transport_refused_by_peer_total',
    'Dials a peer refused, by its code (OTHER: not a transport code; UNPROVEN: sent before the peer proved itself).',
    'code',
    (x) => x.transportRefusedByPeers,
    [...REFUSAL_CODES, OTHER_CODE, UNPROVEN_CODE],
  );
  registry.registerMetric(new CountedHistogram('raftlog_append_duration_seconds', 'From append() to its result.', () => m().appendDuration) as never);
  registry.registerMetric(
    new CountedHistogram(
      'raftlog_wal_fsync_duration_seconds',
      'fdatasync of the WAL, timed where it runs (the writer thread, or inline).',
      () => m().walFsyncDuration,
    ) as never,
  );
  counter('raftlog_wal_bytes_written_total', 'Bytes written to WAL segments.', (x) => x.walBytesWritten);
  gauge('raftlog_wal_segments', 'WAL segment files on disk.', (x) => x.walSegments);
  gauge('raftlog_wal_cached_bytes', "Memory the WAL's cache of recent entries holds, as counted against its budget.", (x) => x.walCachedBytes);
  gauge('raftlog_wal_slab_bytes', 'Memory of the buffers the WAL packs writes into: in flight, cached, or kept for reuse.', (x) => x.walSlabBytes);
  counter('raftlog_snapshots_total', 'Snapshots this node took of its state machine.', (x) => x.snapshots);
  gauge('raftlog_snapshot_index', 'The index of the latest snapshot on this node, taken or installed.', (x) => x.snapshotIndex);
  gauge('raftlog_peers_connected', 'Peers this node has an open, authenticated connection to.', (x) => x.peersConnected);
  registry.registerMetric(
    new CountedHistogram('raftlog_snapshot_duration_seconds', 'From taking a snapshot to its file being durable.', () => m().snapshotDuration) as never,
  );
  perPeer('raftlog_peer_lag_entries', 'On the leader: entries each member is behind the leader.', 'gauge', (x) => x.peerLag);
  perPeer('raftlog_transport_bytes_sent_total', 'Bytes sent to each peer.', 'counter', (x) => x.transportBytesSent);
  perPeer('raftlog_transport_bytes_received_total', 'Bytes received from each peer.', 'counter', (x) => x.transportBytesReceived);
  return registry;
}

/** Adds raftlog_admin_refused_total{code}: requests and connections the admin endpoint refused, each of `codes` at 0 from the start. */
export function adminRefusalMetrics(registry: Registry, refused: () => Record<string, number>, codes: readonly string[]): void {
  readers(registry, refused).byLabel('raftlog_admin_refused_total', 'Requests and connections the admin endpoint refused, by code.', 'code', (x) => x, codes);
}

/** What /metrics shows of the node's RESP server (RespServerStats in raftlog/kv). */
export interface RespMetrics {
  clients: number;
  maxClients: number;
  /** Refused connections by code; every code the server refuses with is there from the start, at 0 until counted. */
  refusedBy: Record<string, number>;
  readsRefused: number;
  authFailures: number;
  idleClosed: number;
  evicted: number;
  dropped: number;
  pauses: number;
  paused: number;
  buffered: number;
  writeBuffered: number;
  maxInflight: number;
  maxWriteBuffered: number;
}

/** A RESP server beside the log: raftlog/kv's RespServer is one. The admin layer is below the kv one, so it names only what it reads. */
export interface RespMetricsSource {
  stats(): RespMetrics;
}

/** Adds the RESP server's raftlog_resp_* metrics, read from one stats() per scrape. */
export function respMetrics(registry: Registry, resp: RespMetricsSource): void {
  const { gauge, counter, byLabel } = readers(registry, () => resp.stats());
  gauge('raftlog_resp_clients', 'RESP clients connected.', (x) => x.clients);
  gauge('raftlog_resp_max_clients', 'RESP clients served at once at most (maxClients): the one past them is refused KV_MAX_CLIENTS.', (x) => x.maxClients);
  byLabel('raftlog_resp_refused_total', 'RESP connections refused, as they connect or at an AUTH, by code.', 'code', (x) => x.refusedBy);
  counter(
    'raftlog_resp_reads_refused_total',
    'RESP reads refused at once (KV_TOO_MANY_READS): maxPendingReads waited for a barrier already.',
    (x) => x.readsRefused,
  );
  counter('raftlog_resp_auth_failures_total', 'RESP AUTHs with a wrong password (or user).', (x) => x.authFailures);
  counter('raftlog_resp_idle_closed_total', 'RESP connections closed for idleness, or for not authenticating in time.', (x) => x.idleClosed);
  counter(
    'raftlog_resp_evicted_total',
    'RESP connections closed because clients together held more than maxBufferedBytes (KV_MAX_BUFFERED).',
    (x) => x.evicted,
  );
  counter(
    'raftlog_resp_dropped_commands_total',
    'RESP commands read whole that never started, their connection closed or ended first: none was proposed.',
    (x) => x.dropped,
  );
  counter('raftlog_resp_pauses_total', 'Times a RESP connection stopped being read for backpressure.', (x) => x.pauses);
  gauge('raftlog_resp_paused_clients', 'RESP connections not being read now.', (x) => x.paused);
  gauge('raftlog_resp_buffered_bytes', 'Bytes of RESP commands read and not started, over all connections (see maxBufferedBytes).', (x) => x.buffered);
  gauge('raftlog_resp_write_buffered_bytes', 'RESP reply bytes unsent, over all connections (see maxWriteBufferedBytes).', (x) => x.writeBuffered);
  gauge('raftlog_resp_max_inflight_commands', 'The most commands one RESP connection ever had awaiting replies.', (x) => x.maxInflight);
  gauge('raftlog_resp_max_write_buffered_bytes', 'The most reply bytes one RESP connection ever had unsent.', (x) => x.maxWriteBuffered);
}
