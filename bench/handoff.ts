/**
 * `npm run bench:handoff`: the fair FIFO queue with server-side waiting, against polling clients.
 *
 * One run, on a fresh redis-server and TWO server processes (server/node.ts), clients spread over
 * both (client i talks to server i % 2, so a handoff to the next client in line crosses servers):
 *
 *   1. Handoff latency (release → next waiter granted), with 1, 10 and 100 waiters: a holder takes the
 *      key, the waiters arrive in a known order 5 ms apart and long-poll (wait_ms 55000, own token,
 *      re-ask at once on 409); the holder releases and each waiter, once granted, holds 20 ms and
 *      releases. Handoff = grant response − previous release response (bench clock). Checks that no
 *      two grants overlap and that fencing tokens strictly increase.
 *   2. Fairness: grant order against arrival order, and the spread of waiting times.
 *   3. The same chain with polling clients (no wait_ms, an acquire every 1 s ± 20 %): the baseline.
 *   4. Redis commands per waiter per minute while waiting (INFO deltas; the holder's renewals, every
 *      20 s with ttl 60000, measured alone in the same run and subtracted), long-poll vs polling.
 *
 * Prints a report and writes bench/handoff-results.json. Talks to 127.0.0.1 only; cleans up every
 * child process and the redis-server on success, failure and Ctrl-C. Takes about 3 minutes.
 *
 * This file runs the parts and judges the figures; the parts are in bench/handoff/: settings.ts,
 * client.ts (HTTP and the bench's clock), chains.ts (parts 1–3), commands.ts (part 4), report.ts.
 */
import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { type RoundResult, runRound, type Series, summarize } from "./handoff/chains.js";
import { http, now } from "./handoff/client.js";
import { countCommands } from "./handoff/commands.js";
import { fmt, type Report, render, resultsFile } from "./handoff/report.js";
import {
  ARRIVAL_GAP_MS,
  HOLD_MS,
  MAX_WAIT_MS,
  type Mode,
  POLL_JITTER,
  POLL_MS,
  ROUNDS,
  SERVERS,
  SIZES,
  TTL_MS,
} from "./handoff/settings.js";
import {
  benchMain,
  interrupted,
  machineBusySeconds,
  machineInfo,
  round,
  type Service,
  startBenchRedis,
  startLss,
  waitForQuiet,
} from "./lib.js";

benchMain("the servers and redis-server", async (cleanup) => {
  const runStarted = now();
  const servers: Service[] = [];
  try {
    http.adminToken = randomBytes(16).toString("hex");
    const { server: redisServer, client: redis, version: redisVersion } = await startBenchRedis(cleanup);
    for (let i = 0; i < SERVERS; i++) {
      servers.push(
        await startLss(
          {
            name: `lss #${i}`,
            redisUrl: redisServer.url,
            adminToken: http.adminToken,
            env: { LSS_RATE_LIMIT: "off", LSS_MAX_WAIT_MS: String(MAX_WAIT_MS) },
          },
          cleanup,
        ),
      );
    }
    console.log(`servers: ${servers.map((s) => s.url).join(", ")}`);
    const coresBusyBefore = await waitForQuiet(0.5, 10_000);

    // Parts 1–3.
    const busyBefore = machineBusySeconds();
    const handoffStarted = now();
    const series: Series[] = [];
    for (const n of SIZES) {
      for (const mode of ["queued", "polling"] as const) {
        const rounds: RoundResult[] = [];
        for (let i = 0; i < ROUNDS[mode][n]; i++) {
          if (interrupted()) throw new Error("interrupted");
          rounds.push(await runRound(mode, n, i, servers, redis));
        }
        const s = summarize(rounds);
        series.push(s);
        console.log(
          `  ${mode} N=${n}: ${s.rounds} round(s), ${s.granted}/${s.expectedGrants} granted, handoff p50 ${fmt(s.handoffMs.p50)} ms p99 ${fmt(s.handoffMs.p99)} ms (${fmt(s.durationMs / 1000)} s)`,
        );
      }
    }
    const busyAfter = machineBusySeconds();
    const coresBusyDuringHandoffs =
      busyBefore == null || busyAfter == null
        ? null
        : round((busyAfter - busyBefore) / ((now() - handoffStarted) / 1000));

    // Part 4.
    console.log("Redis commands per waiter (about 2 minutes)…");
    const commands = await countCommands(servers, redis);

    const find = (mode: Mode, n: number) => series.find((s) => s.mode === mode && s.waiters === n) as Series;
    const ratios = SIZES.map((n) => ({
      waiters: n,
      p50: Math.round((find("queued", n).handoffMs.p50 / find("polling", n).handoffMs.p50) * 1000) / 1000,
      p99: Math.round((find("queued", n).handoffMs.p99 / find("polling", n).handoffMs.p99) * 1000) / 1000,
    }));

    const warnings: string[] = [];
    for (const s of series) {
      const tag = `${s.mode} N=${s.waiters}`;
      if (s.granted < s.expectedGrants)
        warnings.push(`${tag}: only ${s.granted}/${s.expectedGrants} granted`);
      if (s.overlaps) warnings.push(`${tag}: ${s.overlaps} overlapping grants`);
      if (s.fenceViolations)
        warnings.push(`${tag}: fencing tokens did not strictly increase ${s.fenceViolations}×`);
      if (s.acquiredAtViolations) warnings.push(`${tag}: acquired_at went back ${s.acquiredAtViolations}×`);
      if (s.mode === "queued" && s.slowHandoffs) {
        warnings.push(`${tag}: ${s.slowHandoffs} handoff(s) ≥ ${POLL_MS / 2} ms (max ${s.handoffMs.max} ms)`);
      }
      if (s.mode === "queued" && (s.fairness.outOfOrderGrants || s.fairness.queueOrderMismatches)) {
        warnings.push(
          `${tag}: ${s.fairness.outOfOrderGrants} grants out of arrival order, ${s.fairness.queueOrderMismatches} round(s) where Redis's queue was not in arrival order, ${s.fairness.outOfQueueOrderGrants} grants out of Redis's queue order`,
        );
      }
      if (s.mode === "queued" && s.conflicts)
        warnings.push(`${tag}: ${s.conflicts} unexpected 409s (re-asks)`);
      for (const u of s.unexpected) warnings.push(`${tag}: ${u}`);
    }
    if (commands.queuedSteadyPerWaiter.executedPerMin > 12) {
      warnings.push(
        `long-polling waiters cost ${commands.queuedSteadyPerWaiter.executedPerMin} commands per waiter per minute (> 12)`,
      );
    }
    if (commands.queuedWaiting.perWaiter.executedPerMin > 0.5) {
      warnings.push(
        `long-polling waiters sent commands while merely waiting: ${commands.queuedWaiting.perWaiter.executedPerMin} per waiter per minute`,
      );
    }
    if (commands.queuedWaiting.nonWaitingAnswers) {
      warnings.push(
        `${commands.queuedWaiting.nonWaitingAnswers} answers other than 409 while the key was held`,
      );
    }
    for (const w of [commands.holderAlone, commands.queuedWaiting, commands.polling]) {
      if (w.straddled) warnings.push(`${w.label}: a renewal straddled the window edge`);
      if (w.renewals !== 1)
        warnings.push(`${w.label}: ${w.renewals} renewals inside the window (expected 1)`);
    }
    if (http.retried.length) warnings.push(`${http.retried.length} requests retried after a network error`);
    if ((coresBusyDuringHandoffs ?? 0) > availableParallelism() * 0.9) {
      warnings.push(`the machine was saturated during parts 1–3 (${coresBusyDuringHandoffs} cores busy)`);
    }

    const report: Report = {
      machine: {
        ...machineInfo(),
        redis: `redis-server ${redisVersion}`,
        servers: SERVERS,
        coresBusyBefore,
        coresBusyDuringHandoffs,
      },
      settings: {
        waitMs: MAX_WAIT_MS,
        ttlMs: TTL_MS,
        holdMs: HOLD_MS,
        arrivalGapMs: ARRIVAL_GAP_MS,
        pollMs: POLL_MS,
        pollJitter: POLL_JITTER,
        rounds: ROUNDS,
      },
      handoff: series,
      ratios,
      commands,
      http: {
        requests: http.requests,
        maxConcurrent: http.maxInflight,
        retried: http.retried.length,
        retriedSamples: http.retried.slice(0, 5),
      },
      durationS: Math.round((now() - runStarted) / 1000),
      warnings,
    };
    writeFileSync(resultsFile, `${JSON.stringify(report, null, 2)}\n`);
    console.log(render(report));
  } catch (err) {
    for (const s of servers) console.error(`--- ${s.name} output ---\n${s.output()}`);
    throw err;
  }
});
