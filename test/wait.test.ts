/**
 * waitFor, the client's waiting (the action's and the CLI's), on a fake clock with a scripted
 * server: how often it asks, that it never sleeps past the timeout, and what ends a wait.
 */
import { describe, expect, it, vi } from "vitest";
import { type WaitProgress, waitFor } from "../src/client/wait.js";
import {
  FakeClient,
  FREE,
  fakeClock,
  granted,
  held,
  lease,
  lockedStatus,
  OTHER,
  unreachable,
  useFakeTimers,
} from "./support/fakes.js";

useFakeTimers();

describe("waitFor", () => {
  it.each([
    [0, 960],
    [0.5, 1200],
    [0.999, 1440],
  ])(
    "polls sooner when the holder's lease expires before the poll interval (random %d → %i ms)",
    async (random, ms) => {
      vi.mocked(Math.random).mockReturnValue(random);
      const clock = fakeClock();
      const client = new FakeClient([], { acquire: [held({ ...OTHER, expires_in_ms: 1150 }), granted()] });
      const progress: WaitProgress[] = [];
      const result = await waitFor(
        client,
        { kind: "acquire", key: "qa-env", params: { ttlMs: 60_000, token: "tok-1" } },
        {
          timeoutMs: 60_000,
          pollMs: 5000,
          now: clock.now,
          sleep: clock.sleep,
          onWait: (p) => progress.push(p),
        },
      );
      expect(clock.sleeps.map(Math.round)).toEqual([ms]);
      expect(result).toEqual({
        outcome: "acquired",
        lease: lease(),
        waitedMs: expect.closeTo(clock.sleeps[0]!, 3),
      });
      expect(progress).toEqual([{ waitedMs: 0, attempt: 1, holder: { ...OTHER, expires_in_ms: 1150 } }]);
    },
  );

  it("polls at the poll interval when the holder's lease lasts longer", async () => {
    const clock = fakeClock();
    const client = new FakeClient([], { status: [lockedStatus(), lockedStatus(), FREE] });
    const result = await waitFor(
      client,
      { kind: "free", key: "qa-env" },
      { timeoutMs: 60_000, pollMs: 5000, now: clock.now, sleep: clock.sleep },
    );
    expect(clock.sleeps).toEqual([5000, 5000]);
    expect(result).toEqual({ outcome: "free", waitedMs: 10_000 });
  });

  it("never sleeps past the timeout", async () => {
    const clock = fakeClock();
    const client = new FakeClient([], { stateLock: ["locked"] });
    const result = await waitFor(
      client,
      { kind: "state-lock", id: "abc" },
      { timeoutMs: 7000, pollMs: 5000, now: clock.now, sleep: clock.sleep },
    );
    expect(clock.sleeps).toEqual([5000, 2000]);
    expect(result).toEqual({ outcome: "timeout", waitedMs: 7000, holder: null });
  });

  it("timeout 0 tries exactly once, without sleeping or reporting progress", async () => {
    const clock = fakeClock();
    const client = new FakeClient([], { acquire: [held()] });
    const onWait = vi.fn();
    const result = await waitFor(
      client,
      { kind: "acquire", key: "qa-env", params: { ttlMs: 60_000, token: "tok-1" } },
      { timeoutMs: 0, pollMs: 5000, now: clock.now, sleep: clock.sleep, onWait },
    );
    expect(client.acquireCalls).toHaveLength(1);
    expect(clock.sleeps).toEqual([]);
    expect(onWait).not.toHaveBeenCalled();
    expect(result).toEqual({ outcome: "timeout", waitedMs: 0, holder: OTHER });
  });

  it("an unknown /locks lock ends the wait at once", async () => {
    const clock = fakeClock();
    const client = new FakeClient([], { stateLock: ["unknown"] });
    const result = await waitFor(
      client,
      { kind: "state-lock", id: "nope" },
      { timeoutMs: 60_000, pollMs: 5000, now: clock.now, sleep: clock.sleep },
    );
    expect(result).toEqual({ outcome: "unknown", waitedMs: 0 });
    expect(clock.sleeps).toEqual([]);
  });

  it("server errors are not swallowed", async () => {
    const clock = fakeClock();
    const client = new FakeClient([], { acquire: [held(), unreachable()] });
    await expect(
      waitFor(
        client,
        { kind: "acquire", key: "qa-env", params: { ttlMs: 60_000, token: "tok-1" } },
        { timeoutMs: 60_000, pollMs: 5000, now: clock.now, sleep: clock.sleep },
      ),
    ).rejects.toMatchObject({ name: "LssError", code: "unreachable" });
  });
});
