/**
 * Part 4: Redis commands per waiter per minute while waiting, long-poll against polling (INFO
 * deltas; the holder's renewals measured alone in the same run and subtracted).
 */
import type { Redis } from "ioredis";
import {
  type CommandCounters,
  commandCounters,
  commandsBetween,
  round,
  type Service,
  sleep,
} from "../lib.js";
import { type Client, newClient, newToken, now, post, sleepUntil, waitFor } from "./client.js";
import {
  ARRIVAL_GAP_MS,
  CMD_WAITERS,
  CMD_WINDOW_MS,
  HOLDER_TTL_MS,
  MAX_WAIT_MS,
  POLL_JITTER,
  POLL_MS,
  PROBE_ASKS,
  PROBE_WAIT_MS,
  queueKeyOf,
  RENEW_EVERY_MS,
  SERVERS,
  TTL_MS,
} from "./settings.js";

export interface Window {
  label: string;
  durationMs: number;
  /** total_commands_processed growth, our INFO subtracted. */
  executed: number;
  /** EVAL/EVALSHA calls: commands the servers sent (round trips). */
  scripts: number;
  byCommand: Record<string, number>;
  /** Holder renewals that ran inside the window. */
  renewals: number;
  /** A renewal that straddled a window edge makes the subtraction approximate. */
  straddled: boolean;
}

export interface PerWaiter {
  executedPerMin: number;
  scriptsPerMin: number;
}

export interface CommandResult {
  waiters: number;
  windowMs: number;
  renewEveryMs: number;
  holderAlone: Window;
  perRenewal: { executed: number; scripts: number };
  queuedJoin: Window & { perWaiter: { executed: number; scripts: number } };
  queuedWaiting: Window & { perWaiter: PerWaiter; nonWaitingAnswers: number };
  /** Cost of one long-poll request that ends in 409 (join/refresh + the check at its deadline). */
  askCycle: Window & {
    asks: number;
    /** Each request: its duration, status, and the acquire scripts / commands it cost. */
    requests: AskSample[];
    perAsk: { executed: number; scripts: number };
  };
  /** Waiting + one ask cycle per 55 s: what a waiter costs per minute in steady state. */
  queuedSteadyPerWaiter: PerWaiter;
  polling: Window & { perWaiter: PerWaiter; pollsPerWaiterPerMin: number };
  /** polling ÷ queued steady state. */
  ratio: { executed: number; scripts: number };
}

type Renewal = { sentAt: number; doneAt: number; status: number };
type AskSample = { ms: number; status: number; scripts: number; executed: number };

function windowOf(
  label: string,
  before: CommandCounters,
  after: CommandCounters,
  startedAt: number,
  endedAt: number,
  renewals: Renewal[],
  /** Commands the bench itself sent in the window besides the INFO that took `before`. */
  own: Record<string, number> = {},
): Window {
  const { executed, byCommand } = commandsBetween(before, after, own);
  const scripts = Object.entries(byCommand)
    .filter(([name]) => name === "eval" || name === "evalsha")
    .reduce((s, [, n]) => s + n, 0);
  const inside = renewals.filter((r) => r.sentAt >= startedAt && r.sentAt < endedAt).length;
  const straddled = renewals.some(
    (r) => (r.sentAt < startedAt && r.doneAt > startedAt) || (r.sentAt < endedAt && r.doneAt > endedAt),
  );
  return {
    label,
    durationMs: Math.round(endedAt - startedAt),
    executed,
    scripts,
    byCommand,
    renewals: inside,
    straddled,
  };
}

export async function countCommands(servers: Service[], redis: Redis): Promise<CommandResult> {
  const key = "cmd-waiting";
  const base = (i: number) => (servers[i % SERVERS] as Service).url;
  const acquirePath = `/infra/locks/${key}/acquire`;
  const holderToken = newToken();
  const held = await post(base(0), acquirePath, { ttl_ms: HOLDER_TTL_MS, token: holderToken });
  if (held.status !== 200) throw new Error(`holder acquire → ${held.status} ${JSON.stringify(held.body)}`);
  const t0 = held.doneAt;
  const at = (s: number) => t0 + s * 1000;

  // The holder renews every 20 s (at t0 + 20, 40, 60, …), from the bench; the renewal at t0 loads the
  // RENEW script (EVALSHA → NOSCRIPT → EVAL) before any window, so that every measured renewal costs the same.
  const renewals: Renewal[] = [];
  const stopRenewing = new AbortController();
  const renewing = (async () => {
    for (let k = 0; k <= 10; k++) {
      await sleepUntil(t0 + k * RENEW_EVERY_MS, stopRenewing.signal);
      if (stopRenewing.signal.aborted) return;
      const r = await post(base(0), `/infra/locks/${key}/renew`, {
        token: holderToken,
        ttl_ms: HOLDER_TTL_MS,
      });
      renewals.push({ sentAt: r.sentAt, doneAt: r.doneAt, status: r.status });
    }
  })();
  const measure = async (label: string, from: number, to: number, during?: () => Promise<void>) => {
    await sleepUntil(from);
    const startedAt = now();
    const before = await commandCounters(redis);
    if (during) await during();
    await sleepUntil(to);
    const after = await commandCounters(redis);
    return windowOf(label, before, after, startedAt, now(), renewals);
  };

  const waiters: Client[] = [];
  const stopWaiting = new AbortController();
  const waiting: Array<Promise<void>> = [];
  let nonWaitingAnswers = 0;
  try {
    // A: the holder alone, one renewal (t0 + 20 s) inside [t0 + 5, t0 + 35].
    console.log("  commands: holder alone (30 s)…");
    const holderAlone = await measure("holder alone", at(5), at(5) + CMD_WINDOW_MS);
    const perRenewal = {
      executed: holderAlone.renewals ? holderAlone.executed / holderAlone.renewals : 0,
      scripts: holderAlone.renewals ? holderAlone.scripts / holderAlone.renewals : 0,
    };
    const net = (w: Window) => ({
      executed: w.executed - w.renewals * perRenewal.executed,
      scripts: w.scripts - w.renewals * perRenewal.scripts,
    });
    const perMinute = (w: Window, count: number): PerWaiter => {
      const n = net(w);
      return {
        executedPerMin: round((n.executed / count) * (60_000 / w.durationMs)),
        scriptsPerMin: round((n.scripts / count) * (60_000 / w.durationMs)),
      };
    };

    // B: W long-polling waiters join (t0 + 41 s, after the renewal at 40 s), then wait 30 s.
    console.log(`  commands: ${CMD_WAITERS} long-polling waiters (30 s)…`);
    const queueKey = queueKeyOf(key);
    await sleepUntil(at(41));
    const joinBefore = await commandCounters(redis);
    const joinStartedAt = now();
    for (let i = 0; i < CMD_WAITERS; i++) {
      const c = newClient(i);
      waiters.push(c);
      waiting.push(
        post(
          base(i),
          acquirePath,
          { ttl_ms: TTL_MS, token: c.token, wait_ms: MAX_WAIT_MS },
          stopWaiting.signal,
        )
          .then(() => {
            nonWaitingAnswers++; // nothing should answer before we stop waiting
          })
          .catch(() => {}),
      );
      await sleep(ARRIVAL_GAP_MS);
    }
    let zcards = 0;
    await waitFor(async () => {
      zcards++;
      return (await redis.zcard(queueKey)) >= CMD_WAITERS;
    }, 5_000);
    const joinAfter = await commandCounters(redis);
    const joinWindow = windowOf("join", joinBefore, joinAfter, joinStartedAt, now(), renewals, {
      zcard: zcards,
    });
    const queuedJoin = {
      ...joinWindow,
      perWaiter: {
        executed: round(net(joinWindow).executed / CMD_WAITERS),
        scripts: round(net(joinWindow).scripts / CMD_WAITERS),
      },
    };
    const waitingWindow = await measure("long-polling waiters", at(45), at(45) + CMD_WINDOW_MS);
    const queuedWaiting = {
      ...waitingWindow,
      perWaiter: perMinute(waitingWindow, CMD_WAITERS),
      nonWaitingAnswers,
    };
    stopWaiting.abort(); // the server leaves the queue for an aborted request; /leave to be sure
    await Promise.all(waiting);
    await Promise.all(
      waiters.map((c) =>
        post(base(c.index), `/infra/locks/${key}/leave`, { token: c.token }).catch(() => {}),
      ),
    );

    // The cost of one long-poll request that ends in 409: one probe, wait_ms 1000, same key.
    console.log(
      `  commands: cost of a long-poll request that ends in 409 (${PROBE_ASKS} × ${PROBE_WAIT_MS} ms)…`,
    );
    const probeToken = newToken();
    const probeAsk = () =>
      post(base(1), acquirePath, { ttl_ms: TTL_MS, token: probeToken, wait_ms: PROBE_WAIT_MS });
    const joined = await probeAsk();
    if (joined.status !== 409)
      throw new Error(`probe join → ${joined.status} ${JSON.stringify(joined.body)}`);
    // One INFO reading between requests: the acquire scripts each request ran, renewals subtracted.
    let probeAnswers = 0;
    const requests: AskSample[] = [];
    const probeStartedAt = now();
    const probeFirst = await commandCounters(redis);
    let previous = probeFirst;
    for (let i = 0; i < PROBE_ASKS; i++) {
      const startedAt = now();
      const r = await probeAsk();
      if (r.status === 409) probeAnswers++;
      const after = await commandCounters(redis);
      const w = windowOf("ask", previous, after, startedAt, now(), renewals);
      requests.push({
        ms: Math.round(r.doneAt - r.sentAt),
        status: r.status,
        scripts: w.scripts - w.renewals * perRenewal.scripts,
        executed: w.executed - w.renewals * perRenewal.executed,
      });
      previous = after;
    }
    const probeWindow = windowOf("ask cycle", probeFirst, previous, probeStartedAt, now(), renewals, {
      info: PROBE_ASKS - 1,
    });
    await post(base(1), `/infra/locks/${key}/leave`, { token: probeToken });
    const askCycle = {
      ...probeWindow,
      asks: probeAnswers,
      requests,
      perAsk: {
        executed: round(net(probeWindow).executed / PROBE_ASKS),
        scripts: round(net(probeWindow).scripts / PROBE_ASKS),
      },
    };
    // Steady state: a long-polling waiter asks once per MAX_WAIT_MS.
    const asksPerMin = 60_000 / MAX_WAIT_MS;
    const queuedSteadyPerWaiter: PerWaiter = {
      executedPerMin: round(queuedWaiting.perWaiter.executedPerMin + askCycle.perAsk.executed * asksPerMin),
      scriptsPerMin: round(queuedWaiting.perWaiter.scriptsPerMin + askCycle.perAsk.scripts * asksPerMin),
    };

    // C: W polling clients (start at t0 + 101 s, after the renewal at 100 s), window [t0 + 105, t0 + 135].
    console.log(`  commands: ${CMD_WAITERS} polling clients (30 s)…`);
    await sleepUntil(at(101));
    const stopPolling = new AbortController();
    const polls: number[] = [];
    const polling: Array<Promise<void>> = [];
    for (let i = 0; i < CMD_WAITERS; i++) {
      const token = newToken();
      polling.push(
        (async () => {
          for (let p = 0; p < 200 && !stopPolling.signal.aborted; p++) {
            if (p > 0) {
              await sleepUntil(
                now() + POLL_MS * (1 + (Math.random() * 2 - 1) * POLL_JITTER),
                stopPolling.signal,
              );
            }
            if (stopPolling.signal.aborted) return;
            const r = await post(base(i), acquirePath, { ttl_ms: TTL_MS, token }, stopPolling.signal);
            polls.push(r.sentAt);
            if (r.status !== 409) nonWaitingAnswers++;
          }
        })().catch(() => {}),
      );
      await sleep(ARRIVAL_GAP_MS);
    }
    const startC = at(105);
    const pollWindow = await measure("polling clients", startC, startC + CMD_WINDOW_MS);
    stopPolling.abort();
    await Promise.all(polling);
    const endC = startC + pollWindow.durationMs;
    const pollsInside = polls.filter((t) => t >= startC && t <= endC).length;
    const pollingResult = {
      ...pollWindow,
      perWaiter: perMinute(pollWindow, CMD_WAITERS),
      pollsPerWaiterPerMin: round((pollsInside / CMD_WAITERS) * (60_000 / pollWindow.durationMs)),
    };
    if (nonWaitingAnswers) console.log(`  WARNING: ${nonWaitingAnswers} answers other than 409 while held`);

    return {
      waiters: CMD_WAITERS,
      windowMs: CMD_WINDOW_MS,
      renewEveryMs: RENEW_EVERY_MS,
      holderAlone,
      perRenewal: { executed: round(perRenewal.executed), scripts: round(perRenewal.scripts) },
      queuedJoin,
      queuedWaiting,
      askCycle,
      queuedSteadyPerWaiter,
      polling: pollingResult,
      ratio: {
        executed: round(pollingResult.perWaiter.executedPerMin / queuedSteadyPerWaiter.executedPerMin),
        scripts: round(pollingResult.perWaiter.scriptsPerMin / queuedSteadyPerWaiter.scriptsPerMin),
      },
    };
  } finally {
    stopWaiting.abort();
    stopRenewing.abort();
    await Promise.all(waiting);
    await renewing.catch(() => {});
    await post(base(0), `/infra/locks/${key}/release`, { token: holderToken }).catch(() => {});
  }
}
