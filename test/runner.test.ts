/** The GitHub Actions runner emulation of test/support/runner.ts, proven with throwaway step scripts. */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  actionInputDefaults,
  isAlive,
  Job,
  NODE24,
  parseAnnotations,
  parseFileCommands,
} from "./support/runner.js";

const CORE_STEP = "test/support/fixtures/core-step.mjs";

let scripts: string;
const jobs: Job[] = [];
const strays: ChildProcess[] = [];

function job(opts?: ConstructorParameters<typeof Job>[0]): Job {
  const j = new Job(opts);
  jobs.push(j);
  return j;
}

function script(name: string, source: string): string {
  const path = join(scripts, name);
  writeFileSync(path, source);
  return path;
}

async function waitFor(what: string, check: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

// Appends to the runner's files directly, in @actions/core's format (name<<ghadelimiter_<uuid>).
const FILES_STEP = `
import { appendFileSync } from "node:fs";
import { randomUUID } from "node:crypto";
const put = (file, name, value) => {
  const d = "ghadelimiter_" + randomUUID();
  appendFileSync(process.env[file], name + "<<" + d + "\\n" + value + "\\n" + d + "\\n");
};
const tag = process.env.INPUT_TAG ?? "";
put("GITHUB_OUTPUT", "token", process.env["INPUT_FENCING-TOKEN"] ?? "(unset)");
put("GITHUB_OUTPUT", "spaced", process.env.INPUT_LOCK_KEY ?? "(unset)");
put("GITHUB_OUTPUT", "multi", "first\\nsecond = x << y\\n");
put("GITHUB_OUTPUT", "empty", "");
appendFileSync(process.env.GITHUB_OUTPUT, "legacy=plain = value\\n");
put("GITHUB_OUTPUT", "env", JSON.stringify(process.env));
put("GITHUB_OUTPUT", "cwd", process.cwd());
put("GITHUB_OUTPUT", "node", process.version);
put("GITHUB_OUTPUT", "seen-before", process.env.STATE_seen ?? "(none)");
put("GITHUB_STATE", "seen", (process.env.STATE_seen ? process.env.STATE_seen + "," : "") + tag);
console.log("::error file=src/a.ts,line=3,title=Bad%3A thing%2C really::boom%0Atwo%25");
console.log("::warning::just a warning");
console.log("::notice::fyi");
console.log("::debug::not an annotation");
process.exitCode = Number(process.env["INPUT_EXIT-CODE"] || 0);
`;

// Installs its handlers first thing, then says it is ready; logs every signal it gets.
const SIGNALS_STEP = `
import { appendFileSync, writeFileSync } from "node:fs";
const log = process.env.SIGNAL_LOG;
const start = Date.now();
const ignore = (process.env.INPUT_IGNORE ?? "").split(",").filter(Boolean);
for (const sig of ["SIGINT", "SIGTERM"]) {
  if (ignore.includes(sig)) process.on(sig, () => appendFileSync(log, sig + " " + (Date.now() - start) + "\\n"));
}
if (process.env.INPUT_TRAP === "true") {
  process.on("SIGINT", () => {
    writeFileSync(process.env.MARKER, "got SIGINT");
    process.exit(0);
  });
}
writeFileSync(process.env.READY, "ready");
setInterval(() => {}, 1000);
`;

// Leaves a detached grandchild behind (as a background renewer would) and reports its pid.
const SPAWNER_STEP = `
import { spawn } from "node:child_process";
import { appendFileSync } from "node:fs";
const child = spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)"], { detached: true, stdio: "ignore" });
child.unref();
appendFileSync(process.env.GITHUB_OUTPUT, "grandchild=" + child.pid + "\\n");
`;

beforeAll(() => {
  scripts = mkdtempSync(join(tmpdir(), "runner-test-"));
});

afterAll(async () => {
  for (const j of jobs) await j.cleanup();
  for (const s of strays) s.kill("SIGKILL");
  rmSync(scripts, { recursive: true, force: true });
});

describe("NODE24", () => {
  it("is a Node 24 binary", async () => {
    const child = spawn(NODE24, ["-p", "process.version"]);
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    await new Promise((r) => child.on("close", r));
    expect(out.trim()).toMatch(/^v24\./);
  });
});

describe("file commands and workflow commands", () => {
  it("parses heredocs (LF and CRLF), empty values and legacy name=value lines", () => {
    const text =
      "a<<EOF\nline 1\nline 2\nEOF\n" +
      "b<<ghadelimiter_x\r\nwin\r\nghadelimiter_x\r\n" +
      "empty<<D\nD\n" +
      "\n" +
      "legacy=x=y<<z\n" +
      "blank<<D\n\nD\n";
    expect(parseFileCommands(text)).toEqual({
      a: "line 1\nline 2",
      b: "win",
      empty: "",
      legacy: "x=y<<z",
      blank: "",
    });
    expect(parseFileCommands("")).toEqual({});
    expect(() => parseFileCommands("a<<EOF\nvalue\n")).toThrow(/Matching delimiter not found 'EOF'/);
    expect(() => parseFileCommands("no separator\n")).toThrow(/Invalid format/);
    expect(() => parseFileCommands("=value\n")).toThrow(/Name must not be empty/);
  });

  it("parses annotations, unescaping data and properties, and honours stop-commands", () => {
    const stdout = [
      "plain log line",
      "::error::a%0Ab%0D%25 done",
      "  ::warning file=x.ts,line=1,title=a%3Ab%2Cc::careful",
      "::stop-commands::pause123",
      "::error::ignored while stopped",
      "::pause123::",
      "::notice::back",
      "::debug::no",
      "::group::no",
    ].join("\n");
    expect(parseAnnotations(stdout)).toEqual([
      { level: "error", message: "a\nb\r% done", properties: {} },
      { level: "warning", message: "careful", properties: { file: "x.ts", line: "1", title: "a:b,c" } },
      { level: "notice", message: "back", properties: {} },
    ]);
  });

  it("reads input defaults from an action.yml", () => {
    const yml = script(
      "action.yml",
      [
        "name: x",
        "description: >-",
        "  folded",
        "inputs:",
        "  mode:",
        '    description: "no default"',
        "    required: true",
        "  ttl:",
        "    description: x",
        '    default: "60s"',
        "  force:",
        "    default: false # a comment",
        "  single:",
        "    default: 'it''s'",
        "outputs:",
        "  ttl:",
        "    default: nope",
        "runs:",
        "  using: node24",
      ].join("\n"),
    );
    expect(actionInputDefaults(yml)).toEqual({ ttl: "60s", force: "false", single: "it's" });
  });
});

describe("steps", () => {
  it("passes inputs, a clean env and parses outputs, state and annotations", async () => {
    const entry = script("files.mjs", FILES_STEP);
    const j = job({ env: { GITHUB_REPOSITORY: "me/mine" }, inputDefaults: { "lock key": "dflt", tag: "d" } });
    const r = await j.step(entry, {
      inputs: { "fencing-token": "42", tag: "one" },
      env: { EXTRA: "yes" },
    });
    expect(r.stderr).toBe("");
    expect(r.exitCode).toBe(0);
    expect(r.signal).toBeNull();
    expect(r.outputs.node).toMatch(/^v24\./);
    expect(r.outputs.token).toBe("42");
    expect(r.outputs.spaced).toBe("dflt");
    expect(r.outputs.multi).toBe("first\nsecond = x << y\n");
    expect(r.outputs.empty).toBe("");
    expect(r.outputs.legacy).toBe("plain = value");
    expect(r.outputs["seen-before"]).toBe("(none)");
    expect(r.state).toEqual({ seen: "one" });

    const env = JSON.parse(r.outputs.env!) as Record<string, string>;
    expect(env["INPUT_FENCING-TOKEN"]).toBe("42");
    expect(env.INPUT_LOCK_KEY).toBe("dflt");
    expect(env.INPUT_TAG).toBe("one");
    expect(env.GITHUB_REPOSITORY).toBe("me/mine");
    expect(env.EXTRA).toBe("yes");
    expect(env.RUNNER_TRACKING_ID).toBe(j.trackingId);
    expect(env.GITHUB_STEP_SUMMARY).toBe(j.summaryFile);
    expect(env.RUNNER_TEMP!.startsWith(j.dir)).toBe(true);
    expect(r.outputs.cwd).toBe(env.GITHUB_WORKSPACE);
    for (const name of [
      "GITHUB_WORKFLOW",
      "GITHUB_RUN_ID",
      "GITHUB_RUN_ATTEMPT",
      "GITHUB_SERVER_URL",
      "GITHUB_JOB",
      "GITHUB_ACTOR",
      "GITHUB_SHA",
      "GITHUB_REF",
      "GITHUB_EVENT_NAME",
      "GITHUB_ACTION",
      "GITHUB_OUTPUT",
      "GITHUB_STATE",
      "GITHUB_ENV",
      "PATH",
      "HOME",
    ]) {
      expect(env[name], name).toBeTruthy();
    }
    expect(env.CI).toBe("true");
    expect(env.GITHUB_ACTIONS).toBe("true");
    // Nothing leaks from the test process (vitest sets VITEST in its workers).
    expect(process.env.VITEST).toBeDefined();
    expect(env.VITEST).toBeUndefined();
    expect(Object.keys(env).filter((k) => k.startsWith("STATE_"))).toEqual([]);

    expect(r.annotations).toEqual([
      {
        level: "error",
        message: "boom\ntwo%",
        properties: { file: "src/a.ts", line: "3", title: "Bad: thing, really" },
      },
      { level: "warning", message: "just a warning", properties: {} },
      { level: "notice", message: "fyi", properties: {} },
    ]);
  });

  it("keeps saved state per stateScope, gives fresh output files per step and reports exit codes", async () => {
    const entry = script("files.mjs", FILES_STEP);
    const j = job();
    const a1 = await j.step(entry, { inputs: { tag: "a1" }, stateScope: "a" });
    const b1 = await j.step(entry, { inputs: { tag: "b1" }, stateScope: "b" });
    const a2 = await j.step(entry, { inputs: { tag: "a2", "exit-code": "3" }, stateScope: "a" });
    const d1 = await j.step(entry, { inputs: { tag: "d1" } });
    expect(a1.outputs["seen-before"]).toBe("(none)");
    expect(b1.outputs["seen-before"]).toBe("(none)");
    expect(a2.outputs["seen-before"]).toBe("a1");
    expect(a2.state).toEqual({ seen: "a1,a2" });
    expect(a2.exitCode).toBe(3);
    expect(d1.outputs["seen-before"]).toBe("(none)");
    const files = (r: typeof a1) => {
      const env = JSON.parse(r.outputs.env!) as Record<string, string>;
      return [env.GITHUB_OUTPUT, env.GITHUB_STATE, env.GITHUB_ENV];
    };
    expect(new Set([...files(a1), ...files(a2)]).size).toBe(6);
  });

  it("runs @actions/core under Node 24: inputs, outputs, state into the post step, summary, failure", async () => {
    const j = job();
    const inputs = { "fencing-token": " 17 ", "lock key": "qa-env", fail: "true" };
    const main = await j.step(CORE_STEP, { inputs: { ...inputs, phase: "main" }, stateScope: "lss" });
    expect(main.stdout).toContain("node=v24.");
    expect(main.outputs.node).toMatch(/^v24\./);
    expect(main.exitCode).toBe(1);
    expect(main.outputs).toMatchObject({
      "fencing-token": "17", // getInput trims
      "lock-key": "qa-env",
      multi: "line one\nline two\n  indented = with << inside",
    });
    expect(main.state).toEqual({ lease: "lease-for-qa-env", "multi-state": "a\nb" });
    expect(main.summary).toBe("<h2>Lock acquired</h2>\nfencing token 17\n");
    expect(main.annotations).toEqual([
      { level: "warning", message: "careful: 100%\nsecond line", properties: { title: "Heads up, friend" } },
      { level: "notice", message: "a notice", properties: {} },
      { level: "error", message: "it failed\nbadly", properties: {} },
    ]);

    const post = await j.step(CORE_STEP, { inputs: { ...inputs, phase: "post" }, stateScope: "lss" });
    expect(post.exitCode).toBe(0);
    expect(post.outputs.lease).toBe("lease-for-qa-env");
    expect(post.outputs["multi-state"]).toBe("a\nb");
    expect(post.outputs["tracking-id"]).toBe(j.trackingId);
    expect(post.summary).toBe("<h2>Lock acquired</h2>\nfencing token 17\nreleased\n");

    const otherScope = await j.step(CORE_STEP, { inputs: { phase: "post" }, stateScope: "other" });
    expect(otherScope.outputs.lease).toBe("");
  });

  it("fails clearly on a missing entry", () => {
    expect(() => job().start("dist/does-not-exist/index.js", {})).toThrow(/does not exist/);
  });
});

describe("cancellation", () => {
  it("cancelAfterMs sends SIGINT first; a step that traps it exits 0", async () => {
    const entry = script("signals.mjs", SIGNALS_STEP);
    const marker = join(scripts, "marker-trap");
    const ready = join(scripts, "ready-trap");
    const r = await job().step(entry, {
      inputs: { trap: "true" },
      env: { MARKER: marker, READY: ready, SIGNAL_LOG: join(scripts, "log-trap") },
      cancelAfterMs: 1500,
      escalation: { termAfterMs: 200, killAfterMs: 200 },
    });
    expect(existsSync(ready)).toBe(true); // the handler was in place before the SIGINT
    expect(readFileSync(marker, "utf8")).toBe("got SIGINT");
    expect(r.exitCode).toBe(0);
    expect(r.signal).toBeNull();
  });

  it("escalates to SIGTERM for a step that ignores SIGINT", async () => {
    const entry = script("signals.mjs", SIGNALS_STEP);
    const ready = join(scripts, "ready-term");
    const log = join(scripts, "log-term");
    const running = job().start(entry, {
      inputs: { ignore: "SIGINT" },
      env: { READY: ready, SIGNAL_LOG: log },
      escalation: { termAfterMs: 300, killAfterMs: 5000 },
    });
    await waitFor("the step to be ready", () => existsSync(ready));
    const cancelledAt = Date.now();
    running.cancel();
    running.cancel(); // idempotent
    const r = await running.result;
    expect(r.signal).toBe("SIGTERM");
    expect(r.exitCode).toBeNull();
    expect(Date.now() - cancelledAt).toBeGreaterThanOrEqual(290);
    expect(Date.now() - cancelledAt).toBeLessThan(4000);
    expect(readFileSync(log, "utf8")).toMatch(/^SIGINT \d+\n$/);
  });

  it("escalates to SIGKILL for a step that ignores SIGINT and SIGTERM", async () => {
    const entry = script("signals.mjs", SIGNALS_STEP);
    const ready = join(scripts, "ready-kill");
    const log = join(scripts, "log-kill");
    const running = job().start(entry, {
      inputs: { ignore: "SIGINT,SIGTERM" },
      env: { READY: ready, SIGNAL_LOG: log },
      escalation: { termAfterMs: 200, killAfterMs: 200 },
    });
    await waitFor("the step to be ready", () => existsSync(ready));
    const cancelledAt = Date.now();
    running.cancel();
    const r = await running.result;
    expect(r.signal).toBe("SIGKILL");
    expect(Date.now() - cancelledAt).toBeGreaterThanOrEqual(390);
    const lines = readFileSync(log, "utf8").trim().split("\n");
    expect(lines.map((l) => l.split(" ")[0])).toEqual(["SIGINT", "SIGTERM"]);
    const [tInt, tTerm] = lines.map((l) => Number(l.split(" ")[1]));
    expect(tTerm! - tInt!).toBeGreaterThanOrEqual(150);
  });

  it("timeoutMs cancels like the runner (default SIGINT handling ends the step)", async () => {
    const entry = script("signals.mjs", SIGNALS_STEP);
    const r = await job().step(entry, {
      env: { READY: join(scripts, "ready-timeout"), SIGNAL_LOG: join(scripts, "log-timeout") },
      timeoutMs: 800,
      escalation: { termAfterMs: 200, killAfterMs: 200 },
    });
    expect(r.signal).toBe("SIGINT");
  });
});

describe("job cleanup", () => {
  it("kills detached processes carrying the job's tracking id, and nothing else", async () => {
    const entry = script("spawner.mjs", SPAWNER_STEP);
    const j1 = job();
    const j2 = job();
    expect(j1.trackingId).not.toBe(j2.trackingId);
    const [s1, s2] = await Promise.all([j1.step(entry, {}), j2.step(entry, {})]);
    expect(s1.exitCode).toBe(0);
    expect(s2.exitCode).toBe(0);
    const orphan1 = Number(s1.outputs.grandchild);
    const orphan2 = Number(s2.outputs.grandchild);
    expect(isAlive(orphan1)).toBe(true);
    expect(isAlive(orphan2)).toBe(true);

    const unrelated = spawn(NODE24, ["-e", "setInterval(() => {}, 1000)"], {
      env: { PATH: process.env.PATH ?? "" },
      stdio: "ignore",
    });
    strays.push(unrelated);
    await waitFor("the unrelated process", () => unrelated.pid !== undefined && isAlive(unrelated.pid));

    // A step still running at the end of the job is killed too.
    const running = j1.start(script("signals.mjs", SIGNALS_STEP), {
      inputs: { ignore: "SIGINT,SIGTERM" },
      env: { READY: join(scripts, "ready-cleanup"), SIGNAL_LOG: join(scripts, "log-cleanup") },
    });
    await waitFor("the running step", () => existsSync(join(scripts, "ready-cleanup")));

    const killed = await j1.cleanup();
    expect(killed.sort()).toEqual([orphan1, running.pid].sort());
    expect(isAlive(orphan1)).toBe(false);
    expect((await running.result).signal).toBe("SIGKILL");
    expect(existsSync(j1.dir)).toBe(false);
    expect(isAlive(orphan2)).toBe(true);
    expect(isAlive(unrelated.pid!)).toBe(true);

    expect(await j2.cleanup()).toEqual([orphan2]);
    expect(isAlive(orphan2)).toBe(false);
    expect(isAlive(unrelated.pid!)).toBe(true);
    expect(await j2.cleanup()).toEqual([]); // twice is harmless
  });
});
