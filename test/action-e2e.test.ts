/**
 * The action's built dist/ run as the GitHub runner runs it (node24, INPUT_*, GITHUB_STATE /
 * GITHUB_OUTPUT / GITHUB_STEP_SUMMARY files, STATE_* for post, SIGINT on cancel, end-of-job
 * cleanup by RUNNER_TRACKING_ID), against the real server on a real redis-server.
 */
import { existsSync, readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mdText } from "../src/action/summary.js";
import {
  base,
  type LiveServer,
  MAIN,
  newJob,
  POST,
  sleep,
  startLiveServer,
  until,
} from "./support/action-e2e.js";
import { isAlive } from "./support/runner.js";
import { ADMIN_TOKEN } from "./support/stores.js";

let server: LiveServer;
beforeAll(async () => {
  server = await startLiveServer();
});
afterAll(() => server.close());

describe("the action's dist/ on a real server", () => {
  it("if-held: skip ends a step successfully with acquired=false and a notice; fail ends it at once naming the holder", async () => {
    const holder = newJob("octo/app", "Migration");
    const nightly = newJob("octo/app", "Nightly");
    const deploy = newJob("octo/app", "Deploy");
    try {
      const held = await holder.step(MAIN, {
        inputs: base(server, "if-held", { mode: "acquire", reason: "migrating" }),
      });
      expect(held.outputs.acquired).toBe("true");
      const started = Date.now();
      const skipped = await nightly.step(MAIN, {
        inputs: base(server, "if-held", { mode: "acquire", "if-held": "skip", timeout: "10m" }),
      });
      expect(skipped.exitCode).toBe(0);
      expect(skipped.outputs.acquired).toBe("false");
      expect(skipped.outputs.holder).toBe(held.outputs.holder);
      const notice = skipped.annotations.find((a) => a.level === "notice")?.message ?? "";
      expect(notice).toContain(`if-held is held by ${held.outputs.holder} (migrating)`);
      expect(notice).toContain("skipped (if-held: skip)");
      expect(skipped.annotations.filter((a) => a.level === "error")).toEqual([]);
      const afterSkip = await nightly.step(POST, {
        inputs: base(server, "if-held", { mode: "acquire", "if-held": "skip" }),
      });
      expect(afterSkip.exitCode).toBe(0);
      expect(afterSkip.stdout).toContain("Nothing to release");

      const failed = await deploy.step(MAIN, {
        inputs: base(server, "if-held", { mode: "acquire", "if-held": "fail" }),
      });
      expect(failed.exitCode).toBe(1);
      const error = failed.annotations.find((a) => a.level === "error")?.message ?? "";
      expect(error).toContain(`held by ${held.outputs.holder}`);
      expect(error).toContain("(if-held: fail)");
      // Both tried once: no wait (the timeout was 10m).
      expect(Date.now() - started).toBeLessThan(15_000);
      expect((await server.status("if-held")).holder_id).toBe(held.outputs.holder);
      await holder.step(POST, { inputs: base(server, "if-held", { mode: "acquire" }) });
    } finally {
      await holder.cleanup();
      await nightly.cleanup();
      await deploy.cleanup();
    }
  }, 60_000);

  it("supersede: three deploys of one workflow queue behind an E2E hold; only the newest deploys, the two older end successfully as superseded", async () => {
    const e2e = newJob("octo/app", "E2E");
    const deploys = [1, 2, 3].map(() => newJob("octo/app", "Deploy"));
    const inputs = base(server, "qa-supersede", {
      mode: "acquire",
      timeout: "60s",
      supersede: "Deploy/refs/heads/main",
    });
    const queued = async () => (await server.status("qa-supersede")).queue ?? [];
    try {
      const held = await e2e.step(MAIN, { inputs: base(server, "qa-supersede", { mode: "acquire" }) });
      expect(held.outputs.acquired).toBe("true");
      const steps = [];
      const waiters: string[] = [];
      for (const job of deploys) {
        steps.push(job.start(MAIN, { inputs }).result);
        // Each joins the queue before the next starts; its holder is what the older one is told.
        await until(
          async () => (await queued()).some((w) => !waiters.includes(w.holder_id ?? "")),
          20_000,
          "a new waiter",
        );
        const newest = (await queued()).find((w) => !waiters.includes(w.holder_id ?? ""));
        expect(newest).toMatchObject({ group: "Deploy/refs/heads/main", priority: 0 });
        waiters.push(newest?.holder_id ?? "");
      }
      const [first, second] = await Promise.all(steps.slice(0, 2));
      for (const [i, step] of [first, second].entries()) {
        expect(step?.exitCode).toBe(0);
        expect(step?.outputs).toMatchObject({
          acquired: "false",
          superseded: "true",
          holder: waiters[i + 1],
        });
        const notice = step?.annotations.find((a) => a.level === "notice")?.message ?? "";
        expect(notice).toContain(
          `Superseded on qa-supersede: a newer waiter of its group (${waiters[i + 1]})`,
        );
        expect(step?.annotations.filter((a) => a.level === "error")).toEqual([]);
        expect(step?.summary).toContain("superseded on `qa-supersede`");
      }
      // The superseded steps' posts have nothing to release; the newest still waits alone.
      for (const job of deploys.slice(0, 2)) {
        const post = await job.step(POST, { inputs });
        expect(post.exitCode).toBe(0);
        expect(post.stdout).toContain("Nothing to release");
      }
      expect(await queued()).toMatchObject([{ holder_id: waiters[2] }]);
      await e2e.step(POST, { inputs: base(server, "qa-supersede", { mode: "acquire" }) });
      const newest = await steps[2];
      expect(newest?.exitCode).toBe(0);
      expect(newest?.outputs).toMatchObject({ acquired: "true", holder: waiters[2] });
      expect(newest?.outputs.superseded).toBeUndefined();
      await deploys[2]?.step(POST, { inputs });
      const events = (await server.history("qa-supersede")).events;
      expect(
        events.filter((e) => e.event === "superseded").map((e) => [e.holder_id, e.superseded_by]),
      ).toEqual([
        [waiters[1], waiters[2]],
        [waiters[0], waiters[1]],
      ]);
    } finally {
      await e2e.cleanup();
      for (const job of deploys) await job.cleanup();
    }
  }, 90_000);

  it("makes a second job wait for the first, showing who holds it, then hands over", async () => {
    const a = newJob("octo/app", "E2E");
    const b = newJob("octo/app", "Deploy QA");
    try {
      const first = await a.step(MAIN, {
        inputs: base(server, "contended", { mode: "acquire", reason: "E2E suite" }),
      });
      expect(first.exitCode).toBe(0);
      expect(first.outputs.acquired).toBe("true");
      const holderA = first.outputs.holder;
      expect(holderA).toContain("octo/app");
      expect(holderA).toContain("E2E");

      // The default poll-interval (5 s) would show in the handoff if the wait were polled.
      const waiting = b.start(MAIN, {
        inputs: base(server, "contended", { mode: "acquire", timeout: "30s" }),
      });
      await sleep(2500);
      expect((await server.status("contended")).holder_id).toBe(holderA);
      expect((await server.status("contended")) as unknown).toMatchObject({ waiting: 1 });
      const released = await a.step(POST, { inputs: base(server, "contended", { mode: "acquire" }) });
      expect(released.exitCode).toBe(0);
      expect(released.stdout).toContain("Released contended");
      const releasedAt = Date.now();

      const second = await waiting.result;
      // Handed over at the release (the server held the request), not at the next poll (5 s): the
      // margin is for the step's process to finish on a busy machine.
      expect(Date.now() - releasedAt).toBeLessThan(4000);
      expect(second.exitCode).toBe(0);
      expect(second.outputs.acquired).toBe("true");
      expect(Number(second.outputs["waited-seconds"])).toBeGreaterThanOrEqual(2);
      expect(Number(second.outputs["fencing-token"])).toBeGreaterThan(Number(first.outputs["fencing-token"]));
      // While it waited it said at once who held it and why, and its place in the queue.
      const progress = second.stdout.split("\n").filter((l) => l.startsWith("Waiting for contended"));
      expect(progress.length).toBeGreaterThanOrEqual(1);
      expect(progress[0]).toContain(holderA);
      expect(progress[0]).toContain("(E2E suite)");
      expect(second.summary).toContain("acquired `contended`");
      expect(second.summary).toContain(second.outputs["fencing-token"]);
      // The summary also says who held it while the job waited.
      expect(second.summary).toContain(mdText(holderA ?? ""));
      // And, from the key's history, who held it before: the first job, released after a few seconds.
      const before = second.summary.split("\n").find((l) => l.startsWith("| Held before |")) ?? "";
      expect(before).toContain(mdText(`${holderA} (E2E suite): released`));
      expect((await server.status("contended")).holder_id).toContain("Deploy QA");
      await b.step(POST, { inputs: base(server, "contended", { mode: "acquire" }) });
      expect((await server.status("contended")).locked).toBe(false);
    } finally {
      await a.cleanup();
      await b.cleanup();
    }
  }, 60_000);

  it("keeps a lock for several TTLs by renewing it, and stops renewing in post", async () => {
    const job = newJob();
    try {
      const main = await job.step(MAIN, { inputs: base(server, "renewed", { mode: "acquire", ttl: "5s" }) });
      expect(main.exitCode).toBe(0);
      const pid = Number(main.state["renewer-pid"]);
      expect(isAlive(pid)).toBe(true);
      // The API token is masked in the log, and the renewer, which lives for the rest of the job,
      // holds it nowhere another step could read: not in its environment, not in a file left behind.
      expect(main.stdout).toContain(`::add-mask::${ADMIN_TOKEN}`);
      const environ = readFileSync(`/proc/${pid}/environ`, "utf8");
      expect(environ).not.toContain(ADMIN_TOKEN);
      expect(environ).not.toMatch(/(^|\0)INPUT_/);
      expect(environ).toMatch(/(^|\0)RUNNER_TRACKING_ID=/);
      const args = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
      const configFile = args.find((a) => a.endsWith("config.json"));
      expect(configFile).toBeDefined();
      await until(async () => !existsSync(configFile!), 2000, "the renewer to delete its config file");
      await sleep(12_000); // more than two TTLs
      const held = await server.status("renewed");
      expect(held.locked).toBe(true);
      expect(held.fencing_token).toBe(Number(main.outputs["fencing-token"]));
      const post = await job.step(POST, { inputs: base(server, "renewed", { mode: "acquire", ttl: "5s" }) });
      expect(post.exitCode).toBe(0);
      expect(isAlive(pid)).toBe(false);
      expect((await server.status("renewed")).locked).toBe(false);
    } finally {
      await job.cleanup();
    }
  }, 40_000);

  it("frees the lock within one TTL when the runner dies (renewer killed), and post says it had expired", async () => {
    const job = newJob();
    try {
      const main = await job.step(MAIN, {
        inputs: base(server, "dead-runner", { mode: "acquire", ttl: "5s" }),
      });
      const pid = Number(main.state["renewer-pid"]);
      process.kill(pid, "SIGKILL");
      const killedAt = Date.now();
      await until(async () => !(await server.status("dead-runner")).locked, 8000, "the lease to expire");
      expect(Date.now() - killedAt).toBeLessThan(6000);
      const post = await job.step(POST, {
        inputs: base(server, "dead-runner", { mode: "acquire", ttl: "5s" }),
      });
      expect(post.exitCode).toBe(0);
      expect(post.annotations.map((a) => `${a.level}: ${a.message}`).join("\n")).toMatch(
        /warning: .*expired/,
      );
    } finally {
      await job.cleanup();
    }
  }, 30_000);

  it("is stopped by the runner's end-of-job cleanup when post never runs (RUNNER_TRACKING_ID)", async () => {
    const job = newJob();
    const main = await job.step(MAIN, { inputs: base(server, "cleanup", { mode: "acquire", ttl: "5s" }) });
    const pid = Number(main.state["renewer-pid"]);
    const killed = await job.cleanup();
    expect(killed).toContain(pid);
    await until(async () => !(await server.status("cleanup")).locked, 8000, "the lease to expire");
  }, 30_000);

  it("leaves nothing behind when cancelled while waiting (SIGINT), and post releases nothing", async () => {
    const holder = newJob("octo/app", "Holder");
    const cancelled = newJob("octo/app", "Cancelled");
    try {
      await holder.step(MAIN, { inputs: base(server, "cancel", { mode: "acquire" }) });
      const waiting = cancelled.start(MAIN, {
        inputs: base(server, "cancel", { mode: "acquire", timeout: "5m", "poll-interval": "1s" }),
      });
      await sleep(2000);
      waiting.cancel();
      const main = await waiting.result;
      expect(main.exitCode).not.toBe(0);
      expect(main.signal).toBeNull(); // it exited by itself on SIGINT, before SIGTERM
      expect(main.annotations.some((a) => a.level === "error" && /Cancelled/.test(a.message))).toBe(true);
      expect(main.state.phase).toBe("pending");

      const post = await cancelled.step(POST, {
        inputs: base(server, "cancel", { mode: "acquire" }),
        stateScope: "default",
      });
      expect(post.exitCode).toBe(0);
      expect(post.stdout).toContain("Nothing to release");
      expect((await server.status("cancel")).holder_id).toContain("Holder");

      await holder.step(POST, { inputs: base(server, "cancel", { mode: "acquire" }) });
      expect((await server.status("cancel")).locked).toBe(false); // the cancelled job left no lease
    } finally {
      await holder.cleanup();
      await cancelled.cleanup();
    }
  }, 40_000);

  it("fails a timed-out acquire with who holds it, and post releases nothing", async () => {
    const holder = newJob("octo/app", "Long job");
    const late = newJob("octo/app", "Late job");
    try {
      await holder.step(MAIN, { inputs: base(server, "busy", { mode: "acquire", reason: "migration" }) });
      const main = await late.step(MAIN, {
        inputs: base(server, "busy", { mode: "acquire", timeout: "2s", "poll-interval": "1s" }),
      });
      expect(main.exitCode).toBe(1);
      expect(main.outputs.acquired).toBe("false");
      expect(main.outputs.holder).toContain("Long job");
      const failure = main.annotations.find((a) => a.level === "error")?.message ?? "";
      expect(failure).toContain("Long job");
      expect(failure).toContain("(migration)");
      expect(failure).toContain("'timeout'");
      const post = await late.step(POST, { inputs: base(server, "busy", { mode: "acquire" }) });
      expect(post.exitCode).toBe(0);
      expect((await server.status("busy")).holder_id).toContain("Long job");
    } finally {
      await holder.cleanup();
      await late.cleanup();
    }
  }, 30_000);

  it.each<[string, Record<string, string>, RegExp]>([
    ["an unknown mode", { mode: "lock" }, /Input 'mode' must be acquire, wait or release/],
    ["a bad duration", { mode: "acquire", timeout: "10x" }, /Input 'timeout' must be a duration/],
    ["a missing key", { mode: "acquire", key: "" }, /Input 'key' is required/],
    ["a missing url", { mode: "acquire", url: "" }, /Input 'url' is required/],
  ])("fails at once on %s, naming the input", async (_label, inputs, message) => {
    const job = newJob();
    try {
      const started = Date.now();
      const main = await job.step(MAIN, { inputs: base(server, "bad-input", inputs) });
      expect(main.exitCode).toBe(1);
      expect(main.annotations.find((a) => a.level === "error")?.message).toMatch(message);
      expect(Date.now() - started).toBeLessThan(5000);
      const post = await job.step(POST, { inputs: base(server, "bad-input", inputs) });
      expect(post.exitCode).toBe(0);
      expect((await server.status("bad-input")).locked).toBe(false);
    } finally {
      await job.cleanup();
    }
  });

  it("fails on an unreachable server, naming input 'url'", async () => {
    const job = newJob();
    try {
      const main = await job.step(MAIN, {
        inputs: { url: "http://127.0.0.1:9", token: "x", key: "k", mode: "acquire" },
      });
      expect(main.exitCode).toBe(1);
      expect(main.annotations.find((a) => a.level === "error")?.message).toMatch(
        /cannot reach LSS.*input 'url'/,
      );
    } finally {
      await job.cleanup();
    }
  }, 30_000);
});
