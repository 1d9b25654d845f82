/**
 * The built `lss` CLI (dist/cli/index.js) as real processes, against the real server on a real
 * redis-server: mutual exclusion of `lss run`, exit codes, signals, a lost lease, the /locks
 * commands, the lease steps apart, and bad command lines.
 */
import { readFileSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import { connect, createServer as createNetServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { renewEvery } from "../src/client/renew-loop.js";
import { pathTo } from "../src/protocol/paths.js";
import { type LiveServer, startLiveServer, until } from "./support/action-e2e.js";
import { ADMIN_TOKEN } from "./support/app.js";
import { type CliOptions, catches, killGroups, problemLines, runCli, startCli } from "./support/cli.js";
import { freePort } from "./support/ports.js";
import { alive, sleep } from "./support/processes.js";

const { version } = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as {
  version: string;
};

let server: LiveServer;
let dir: string;
/** A port nothing listens on. */
let closedUrl: string;
let opts: CliOptions;

beforeAll(async () => {
  server = await startLiveServer();
  dir = await mkdtemp(join(tmpdir(), "lss-cli-"));
  closedUrl = `http://127.0.0.1:${await freePort()}`;
  opts = { url: server.url, token: ADMIN_TOKEN };
});
afterEach(() => killGroups());
afterAll(async () => {
  killGroups();
  await server?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** `node -e <code>` as a wrapped command (the absolute node, so PATH does not matter). */
const node = (code: string) => [process.execPath, "-e", code];
const file = (name: string) => join(dir, name);
const q = JSON.stringify;

const forceRelease = async (key: string) => {
  const res = await fetch(`${server.url}${pathTo("release", { key })}`, {
    method: "POST",
    headers: { Authorization: `Bearer ${ADMIN_TOKEN}`, "Content-Type": "application/json" },
    body: JSON.stringify({ force: true }),
  });
  expect(res.status).toBe(200);
};

const readMaybe = (path: string) => readFile(path, "utf8").catch(() => "");

/** A wrapped command that logs "start/end <pid> <ms> <fencing token> <key>" around a sleep of `ms`. */
const intervalWriter = (log: string, ms: number) =>
  node(`
    const fs = require("fs");
    const w = (what) => fs.appendFileSync(${q(log)},
      what + " " + process.pid + " " + Date.now() + " " + process.env.LSS_FENCING_TOKEN + " " + process.env.LSS_KEY + "\\n");
    w("start");
    setTimeout(() => w("end"), ${ms});
  `);

interface Interval {
  pid: string;
  start: number;
  end: number;
  fencing: number;
  key: string;
}

function parseIntervals(text: string): Interval[] {
  const byPid = new Map<string, Partial<Interval>>();
  for (const line of text.trim().split("\n")) {
    const [what, pid, ms, fencing, key] = line.split(" ");
    const entry = byPid.get(pid!) ?? { pid };
    if (what === "start") Object.assign(entry, { start: Number(ms), fencing: Number(fencing), key });
    else if (what === "end") entry.end = Number(ms);
    else throw new Error(`unexpected line: ${line}`);
    byPid.set(pid!, entry);
  }
  return [...byPid.values()]
    .map((i) => {
      if (i.start === undefined || i.end === undefined)
        throw new Error(`unfinished run: ${JSON.stringify(i)}`);
      return i as Interval;
    })
    .sort((a, b) => a.start - b.start);
}

async function contend(key: string, contenders: number, holdMs: number) {
  const log = file(`${key}.log`);
  const runs = Array.from({ length: contenders }, () =>
    startCli(
      [
        "run",
        key,
        "--ttl",
        "5s",
        "--timeout",
        "60s",
        "--poll",
        "1s",
        "--holder",
        "contender",
        "--",
        ...intervalWriter(log, holdMs),
      ],
      { ...opts, timeoutMs: 25_000 },
    ),
  );
  const results = await Promise.all(runs.map((r) => r.done));
  for (const r of results) expect(r, r.stderr).toMatchObject({ code: 0, signal: null, stderr: "" });
  const intervals = parseIntervals(await readFile(log, "utf8"));
  expect(intervals).toHaveLength(contenders);
  for (const i of intervals) {
    expect(i.key).toBe(key);
    expect(i.end - i.start).toBeGreaterThanOrEqual(holdMs - 5);
  }
  for (let n = 1; n < intervals.length; n++) {
    const before = intervals[n - 1]!;
    const after = intervals[n]!;
    // No overlap: each run starts only after the previous one ended.
    expect(after.start, `run ${n} started before run ${n - 1} ended`).toBeGreaterThanOrEqual(before.end);
    // And every grant got a larger fencing token.
    expect(after.fencing).toBeGreaterThan(before.fencing);
  }
  expect((await server.status(key)).locked).toBe(false);
  return intervals;
}

/** A TCP proxy to the server that can be cut: "hang" (never answers) or "refuse" (closes at once). */
async function startProxy(targetPort: number) {
  let mode: "pass" | "hang" | "refuse" = "pass";
  const sockets = new Set<Socket>();
  const track = (s: Socket) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
    s.on("error", () => {});
  };
  const proxy = createNetServer((client) => {
    track(client);
    if (mode === "hang") return;
    if (mode === "refuse") return void client.destroy();
    const upstream = connect(targetPort, "127.0.0.1");
    track(upstream);
    upstream.on("close", () => client.destroy());
    client.on("close", () => upstream.destroy());
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((r) => proxy.listen(0, "127.0.0.1", r));
  const { port } = proxy.address() as { port: number };
  const dropAll = () => {
    for (const s of sockets) s.destroy();
  };
  return {
    url: `http://127.0.0.1:${port}`,
    cut(to: "hang" | "refuse") {
      mode = to;
      dropAll();
    },
    close() {
      proxy.close();
      dropAll();
    },
  };
}

/** Runs `lss run <target> [flags] -- <interval writer>` n times at once; their intervals. */
async function together(name: string, target: string, flags: string[], n: number, holdMs: number) {
  const log = file(`${name}.log`);
  const runs = Array.from({ length: n }, () =>
    startCli(
      ["run", target, ...flags, "--ttl", "5s", "--timeout", "60s", "--", ...intervalWriter(log, holdMs)],
      { ...opts, timeoutMs: 25_000 },
    ),
  );
  for (const r of await Promise.all(runs.map((x) => x.done))) expect(r, r.stderr).toMatchObject({ code: 0 });
  return parseIntervals(await readFile(log, "utf8"));
}

/** The most intervals (of one key, or all) running at one moment. */
const mostAtOnce = (intervals: Interval[]) =>
  Math.max(...intervals.map((i) => intervals.filter((j) => j.start <= i.start && i.start < j.end).length));

describe("lss run, shared, counted and pooled", () => {
  it("--shared: runs on one key at the same time", async () => {
    const intervals = await together("shared", "cli-shared", ["--shared"], 3, 1200);
    expect(mostAtOnce(intervals)).toBe(3);
  });

  it("--limit 2: at most two at once, all three run", async () => {
    const intervals = await together("limited", "cli-limited", ["--limit", "2"], 3, 1000);
    expect(intervals).toHaveLength(3);
    expect(mostAtOnce(intervals)).toBe(2);
  });

  it("a pool (keys with commas): each run gets one key, never two runs on one key at once", async () => {
    const intervals = await together("pooled", "cli-p1,cli-p2", [], 3, 1000);
    expect(intervals).toHaveLength(3);
    expect(new Set(intervals.map((i) => i.key))).toEqual(new Set(["cli-p1", "cli-p2"]));
    for (const key of ["cli-p1", "cli-p2"])
      expect(mostAtOnce(intervals.filter((i) => i.key === key))).toBe(1);
    expect(mostAtOnce(intervals)).toBe(2);
  });

  it("acquire of a pool prints the key it got and the token; bad pools and limits are usage errors", async () => {
    const r = await runCli(["acquire", "cli-q1,cli-q2"], opts);
    expect(r.code).toBe(0);
    const [key, token] = r.stdout.trim().split(" ");
    expect(["cli-q1", "cli-q2"]).toContain(key);
    expect(token).toMatch(/^[0-9a-f]{32}$/);
    for (const args of [
      ["acquire", "a,a"],
      ["acquire", "k", "--limit", "0"],
      ["acquire", "k", "--limit", "many"],
      ["run", "k", "--limit", "101", "--", "true"],
    ]) {
      const bad = await runCli(args, opts);
      expect(bad.code, args.join(" ")).toBe(64);
    }
  });
});

describe("lss run", () => {
  it("gives the command the lock's name and fencing token, never the API token", async () => {
    const out = file("env.txt");
    const res = await runCli(
      [
        "run",
        "env-key",
        "--",
        ...node(
          `require("fs").writeFileSync(${q(out)}, [process.env.LSS_TOKEN ?? "none", process.env.LSS_KEY].join(" "))`,
        ),
      ],
      opts,
    );
    expect(res.code).toBe(0);
    expect(await readMaybe(out)).toBe("none env-key");
  });

  it("two runs started together for the same key never overlap, and both run", async () => {
    await contend("run-mutex-2", 2, 1500);
  });

  it("four quick runs started together never overlap", async () => {
    await contend("run-mutex-4", 4, 300);
  });

  it("passes the command's exit code through; a missing command gives 127 and frees the lock", async () => {
    const [ok, seven, fortyTwo, killed, missing] = await Promise.all([
      runCli(["run", "exit-0", "--", ...node("process.exit(0)")], opts),
      runCli(["run", "exit-7", "--", ...node("process.exit(7)")], opts),
      runCli(["run", "exit-42", "--", ...node("process.exit(42)")], opts),
      runCli(["run", "exit-sig", "--", ...node('process.kill(process.pid, "SIGKILL")')], opts),
      runCli(["run", "exit-127", "--", "/nonexistent/lss-no-such-command", "arg"], opts),
    ]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(seven.code, seven.stderr).toBe(7);
    expect(fortyTwo.code, fortyTwo.stderr).toBe(42);
    expect(killed.code, killed.stderr).toBe(128 + 9);
    expect(missing.code, missing.stderr).toBe(127);
    expect(missing.stderr).toMatch(/cannot run \/nonexistent\/lss-no-such-command/);
    for (const key of ["exit-0", "exit-7", "exit-42", "exit-sig", "exit-127"]) {
      expect((await server.status(key)).locked, key).toBe(false);
    }
    // Freed, not merely expiring: another run takes it at once.
    const again = await runCli(["run", "exit-127", "--timeout", "0", "--", ...node("")], opts);
    expect(again.code, again.stderr).toBe(0);
  });

  it("forwards SIGTERM to the command, exits with its code, and releases the lock", async () => {
    const key = "run-sigterm";
    const ready = file("sigterm.ready");
    const marker = file("sigterm.marker");
    const run = startCli(
      [
        "run",
        key,
        "--ttl",
        "5s",
        "--",
        ...node(`
          const fs = require("fs");
          process.on("SIGTERM", () => { fs.writeFileSync(${q(marker)}, "SIGTERM " + process.pid); process.exit(0); });
          fs.writeFileSync(${q(ready)}, String(process.pid));
          setTimeout(() => {}, 60000);
        `),
      ],
      { ...opts, timeoutMs: 10_000 },
    );
    await until(async () => (await readMaybe(ready)) !== "", 10_000, "the command to start");
    const childPid = Number(await readFile(ready, "utf8"));
    expect((await server.status(key)).locked).toBe(true);
    // Only lss gets the signal (it leads its own process group; the command is not signalled by us).
    process.kill(run.pid, "SIGTERM");
    const r = await run.done;
    expect(r, r.stderr).toMatchObject({ code: 0, signal: null });
    expect(await readMaybe(marker)).toBe(`SIGTERM ${childPid}`);
    expect(alive(childPid)).toBe(false);
    expect((await server.status(key)).locked).toBe(false);
  });

  it("a command killed by the forwarded SIGTERM: lss exits 143 and releases the lock", async () => {
    const key = "run-sigterm-default";
    const ready = file("sigterm-default.ready");
    const run = startCli(
      [
        "run",
        key,
        "--",
        ...node(
          `require("fs").writeFileSync(${q(ready)}, String(process.pid)); setTimeout(() => {}, 60000);`,
        ),
      ],
      { ...opts, timeoutMs: 10_000 },
    );
    await until(async () => (await readMaybe(ready)) !== "", 10_000, "the command to start");
    const childPid = Number(await readFile(ready, "utf8"));
    process.kill(run.pid, "SIGTERM");
    const r = await run.done;
    expect(r, r.stderr).toMatchObject({ code: 128 + 15, signal: null });
    expect(alive(childPid)).toBe(false);
    expect((await server.status(key)).locked).toBe(false);
  });

  it("a held key: run --timeout 0 exits 75 naming the holder; SIGINT while waiting never runs the command", async () => {
    const key = "run-held";
    const blocker = await runCli(["acquire", key, "--ttl", "30s", "--holder", "the-blocker"], opts);
    expect(blocker.code, blocker.stderr).toBe(0);
    const ran = file("held.ran");
    const command = node(`require("fs").writeFileSync(${q(ran)}, "ran")`);

    const once = await runCli(["run", key, "--timeout", "0", "--", ...command], opts);
    expect(once.code).toBe(75);
    expect(once.stderr).toMatch(/run-held: held by the-blocker/);

    const waiting = startCli(["run", key, "--timeout", "30s", "--poll", "1s", "--", ...command], {
      ...opts,
      timeoutMs: 10_000,
    });
    // Once lss handles SIGINT it is waiting (or about to ask); give it time to ask once or twice.
    await until(async () => catches(waiting.pid, "SIGINT"), 10_000, "lss to handle SIGINT");
    await sleep(1000);
    expect(waiting.child.exitCode).toBe(null);
    process.kill(waiting.pid, "SIGINT");
    const r = await waiting.done;
    expect(r.code, r.stderr).toBe(130);
    expect(r.stderr).toMatch(/interrupted while waiting for run-held/);
    expect(await readMaybe(ran)).toBe("");
    // The blocker still holds it: the interrupted waiter took nothing and freed nothing.
    expect(await server.status(key)).toMatchObject({ locked: true, holder_id: "the-blocker" });
  });

  it("--priority: a later waiter of a higher priority runs first; a bad one is a usage error", async () => {
    const key = "run-priority";
    const blocker = await runCli(["acquire", key, "--ttl", "30s", "--holder", "blocker"], opts);
    expect(blocker.code, blocker.stderr).toBe(0);
    const log = file("priority.log");
    const append = (name: string) => node(`require("fs").appendFileSync(${q(log)}, ${q(`${name}\n`)})`);
    const normal = startCli(["run", key, "--timeout", "30s", "--", ...append("normal")], {
      ...opts,
      timeoutMs: 30_000,
    });
    await until(
      async () => ((await server.status(key)) as unknown as { waiting: number }).waiting === 1,
      10_000,
      "the first waiter",
    );
    const hotfix = startCli(["run", key, "--timeout", "30s", "--priority", "10", "--", ...append("hotfix")], {
      ...opts,
      timeoutMs: 30_000,
    });
    await until(
      async () => ((await server.status(key)) as unknown as { waiting: number }).waiting === 2,
      10_000,
      "the second waiter",
    );
    expect((await runCli(["release", key, "--lease-token", blocker.stdout.trim()], opts)).code).toBe(0);
    expect((await hotfix.done).code).toBe(0);
    expect((await normal.done).code).toBe(0);
    expect((await readMaybe(log)).trim().split("\n")).toEqual(["hotfix", "normal"]);
    const bad = await runCli(["run", key, "--priority", "101", "--", ...append("never")], opts);
    expect(bad.code).toBe(64);
    expect(bad.stderr).toMatch(/--priority must be a whole number from -100 to 100/);
  }, 40_000);

  it("--supersede: an older waiter of the group exits 77 without running its command, naming the newer one; a bad group is a usage error", async () => {
    const key = "run-supersede";
    const blocker = await runCli(["acquire", key, "--ttl", "30s", "--holder", "e2e"], opts);
    expect(blocker.code, blocker.stderr).toBe(0);
    const log = file("supersede.log");
    const append = (name: string) => node(`require("fs").appendFileSync(${q(log)}, ${q(`${name}\n`)})`);
    const waiting = (n: number) =>
      until(
        async () => ((await server.status(key)) as unknown as { waiting: number }).waiting === n,
        10_000,
        `${n} waiter(s)`,
      );
    const older = startCli(
      [
        "run",
        key,
        "--timeout",
        "30s",
        "--supersede",
        "deploy/main",
        "--holder",
        "deploy-1",
        "--",
        ...append("deploy-1"),
      ],
      { ...opts, timeoutMs: 30_000 },
    );
    await waiting(1);
    const newer = startCli(
      [
        "run",
        key,
        "--timeout",
        "30s",
        "--supersede",
        "deploy/main",
        "--holder",
        "deploy-2",
        "--",
        ...append("deploy-2"),
      ],
      { ...opts, timeoutMs: 30_000 },
    );
    const first = await older.done;
    expect(first.code).toBe(77);
    expect(first.stderr).toMatch(
      /superseded on run-supersede: a newer waiter of its group \(deploy-2\) took its place in the queue; the command was not run/,
    );
    await waiting(1);
    expect((await runCli(["release", key, "--lease-token", blocker.stdout.trim()], opts)).code).toBe(0);
    expect((await newer.done).code).toBe(0);
    expect((await readMaybe(log)).trim().split("\n")).toEqual(["deploy-2"]);
    const bad = await runCli(["run", key, "--supersede", "g".repeat(129), "--", ...append("never")], opts);
    expect(bad.code).toBe(64);
    expect(bad.stderr).toMatch(/supersede must be at most 128 characters/);
  }, 40_000);

  it("--if-held skip: a held key exits 0 without running the command; fail exits 75 at once; both name the holder", async () => {
    const key = "run-if-held";
    const blocker = await runCli(["acquire", key, "--ttl", "30s", "--holder", "the-migration"], opts);
    expect(blocker.code, blocker.stderr).toBe(0);
    const ran = file("if-held.ran");
    const command = node(`require("fs").writeFileSync(${q(ran)}, "ran")`);
    // The default --timeout of run (10m) does not apply: each tries once.
    const skipped = await runCli(["run", key, "--if-held", "skip", "--", ...command], opts);
    expect(skipped.code, skipped.stderr).toBe(0);
    expect(skipped.stderr).toMatch(
      /run-if-held is held by the-migration.*: skipped \(--if-held skip\); the command was not run/,
    );
    const failed = await runCli(["run", key, "--if-held", "fail", "--", ...command], opts);
    expect(failed.code).toBe(75);
    expect(failed.stderr).toMatch(/run-if-held is held by the-migration.*\(--if-held fail\)/);
    expect(skipped.ms + failed.ms).toBeLessThan(10_000);
    expect(await readMaybe(ran)).toBe("");
    // acquire: skip would read as acquired in a script (exit 0, no token): refused.
    const acquire = await runCli(["acquire", key, "--if-held", "skip"], opts);
    expect(acquire).toMatchObject({ code: 64, stdout: "" });
    expect(acquire.stderr).toMatch(/acquire --if-held skip would exit 0 without a lease: use --if-held fail/);
    // A free key: skip runs the command as usual.
    const free = await runCli(["run", `${key}-free`, "--if-held", "skip", "--", ...command], opts);
    expect(free.code, free.stderr).toBe(0);
    expect(await readMaybe(ran)).toBe("ran");
    const bad = await runCli(["run", key, "--if-held", "queue", "--", ...command], opts);
    expect(bad.code).toBe(64);
    expect(bad.stderr).toMatch(/'queue' is not one of wait, fail or skip/);
  });

  it("stops a command that ignores SIGTERM with SIGKILL after --grace when the lease is lost, and exits 76", async () => {
    const key = "run-lost";
    const ready = file("lost.ready");
    const marker = file("lost.marker");
    const ttlMs = 5000;
    const graceMs = 1000;
    const run = startCli(
      [
        "run",
        key,
        "--ttl",
        "5s",
        "--grace",
        "1s",
        "--",
        ...node(`
          const fs = require("fs");
          process.on("SIGTERM", () => fs.appendFileSync(${q(marker)}, "TERM " + Date.now() + "\\n"));
          fs.writeFileSync(${q(ready)}, String(process.pid));
          setTimeout(() => {}, 60000);
        `),
      ],
      { ...opts, timeoutMs: 15_000 },
    );
    await until(async () => (await readMaybe(ready)) !== "", 10_000, "the command to start");
    const childPid = Number(await readFile(ready, "utf8"));
    expect((await server.status(key)).locked).toBe(true);

    await forceRelease(key);
    const releasedAt = Date.now();
    const r = await run.done;
    expect(r.code, r.stderr).toBe(76);
    // The next renewal (the cadence of what is left before lss run's margin, grace + 0.5 s) finds it gone.
    expect(r.exitedAt - releasedAt).toBeLessThanOrEqual(renewEvery(ttlMs - graceMs - 500) + graceMs + 1500);
    expect(r.stderr).toMatch(/lease on run-lost was lost/);
    expect(alive(childPid)).toBe(false);
    // It was asked first (SIGTERM, ignored), and killed only after the grace period.
    const terms = (await readMaybe(marker)).trim().split("\n").filter(Boolean);
    expect(terms).toHaveLength(1);
    const termAt = Number(terms[0]!.split(" ")[1]);
    expect(r.exitedAt - termAt).toBeGreaterThanOrEqual(graceMs - 300);
  });

  it("stops a command that honours SIGTERM with SIGTERM alone when the lease is lost", async () => {
    const key = "run-lost-term";
    const ready = file("lost-term.ready");
    const marker = file("lost-term.marker");
    const run = startCli(
      [
        "run",
        key,
        "--ttl",
        "5s",
        "--grace",
        "30s",
        "--",
        ...node(`
          const fs = require("fs");
          process.on("SIGTERM", () => { fs.writeFileSync(${q(marker)}, "TERM"); process.exit(0); });
          fs.writeFileSync(${q(ready)}, String(process.pid));
          setTimeout(() => {}, 60000);
        `),
      ],
      { ...opts, timeoutMs: 15_000 },
    );
    await until(async () => (await readMaybe(ready)) !== "", 10_000, "the command to start");
    const childPid = Number(await readFile(ready, "utf8"));
    await forceRelease(key);
    const releasedAt = Date.now();
    const r = await run.done;
    expect(r.code, r.stderr).toBe(76);
    // Far sooner than the 30 s grace: SIGTERM did it.
    expect(r.exitedAt - releasedAt).toBeLessThanOrEqual(5000 / 3 + 1500);
    expect(await readMaybe(marker)).toBe("TERM");
    expect(r.stderr).toMatch(/lease on run-lost-term was lost/);
    expect(alive(childPid)).toBe(false);
  });

  it("when the server stops answering, the command is stopped before its lease expires on the server", async () => {
    // Through a TCP proxy that we cut: "hang" accepts connections and never answers, "refuse"
    // closes them at once. Either way nothing renews, so the lease expires on the server
    // (and another `lss run` may take the key): by then the command must be gone.
    const scenario = async (mode: "hang" | "refuse") => {
      const key = `run-outage-${mode}`;
      const ready = file(`outage-${mode}.ready`);
      const proxy = await startProxy(Number(new URL(server.url).port));
      try {
        startCli(
          [
            "run",
            key,
            "--ttl",
            "5s",
            "--grace",
            "1s",
            "--",
            ...node(
              `require("fs").writeFileSync(${q(ready)}, String(process.pid)); setTimeout(() => {}, 60000);`,
            ),
          ],
          { ...opts, url: proxy.url, timeoutMs: 60_000 },
        );
        await until(async () => (await readMaybe(ready)) !== "", 10_000, "the command to start");
        const childPid = Number(await readFile(ready, "utf8"));
        const cutAt = Date.now();
        proxy.cut(mode);
        await until(async () => !(await server.status(key)).locked, 10_000, `the lease on ${key} to expire`);
        const expiredAfter = Date.now() - cutAt;
        await sleep(300);
        return { mode, expiredAfter, commandAlive: alive(childPid) };
      } finally {
        proxy.close();
      }
    };
    const results = await Promise.all([scenario("hang"), scenario("refuse")]);
    expect(results, "the command ran on after its lease had expired on the server").toEqual([
      expect.objectContaining({ mode: "hang", commandAlive: false }),
      expect.objectContaining({ mode: "refuse", commandAlive: false }),
    ]);
  });
});

async function createStateLock(locked: boolean) {
  const res = await fetch(`${server.url}/locks${locked ? "?l=true" : ""}`, { method: "POST" });
  expect(res.status).toBe(200);
  return (await res.json()) as { id: string; key: string };
}

/** A server that answers every request with this status and body. */
async function fakeServer(status: number, body: string, type: string) {
  const s: Server = createServer((_req, res) => {
    res.writeHead(status, { "Content-Type": type });
    res.end(body);
  });
  const port = await freePort();
  await new Promise<void>((r) => s.listen(port, "127.0.0.1", r));
  return { url: `http://127.0.0.1:${port}`, close: () => new Promise((r) => s.close(r)) };
}

describe("lss check and the /locks commands", () => {
  it("check exits 0 unlocked, 1 locked, 2 unknown, 3 when the server is down — never 0 then", async () => {
    const unlocked = await createStateLock(false);
    const locked = await createStateLock(true);
    const unavailable = await fakeServer(503, '{"status":"error"}', "application/json");
    const html = await fakeServer(200, "<html>a login page</html>", "text/html");
    try {
      const [u, l, unknown, down, busy, wrong] = await Promise.all([
        runCli(["check", unlocked.id], opts),
        runCli(["check", locked.id], opts),
        runCli(["check", "no-such-lock-id"], opts),
        runCli(["check", unlocked.id], { ...opts, url: closedUrl }),
        runCli(["check", unlocked.id], { ...opts, url: unavailable.url }),
        runCli(["check", unlocked.id], { ...opts, url: html.url }),
      ]);
      expect(u.code, u.stderr).toBe(0);
      expect(u.stdout.trim()).toBe(`${unlocked.id} is unlocked`);
      expect(l.code, l.stderr).toBe(1);
      expect(l.stdout.trim()).toBe(`${locked.id} is locked`);
      expect(unknown.code, unknown.stderr).toBe(2);
      expect(unknown.stdout.trim()).toBe("no-such-lock-id is unknown");

      expect(down.code).toBe(3);
      expect(down.stdout).toBe("");
      expect(down.stderr).toMatch(/cannot reach/);
      // Any server that does not answer as LSS does is a failure too, never "unlocked".
      expect(busy.code, busy.stderr).toBe(3);
      expect(busy.stdout).toBe("");
      expect(busy.stderr).toMatch(/503/);
      expect(wrong.code, wrong.stderr).toBe(3);
      expect(wrong.stdout).toBe("");
      expect(wrong.stderr).toMatch(/not JSON/);
    } finally {
      await unavailable.close();
      await html.close();
    }
  });

  it("create --locked --json, unlock, lock --e, check round trip; a wrong --k is refused with exit 3", async () => {
    const created = await runCli(["create", "--locked", "--json"], opts);
    expect(created.code, created.stderr).toBe(0);
    const lock = JSON.parse(created.stdout) as { id: string; key: string; locked: boolean };
    expect(lock.locked).toBe(true);
    expect(lock.id).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(lock.key).toBeTruthy();
    const check = async () => (await runCli(["check", lock.id], opts)).code;
    expect(await check()).toBe(1);

    const unlocked = await runCli(["unlock", lock.id, "--k", lock.key], opts);
    expect(unlocked.code, unlocked.stderr).toBe(0);
    expect(unlocked.stdout.trim()).toBe(`${lock.id} unlocked`);
    expect(await check()).toBe(0);

    const locked = await runCli(["lock", lock.id, "--k", lock.key, "--e", "60"], opts);
    expect(locked.code, locked.stderr).toBe(0);
    expect(locked.stdout.trim()).toBe(`${lock.id} locked`);
    expect(await check()).toBe(1);
    // --e 60 reached the server: it expires within a minute.
    const res = await fetch(`${server.url}/locks/${lock.id}`);
    expect(res.status).toBe(423);
    const { expires_in_ms } = (await res.json()) as { expires_in_ms: number };
    expect(expires_in_ms).toBeGreaterThan(50_000);
    expect(expires_in_ms).toBeLessThanOrEqual(60_000);

    const wrong = await runCli(["unlock", lock.id, "--k", "not-the-key"], opts);
    expect(wrong.code).toBe(3);
    expect(wrong.stdout).toBe("");
    expect(problemLines(wrong.stderr)).toHaveLength(1);
    expect(wrong.stderr).toContain(lock.id);
    expect(wrong.stderr).toMatch(/forbidden|wrong|only its lock key/i);
    expect(await check()).toBe(1);

    const plain = await runCli(["create"], opts);
    expect(plain.code, plain.stderr).toBe(0);
    const [id, key, ...rest] = plain.stdout.trim().split(" ");
    expect(rest).toEqual([]);
    expect((await runCli(["check", id!], opts)).code).toBe(0);
    expect((await runCli(["lock", id!, "--k", key!], opts)).code).toBe(0);
    expect((await runCli(["check", id!], opts)).code).toBe(1);
  });
});

describe("the lease steps apart", () => {
  it("acquire, a second acquire, status, renew, wait, release", async () => {
    const key = "steps";
    const first = await runCli(
      ["acquire", key, "--ttl", "30s", "--holder", "cli-test-holder", "--reason", "nightly"],
      opts,
    );
    expect(first.code, first.stderr).toBe(0);
    expect(first.stderr).toBe("");
    expect(first.stdout).toMatch(/^\S+\n$/);
    const token = first.stdout.trim();

    const second = await runCli(["acquire", key], opts);
    expect(second.code).toBe(75);
    expect(second.stdout).toBe("");
    expect(second.stderr).toMatch(/held by cli-test-holder \(nightly\)/);

    const status = await runCli(["status", key, "--json"], opts);
    expect(status.code, status.stderr).toBe(0);
    const s = JSON.parse(status.stdout) as { locked: boolean; holder_id: string; expires_in_ms: number };
    expect(s).toMatchObject({ locked: true, holder_id: "cli-test-holder" });
    expect(s.expires_in_ms).toBeLessThanOrEqual(30_000);
    expect(status.stdout).not.toContain(token);
    const plainStatus = await runCli(["status", key], opts);
    expect(plainStatus.stdout).toMatch(/^steps is held by cli-test-holder \(nightly\)/);

    const renewed = await runCli(["renew", key, "--lease-token", token, "--ttl", "60s"], opts);
    expect(renewed.code, renewed.stderr).toBe(0);
    expect(renewed.stdout).toMatch(/^steps renewed until /);
    const after = JSON.parse((await runCli(["status", key, "--json"], opts)).stdout) as {
      expires_in_ms: number;
    };
    expect(after.expires_in_ms).toBeGreaterThan(30_000);

    const waited = await runCli(["wait", key, "--timeout", "2s", "--poll", "1s"], opts);
    expect(waited.code).toBe(75);
    expect(waited.ms).toBeGreaterThanOrEqual(1900);
    expect(waited.stderr).toMatch(/lss: timed out after 2s waiting for steps: held by cli-test-holder/);

    const released = await runCli(["release", key, "--lease-token", token], opts);
    expect(released.code, released.stderr).toBe(0);
    expect(released.stdout.trim()).toBe("steps released");
    expect((await server.status(key)).locked).toBe(false);
    const free = await runCli(["status", key], opts);
    expect(free.code).toBe(0);
    expect(free.stdout.trim()).toBe("steps is free");
    const freeJson = JSON.parse((await runCli(["status", key, "--json"], opts)).stdout) as {
      locked: boolean;
    };
    expect(freeJson.locked).toBe(false);

    const waitFree = await runCli(["wait", key, "--timeout", "2s"], opts);
    expect(waitFree.code, waitFree.stderr).toBe(0);
    expect(waitFree.stdout.trim()).toBe("steps is free");

    // The released lease cannot be renewed.
    const stale = await runCli(["renew", key, "--lease-token", token], opts);
    expect(stale.code).toBe(3);
    expect(stale.stderr).toMatch(/expired or was released/);
  });

  it("history shows who held a key, why, for how long and by which token, newest first; list shows the keys", async () => {
    const key = "cli-history/qa";
    for (const holder of ["first-job", "second-job"]) {
      const got = await runCli(["acquire", key, "--ttl", "30s", "--holder", holder, "--reason", "e2e"], opts);
      expect(got.code, got.stderr).toBe(0);
      const rel = await runCli(["release", key, "--lease-token", got.stdout.trim()], opts);
      expect(rel.code, rel.stderr).toBe(0);
    }
    const plain = await runCli(["history", key], opts);
    expect(plain.code, plain.stderr).toBe(0);
    const lines = plain.stdout.trim().split("\n");
    expect(lines).toHaveLength(4);
    expect(lines[0]).toMatch(
      /^\S+Z {2}released +second-job \(e2e\) fencing token \d+ after \S+ by token admin$/,
    );
    expect(lines[3]).toMatch(/granted +first-job \(e2e\)/);
    const page = await runCli(["history", key, "--limit", "3", "--json"], opts);
    const json = JSON.parse(page.stdout) as { events: unknown[]; next_cursor: string };
    expect(json.events).toHaveLength(3);
    const older = await runCli(["history", key, "--limit", "3", "--cursor", json.next_cursor], opts);
    expect(older.stdout.trim().split("\n")).toEqual([lines[3]]);
    expect((await runCli(["history", "never-used-key"], opts)).stdout.trim()).toBe(
      "never-used-key has no history",
    );

    const held = await runCli(["acquire", "cli-history/held", "--ttl", "30s", "--holder", "lister"], opts);
    const listed = await runCli(["list", "--prefix", "cli-history/"], opts);
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stdout.trim().split("\n")).toEqual([
      expect.stringMatching(/^cli-history\/held: held by lister since \S+, expires in /),
      "cli-history/qa: free",
    ]);
    const listedJson = JSON.parse(
      (await runCli(["list", "--prefix", "cli-history/", "--json"], opts)).stdout,
    );
    expect(listedJson.locks.map((l: { key: string }) => l.key)).toEqual([
      "cli-history/held",
      "cli-history/qa",
    ]);
    await runCli(["release", "cli-history/held", "--lease-token", held.stdout.trim()], opts);
  });
});

describe("bad input", () => {
  const cases: { name: string; args: string[]; url?: string | null; says: RegExp }[] = [
    { name: "an unknown command", args: ["frobnicate"], says: /unknown command 'frobnicate'/ },
    { name: "a bad --ttl on run", args: ["run", "k", "--ttl", "10x", "--", "true"], says: /'10x'.*duration/ },
    { name: "a bad --ttl on acquire", args: ["acquire", "k", "--ttl", "10x"], says: /'10x'.*duration/ },
    { name: "run without a key", args: ["run"], says: /missing required argument 'key'/ },
    { name: "run without a command", args: ["run", "k"], says: /missing required argument 'command'/ },
    { name: "release without a token", args: ["release", "k"], says: /--lease-token or --force/ },
    {
      name: "release with both",
      args: ["release", "k", "--lease-token", "t", "--force"],
      says: /--lease-token or --force/,
    },
    { name: "lock without --k", args: ["lock", "some-id"], says: /--k/ },
    { name: "history without a key", args: ["history"], says: /missing required argument 'key'/ },
    {
      name: "history --limit 0",
      args: ["history", "k", "--limit", "0"],
      says: /--limit must be a whole number from 1 to 100/,
    },
    {
      name: "list --limit 101",
      args: ["list", "--limit", "101"],
      says: /--limit must be a whole number from 1 to 100/,
    },
    { name: "no LSS_URL", args: ["status", "k"], url: null, says: /LSS_URL/ },
    { name: "a URL that is not http", args: ["status", "k"], url: "ftp://example.com", says: /http/ },
  ];
  it.each(cases)("$name: exit 64 with one line naming the problem", async ({ args, url, says }) => {
    const r = await runCli(args, { ...opts, url: url === undefined ? server.url : url });
    expect(r.code, r.stderr).toBe(64);
    expect(r.stdout).toBe("");
    const lines = problemLines(r.stderr);
    expect(lines, r.stderr).toHaveLength(1);
    expect(lines[0]).toMatch(says);
  });

  it("an API token that cannot be a header: says so, never prints the token", async () => {
    const r = await runCli(["status", "k"], { ...opts, token: "lss_secret part-two" });
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/token is not a valid header value/);
    expect(r.stderr).not.toContain("secret");
    expect(r.stderr).not.toContain("part-two");
  });

  it("an unreachable server: exit 3, 'cannot reach'", async () => {
    const r = await runCli(["status", "k"], { ...opts, url: closedUrl });
    expect(r.code).toBe(3);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(/cannot reach/);
  });

  it("--help for every command exits 0 and prints its usage", async () => {
    const commands = [
      "run",
      "acquire",
      "renew",
      "release",
      "status",
      "wait",
      "create",
      "lock",
      "unlock",
      "check",
      "history",
      "list",
    ];
    const results = await Promise.all(commands.map((c) => runCli([c, "--help"], { url: null })));
    commands.forEach((c, n) => {
      const r = results[n]!;
      expect(r.code, `${c}: ${r.stderr}`).toBe(0);
      expect(r.stdout, c).toContain(`Usage: lss ${c} `);
    });
    const top = await runCli(["--help"], { url: null });
    expect(top.code).toBe(0);
    expect(top.stdout).toContain("Usage: lss ");
    for (const c of commands) expect(top.stdout).toMatch(new RegExp(`^\\s+${c}\\b`, "m"));
  });
});

it("lss --version prints the package version", async () => {
  for (const flag of ["--version", "-V"]) {
    const r = await runCli([flag], { url: null });
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(version);
  }
});
