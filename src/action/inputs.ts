/**
 * The action's inputs → one typed object, or an InputError whose message names the input and the
 * fix. Pure: reads the runner's INPUT_* variables from the env it is given.
 */
import { isHeaderToken } from "../client/client.js";
import { parseDuration } from "../protocol/durations.js";
import {
  HOLDER_ID_RULE,
  INVISIBLE_FORMATTING,
  KEY_RULE,
  keysOf,
  LEASE_TOKEN_RULE,
  limitTextProblem,
  poolProblem,
  priorityTextProblem,
  REASON_RULE,
  STATE_LOCK_ID_RULE,
  SUPERSEDE_RULE,
  textProblem,
} from "../protocol/fields.js";
import { type IdTokenSource, idTokenRequestFrom } from "./id-token.js";
import { Input, InputDefault } from "./names.js";

export type KeyTarget = { kind: "key"; key: string };
/** Several keys, comma-separated in the key input: acquire whichever is free first. */
export type PoolTarget = { kind: "pool"; keys: string[] };
/** A lock of the /locks API (input lock-id): mode wait only. */
export type StateLockTarget = { kind: "state-lock"; id: string };
export type Target = KeyTarget | PoolTarget | StateLockTarget;

/** How the action authenticates to the server. */
export type Auth =
  /** An LSS API token (input token). */
  | { kind: "token"; token: string }
  /** The job's GitHub OIDC ID tokens, fetched from the runner for the audience (no token input). */
  | ({ kind: "oidc" } & IdTokenSource)
  /** None: a /locks lock on an open server, in a job that cannot request ID tokens. */
  | { kind: "none" };

interface Server {
  url: string;
  auth: Auth;
}

/** How long to wait for the lock, and how often to ask a server that does not hold requests. */
interface Waiting {
  /** 0 = try once. */
  timeoutMs: number;
  pollMs: number;
}

export interface AcquireInputs extends Server, Waiting {
  mode: "acquire";
  target: KeyTarget | PoolTarget;
  /** Lease TTL while the job runs, renewed in the background when a third of it is left. */
  ttlMs: number;
  /** A lease of this length that outlives the job (no renewal, kept at the end). */
  holdMs: number | null;
  /** Your own lease token (e.g. a team secret), for holds and releasing them later. */
  leaseToken: string | null;
  holder: string;
  reason: string | null;
  releaseAtEnd: boolean;
  /** Hold it shared (others may too); with a limit, one of that many holders. */
  shared: boolean;
  limit: number | null;
  /** Held by another: wait (up to timeout), fail at once, or skip (succeed, acquired=false). */
  ifHeld: IfHeld;
  /** While waiting: its place in the key's queue, highest first (-100 … 100). */
  priority: number;
  /** While waiting: its supersede group (a newer run of it takes this one's place), or null. */
  supersede: string | null;
  /** Superseded: skip (succeed, superseded=true) or fail. */
  ifSuperseded: IfSuperseded;
}

export type IfHeld = "wait" | "fail" | "skip";
export type IfSuperseded = "skip" | "fail";

export interface WaitInputs extends Server, Waiting {
  mode: "wait";
  target: KeyTarget | StateLockTarget;
}

export interface ReleaseInputs extends Server {
  mode: "release";
  target: KeyTarget;
  /** With the lease's token (input lease-token), or forced by an admin (input force). */
  how: { token: string } | { force: true };
}

/** What the action was asked to do, with only the inputs that mean something for it. */
export type Inputs = AcquireInputs | WaitInputs | ReleaseInputs;

export type Mode = Inputs["mode"];

/** Who is running, for the default holder: repository, workflow and a link to the run. */
export interface RunContext {
  repository: string;
  workflow: string;
  runUrl: string;
  job: string;
}

export class InputError extends Error {
  override name = "InputError";
}

export const runContextFromEnv = (env: Record<string, string | undefined>): RunContext => {
  const repository = env.GITHUB_REPOSITORY ?? "local";
  const server = env.GITHUB_SERVER_URL ?? "https://github.com";
  return {
    repository,
    workflow: env.GITHUB_WORKFLOW ?? "workflow",
    runUrl: env.GITHUB_RUN_ID ? `${server}/${repository}/actions/runs/${env.GITHUB_RUN_ID}` : "",
    job: env.GITHUB_JOB ?? "",
  };
};

/**
 * "owner/repo · E2E (job e2e) · https://github.com/owner/repo/actions/runs/1": who holds it, at a
 * glance, in at most 256 characters. The run link stays whole (a cut link points at another run);
 * the workflow part is shortened instead.
 */
export function defaultHolder(run: RunContext): string {
  const visible = (text: string) => text.replace(new RegExp(INVISIBLE_FORMATTING, "g"), "");
  const workflow = visible(run.job ? `${run.workflow} (job ${run.job})` : run.workflow);
  const join = (w: string) => [run.repository, w, run.runUrl].filter(Boolean).join(" · ");
  const full = join(workflow);
  if (full.length <= 256) return full;
  const room = Math.max(0, workflow.length - (full.length - 256) - 1);
  const shortened = join(`${workflow.slice(0, room)}…`);
  return shortened.length <= 256 ? shortened : run.runUrl.slice(0, 256);
}

type Env = Record<string, string | undefined>;

/** What each duration input may be: [least, most] milliseconds. */
const DURATION_RANGE = {
  ttl: [5000, 86_400_000],
  timeout: [0, 7 * 86_400_000],
  hold: [1000, 7 * 86_400_000],
  pollInterval: [1000, 600_000],
} as const;

/** The inputs as text, durations, switches and checked fields, each read with its own error. */
function inputReader(env: Env) {
  // As @actions/core's getInput: INPUT_<NAME upper-cased, spaces as underscores>, trimmed.
  const text = (name: string) => (env[`INPUT_${name.replace(/ /g, "_").toUpperCase()}`] ?? "").trim();
  const fallback = (input: keyof typeof Input) =>
    text(Input[input]) || (InputDefault as Partial<Record<string, string>>)[input] || "";

  const duration = (input: keyof typeof DURATION_RANGE) => {
    const name = Input[input];
    const given = fallback(input);
    const ms = parseDuration(given);
    if (ms === null) {
      throw new InputError(
        `Input '${name}' must be a duration such as 30s, 10m, 1h or a number of seconds (got '${given}')`,
      );
    }
    const [min, max] = DURATION_RANGE[input];
    if (ms < min || ms > max) {
      throw new InputError(
        `Input '${name}' must be between ${min / 1000}s and ${max / 1000}s (got '${given}')`,
      );
    }
    return ms;
  };

  /** A switch; `otherwise` when it is not given and has no default. */
  const boolean = (input: keyof typeof Input, otherwise = false) => {
    const given = fallback(input);
    if (given === "") return otherwise;
    if (/^(true|yes)$/i.test(given)) return true;
    if (/^(false|no)$/i.test(given)) return false;
    throw new InputError(`Input '${Input[input]}' must be true or false (got '${given}')`);
  };

  /** The value, or an InputError with the protocol's first problem of it (fields.ts). */
  const checked = <T>(name: string, problem: string | null, value: T, got = ""): T => {
    if (problem !== null) {
      // The rules speak of API fields ("holder_id must be …"); speak of the input instead.
      throw new InputError(`Input '${name}' ${problem.replace(/^\S+ (?=must )/, "")}${got}`);
    }
    return value;
  };
  /** The text input, checked against a protocol rule when given; null when it is not. */
  const field = (name: string, rule: Parameters<typeof textProblem>[0]) => {
    const given = text(name);
    return given ? checked(name, textProblem(rule, given), given) : null;
  };
  return { text, duration, boolean, checked, field };
}

type Reader = ReturnType<typeof inputReader>;

function modeOf(read: Reader): Mode {
  const mode = read.text(Input.mode);
  if (!mode) throw new InputError(`Input '${Input.mode}' is required: acquire, wait or release`);
  if (mode !== "acquire" && mode !== "wait" && mode !== "release") {
    throw new InputError(`Input '${Input.mode}' must be acquire, wait or release (got '${mode}')`);
  }
  return mode;
}

function urlOf(read: Reader): string {
  const url = read.text(Input.url);
  if (!url)
    throw new InputError(`Input '${Input.url}' is required: the LSS server, e.g. https://lss.example.com`);
  if (!/^https?:\/\/[^\s/]+/i.test(url) || !URL.canParse(url)) {
    throw new InputError(
      `Input '${Input.url}' must be an http(s) URL such as https://lss.example.com (got '${url}')`,
    );
  }
  return url;
}

/** The key, the pool (keys separated by commas) or the /locks lock (lock-id): exactly one. */
function targetOf(read: Reader): Target {
  const key = read.text(Input.key);
  const lockId = read.text(Input.lockId);
  if (key && lockId)
    throw new InputError(`Inputs '${Input.key}' and '${Input.lockId}' exclude each other: give one`);
  if (lockId) {
    return {
      kind: "state-lock",
      id: read.checked(Input.lockId, textProblem(STATE_LOCK_ID_RULE, lockId), lockId),
    };
  }
  if (key.includes(",")) {
    const keys = keysOf(key);
    return { kind: "pool", keys: read.checked(Input.key, poolProblem(keys), keys) };
  }
  if (key) return { kind: "key", key: read.checked(Input.key, textProblem(KEY_RULE, key), key) };
  throw new InputError(`Input '${Input.key}' is required: the name of the lock, e.g. qa-env`);
}

/** The target as the mode takes it: a pool only to acquire, a /locks lock only to wait for. */
function askedOf(mode: Mode, target: Target) {
  if (mode === "acquire") return { mode, target: only(target, ["key", "pool"], mode) };
  if (mode === "wait") return { mode, target: only(target, ["key", "state-lock"], mode) };
  return { mode, target: only(target, ["key"], mode) };
}

/** hold, lease-token and force: which mode each works with, and what a release needs. */
function leaseOptionsOf(read: Reader, mode: Mode) {
  const holdMs = read.text(Input.hold) ? read.duration("hold") : null;
  if (holdMs !== null && mode !== "acquire") {
    throw new InputError(`Input '${Input.hold}' works with mode: acquire only`);
  }
  const leaseToken = read.field(Input.leaseToken, LEASE_TOKEN_RULE);
  const force = read.boolean("force");
  if (force && mode !== "release")
    throw new InputError(`Input '${Input.force}' works with mode: release only`);
  if (mode === "release" && !leaseToken && !force) {
    throw new InputError(
      `mode: release needs Input '${Input.leaseToken}' (the token the lock was taken with), or 'force: true' with an admin token`,
    );
  }
  if (mode === "release" && leaseToken && force) {
    throw new InputError(`Inputs '${Input.leaseToken}' and '${Input.force}' exclude each other: give one`);
  }
  return { holdMs, leaseToken, force };
}

/** shared and limit (a limit implies shared): acquire only. */
function sharingOf(read: Reader, mode: Mode) {
  const limitText = read.text(Input.limit);
  const limit = limitText
    ? read.checked(Input.limit, limitTextProblem(limitText), Number(limitText), ` (got '${limitText}')`)
    : null;
  const shared = read.boolean("shared") || limit !== null;
  if (shared && mode !== "acquire") {
    throw new InputError(`Inputs '${Input.shared}' and '${Input.limit}' work with mode: acquire only`);
  }
  return { shared, limit };
}

/** if-held: wait (the default), fail or skip; acquire only. fail and skip try once. */
function ifHeldOf(read: Reader, mode: Mode): IfHeld {
  const given = read.text(Input.ifHeld) || InputDefault.ifHeld;
  if (given !== "wait" && given !== "fail" && given !== "skip")
    throw new InputError(`Input '${Input.ifHeld}' must be wait, fail or skip (got '${given}')`);
  if (given !== "wait" && mode !== "acquire")
    throw new InputError(`Input '${Input.ifHeld}: ${given}' works with mode: acquire only`);
  return given;
}

/** priority: an integer from -100 to 100 (default 0); acquire only. */
function priorityOf(read: Reader, mode: Mode): number {
  const given = read.text(Input.priority);
  if (!given) return 0;
  read.checked(Input.priority, priorityTextProblem(given), given, ` (got '${given}')`);
  if (mode !== "acquire") throw new InputError(`Input '${Input.priority}' works with mode: acquire only`);
  return Number(given);
}

/** supersede: a group name (acquire only, and only while waiting: a single try joins no queue); if-superseded. */
function supersedeOf(read: Reader, mode: Mode, ifHeld: IfHeld) {
  const group = read.field(Input.supersede, SUPERSEDE_RULE);
  const given = read.text(Input.ifSuperseded) || InputDefault.ifSuperseded;
  if (given !== "skip" && given !== "fail")
    throw new InputError(`Input '${Input.ifSuperseded}' must be skip or fail (got '${given}')`);
  if (group !== null && mode !== "acquire")
    throw new InputError(`Input '${Input.supersede}' works with mode: acquire only`);
  if (group !== null && ifHeld !== "wait")
    throw new InputError(
      `Input '${Input.supersede}' needs '${Input.ifHeld}: wait': a single try joins no queue, so nothing can supersede it`,
    );
  return { supersede: group, ifSuperseded: given as IfSuperseded };
}

export function parseInputs(env: Env, run: RunContext = runContextFromEnv(env)): Inputs {
  const read = inputReader(env);
  const mode = modeOf(read);
  const url = urlOf(read);
  const asked = askedOf(mode, targetOf(read));
  const server = {
    url,
    auth: authOf(read.text(Input.token), read.text(Input.audience), url, asked.target, env),
  };
  const { holdMs, leaseToken } = leaseOptionsOf(read, mode);
  const sharing = sharingOf(read, mode);
  const holder = read.field(Input.holder, HOLDER_ID_RULE) ?? defaultHolder(run);
  const reason = read.field(Input.reason, REASON_RULE);
  const ttlMs = read.duration("ttl");
  const ifHeld = ifHeldOf(read, mode);
  const priority = priorityOf(read, mode);
  const superseding = supersedeOf(read, mode, ifHeld);
  // fail and skip try once: the timeout (which has a default) does not apply, but is still checked.
  const givenTimeoutMs = read.duration("timeout");
  const timeoutMs = ifHeld === "wait" ? givenTimeoutMs : 0;
  const waiting = { timeoutMs, pollMs: read.duration("pollInterval") };
  const releaseAtEnd = read.boolean("releaseAtEnd", holdMs === null);
  switch (asked.mode) {
    case "acquire":
      return {
        ...asked,
        ...server,
        ttlMs,
        holdMs,
        ...waiting,
        leaseToken,
        holder,
        reason,
        releaseAtEnd,
        ...sharing,
        ifHeld,
        priority,
        ...superseding,
      };
    case "wait":
      return { ...asked, ...server, ...waiting };
    case "release":
      return { ...asked, ...server, how: leaseToken ? { token: leaseToken } : { force: true } };
  }
}

/** The target, when it is of a kind the mode takes; else the InputError naming what it needs. */
function only<K extends Target["kind"]>(
  target: Target,
  kinds: K[],
  mode: Mode,
): Extract<Target, { kind: K }> {
  if ((kinds as string[]).includes(target.kind)) return target as Extract<Target, { kind: K }>;
  throw new InputError(
    target.kind === "pool"
      ? `Input '${Input.key}' names several keys (a pool): that works with mode: acquire only`
      : `Input '${Input.lockId}' (a /locks API lock) works with mode: wait only; use 'key' to ${mode}`,
  );
}

/** The server's default audience: its own origin (https://lss.example.com, without path or slash). */
export const defaultAudience = (url: string) => new URL(url).origin;

/**
 * The token input, else the job's OIDC ID tokens when the runner offers them (the job has
 * `permissions: id-token: write`), else nothing for a /locks lock (an open server needs none).
 */
function authOf(token: string, audienceText: string, url: string, target: Target, env: Env): Auth {
  if (token) {
    if (audienceText) {
      throw new InputError(
        `Inputs '${Input.token}' and '${Input.audience}' exclude each other: '${Input.audience}' is for the job's OIDC token, used when '${Input.token}' is empty`,
      );
    }
    // Never echo it: a secret with a stray newline or space would land in the log otherwise.
    if (!isHeaderToken(token)) {
      throw new InputError(
        `Input '${Input.token}': token is not a valid header value (a line break or space in the secret?)`,
      );
    }
    return { kind: "token", token };
  }
  if (audienceText && !/^[\x21-\x7e]{1,512}$/.test(audienceText)) {
    throw new InputError(
      `Input '${Input.audience}' must be 1–512 visible ASCII characters without spaces, e.g. https://lss.example.com (got '${audienceText}')`,
    );
  }
  const request = idTokenRequestFrom(env);
  if (request) return { kind: "oidc", ...request, audience: audienceText || defaultAudience(url) };
  if (target.kind === "state-lock" && !audienceText) return { kind: "none" };
  throw new InputError(
    `Input '${Input.token}' is empty and this job cannot request a GitHub OIDC token: either pass '${Input.token}' (an LSS API token, from a secret) or add \`permissions: id-token: write\` to the job (the server's operator maps its repository to a namespace)`,
  );
}
