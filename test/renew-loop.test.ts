/**
 * renewLoop, the client's lease keeper (the action's detached renewer and lss run both run it), on
 * a fake clock with a scripted server: when it renews, when it counts the lease lost, and that
 * stopping it is never a loss.
 */
import { describe, expect, it } from "vitest";
import { LssError } from "../src/client/errors.js";
import { type RenewLoopOptions, type RenewStatus, renewEvery, renewLoop } from "../src/client/renew-loop.js";
import type { GrantResponse } from "../src/protocol/lease.js";
import { type Answer, FakeClient, iso, lease, T0, URL_, unreachable } from "./support/fakes.js";

/** The lease the loop keeps: a 60 s ttl, all of it left. */
const LEASE = { key: "qa-env", token: "tok-1", ttlMs: 60_000, expiresInMs: 60_000 };

/** A renew loop on a fake clock; `stopAtSleep` = the index of the sleep during which it is stopped. */
function loopHarness(
  renew: Answer<GrantResponse>[],
  stopAtSleep = Number.POSITIVE_INFINITY,
  leaseToKeep: typeof LEASE = LEASE,
  lossMarginMs?: number,
) {
  let t = T0;
  const sleeps: number[] = [];
  const reports: RenewStatus[] = [];
  const controller = new AbortController();
  const client = new FakeClient([], { renew }, () => t);
  const opts: RenewLoopOptions = {
    client,
    ...leaseToKeep,
    onRenewed: (status) => reports.push(status),
    onLost: (status) => reports.push(status),
    sleep: async (ms, signal) => {
      if (signal?.aborted) throw signal.reason;
      if (sleeps.length >= 10_000) throw new Error("the loop never stopped");
      if (sleeps.length === stopAtSleep) {
        controller.abort(new Error("received SIGTERM"));
        throw controller.signal.reason;
      }
      sleeps.push(ms);
      t += ms;
    },
    signal: controller.signal,
    now: () => t,
    lossMarginMs,
  };
  return { sleeps, reports, client, controller, now: () => t, run: () => renewLoop(opts) };
}

describe("renewLoop", () => {
  it("renews when a third of the ttl is left and reports held with a renewal count", async () => {
    const r = loopHarness([lease({ expires_at: "server-time" })], 3);
    await expect(r.run()).resolves.toBe("stopped");
    expect(r.sleeps).toEqual([40_000, 40_000, 40_000]);
    expect(r.client.renewCalls.map(({ key, token, ttlMs, at }) => ({ key, token, ttlMs, at }))).toEqual([
      { key: "qa-env", token: "tok-1", ttlMs: 60_000, at: T0 + 40_000 },
      { key: "qa-env", token: "tok-1", ttlMs: 60_000, at: T0 + 80_000 },
      { key: "qa-env", token: "tok-1", ttlMs: 60_000, at: T0 + 120_000 },
    ]);
    // Each renew call is cut off when the loop is stopped (and when the lease would expire).
    const signal = r.client.renewCalls[0]!.signal!;
    expect(signal.aborted).toBe(r.controller.signal.aborted);
    expect(r.reports).toEqual([
      { state: "held", renewed_at: iso(T0 + 40_000), expires_at: "server-time", renewals: 1 },
      { state: "held", renewed_at: iso(T0 + 80_000), expires_at: "server-time", renewals: 2 },
      { state: "held", renewed_at: iso(T0 + 120_000), expires_at: "server-time", renewals: 3 },
    ]);
  });

  it("a short lease is renewed when half of it or 5 s is left, at most every second", async () => {
    expect([60_000, 600_000, 9000, 3000, 2000, 1000].map(renewEvery)).toEqual([
      40_000, 400_000, 4500, 1500, 1000, 1000,
    ]);
    const r = loopHarness([lease()], 2, { ...LEASE, ttlMs: 2000, expiresInMs: 2000 });
    await expect(r.run()).resolves.toBe("stopped");
    expect(r.sleeps).toEqual([1000, 1000]);
    expect(r.client.renewCalls.map((c) => c.ttlMs)).toEqual([2000, 2000]);
  });

  it("not_held: reports lost with the server's reason and resolves 'lost'", async () => {
    const r = loopHarness([lease(), new LssError("not_held", "renew qa-env: the lease is not held", 409)]);
    await expect(r.run()).resolves.toBe("lost");
    expect(r.sleeps).toEqual([40_000, 40_000]);
    expect(r.reports).toEqual([
      { state: "held", renewed_at: iso(T0 + 40_000), expires_at: iso(T0 + 60_000), renewals: 1 },
      { state: "lost", at: iso(T0 + 80_000), reason: "renew qa-env: the lease is not held" },
    ]);
  });

  it("unreachable: retries sooner and sooner, then reports lost once past the lease's expiry", async () => {
    const r = loopHarness([unreachable()]);
    await expect(r.run()).resolves.toBe("lost");

    // First attempt on schedule, then each retry a quarter of the time left (at least 0.2 s),
    // and the last sleep ends exactly at the expiry.
    expect(r.sleeps.slice(0, 4)).toEqual([40_000, 5000, 3750, 2812]);
    for (const ms of r.sleeps.slice(1)) expect(ms).toBeLessThan(20_000);
    const attempts = r.client.renewCalls.map((c) => c.at);
    // Every attempt came before the expiry; none is made once the lease has run out.
    expect(attempts.every((at) => at < T0 + 60_000)).toBe(true);
    expect(attempts.length).toBeGreaterThan(4);
    // Lost is reported at the expiry, not later, with the last error.
    expect(r.reports).toEqual([
      {
        state: "lost",
        at: iso(T0 + 60_000),
        reason: `could not renew before the lease expired: cannot reach LSS at ${URL_}: ECONNREFUSED`,
      },
    ]);
  });

  it("with a loss margin (lss run's grace), reports lost that long before the expiry", async () => {
    const r = loopHarness([unreachable()], Number.POSITIVE_INFINITY, LEASE, 10_000);
    await expect(r.run()).resolves.toBe("lost");
    expect(r.client.renewCalls.every((c) => c.at < T0 + 50_000)).toBe(true);
    expect(r.reports).toEqual([expect.objectContaining({ state: "lost", at: iso(T0 + 50_000) })]);
  });

  it("unreachable for a while, then reachable again: back to renewing when a third is left", async () => {
    const r = loopHarness([unreachable(), unreachable(), lease()], 5);
    await expect(r.run()).resolves.toBe("stopped");
    expect(r.sleeps).toEqual([40_000, 5000, 3750, 40_000, 40_000]);
    expect(r.reports.map((s) => s.state)).toEqual(["held", "held", "held"]);
    expect(r.reports[0]).toMatchObject({ renewals: 1, renewed_at: iso(T0 + 48_750) });
  });

  it("with a loss margin, renews when a third of the time before the margin is left (lss run's 30 s and its grace)", async () => {
    const r = loopHarness(
      [lease({ expires_in_ms: 30_000 })],
      3,
      { ...LEASE, ttlMs: 30_000, expiresInMs: 30_000 },
      10_500,
    );
    await expect(r.run()).resolves.toBe("stopped");
    // 19.5 s before the margin: renewed at 13 s, and again 13 s after each renewal.
    expect(r.sleeps).toEqual([13_000, 13_000, 13_000]);
    expect(r.client.renewCalls).toHaveLength(3);
    expect(r.reports.every((s) => s.state === "held")).toBe(true);
  });

  it("stopped during its sleep: resolves 'stopped' and never reports lost", async () => {
    const r = loopHarness([lease()], 0);
    await expect(r.run()).resolves.toBe("stopped");
    expect(r.client.renewCalls).toEqual([]);
    expect(r.reports).toEqual([]);
  });

  it("stopped while retrying an unreachable server: 'stopped', not lost", async () => {
    const r = loopHarness([unreachable()], 2);
    await expect(r.run()).resolves.toBe("stopped");
    expect(r.client.renewCalls).toHaveLength(2);
    expect(r.reports).toEqual([]);
  });

  it("stopped in the middle of a renewal (the request is aborted): 'stopped', not lost", async () => {
    const controller = new AbortController();
    let t = T0;
    const client = new FakeClient(
      [],
      { renew: [new Error("This operation was aborted")] },
      () => t,
      () => controller.abort(new Error("received SIGTERM")),
    );
    const reports: RenewStatus[] = [];
    const result = await renewLoop({
      client,
      ...LEASE,
      onRenewed: (s) => reports.push(s),
      onLost: (s) => reports.push(s),
      sleep: async (ms) => {
        t += ms;
      },
      signal: controller.signal,
      now: () => t,
    });
    expect(result).toBe("stopped");
    expect(reports).toEqual([]);
  });
});
