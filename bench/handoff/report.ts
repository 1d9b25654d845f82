/** The handoff benchmark's report: what bench/handoff-results.json holds, and the text printed. */
import { join } from "node:path";
import { benchDir, type MachineInfo, SERVER_ENTRY } from "../lib.js";
import type { Series } from "./chains.js";
import type { CommandResult, Window } from "./commands.js";
import { HOLDER_TTL_MS, MAX_WAIT_MS, type Mode, PROBE_ASKS } from "./settings.js";

export const resultsFile = join(benchDir, "handoff-results.json");

export interface Report {
  machine: MachineInfo & {
    redis: string;
    servers: number;
    coresBusyBefore: number | null;
    /** All processes on the machine, averaged over parts 1–3. */
    coresBusyDuringHandoffs: number | null;
  };
  settings: {
    waitMs: number;
    ttlMs: number;
    holdMs: number;
    arrivalGapMs: number;
    pollMs: number;
    pollJitter: number;
    rounds: Record<Mode, Record<string, number>>;
  };
  handoff: Series[];
  ratios: Array<{ waiters: number; p50: number; p99: number }>;
  commands: CommandResult;
  http: { requests: number; maxConcurrent: number; retried: number; retriedSamples: string[] };
  durationS: number;
  warnings: string[];
}

export const fmt = (n: number, digits = 1) => (Number.isFinite(n) ? n.toFixed(digits) : "n/a");
const pad = (s: string | number, width: number) => String(s).padEnd(width);
const padL = (s: string | number, width: number) => String(s).padStart(width);

export function render(r: Report): string {
  const m = r.machine;
  const c = r.commands;
  const line = (s: Series) => {
    const h = s.handoffMs;
    return (
      `  ${pad(s.mode, 8)}${padL(s.waiters, 4)} ${padL(`${s.rounds}×`, 4)} ${padL(`${s.granted}/${s.expectedGrants}`, 8)}` +
      `${padL(fmt(h.p50), 9)}${padL(fmt(h.p99), 9)}${padL(fmt(h.max), 9)}${padL(fmt(h.min), 9)}` +
      `${padL(fmt(s.handoffFromReleaseSentMs.p50), 10)}${padL(s.grantBeforeReleaseResponse, 7)}${padL(s.slowHandoffs, 7)}` +
      `${padL(s.overlaps, 6)}${padL(s.fenceViolations + s.acquiredAtViolations, 6)}`
    );
  };
  const fair = (s: Series) =>
    `  ${pad(s.mode, 8)}${padL(s.waiters, 4)}${padL(s.fairness.outOfOrderGrants, 12)}${padL(s.fairness.inversions, 12)}` +
    `${padL(s.fairness.maxDisplacement, 10)}${padL(s.fairness.queueOrderMismatches ?? "-", 10)}` +
    `${padL(s.fairness.outOfQueueOrderGrants ?? "-", 10)}` +
    `${padL(fmt(s.waitMs.min), 10)}${padL(fmt(s.waitMs.p50), 10)}${padL(fmt(s.waitMs.max), 10)}` +
    `${padL(fmt(s.requestsPerWaiter, 2), 10)}${padL(s.conflicts, 8)}`;
  const win = (w: Window) =>
    `${w.durationMs} ms, ${w.renewals} renewal(s) inside, executed ${w.executed} (${w.scripts} scripts) ` +
    Object.entries(w.byCommand)
      .map(([k, n]) => `${k}×${n}`)
      .join(" ");
  const ordered = [...r.handoff].sort((a, b) => a.waiters - b.waiters || a.mode.localeCompare(b.mode));
  const conn = r.handoff
    .filter((s) => s.connections)
    .map((s) => `${s.mode} N=${s.waiters}: ${s.connections?.map((n) => n ?? "n/a").join(" + ")}`)
    .join("; ");
  return [
    "",
    "=== LSS handoff benchmark: server-side FIFO waiting vs polling ===",
    `machine   node ${m.node}, ${m.platform}, ${m.cores} cores (${m.cpuModel}), ${m.redis}`,
    `          ${m.servers} server processes (${SERVER_ENTRY}) on one redis-server; client i → server i % 2; bench, servers`,
    `          and redis share the cores; machine cores busy before ${m.coresBusyBefore ?? "n/a"}, during parts 1–3 ${m.coresBusyDuringHandoffs ?? "n/a"}`,
    `settings  wait_ms ${r.settings.waitMs}, hold ${r.settings.holdMs} ms, arrivals ${r.settings.arrivalGapMs} ms apart, polling every ${r.settings.pollMs} ms ± ${r.settings.pollJitter * 100} %`,
    "",
    "1+3. Handoff latency, ms: grant response − previous release response (bench clock, performance.now())",
    "     'from sent' = grant − previous release SENT; 'early' = grant arrived before the release's own response;",
    "     'slow' = handoffs ≥ 500 ms; 'fence' = fencing-token / acquired_at order violations",
    "  mode       N  rnd   granted      p50      p99      max      min  from sent  early   slow  ovlp fence",
    ...ordered.map(line),
    "",
    "     ratio queued/polling   " +
      r.ratios.map((x) => `N=${x.waiters}: p50 ${fmt(x.p50, 3)}, p99 ${fmt(x.p99, 3)}`).join("   "),
    "",
    "2. Fairness: grant order vs arrival order; waits from arrival to grant (ms)",
    "     'out of order' = waiters granted at a place other than their arrival place; 'queue≠arrival' = rounds where",
    "     Redis's queue (read before the release) was not in arrival order; '≠queue' = grants at a place other than",
    "     their place in Redis's queue (a server-side FIFO violation); requests/waiter and 409s over the run",
    "  mode       N out of order  inversions  max displ queue≠arr    ≠queue  wait min  wait p50  wait max  req/waitr    409s",
    ...ordered.map(fair),
    `   connections to the servers while 100 waited (/proc/net/tcp, server side): ${conn || "n/a"}`,
    `   bench HTTP: ${r.http.requests} requests, at most ${r.http.maxConcurrent} in flight, ${r.http.retried} retried after a network error`,
    "",
    `4. Redis commands per waiter per minute while waiting (${c.waiters} waiters, key held, holder renews every ${c.renewEveryMs / 1000} s`,
    `   with ttl ${HOLDER_TTL_MS} from the bench; INFO deltas, our INFO and ZCARD subtracted; executed = total_commands_processed,`,
    "   which counts the commands inside Lua scripts too; scripts = EVALSHA/EVAL = round trips)",
    `   holder alone         ${win(c.holderAlone)}`,
    `                        → per renewal: ${fmt(c.perRenewal.executed, 2)} executed, ${fmt(c.perRenewal.scripts, 2)} scripts`,
    `   joining (once)       ${win(c.queuedJoin)}`,
    `                        → per waiter: ${fmt(c.queuedJoin.perWaiter.executed, 2)} executed, ${fmt(c.queuedJoin.perWaiter.scripts, 2)} scripts`,
    `   long-poll, waiting   ${win(c.queuedWaiting)}`,
    `                        → per waiter per minute: ${fmt(c.queuedWaiting.perWaiter.executedPerMin, 2)} executed, ${fmt(c.queuedWaiting.perWaiter.scriptsPerMin, 2)} scripts (no re-ask falls in this window)`,
    `   long-poll ask cycle  ${win(c.askCycle)}`,
    `                        → per request that ends in 409: ${fmt(c.askCycle.perAsk.executed, 2)} executed, ${fmt(c.askCycle.perAsk.scripts, 2)} scripts (${c.askCycle.asks}/${PROBE_ASKS} ended in 409)`,
    `                        acquire scripts per request: ${c.askCycle.requests.map((q) => q.scripts).join(" ")}` +
      ` (request durations ${c.askCycle.requests.map((q) => q.ms).join(" ")} ms)`,
    `   LONG-POLL steady     per waiter per minute: ${fmt(c.queuedSteadyPerWaiter.executedPerMin, 2)} executed, ${fmt(c.queuedSteadyPerWaiter.scriptsPerMin, 2)} scripts`,
    `                        (waiting + one request per ${MAX_WAIT_MS / 1000} s)`,
    `   polling (1 s ±20 %)  ${win(c.polling)}`,
    `   POLLING              per waiter per minute: ${fmt(c.polling.perWaiter.executedPerMin, 2)} executed, ${fmt(c.polling.perWaiter.scriptsPerMin, 2)} scripts (${fmt(c.polling.pollsPerWaiterPerMin, 1)} polls)`,
    `   RATIO polling/long-poll: executed ${fmt(c.ratio.executed, 1)}×, scripts ${fmt(c.ratio.scripts, 1)}×`,
    "",
    r.warnings.length ? `WARNINGS:\n${r.warnings.map((w) => `  - ${w}`).join("\n")}` : "warnings: none",
    `total ${r.durationS} s; written to ${resultsFile}`,
    "",
  ].join("\n");
}
