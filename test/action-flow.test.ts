/**
 * The action's flow, with fakes for the runner (ActionIO), the server (LssClient), the renewer
 * process, the clock and cancellation: runMain (acquire, wait, release), runPost, runRenewer and
 * waitFor. The end-to-end suites run the same code against a real server; these pin the exact
 * outputs, saved state, log lines and failures, including the order of the steps that matter.
 *
 * runMain takes no sleep of its own (waitFor sleeps with setTimeout and reads Date.now), so its
 * tests run on vitest's fake timers; runRenewer and waitFor get an explicit fake sleep that
 * advances a fake clock.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { Inputs } from "../src/action/inputs.js";
import type { ActionIO } from "../src/action/io.js";
import { type MainDeps, runMain } from "../src/action/main.js";
import { type PostDeps, runPost } from "../src/action/post.js";
import {
  type RenewerConfig,
  type RenewerDeps,
  type RenewerStatus,
  runRenewer,
} from "../src/action/renewer.js";
import { mdText } from "../src/action/summary.js";
import type {
  AcquireParams,
  AcquireResult,
  HeldLease,
  LssClient,
  StateLockState,
} from "../src/client/client.js";
import { LssError } from "../src/client/errors.js";
import { type WaitProgress, waitFor } from "../src/client/wait.js";
import type { GrantResponse, HistoryResponse, StatusResponse } from "../src/protocol/lease.js";

// ---------------------------------------------------------------------------------------------
// Fakes
// ---------------------------------------------------------------------------------------------

const T0 = Date.UTC(2025, 0, 1, 12, 0, 0);
const iso = (ms: number) => new Date(ms).toISOString();
const URL_ = "https://lss.test";

/** Records everything the action tells the runner; `events` keeps the order across fakes. */
class FakeIO implements ActionIO {
  infos: string[] = [];
  warnings: string[] = [];
  errors: string[] = [];
  failures: string[] = [];
  outputs: Record<string, string> = {};
  secrets: string[] = [];
  summaries: string[] = [];
  stateReads: string[] = [];
  constructor(
    readonly events: string[] = [],
    readonly state: Record<string, string> = {},
  ) {}
  info(message: string) {
    this.infos.push(message);
  }
  warning(message: string) {
    this.warnings.push(message);
  }
  error(message: string) {
    this.errors.push(message);
  }
  setFailed(message: string) {
    this.failures.push(message);
    this.events.push("setFailed");
  }
  setOutput(name: string, value: string) {
    this.outputs[name] = value;
    this.events.push(`output ${name}`);
  }
  saveState(name: string, value: string) {
    this.state[name] = value;
    this.events.push(`state ${name}=${value}`);
  }
  getState(name: string) {
    this.stateReads.push(name);
    return this.state[name] ?? "";
  }
  setSecret(value: string) {
    this.secrets.push(value);
    this.events.push("setSecret");
  }
  async summary(markdown: string) {
    this.summaries.push(markdown);
  }
  /** Nothing was said at all. */
  get silent() {
    return (
      this.infos.length +
        this.warnings.length +
        this.errors.length +
        this.failures.length +
        this.summaries.length ===
        0 && Object.keys(this.outputs).length === 0
    );
  }
}

/** An answer, or the LssError (or other error) to throw. The last answer of a script repeats. */
type Answer<T> = T | Error;
interface Script {
  acquire?: Answer<AcquireResult>[];
  renew?: Answer<GrantResponse>[];
  release?: Answer<"released">[];
  status?: Answer<StatusResponse>[];
  stateLock?: Answer<StateLockState>[];
  history?: Answer<HistoryResponse>[];
}

class FakeClient implements LssClient {
  readonly url = URL_;
  acquireCalls: Array<{ key: string; params: AcquireParams; signal?: AbortSignal }> = [];
  renewCalls: Array<{ key: string; token: string; ttlMs: number; signal?: AbortSignal; at: number }> = [];
  releaseCalls: Array<{ key: string; how: { token: string } | { force: true } }> = [];
  statusCalls: string[] = [];
  stateLockCalls: string[] = [];
  constructor(
    readonly events: string[] = [],
    readonly script: Script = {},
    readonly clock: () => number = Date.now,
    /** Runs before each renew answer (e.g. to simulate post stopping the renewer mid-request). */
    readonly beforeRenew?: () => void,
  ) {}

  leaveCalls: Array<{ key: string; token: string }> = [];
  async leave(key: string, token: string) {
    this.leaveCalls.push({ key, token });
  }

  historyCalls: string[] = [];
  /** Unscripted: an empty history (a job that waited shows its key's recent holders). */
  async history(key: string) {
    this.historyCalls.push(key);
    return this.script.history
      ? this.answer("history", this.script.history)
      : { status: "ok" as const, key, events: [], next_cursor: null };
  }
  async list(): Promise<never> {
    throw new Error("not used by the action");
  }

  // The /locks writes are the CLI's; the action never calls them.
  async createStateLock(): Promise<never> {
    throw new Error("not used by the action");
  }
  async changeStateLock(): Promise<never> {
    throw new Error("not used by the action");
  }

  private answer<T>(method: keyof Script, queue: Answer<T>[] | undefined): T {
    if (!queue || queue.length === 0) throw new Error(`FakeClient: no scripted answer for ${method}`);
    const next = (queue.length > 1 ? queue.shift() : queue[0]) as Answer<T>;
    if (next instanceof Error) throw next;
    return next;
  }

  async acquire(key: string, params: AcquireParams, signal?: AbortSignal) {
    this.acquireCalls.push({ key, params, signal });
    this.events.push(`acquire ${key}`);
    const result = this.answer("acquire", this.script.acquire);
    return { ...result, token: params.token ?? "random-token" };
  }
  async renew(key: string, token: string, ttlMs: number, signal?: AbortSignal) {
    this.renewCalls.push({ key, token, ttlMs, signal, at: this.clock() });
    this.beforeRenew?.();
    return this.answer("renew", this.script.renew);
  }
  async release(key: string, how: { token: string } | { force: true }) {
    this.releaseCalls.push({ key, how });
    this.events.push(`release ${key}`);
    this.answer("release", this.script.release);
  }
  async status(key: string) {
    this.statusCalls.push(key);
    return this.answer("status", this.script.status);
  }
  async stateLock(id: string) {
    this.stateLockCalls.push(id);
    return { state: this.answer("stateLock", this.script.stateLock), expires_at: null };
  }
}

const OTHER: HeldLease = {
  holder_id: "other-run",
  reason: "E2E",
  fencing_token: 41,
  acquired_at: "2025-01-01T11:55:00.000Z",
  expires_at: iso(T0 + 60_000),
  expires_in_ms: 60_000,
};
const OTHER_TEXT = "held by other-run (E2E) since 2025-01-01T11:55:00.000Z, expires in 1m";

const lease = (over: Partial<GrantResponse> = {}): GrantResponse => ({
  status: "ok",
  key: "qa-env",
  locked: true,
  token: "server-echo",
  holder_id: "me",
  reason: null,
  fencing_token: 42,
  acquired_at: iso(T0),
  expires_at: iso(T0 + 60_000),
  expires_in_ms: 60_000,
  ...over,
});
const granted = (l: GrantResponse = lease()): AcquireResult => ({ acquired: true, lease: l });
const held = (h: HeldLease = OTHER): AcquireResult => ({ acquired: false, held: h });
const lockedStatus = (h: HeldLease = OTHER): StatusResponse => ({
  status: "ok",
  key: "qa-env",
  locked: true,
  waiting: 0,
  ...h,
});
const FREE: StatusResponse = {
  status: "ok",
  key: "qa-env",
  locked: false,
  waiting: 0,
  holder_id: null,
  reason: null,
  fencing_token: null,
  acquired_at: null,
  expires_at: null,
  expires_in_ms: null,
};

const notHeld = () => new LssError("not_held", "release qa-env: the lease is not held", 409);
const unreachable = () => new LssError("unreachable", `cannot reach LSS at ${URL_}: ECONNREFUSED`);

// ---------------------------------------------------------------------------------------------
// Environment
// ---------------------------------------------------------------------------------------------

const GITHUB = {
  GITHUB_REPOSITORY: "owner/repo",
  GITHUB_WORKFLOW: "Deploy",
  GITHUB_JOB: "deploy",
  GITHUB_RUN_ID: "777",
  GITHUB_SERVER_URL: "https://github.com",
  RUNNER_TEMP: "/runner/tmp",
};
const HOLDER = "owner/repo · Deploy (job deploy) · https://github.com/owner/repo/actions/runs/777";

const ACQUIRE = { mode: "acquire", url: URL_, token: "api-token", key: "qa-env" };
const WAIT = { ...ACQUIRE, mode: "wait" };
const WAIT_LOCK = { mode: "wait", url: URL_, "lock-id": "abc" };
const RELEASE = { ...ACQUIRE, mode: "release", "lease-token": "team-secret" };

function envOf(inputs: Record<string, string | undefined>): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = { ...GITHUB };
  for (const [name, value] of Object.entries(inputs)) {
    if (value !== undefined) env[`INPUT_${name.toUpperCase()}`] = value;
  }
  return env;
}

/** Runs the promise to its end on vitest's fake timers (the sleeps of waitFor are setTimeouts). */
async function drive<T>(promise: Promise<T>): Promise<T> {
  let settled = false;
  promise.then(
    () => {
      settled = true;
    },
    () => {
      settled = true;
    },
  );
  for (let i = 0; !settled; i++) {
    if (i > 100_000) throw new Error("the promise never settled");
    await vi.advanceTimersByTimeAsync(100);
  }
  return promise;
}

function mainHarness(inputs: Record<string, string | undefined>, script: Script = {}) {
  const events: string[] = [];
  const io = new FakeIO(events);
  const client = new FakeClient(events, script);
  const renewers: RenewerConfig[] = [];
  const clientInputs: Inputs[] = [];
  const controller = new AbortController();
  const deps: MainDeps = {
    env: envOf(inputs),
    io,
    client: (i) => {
      clientInputs.push(i);
      return client;
    },
    startRenewer: (config) => {
      renewers.push(config);
      events.push("startRenewer");
      return 4242;
    },
    signal: controller.signal,
    now: () => Date.now(),
  };
  return { events, io, client, renewers, clientInputs, controller, deps, start: () => runMain(deps) };
}

function postHarness(
  inputs: Record<string, string | undefined>,
  state: Record<string, string>,
  script: Script = {},
  renewal: RenewerStatus | null = null,
) {
  const events: string[] = [];
  const io = new FakeIO(events, { ...state });
  const client = new FakeClient(events, script);
  const clientInputs: Inputs[] = [];
  const stopped: number[] = [];
  const statusReads: string[] = [];
  const deps: PostDeps = {
    env: envOf(inputs),
    io,
    client: (i) => {
      clientInputs.push(i);
      return client;
    },
    stopRenewer: async (pid) => {
      stopped.push(pid);
      events.push(`stopRenewer ${pid}`);
    },
    readRenewerStatus: (file) => {
      statusReads.push(file);
      return renewal;
    },
    now: () => T0 + 125_000,
  };
  return { events, io, client, clientInputs, stopped, statusReads, run: () => runPost(deps) };
}

const HELD_STATE = {
  "lease-token": "tok-1",
  "own-token": "true",
  phase: "held",
  "acquired-at": String(T0),
  "renewer-pid": "4242",
  "renewer-status-file": "/runner/tmp/lss-renewal-x.json",
};

beforeEach(() => {
  vi.useFakeTimers({ now: T0 });
  // No jitter: waitFor sleeps exactly its base interval.
  vi.spyOn(Math, "random").mockReturnValue(0.5);
});
afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

const waitingLines = (io: FakeIO) => io.infos.filter((line) => line.startsWith("Waiting for "));

// ---------------------------------------------------------------------------------------------
// runMain: acquire
// ---------------------------------------------------------------------------------------------

describe("runMain, mode acquire", () => {
  it("granted at once: saves the token before asking, outputs the lease, starts the renewer", async () => {
    const h = mainHarness(ACQUIRE, { acquire: [granted()] });
    await drive(h.start());

    const token = h.io.state["lease-token"]!;
    expect(token).toMatch(/^[0-9a-f]{32}$/);
    // The token, and that it is ours and still pending, are saved before the first request.
    const acquireAt = h.events.indexOf("acquire qa-env");
    expect(acquireAt).toBeGreaterThan(-1);
    expect(h.events.indexOf(`state lease-token=${token}`)).toBeLessThan(acquireAt);
    expect(h.events.indexOf("state own-token=true")).toBeLessThan(acquireAt);
    expect(h.events.indexOf("state phase=pending")).toBeLessThan(acquireAt);
    expect(h.events.indexOf("state phase=held")).toBeGreaterThan(acquireAt);
    // Masked before it is ever an output.
    expect(h.events.indexOf("setSecret")).toBeLessThan(h.events.indexOf("output token"));
    // The API token is masked first (as soon as the inputs are read), then the lease token.
    expect(h.io.secrets).toEqual(["api-token", token]);

    expect(h.client.acquireCalls).toEqual([
      {
        key: "qa-env",
        params: {
          ttlMs: 60_000,
          holderId: HOLDER,
          reason: undefined,
          token,
          shared: false,
          limit: undefined,
        },
        signal: h.controller.signal,
      },
    ]);
    const statusFile = h.io.state["renewer-status-file"]!;
    expect(statusFile).toMatch(/^\/runner\/tmp\/lss-renewal-[0-9a-f]{32}\.json$/);
    expect(h.io.state).toEqual({
      "lease-token": token,
      "own-token": "true",
      phase: "held",
      key: "qa-env",
      "acquired-at": String(T0),
      "renewer-pid": "4242",
      "renewer-status-file": statusFile,
    });
    expect(h.io.outputs).toEqual({
      acquired: "true",
      token,
      "fencing-token": "42",
      "waited-seconds": "0",
      holder: HOLDER,
      "expires-at": iso(T0 + 60_000),
      key: "qa-env",
    });
    expect(h.renewers).toEqual([
      {
        url: URL_,
        apiToken: "api-token",
        key: "qa-env",
        leaseToken: token,
        ttlMs: 60_000,
        expiresInMs: 60_000,
        statusFile,
      },
    ]);
    expect(h.io.infos).toEqual([
      `Acquiring qa-env on ${URL_} as ${HOLDER}`,
      "Acquired qa-env (fencing token 42) after 0s; lease 1m, renewed every 20s while the job runs.",
    ]);
    expect(h.io.summaries).toHaveLength(1);
    expect(h.io.summaries[0]).toContain("### LSS: acquired `qa-env`");
    expect(h.io.summaries[0]).toContain(`| Lock | \`qa-env\` on ${URL_} |`);
    expect(h.io.summaries[0]).toContain("| Fencing token | `42` |");
    expect(h.io.failures).toEqual([]);
    expect(h.io.warnings).toEqual([]);
    expect(h.io.errors).toEqual([]);
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
      "Acquired qa-env (fencing token 42) after 0s; lease 1m 30s, renewed every 30s while the job runs.",
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
      "Acquired qa-env (fencing token 42) after 10s; lease 1m, renewed every 20s while the job runs.",
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

// ---------------------------------------------------------------------------------------------
// runRenewer
// ---------------------------------------------------------------------------------------------

const CONFIG: RenewerConfig = {
  url: URL_,
  apiToken: "api-token",
  key: "qa-env",
  leaseToken: "tok-1",
  ttlMs: 60_000,
  expiresInMs: 60_000,
  statusFile: "/runner/tmp/lss-renewal-x.json",
};

/** A renewer on a fake clock; `stopAtSleep` = the index of the sleep during which post stops it. */
function renewerHarness(
  renew: Answer<GrantResponse>[],
  stopAtSleep = Number.POSITIVE_INFINITY,
  config: RenewerConfig = CONFIG,
  lossMarginMs?: number,
) {
  let t = T0;
  const sleeps: number[] = [];
  const reports: RenewerStatus[] = [];
  const controller = new AbortController();
  const client = new FakeClient([], { renew }, () => t);
  const deps: RenewerDeps = {
    config,
    client,
    report: (status) => reports.push(status),
    sleep: async (ms, signal) => {
      if (signal?.aborted) throw signal.reason;
      if (sleeps.length >= 10_000) throw new Error("the renewer never stopped");
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
  return { sleeps, reports, client, controller, now: () => t, run: () => runRenewer(deps) };
}

describe("runRenewer", () => {
  it("renews every third of the ttl and reports held with a renewal count", async () => {
    const r = renewerHarness([lease({ expires_at: "server-time" })], 3);
    await expect(r.run()).resolves.toBe("stopped");
    expect(r.sleeps).toEqual([20_000, 20_000, 20_000]);
    expect(r.client.renewCalls.map(({ key, token, ttlMs, at }) => ({ key, token, ttlMs, at }))).toEqual([
      { key: "qa-env", token: "tok-1", ttlMs: 60_000, at: T0 + 20_000 },
      { key: "qa-env", token: "tok-1", ttlMs: 60_000, at: T0 + 40_000 },
      { key: "qa-env", token: "tok-1", ttlMs: 60_000, at: T0 + 60_000 },
    ]);
    // Each renew call is cut off when the renewer is stopped (and when the lease would expire).
    const signal = r.client.renewCalls[0]!.signal!;
    expect(signal.aborted).toBe(r.controller.signal.aborted);
    expect(r.reports).toEqual([
      { state: "held", renewed_at: iso(T0 + 20_000), expires_at: "server-time", renewals: 1 },
      { state: "held", renewed_at: iso(T0 + 40_000), expires_at: "server-time", renewals: 2 },
      { state: "held", renewed_at: iso(T0 + 60_000), expires_at: "server-time", renewals: 3 },
    ]);
  });

  it("a short ttl is renewed at most every second", async () => {
    const r = renewerHarness([lease()], 2, { ...CONFIG, ttlMs: 2000, expiresInMs: 2000 });
    await expect(r.run()).resolves.toBe("stopped");
    expect(r.sleeps).toEqual([1000, 1000]);
    expect(r.client.renewCalls.map((c) => c.ttlMs)).toEqual([2000, 2000]);
  });

  it("not_held: reports lost with the server's reason and resolves 'lost'", async () => {
    const r = renewerHarness([lease(), new LssError("not_held", "renew qa-env: the lease is not held", 409)]);
    await expect(r.run()).resolves.toBe("lost");
    expect(r.sleeps).toEqual([20_000, 20_000]);
    expect(r.reports).toEqual([
      { state: "held", renewed_at: iso(T0 + 20_000), expires_at: iso(T0 + 60_000), renewals: 1 },
      { state: "lost", at: iso(T0 + 40_000), reason: "renew qa-env: the lease is not held" },
    ]);
  });

  it("unreachable: retries sooner and sooner, then reports lost once past the lease's expiry", async () => {
    const r = renewerHarness([unreachable()]);
    await expect(r.run()).resolves.toBe("lost");

    // First attempt on schedule, then each retry a quarter of the time left (at least 0.2 s),
    // and the last sleep ends exactly at the expiry.
    expect(r.sleeps.slice(0, 4)).toEqual([20_000, 10_000, 7500, 5625]);
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
    const r = renewerHarness([unreachable()], Number.POSITIVE_INFINITY, CONFIG, 10_000);
    await expect(r.run()).resolves.toBe("lost");
    expect(r.client.renewCalls.every((c) => c.at < T0 + 50_000)).toBe(true);
    expect(r.reports).toEqual([expect.objectContaining({ state: "lost", at: iso(T0 + 50_000) })]);
  });

  it("unreachable for a while, then reachable again: back to renewing every third of the ttl", async () => {
    const r = renewerHarness([unreachable(), unreachable(), lease()], 5);
    await expect(r.run()).resolves.toBe("stopped");
    expect(r.sleeps).toEqual([20_000, 10_000, 7500, 20_000, 20_000]);
    expect(r.reports.map((s) => s.state)).toEqual(["held", "held", "held"]);
    expect(r.reports[0]).toMatchObject({ renewals: 1, renewed_at: iso(T0 + 37_500) });
  });

  it("stopped during its sleep: resolves 'stopped' and never reports lost", async () => {
    const r = renewerHarness([lease()], 0);
    await expect(r.run()).resolves.toBe("stopped");
    expect(r.client.renewCalls).toEqual([]);
    expect(r.reports).toEqual([]);
  });

  it("stopped while retrying an unreachable server: 'stopped', not lost", async () => {
    const r = renewerHarness([unreachable()], 2);
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
    const reports: RenewerStatus[] = [];
    const result = await runRenewer({
      config: CONFIG,
      client,
      report: (s) => reports.push(s),
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

// ---------------------------------------------------------------------------------------------
// waitFor
// ---------------------------------------------------------------------------------------------

function fakeClock() {
  let t = T0;
  const sleeps: number[] = [];
  return {
    sleeps,
    now: () => t,
    sleep: async (ms: number, signal?: AbortSignal) => {
      if (signal?.aborted) throw signal.reason;
      sleeps.push(ms);
      t += ms;
    },
  };
}

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
