/**
 * Fakes for the action's flow and the client's loops: the runner (FakeIO), the server (FakeClient,
 * scripted), the clock, and harnesses that run main and post on them. Shared by action-main,
 * action-post, renew-loop and wait tests.
 *
 * runMain takes no sleep of its own (waitFor sleeps with setTimeout and reads Date.now), so its
 * tests run on vitest's fake timers (useFakeTimers below); renewLoop and waitFor get an explicit
 * fake sleep that advances a fake clock (fakeClock).
 */
import { afterEach, beforeEach, vi } from "vitest";
import type { Inputs } from "../../src/action/inputs.js";
import type { ActionIO } from "../../src/action/io.js";
import { type MainDeps, runMain } from "../../src/action/main.js";
import { type PostDeps, runPost } from "../../src/action/post.js";
import type { RenewerConfig, RenewerStatus } from "../../src/action/renewer.js";
import type {
  AcquireOptions,
  AcquireParams,
  AcquireResult,
  HeldLease,
  LockTarget,
  LssClient,
  StateLockState,
} from "../../src/client/client.js";
import { LssError } from "../../src/client/errors.js";
import type { GrantResponse, HistoryResponse, StatusResponse } from "../../src/protocol/lease.js";

export const T0 = Date.UTC(2025, 0, 1, 12, 0, 0);
export const iso = (ms: number) => new Date(ms).toISOString();
export const URL_ = "https://lss.test";

/** Records everything the action tells the runner; `events` keeps the order across fakes. */
export class FakeIO implements ActionIO {
  infos: string[] = [];
  notices: string[] = [];
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
  notice(message: string) {
    this.notices.push(message);
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
        this.notices.length +
        this.warnings.length +
        this.errors.length +
        this.failures.length +
        this.summaries.length ===
        0 && Object.keys(this.outputs).length === 0
    );
  }
}

/** An answer, or the LssError (or other error) to throw. The last answer of a script repeats. */
export type Answer<T> = T | Error;
export interface Script {
  acquire?: Answer<AcquireResult>[];
  renew?: Answer<GrantResponse>[];
  release?: Answer<"released">[];
  status?: Answer<StatusResponse>[];
  stateLock?: Answer<StateLockState>[];
  history?: Answer<HistoryResponse>[];
}

/** A scripted LssClient: records every call, answers from the script (the last answer repeats). */
export class FakeClient implements LssClient {
  readonly url = URL_;
  acquireCalls: Array<{ key: LockTarget; params: AcquireParams; signal?: AbortSignal }> = [];
  renewCalls: Array<{ key: string; token: string; ttlMs: number; signal?: AbortSignal; at: number }> = [];
  releaseCalls: Array<{ key: string; how: { token: string } | { force: true } }> = [];
  statusCalls: string[] = [];
  stateLockCalls: string[] = [];
  leaveCalls: Array<{ key: LockTarget; token: string }> = [];
  historyCalls: string[] = [];
  constructor(
    readonly events: string[] = [],
    readonly script: Script = {},
    readonly clock: () => number = Date.now,
    /** Runs before each renew answer (e.g. to simulate post stopping the renewer mid-request). */
    readonly beforeRenew?: () => void,
  ) {}

  async leave(key: LockTarget, opts: { token: string }) {
    this.leaveCalls.push({ key, token: opts.token });
  }

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

  async acquire(key: LockTarget, opts: AcquireOptions) {
    const { signal, waitMs: _held, ...params } = opts;
    this.acquireCalls.push({ key, params, signal });
    this.events.push(`acquire ${key}`);
    const result = this.answer("acquire", this.script.acquire);
    return { ...result, token: params.token ?? "random-token" };
  }
  async renew(key: string, opts: { token: string; ttlMs: number; signal?: AbortSignal }) {
    this.renewCalls.push({
      key,
      token: opts.token,
      ttlMs: opts.ttlMs,
      signal: opts.signal,
      at: this.clock(),
    });
    this.beforeRenew?.();
    return this.answer("renew", this.script.renew);
  }
  async release(key: string, opts: ({ token: string } | { force: true }) & { signal?: AbortSignal }) {
    const how = "token" in opts ? { token: opts.token } : { force: true as const };
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

export const OTHER: HeldLease = {
  holder_id: "other-run",
  reason: "E2E",
  fencing_token: 41,
  acquired_at: "2025-01-01T11:55:00.000Z",
  expires_at: iso(T0 + 60_000),
  expires_in_ms: 60_000,
};
export const OTHER_TEXT = "held by other-run (E2E) since 2025-01-01T11:55:00.000Z, expires in 1m";

export const lease = (over: Partial<GrantResponse> = {}): GrantResponse => ({
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
export const granted = (l: GrantResponse = lease()): AcquireResult => ({ acquired: true, lease: l });
export const held = (h: HeldLease = OTHER): AcquireResult => ({ acquired: false, held: h });
export const superseded = (by: string | null = "octo/app · Deploy · run 12"): AcquireResult => ({
  acquired: false,
  superseded: { by },
});
export const lockedStatus = (h: HeldLease = OTHER): StatusResponse => ({
  status: "ok",
  key: "qa-env",
  locked: true,
  waiting: 0,
  ...h,
});
export const FREE: StatusResponse = {
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

export const notHeld = () => new LssError("not_held", "release qa-env: the lease is not held", 409);
export const unreachable = () => new LssError("unreachable", `cannot reach LSS at ${URL_}: ECONNREFUSED`);

// ---------------------------------------------------------------------------------------------
// Environment
// ---------------------------------------------------------------------------------------------

export const GITHUB = {
  GITHUB_REPOSITORY: "owner/repo",
  GITHUB_WORKFLOW: "Deploy",
  GITHUB_JOB: "deploy",
  GITHUB_RUN_ID: "777",
  GITHUB_SERVER_URL: "https://github.com",
  RUNNER_TEMP: "/runner/tmp",
};
export const HOLDER = "owner/repo · Deploy (job deploy) · https://github.com/owner/repo/actions/runs/777";

export const ACQUIRE = { mode: "acquire", url: URL_, token: "api-token", key: "qa-env" };
export const WAIT = { ...ACQUIRE, mode: "wait" };
export const WAIT_LOCK = { mode: "wait", url: URL_, "lock-id": "abc" };
export const RELEASE = { ...ACQUIRE, mode: "release", "lease-token": "team-secret" };

export function envOf(inputs: Record<string, string | undefined>): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = { ...GITHUB };
  for (const [name, value] of Object.entries(inputs)) {
    if (value !== undefined) env[`INPUT_${name.toUpperCase()}`] = value;
  }
  return env;
}

/** Runs the promise to its end on vitest's fake timers (the sleeps of waitFor are setTimeouts). */
export async function drive<T>(promise: Promise<T>): Promise<T> {
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

export function mainHarness(inputs: Record<string, string | undefined>, script: Script = {}) {
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

export function postHarness(
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

export const HELD_STATE = {
  "lease-token": "tok-1",
  "own-token": "true",
  phase: "held",
  "acquired-at": String(T0),
  "renewer-pid": "4242",
  "renewer-status-file": "/runner/tmp/lss-renewal-x.json",
};

/**
 * vitest's fake timers from T0 for every test of the file, and no jitter (waitFor sleeps exactly its
 * base interval; a test may mock Math.random otherwise).
 */
export function useFakeTimers() {
  beforeEach(() => {
    vi.useFakeTimers({ now: T0 });
    vi.spyOn(Math, "random").mockReturnValue(0.5);
  });
  afterEach(() => {
    vi.useRealTimers();
    vi.restoreAllMocks();
  });
}

export const waitingLines = (io: FakeIO) => io.infos.filter((line) => line.startsWith("Waiting for "));

/** A clock that moves only when slept on: the sleeps are recorded. */
export function fakeClock() {
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
