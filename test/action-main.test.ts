/**
 * runMain, the action's main step, with fakes for the runner (FakeIO), the server (FakeClient), the
 * renewer process, the clock and cancellation: acquire, wait and release. The end-to-end suites
 * run the same code against a real server; these pin the exact outputs, saved state, log lines and
 * failures, including the order of the steps that matter.
 */
import { describe, expect, it, vi } from "vitest";
import { mdText } from "../src/action/summary.js";
import type { HeldLease } from "../src/client/client.js";
import { LssError } from "../src/client/errors.js";
import {
  ACQUIRE,
  drive,
  FREE,
  granted,
  HOLDER,
  held,
  iso,
  lease,
  lockedStatus,
  mainHarness,
  notHeld,
  OTHER,
  OTHER_TEXT,
  postHarness,
  RELEASE,
  superseded,
  T0,
  URL_,
  unreachable,
  useFakeTimers,
  WAIT,
  WAIT_LOCK,
  waitingLines,
} from "./support/fakes.js";

useFakeTimers();

// ---------------------------------------------------------------------------------------------
// runMain: acquire
// ---------------------------------------------------------------------------------------------

describe("runMain, mode acquire", () => {
  describe("granted at once", () => {
    /** The one scenario of these specifications: the server grants the key at the first ask. */
    async function grantedAtOnce() {
      const h = mainHarness(ACQUIRE, { acquire: [granted()] });
      await drive(h.start());
      const token = h.io.state["lease-token"]!;
      return { ...h, token, statusFile: h.io.state["renewer-status-file"]! };
    }

    it("chooses a random lease token of its own", async () => {
      const h = await grantedAtOnce();
      expect(h.token).toMatch(/^[0-9a-f]{32}$/);
      expect(h.io.state["own-token"]).toBe("true");
    });

    it("saves the token, that it is its own, and phase pending before the first request", async () => {
      const h = await grantedAtOnce();
      const acquireAt = h.events.indexOf("acquire qa-env");
      expect(acquireAt).toBeGreaterThan(-1);
      expect(h.events.slice(0, acquireAt)).toEqual(
        expect.arrayContaining([
          `state lease-token=${h.token}`,
          "state own-token=true",
          "state phase=pending",
        ]),
      );
    });

    it("saves phase held only after the grant", async () => {
      const h = await grantedAtOnce();
      expect(h.events.indexOf("state phase=held")).toBeGreaterThan(h.events.indexOf("acquire qa-env"));
    });

    it("masks the API token as soon as the inputs are read, then the lease token before any output", async () => {
      const h = await grantedAtOnce();
      expect(h.io.secrets).toEqual(["api-token", h.token]);
      expect(h.events.lastIndexOf("setSecret")).toBeLessThan(h.events.indexOf("output token"));
    });

    it("asks once, with the ttl, the default holder, its token and the job's cancellation signal", async () => {
      const h = await grantedAtOnce();
      expect(h.client.acquireCalls).toEqual([
        {
          key: "qa-env",
          params: {
            ttlMs: 60_000,
            holderId: HOLDER,
            reason: undefined,
            token: h.token,
            shared: false,
            limit: undefined,
            priority: 0,
          },
          signal: h.controller.signal,
        },
      ]);
    });

    it("leaves post the token, the key, the time of the grant and the renewer's pid and status file", async () => {
      const h = await grantedAtOnce();
      expect(h.statusFile).toMatch(/^\/runner\/tmp\/lss-renewal-[0-9a-f]{32}\.json$/);
      expect(h.io.state).toEqual({
        "lease-token": h.token,
        "own-token": "true",
        phase: "held",
        key: "qa-env",
        "acquired-at": String(T0),
        "renewer-pid": "4242",
        "renewer-status-file": h.statusFile,
      });
    });

    it("outputs the lease: acquired, its token and fencing token, the wait, the holder, the expiry, the key", async () => {
      const h = await grantedAtOnce();
      expect(h.io.outputs).toEqual({
        acquired: "true",
        token: h.token,
        "fencing-token": "42",
        "waited-seconds": "0",
        holder: HOLDER,
        "expires-at": iso(T0 + 60_000),
        key: "qa-env",
      });
    });

    it("starts the renewer with the server, the API token, the lease, its ttl and time left, and the status file", async () => {
      const h = await grantedAtOnce();
      expect(h.renewers).toEqual([
        {
          url: URL_,
          apiToken: "api-token",
          key: "qa-env",
          leaseToken: h.token,
          ttlMs: 60_000,
          expiresInMs: 60_000,
          statusFile: h.statusFile,
        },
      ]);
    });

    it("logs what it acquires, as whom, then the lease it got", async () => {
      const h = await grantedAtOnce();
      expect(h.io.infos).toEqual([
        `Acquiring qa-env on ${URL_} as ${HOLDER}`,
        "Acquired qa-env (fencing token 42) after 0s; lease 1m, renewed every 40s while the job runs.",
      ]);
    });

    it("writes one summary naming the key, the server and the fencing token", async () => {
      const h = await grantedAtOnce();
      expect(h.io.summaries).toHaveLength(1);
      expect(h.io.summaries[0]).toContain("### LSS: acquired `qa-env`");
      // As text: its ':' escaped, so that GitHub makes no link of it (as of every address there).
      expect(h.io.summaries[0]).toContain(`| Lock | \`qa-env\` on ${URL_.replace(":", "\\:")} |`);
      expect(h.io.summaries[0]).toContain("| Fencing token | `42` |");
    });

    it("neither fails, warns nor annotates an error", async () => {
      const h = await grantedAtOnce();
      expect(h.io.failures).toEqual([]);
      expect(h.io.warnings).toEqual([]);
      expect(h.io.errors).toEqual([]);
    });
  });

  it("passes ttl, reason and holder inputs to the server and the renewer", async () => {
    const h = mainHarness(
      { ...ACQUIRE, ttl: "90", reason: "QA until 17:00", holder: "nightly" },
      { acquire: [granted(lease({ expires_in_ms: 89_000 }))] },
    );
    await drive(h.start());
    expect(h.client.acquireCalls[0]!.params).toMatchObject({
      ttlMs: 90_000,
      holderId: "nightly",
      reason: "QA until 17:00",
    });
    expect(h.renewers[0]).toMatchObject({ ttlMs: 90_000, expiresInMs: 89_000 });
    expect(h.io.outputs.holder).toBe("nightly");
    expect(h.io.infos[1]).toBe(
      "Acquired qa-env (fencing token 42) after 0s; lease 1m 30s, renewed every 1m while the job runs.",
    );
  });

  it("after waiting: says who holds it and how long it has waited at every poll, then takes it", async () => {
    const h = mainHarness(ACQUIRE, {
      acquire: [held(), held({ ...OTHER, expires_in_ms: 55_000 }), granted()],
    });
    await drive(h.start());

    expect(waitingLines(h.io)).toEqual([
      `Waiting for qa-env: ${OTHER_TEXT}. Waited 0s of 10m.`,
      "Waiting for qa-env: held by other-run (E2E) since 2025-01-01T11:55:00.000Z, expires in 55s. Waited 5s of 10m.",
    ]);
    // Every attempt carries the same token, so a retried acquire cannot create a second lease.
    const token = h.io.state["lease-token"];
    expect(h.client.acquireCalls.map((c) => c.params.token)).toEqual([token, token, token]);
    expect(h.io.outputs).toMatchObject({ acquired: "true", "waited-seconds": "10", "fencing-token": "42" });
    expect(Number(h.io.outputs["waited-seconds"])).toBeGreaterThan(0);
    expect(h.io.infos.at(-1)).toBe(
      "Acquired qa-env (fencing token 42) after 10s; lease 1m, renewed every 40s while the job runs.",
    );
    expect(h.io.state.phase).toBe("held");
    expect(h.renewers).toHaveLength(1);
    expect(h.io.failures).toEqual([]);
  });

  it("the same holder, whose lease counts down between polls, has not 'changed hands'", async () => {
    const h = mainHarness(ACQUIRE, {
      acquire: [
        held(),
        held({ ...OTHER, expires_in_ms: 55_000 }),
        held({ ...OTHER, expires_in_ms: 50_000 }),
        granted(),
      ],
    });
    await drive(h.start());
    expect(waitingLines(h.io)).toHaveLength(3);
    expect(h.io.infos.filter((line) => line.includes("changed hands"))).toEqual([]);
  });

  it("a new holder is announced before the usual progress line", async () => {
    const next: HeldLease = { ...OTHER, holder_id: "third-run", reason: null, fencing_token: 43 };
    const h = mainHarness(ACQUIRE, { acquire: [held(), held(next), granted()] });
    await drive(h.start());
    const changed = h.io.infos.findIndex((line) => line.includes("changed hands"));
    expect(h.io.infos[changed]).toBe(
      "The lock changed hands: now held by third-run since 2025-01-01T11:55:00.000Z, expires in 1m",
    );
    expect(h.io.infos[changed + 1]).toMatch(/^Waiting for qa-env: held by third-run .* Waited 5s of 10m\.$/);
  });

  it("timeout: fails naming the holder, its reason and input 'timeout'; outputs who held it; no renewer", async () => {
    const h = mainHarness({ ...ACQUIRE, timeout: "10s" }, { acquire: [held()] });
    await drive(h.start());

    expect(h.client.acquireCalls).toHaveLength(3); // at 0 s, 5 s and 10 s
    expect(h.io.failures).toEqual([
      `Timed out after 10s waiting for qa-env: ${OTHER_TEXT}. Raise input 'timeout' to wait longer.`,
    ]);
    expect(h.io.outputs).toEqual({ acquired: "false", "waited-seconds": "10", holder: "other-run" });
    expect(h.renewers).toEqual([]);
    expect(h.io.state.phase).toBe("pending");
    expect(h.io.summaries).toHaveLength(1);
    expect(h.io.summaries[0]).toContain("### LSS: could not acquire `qa-env`");
    // Shown as text: parentheses and the like escaped, so that nothing in it becomes Markdown.
    expect(h.io.summaries[0]).toContain(`| It was | ${mdText(OTHER_TEXT)} |`);
  });

  it("timeout 0 tries exactly once", async () => {
    const h = mainHarness({ ...ACQUIRE, timeout: "0" }, { acquire: [held()] });
    await drive(h.start());
    expect(h.client.acquireCalls).toHaveLength(1);
    expect(waitingLines(h.io)).toEqual([]);
    expect(h.io.outputs).toEqual({ acquired: "false", "waited-seconds": "0", holder: "other-run" });
    expect(h.io.failures).toHaveLength(1);
    expect(h.io.failures[0]).toContain("Raise input 'timeout'");
  });

  it("if-held skip: tries once, succeeds with acquired=false and a notice naming the holder; post has nothing to release", async () => {
    const h = mainHarness({ ...ACQUIRE, "if-held": "skip", timeout: "30m" }, { acquire: [held()] });
    await drive(h.start());
    expect(h.client.acquireCalls).toHaveLength(1);
    expect(h.io.failures).toEqual([]);
    expect(h.io.notices).toEqual([
      `qa-env is ${OTHER_TEXT}: skipped (if-held: skip); output acquired is false.`,
    ]);
    expect(h.io.outputs).toEqual({ acquired: "false", "waited-seconds": "0", holder: "other-run" });
    expect(h.io.summaries[0]).toContain("### LSS: skipped, `qa-env` is held");
    expect(h.renewers).toEqual([]);
    const post = postHarness({ ...ACQUIRE, "if-held": "skip" }, h.io.state, { release: [notHeld()] });
    await post.run();
    expect(post.client.releaseCalls).toEqual([]);
    expect(post.io.infos).toEqual(["Nothing to release: qa-env was not acquired by this job."]);
  });

  it("if-held fail: tries once and fails naming the holder, not the timeout", async () => {
    const h = mainHarness({ ...ACQUIRE, "if-held": "fail" }, { acquire: [held()] });
    await drive(h.start());
    expect(h.client.acquireCalls).toHaveLength(1);
    expect(h.io.failures).toEqual([`qa-env is ${OTHER_TEXT} (if-held: fail).`]);
    expect(h.io.notices).toEqual([]);
    expect(h.io.outputs).toMatchObject({ acquired: "false", holder: "other-run" });
  });

  it("superseded: the step succeeds with superseded=true, a notice naming the newer run, and nothing for post to release", async () => {
    const h = mainHarness({ ...ACQUIRE, supersede: "Deploy/main" }, { acquire: [held(), superseded()] });
    await drive(h.start());
    expect(h.client.acquireCalls[0]?.params).toMatchObject({ supersede: "Deploy/main" });
    expect(h.io.failures).toEqual([]);
    expect(h.io.notices).toEqual([
      "Superseded on qa-env: a newer waiter of its group (octo/app · Deploy · run 12) took its place in the queue; output superseded is true.",
    ]);
    expect(h.io.outputs).toMatchObject({
      acquired: "false",
      superseded: "true",
      holder: "octo/app · Deploy · run 12",
    });
    expect(h.io.summaries[0]).toContain("### LSS: superseded on `qa-env`");
    expect(h.renewers).toEqual([]);
    const post = postHarness({ ...ACQUIRE, supersede: "Deploy/main" }, h.io.state, { release: [notHeld()] });
    await post.run();
    expect(post.client.releaseCalls).toEqual([]);
  });

  it("if-superseded fail: the superseded step fails, naming the newer run", async () => {
    const h = mainHarness(
      { ...ACQUIRE, supersede: "Deploy/main", "if-superseded": "fail" },
      { acquire: [superseded(null)] },
    );
    await drive(h.start());
    expect(h.io.failures).toEqual([
      "Superseded on qa-env: a newer waiter of its group (no holder id) took its place in the queue (if-superseded: fail).",
    ]);
    expect(h.io.outputs).toMatchObject({ acquired: "false", superseded: "true" });
  });

  it("priority goes to the server with the acquire", async () => {
    const h = mainHarness({ ...ACQUIRE, priority: "50" }, { acquire: [granted()] });
    await drive(h.start());
    expect(h.client.acquireCalls[0]?.params).toMatchObject({ priority: 50 });
  });

  it("if-held skip on a free key acquires as usual", async () => {
    const h = mainHarness({ ...ACQUIRE, "if-held": "skip" }, { acquire: [granted()] });
    await drive(h.start());
    expect(h.io.outputs.acquired).toBe("true");
    expect(h.io.notices).toEqual([]);
  });

  it("hold: asks for the hold's length, starts no renewer, and post keeps the lock", async () => {
    const h = mainHarness(
      { ...ACQUIRE, hold: "2h" },
      { acquire: [granted(lease({ expires_in_ms: 7_200_000, expires_at: iso(T0 + 7_200_000) }))] },
    );
    await drive(h.start());

    expect(h.client.acquireCalls[0]!.params.ttlMs).toBe(7_200_000);
    expect(h.renewers).toEqual([]);
    expect(h.io.state).not.toHaveProperty("renewer-pid");
    expect(h.io.state).not.toHaveProperty("renewer-status-file");
    expect(h.io.outputs).toMatchObject({ acquired: "true", "expires-at": iso(T0 + 7_200_000) });
    expect(h.io.infos.at(-1)).toBe(
      `Acquired qa-env (fencing token 42) after 0s; lease held until ${iso(T0 + 7_200_000)}, after the job ends; ` +
        "release it with mode: release and the same lease-token.",
    );

    const post = postHarness({ ...ACQUIRE, hold: "2h" }, h.io.state, { release: ["released"] });
    await post.run();
    expect(post.client.releaseCalls).toEqual([]);
    expect(post.stopped).toEqual([]);
    expect(post.io.infos).toEqual(["Keeping qa-env after the job (release-at-end: false)."]);
    expect(post.io.failures).toEqual([]);
    expect(post.io.warnings).toEqual([]);
  });

  it("with the user's lease-token: the server gets that token, and it is not the action's own", async () => {
    const h = mainHarness({ ...ACQUIRE, "lease-token": "team-secret" }, { acquire: [granted()] });
    await drive(h.start());
    expect(h.client.acquireCalls[0]!.params.token).toBe("team-secret");
    expect(h.io.state).toMatchObject({ "lease-token": "team-secret", "own-token": "false", phase: "held" });
    expect(h.io.outputs.token).toBe("team-secret");
    expect(h.io.secrets).toEqual(["api-token", "team-secret"]);
    expect(h.renewers[0]!.leaseToken).toBe("team-secret");
  });

  it("cancelled while waiting: fails as cancelled, stays pending; post releases with the saved token", async () => {
    const h = mainHarness(ACQUIRE, { acquire: [held()] });
    const running = h.start();
    await vi.advanceTimersByTimeAsync(1000); // inside the first 5 s sleep
    expect(h.client.acquireCalls).toHaveLength(1);
    h.controller.abort(new Error("received SIGTERM"));
    await drive(running);

    expect(h.client.acquireCalls).toHaveLength(1);
    expect(h.io.failures).toEqual(["Cancelled while acquiring the lock"]);
    expect(h.io.state.phase).toBe("pending");
    expect(h.io.state["own-token"]).toBe("true");
    expect(h.io.outputs).toEqual({});
    expect(h.renewers).toEqual([]);

    const token = h.io.state["lease-token"]!;
    const post = postHarness(ACQUIRE, h.io.state, { release: [notHeld()] });
    await post.run();
    expect(post.client.releaseCalls).toEqual([{ key: "qa-env", how: { token } }]);
    expect(post.io.infos).toEqual(["Nothing to release: qa-env was never granted to this job."]);
    expect(post.io.warnings).toEqual([]);
    expect(post.io.errors).toEqual([]);
    expect(post.io.failures).toEqual([]);
    expect(post.stopped).toEqual([]);
  });

  it("cancelled acquire that the server had granted: post releases it and says so", async () => {
    const h = mainHarness(ACQUIRE, { acquire: [held()] });
    const running = h.start();
    await vi.advanceTimersByTimeAsync(1000);
    h.controller.abort(new Error("received SIGINT"));
    await drive(running);

    const post = postHarness(ACQUIRE, h.io.state, { release: ["released"] });
    await post.run();
    expect(post.client.releaseCalls).toEqual([{ key: "qa-env", how: { token: h.io.state["lease-token"] } }]);
    expect(post.io.infos).toEqual(["Released qa-env, granted as the job was cancelled."]);
    expect(post.io.warnings).toEqual([]);
  });

  it("cancelled acquire of a hold with the action's own token: post still releases it", async () => {
    const h = mainHarness({ ...ACQUIRE, hold: "2h" }, { acquire: [held()] });
    const running = h.start();
    await vi.advanceTimersByTimeAsync(1000);
    h.controller.abort(new Error("received SIGTERM"));
    await drive(running);
    expect(h.io.failures).toEqual(["Cancelled while acquiring the lock"]);

    const post = postHarness({ ...ACQUIRE, hold: "2h" }, h.io.state, { release: [notHeld()] });
    await post.run();
    expect(post.client.releaseCalls).toEqual([{ key: "qa-env", how: { token: h.io.state["lease-token"] } }]);
    expect(post.io.infos).toEqual(["Nothing to release: qa-env was never granted to this job."]);
  });

  it("unreachable server: the failure names input 'url'", async () => {
    const h = mainHarness(ACQUIRE, { acquire: [unreachable()] });
    await drive(h.start());
    expect(h.io.failures).toEqual([
      `cannot reach LSS at ${URL_}: ECONNREFUSED. Check input 'url' (${URL_}) and that the server is up.`,
    ]);
    expect(h.renewers).toEqual([]);
    expect(h.io.state.phase).toBe("pending");
  });

  it("unauthorized: the failure names input 'token'", async () => {
    const h = mainHarness(ACQUIRE, {
      acquire: [new LssError("unauthorized", "acquire qa-env: invalid API token", 401)],
    });
    await drive(h.start());
    expect(h.io.failures).toEqual([
      "LSS refused the API token: acquire qa-env: invalid API token. Check input 'token'.",
    ]);
    expect(h.renewers).toEqual([]);
  });

  it("invalid inputs: fails with the input's message and asks the server nothing", async () => {
    const h = mainHarness({ ...ACQUIRE, ttl: "1.5h" });
    await drive(h.start());
    expect(h.io.failures).toEqual([
      "Input 'ttl' must be a duration such as 30s, 10m, 1h or a number of seconds (got '1.5h')",
    ]);
    expect(h.clientInputs).toEqual([]);
    expect(h.io.state).toEqual({});
  });
});

// ---------------------------------------------------------------------------------------------
// runMain: wait
// ---------------------------------------------------------------------------------------------

describe("runMain, mode wait", () => {
  it("a key that becomes free after two polls: succeeds without taking it", async () => {
    const h = mainHarness(WAIT, { status: [lockedStatus(), lockedStatus(), FREE] });
    await drive(h.start());
    expect(h.client.statusCalls).toEqual(["qa-env", "qa-env", "qa-env"]);
    expect(h.client.acquireCalls).toEqual([]);
    expect(waitingLines(h.io)).toEqual([
      `Waiting for qa-env: ${OTHER_TEXT}. Waited 0s of 10m.`,
      `Waiting for qa-env: ${OTHER_TEXT}. Waited 5s of 10m.`,
    ]);
    expect(h.io.infos.at(-1)).toBe("qa-env is free after 10s.");
    expect(h.io.outputs).toEqual({ acquired: "false", "waited-seconds": "10" });
    expect(h.io.failures).toEqual([]);
    expect(h.io.state).toEqual({});
    expect(h.renewers).toEqual([]);
    expect(h.io.summaries[0]).toContain("### LSS: `qa-env` is free");
  });

  it("a key still held at the timeout: fails naming the holder and input 'timeout'", async () => {
    const h = mainHarness({ ...WAIT, timeout: "10s" }, { status: [lockedStatus()] });
    await drive(h.start());
    expect(h.io.failures).toEqual([
      `Timed out after 10s waiting for qa-env: ${OTHER_TEXT}. Raise input 'timeout' to wait longer.`,
    ]);
    expect(h.io.outputs).toEqual({ acquired: "false", "waited-seconds": "10", holder: "other-run" });
  });

  it("a lock-id the server does not know: fails naming input 'lock-id'", async () => {
    const h = mainHarness(WAIT_LOCK, { stateLock: ["unknown"] });
    await drive(h.start());
    expect(h.clientInputs[0]!.auth).toEqual({ kind: "none" });
    expect(h.client.stateLockCalls).toEqual(["abc"]);
    expect(h.io.failures).toEqual([`There is no lock /locks/abc on ${URL_}: check input 'lock-id'.`]);
    expect(h.io.outputs).toEqual({ acquired: "false", "waited-seconds": "0" });
  });

  it("a lock-id locked, then unlocked: succeeds", async () => {
    const h = mainHarness(WAIT_LOCK, { stateLock: ["locked", "unlocked"] });
    await drive(h.start());
    expect(h.client.stateLockCalls).toEqual(["abc", "abc"]);
    expect(waitingLines(h.io)).toEqual(["Waiting for /locks/abc: locked. Waited 0s of 10m."]);
    expect(h.io.infos.at(-1)).toBe("/locks/abc is free after 5s.");
    expect(h.io.outputs).toEqual({ acquired: "false", "waited-seconds": "5" });
    expect(h.io.failures).toEqual([]);
  });

  it("a lock-id still locked at the timeout: fails", async () => {
    const h = mainHarness({ ...WAIT_LOCK, timeout: "10s" }, { stateLock: ["locked"] });
    await drive(h.start());
    expect(h.client.stateLockCalls).toHaveLength(3);
    expect(h.io.failures).toEqual([
      "Timed out after 10s waiting for /locks/abc: locked. Raise input 'timeout' to wait longer.",
    ]);
    expect(h.io.outputs).toEqual({ acquired: "false", "waited-seconds": "10" });
  });

  it("cancelled while waiting: fails as cancelled", async () => {
    const h = mainHarness(WAIT, { status: [lockedStatus()] });
    const running = h.start();
    await vi.advanceTimersByTimeAsync(1000);
    h.controller.abort(new Error("received SIGTERM"));
    await drive(running);
    expect(h.client.statusCalls).toHaveLength(1);
    expect(h.io.failures).toEqual(["Cancelled while waiting for the lock"]);
  });
});

// ---------------------------------------------------------------------------------------------
// runMain: release
// ---------------------------------------------------------------------------------------------

describe("runMain, mode release", () => {
  it("with lease-token: releases with that token", async () => {
    const h = mainHarness(RELEASE, { release: ["released"] });
    await drive(h.start());
    expect(h.client.releaseCalls).toEqual([{ key: "qa-env", how: { token: "team-secret" } }]);
    expect(h.io.infos).toEqual(["Released qa-env."]);
    expect(h.io.outputs).toEqual({ acquired: "false" });
    expect(h.io.summaries[0]).toContain("### LSS: released `qa-env`");
    expect(h.io.failures).toEqual([]);
  });

  it("with force: releases with force: true", async () => {
    const h = mainHarness({ ...RELEASE, "lease-token": undefined, force: "true" }, { release: ["released"] });
    await drive(h.start());
    expect(h.client.releaseCalls).toEqual([{ key: "qa-env", how: { force: true } }]);
    expect(h.io.infos).toEqual(["Released qa-env (forced)."]);
    expect(h.io.failures).toEqual([]);
  });

  it("not held: a warning, not a failure", async () => {
    const h = mainHarness(RELEASE, { release: [notHeld()] });
    await drive(h.start());
    expect(h.io.warnings).toEqual([
      "qa-env was not held (already released, or its lease expired): nothing to release.",
    ]);
    expect(h.io.failures).toEqual([]);
  });

  it("held with another token: fails naming input 'lease-token' and who holds it", async () => {
    const body = { status: "error", error: { code: "lock_held", message: "held" }, ...OTHER };
    const h = mainHarness(RELEASE, {
      release: [new LssError("lock_held", "release qa-env: held by another lease", 409, body)],
    });
    await drive(h.start());
    expect(h.io.failures).toEqual([
      `qa-env is ${OTHER_TEXT}, with another token: input 'lease-token' does not release it.`,
    ]);
    expect(h.io.warnings).toEqual([]);
  });

  it("forbidden force: fails naming input 'token'", async () => {
    const h = mainHarness(
      { ...RELEASE, "lease-token": undefined, force: "true" },
      { release: [new LssError("forbidden", "release qa-env: needs the admin scope", 403)] },
    );
    await drive(h.start());
    expect(h.io.failures).toEqual([
      "LSS refused: release qa-env: needs the admin scope. Check input 'token' and its scopes.",
    ]);
  });
});
