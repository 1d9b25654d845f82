/**
 * runPost, the action's post step (post-if: always()), with fakes for the runner, the server and
 * the renewer: it stops the renewer, says loudly when the lease was lost, and releases what this
 * job acquired, nothing else. Cancelled acquires and holds are in action-main.test.ts, which runs
 * main and then post.
 */
import { describe, expect, it } from "vitest";
import type { RenewerStatus } from "../src/action/renewer.js";
import { mdText } from "../src/action/summary.js";
import {
  ACQUIRE,
  HELD_STATE,
  HOLDER,
  iso,
  notHeld,
  postHarness,
  RELEASE,
  T0,
  URL_,
  unreachable,
  useFakeTimers,
  WAIT,
} from "./support/fakes.js";

useFakeTimers();

// ---------------------------------------------------------------------------------------------
// runPost
// ---------------------------------------------------------------------------------------------

describe("runPost", () => {
  it("no saved state (main failed before acquiring): asks the server nothing", async () => {
    const post = postHarness(ACQUIRE, {});
    await post.run();
    expect(post.clientInputs).toEqual([]);
    expect(post.stopped).toEqual([]);
    expect(post.io.infos).toEqual(["Nothing to release: qa-env was not acquired by this job."]);
    expect(post.io.failures).toEqual([]);
    expect(post.io.warnings).toEqual([]);
  });

  it("held: stops the renewer (by its pid) before releasing with the saved token", async () => {
    const post = postHarness(
      ACQUIRE,
      HELD_STATE,
      { release: ["released"] },
      {
        state: "held",
        renewed_at: iso(T0 + 100_000),
        expires_at: iso(T0 + 160_000),
        renewals: 5,
      },
    );
    await post.run();
    expect(post.stopped).toEqual([4242]);
    expect(post.events).toEqual(["setSecret", "stopRenewer 4242", "release qa-env"]);
    expect(post.statusReads).toEqual(["/runner/tmp/lss-renewal-x.json"]);
    expect(post.client.releaseCalls).toEqual([{ key: "qa-env", how: { token: "tok-1" } }]);
    expect(post.io.infos).toEqual(["Released qa-env after 2m 5s."]);
    expect(post.io.summaries[0]).toContain("### LSS: released `qa-env`");
    expect(post.io.summaries[0]).toContain(`| Holder | ${mdText(HOLDER)} |`);
    expect(post.io.errors).toEqual([]);
    expect(post.io.warnings).toEqual([]);
    expect(post.io.failures).toEqual([]);
  });

  it("a lost lease: an error annotation saying LOST and why, and the step fails", async () => {
    const lost: RenewerStatus = {
      state: "lost",
      at: iso(T0 + 80_000),
      reason: "renew qa-env: the lease is not held",
    };
    const post = postHarness(ACQUIRE, HELD_STATE, { release: [notHeld()] }, lost);
    await post.run();
    expect(post.io.errors).toEqual([
      `The lease on qa-env was LOST at ${iso(T0 + 80_000)}: renew qa-env: the lease is not held. ` +
        "From then on this job ran WITHOUT holding the lock; another job may have held it at the same time.",
    ]);
    expect(post.io.failures).toEqual([
      "The lease on qa-env was lost during the job (renew qa-env: the lease is not held).",
    ]);
    // Still tries to release, after stopping the renewer; no second, milder warning about expiry.
    expect(post.events).toEqual(["setSecret", "stopRenewer 4242", "release qa-env", "setFailed"]);
    expect(post.io.warnings).toEqual([]);
  });

  it("not held at the end of a held lease (no loss reported): a warning that it expired, not a failure", async () => {
    const post = postHarness(ACQUIRE, HELD_STATE, { release: [notHeld()] });
    await post.run();
    expect(post.io.warnings).toEqual([
      "qa-env was no longer held by this job at its end: its lease had expired.",
    ]);
    expect(post.io.failures).toEqual([]);
    expect(post.io.errors).toEqual([]);
  });

  it("release fails (server unreachable): a warning that it frees itself, not a failure", async () => {
    const post = postHarness(ACQUIRE, HELD_STATE, { release: [unreachable()] });
    await post.run();
    expect(post.io.warnings).toEqual([
      `Could not release qa-env: cannot reach LSS at ${URL_}: ECONNREFUSED. Check input 'url' (${URL_}) and that ` +
        "the server is up. It frees itself when its lease expires.",
    ]);
    expect(post.io.failures).toEqual([]);
  });

  it("release-at-end: false: keeps the lock (still stops the renewer)", async () => {
    const post = postHarness({ ...ACQUIRE, "release-at-end": "false" }, HELD_STATE, {
      release: ["released"],
    });
    await post.run();
    expect(post.stopped).toEqual([4242]);
    expect(post.client.releaseCalls).toEqual([]);
    expect(post.io.infos).toEqual(["Keeping qa-env after the job (release-at-end: false)."]);
  });

  it("mode wait: does nothing at all", async () => {
    const post = postHarness(WAIT, HELD_STATE, { release: ["released"] });
    await post.run();
    expect(post.clientInputs).toEqual([]);
    expect(post.stopped).toEqual([]);
    expect(post.io.stateReads).toEqual([]);
    expect(post.io.silent).toBe(true);
  });

  it("mode release: does nothing at all (main released already)", async () => {
    const post = postHarness(RELEASE, HELD_STATE, { release: ["released"] });
    await post.run();
    expect(post.clientInputs).toEqual([]);
    expect(post.io.silent).toBe(true);
  });

  it("invalid inputs: does nothing at all (main failed on them and said why)", async () => {
    const post = postHarness({ ...ACQUIRE, url: "not a url" }, HELD_STATE, { release: ["released"] });
    await post.run();
    expect(post.clientInputs).toEqual([]);
    expect(post.stopped).toEqual([]);
    expect(post.io.stateReads).toEqual([]);
    expect(post.io.silent).toBe(true);
  });
});
