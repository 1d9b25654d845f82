/**
 * A small emulation of the GitHub Actions runner, for end-to-end tests of the action's built `dist/` bundles.
 *
 * What it reproduces (see actions/runner and node_modules/@actions/core):
 * - a step of a `runs.using: node24` action is `node24 <abs entry>` with a clean environment: PATH, HOME, the
 *   runner's GITHUB_* / RUNNER_* variables, `INPUT_<NAME>` (name upper-cased, spaces → `_`, hyphens kept),
 *   `STATE_<name>` for states saved by an earlier step of the same action (main → post), and fresh
 *   GITHUB_OUTPUT / GITHUB_STATE / GITHUB_ENV / GITHUB_PATH files per step;
 * - those files are read back with the runner's parser (`name<<DELIMITER` heredocs and legacy `name=value`);
 * - `::error::` / `::warning::` / `::notice::` workflow commands on stdout become annotations;
 * - cancellation is SIGINT, then SIGTERM 7.5 s later, then SIGKILL of the process tree 2.5 s after that;
 * - at the end of the job every process whose environment carries the job's RUNNER_TRACKING_ID is killed;
 * - a job with `permissions: id-token: write` gives every step ACTIONS_ID_TOKEN_REQUEST_URL and
 *   ACTIONS_ID_TOKEN_REQUEST_TOKEN (`idToken`: e.g. a local OIDC issuer's runnerEnv()).
 *
 * Unlike the real runner, the post step does not get the main step's inputs by itself: pass them again.
 * Linux only (reads /proc).
 */

import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { isAbsolute, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parse as parseYaml } from "yaml";
import { findNode24, HOW_TO_GET_NODE24 } from "../../scripts/node24.mjs";
import { alive } from "./processes.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));

function node24(): string {
  const found = findNode24();
  if (found) return found;
  throw new Error(`No Node 24: this is Node ${process.versions.node}. To get one, ${HOW_TO_GET_NODE24}.`);
}

/** Absolute path of the Node 24 binary that runs the steps, as `runs.using: node24` does. */
export const NODE24: string = node24();

export interface JobOptions {
  /** Extra env for every step (e.g. GITHUB_REPOSITORY overrides); wins over the runner's defaults. */
  env?: Record<string, string>;
  /**
   * Inputs the runner would pass when a workflow leaves them out (the `default:`s of action.yml, see
   * `actionInputDefaults`). A step's own `inputs` win.
   */
  inputDefaults?: Record<string, string>;
  /**
   * As `permissions: id-token: write`: the runner's ID-token request for every step of the job
   * (ACTIONS_ID_TOKEN_REQUEST_URL and ACTIONS_ID_TOKEN_REQUEST_TOKEN, e.g. from the OIDC issuer's
   * runnerEnv()). Without it a step has neither, as in a job without the permission.
   */
  idToken?: Record<string, string>;
}

const ID_TOKEN_VARIABLES = ["ACTIONS_ID_TOKEN_REQUEST_URL", "ACTIONS_ID_TOKEN_REQUEST_TOKEN"] as const;

function idTokenEnv(request: Record<string, string> | undefined): Record<string, string> {
  if (!request) return {};
  const env: Record<string, string> = {};
  for (const name of ID_TOKEN_VARIABLES) {
    const value = request[name];
    if (!value) throw new Error(`idToken needs ${ID_TOKEN_VARIABLES.join(" and ")} (missing ${name})`);
    env[name] = value;
  }
  return env;
}

export interface Escalation {
  /** SIGTERM this long after SIGINT (runner: 7500). */
  termAfterMs?: number;
  /** SIGKILL of the process tree this long after SIGTERM (runner: 2500). */
  killAfterMs?: number;
}

export interface StepOptions {
  /** Action inputs by their action.yml names (e.g. `fencing-token`). */
  inputs?: Record<string, string>;
  /** Steps sharing a scope share saved state (main saves, post reads `STATE_<name>`). Default "default". */
  stateScope?: string;
  /** Extra env for this step; wins over everything else. */
  env?: Record<string, string>;
  /** Cancel the step (runner-style SIGINT → SIGTERM → SIGKILL) this long after it starts. */
  cancelAfterMs?: number;
  /** Like `timeout-minutes`: the runner cancels the step the same way. */
  timeoutMs?: number;
  /** Delays of the cancellation escalation; default { termAfterMs: 7500, killAfterMs: 2500 }. */
  escalation?: Escalation;
}

export interface Annotation {
  level: "error" | "warning" | "notice";
  message: string;
  /** e.g. title, file, line — unescaped. */
  properties: Record<string, string>;
}

export interface StepResult {
  exitCode: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  outputs: Record<string, string>;
  state: Record<string, string>;
  /** The whole job summary file so far. */
  summary: string;
  annotations: Annotation[];
}

export interface RunningStep {
  result: Promise<StepResult>;
  /** Runner-style cancellation: SIGINT, then SIGTERM, then SIGKILL of the process tree. Idempotent. */
  cancel(): void;
  pid: number;
}

const live = new Set<ChildProcess>();
process.once("exit", () => {
  for (const child of live) child.kill("SIGKILL");
});

// ---------------------------------------------------------------------------------------------------------
// File commands (GITHUB_OUTPUT, GITHUB_STATE, GITHUB_ENV): the runner's FileCommandManager parser.

/** Reads one line starting at `at`; returns the line (without its newline), the next index and the newline. */
function readLine(text: string, at: number): { line: string; next: number; newline: string | null } | null {
  if (at >= text.length) return null;
  const lf = text.indexOf("\n", at);
  if (lf < 0) return { line: text.slice(at), next: text.length, newline: null };
  const crlf = lf > at && text[lf - 1] === "\r";
  return { line: text.slice(at, crlf ? lf - 1 : lf), next: lf + 1, newline: crlf ? "\r\n" : "\n" };
}

/** Parses a file-command file: `name<<DELIMITER\nvalue\nDELIMITER` blocks and legacy `name=value` lines. */
export function parseFileCommands(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  let at = 0;
  for (let cur = readLine(text, at); cur; cur = readLine(text, at)) {
    at = cur.next;
    const { line } = cur;
    if (line === "") continue;
    const eq = line.indexOf("=");
    const heredoc = line.indexOf("<<");
    if (eq >= 0 && (heredoc < 0 || eq < heredoc)) {
      const name = line.slice(0, eq);
      if (!name) throw new Error(`Invalid format '${line}'. Name must not be empty`);
      out[name] = line.slice(eq + 1);
    } else if (heredoc >= 0) {
      const name = line.slice(0, heredoc);
      const delimiter = line.slice(heredoc + 2);
      if (!name || !delimiter) {
        throw new Error(`Invalid format '${line}'. Name must not be empty and delimiter must not be empty`);
      }
      const start = at;
      let end = at;
      for (;;) {
        const next = readLine(text, at);
        if (!next) throw new Error(`Invalid value. Matching delimiter not found '${delimiter}'`);
        at = next.next;
        if (next.line === delimiter) break;
        if (next.newline === null) throw new Error("Invalid value. EOF marker missing new line.");
        end = next.next - next.newline.length;
      }
      out[name] = end > start ? text.slice(start, end) : "";
    } else {
      throw new Error(`Invalid format '${line}'`);
    }
  }
  return out;
}

function readCommandFile(path: string, what: string): Record<string, string> {
  if (!existsSync(path)) return {}; // the job was cleaned up under a running step
  try {
    return parseFileCommands(readFileSync(path, "utf8"));
  } catch (err) {
    throw new Error(`${what} (${path}): ${(err as Error).message}`);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Workflow commands on stdout (`::error file=a,line=1::message`): the runner's ActionCommand.TryParseV2.

function unescapeData(s: string): string {
  return s.replace(/%0D/g, "\r").replace(/%0A/g, "\n").replace(/%25/g, "%");
}

function unescapeProperty(s: string): string {
  return s
    .replace(/%0D/g, "\r")
    .replace(/%0A/g, "\n")
    .replace(/%3A/g, ":")
    .replace(/%2C/g, ",")
    .replace(/%25/g, "%");
}

/** Annotations from a step's stdout, honouring `::stop-commands::TOKEN` … `::TOKEN::`. */
export function parseAnnotations(stdout: string): Annotation[] {
  const annotations: Annotation[] = [];
  let stopToken: string | null = null;
  for (const raw of stdout.split(/\r?\n/)) {
    const line = raw.trimStart();
    if (!line.startsWith("::")) continue;
    const end = line.indexOf("::", 2);
    if (end < 0) continue;
    const info = line.slice(2, end);
    const data = line.slice(end + 2);
    if (stopToken !== null) {
      if (info === stopToken && data === "") stopToken = null;
      continue;
    }
    const space = info.indexOf(" ");
    const command = space < 0 ? info : info.slice(0, space);
    if (command === "stop-commands" && data) {
      stopToken = data;
      continue;
    }
    if (command !== "error" && command !== "warning" && command !== "notice") continue;
    const properties: Record<string, string> = {};
    if (space >= 0) {
      for (const pair of info
        .slice(space + 1)
        .trim()
        .split(",")) {
        const eq = pair.indexOf("=");
        if (eq > 0) properties[pair.slice(0, eq)] = unescapeProperty(pair.slice(eq + 1));
      }
    }
    annotations.push({ level: command, message: unescapeData(data), properties });
  }
  return annotations;
}

// ---------------------------------------------------------------------------------------------------------
// action.yml input defaults (the runner passes every declared input that has a default).

interface ActionYml {
  inputs?: Record<string, { default?: unknown } | null>;
}

/** The action's declared inputs, with their `default:` (as the runner passes them: strings). */
export function actionInputs(actionYml = "action.yml"): Map<string, string | undefined> {
  const doc = parseYaml(readFileSync(resolve(ROOT, actionYml), "utf8")) as ActionYml;
  return new Map(
    Object.entries(doc.inputs ?? {}).map(([name, spec]) => [
      name,
      spec?.default === undefined ? undefined : String(spec.default),
    ]),
  );
}

/** The `default:`s of an action.yml's inputs. */
export function actionInputDefaults(actionYml = "action.yml"): Record<string, string> {
  return Object.fromEntries(
    [...actionInputs(actionYml)].filter((e): e is [string, string] => e[1] !== undefined),
  );
}

// ---------------------------------------------------------------------------------------------------------
// /proc helpers.

function procPids(): number[] {
  return readdirSync("/proc")
    .filter((d) => /^\d+$/.test(d))
    .map(Number);
}

/** Live (not zombie) process? (the one check, from processes.ts) */
export { alive as isAlive };

/** `pid` and all its descendants, parents first. */
function processTree(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const p of procPids()) {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      const list = children.get(ppid) ?? [];
      list.push(p);
      children.set(ppid, list);
    } catch {
      // gone
    }
  }
  const tree: number[] = [];
  const queue = [pid];
  while (queue.length) {
    const p = queue.shift()!;
    tree.push(p);
    queue.push(...(children.get(p) ?? []));
  }
  return tree;
}

function trySignal(pid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(pid, signal);
    return true;
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------------------

const DEFAULT_ESCALATION = { termAfterMs: 7500, killAfterMs: 2500 };

/** One job: one temp dir (RUNNER_TEMP, workspace, file-command files), one RUNNER_TRACKING_ID. */
export class Job {
  readonly trackingId: string = `github_${randomUUID()}`;
  readonly dir: string;
  readonly summaryFile: string;
  private readonly tempDir: string;
  private readonly workspace: string;
  private readonly filesDir: string;
  private readonly baseEnv: Record<string, string>;
  private readonly inputDefaults: Record<string, string>;
  private readonly states = new Map<string, Record<string, string>>();
  private stepCount = 0;

  constructor(opts: JobOptions = {}) {
    this.dir = mkdtempSync(join(tmpdir(), "lss-job-"));
    this.tempDir = join(this.dir, "temp");
    this.workspace = join(this.dir, "workspace");
    this.filesDir = join(this.dir, "file_commands");
    for (const d of [this.tempDir, this.workspace, this.filesDir]) mkdirSync(d);
    this.summaryFile = join(this.filesDir, "step_summary");
    writeFileSync(this.summaryFile, "");
    const eventPath = join(this.dir, "event.json");
    writeFileSync(eventPath, "{}\n");
    this.inputDefaults = { ...opts.inputDefaults };
    const runId = String(1_000_000_000 + Math.floor(Math.random() * 1_000_000_000));
    this.baseEnv = {
      PATH: process.env.PATH ?? "/usr/local/bin:/usr/bin:/bin",
      HOME: process.env.HOME ?? this.dir,
      CI: "true",
      GITHUB_ACTIONS: "true",
      GITHUB_REPOSITORY: "octo-org/octo-repo",
      GITHUB_REPOSITORY_OWNER: "octo-org",
      GITHUB_WORKFLOW: "CI",
      GITHUB_RUN_ID: runId,
      GITHUB_RUN_NUMBER: "1",
      GITHUB_RUN_ATTEMPT: "1",
      GITHUB_SERVER_URL: "https://github.com",
      GITHUB_API_URL: "https://api.github.com",
      GITHUB_GRAPHQL_URL: "https://api.github.com/graphql",
      GITHUB_JOB: "test",
      GITHUB_ACTOR: "octocat",
      GITHUB_SHA: randomBytes(20).toString("hex"),
      GITHUB_REF: "refs/heads/main",
      GITHUB_REF_NAME: "main",
      GITHUB_EVENT_NAME: "push",
      GITHUB_EVENT_PATH: eventPath,
      GITHUB_ACTION: "__octo-org_lss",
      GITHUB_WORKSPACE: this.workspace,
      GITHUB_STEP_SUMMARY: this.summaryFile,
      RUNNER_OS: "Linux",
      RUNNER_ARCH: "X64",
      RUNNER_NAME: "emulated-runner",
      RUNNER_TEMP: this.tempDir,
      RUNNER_TRACKING_ID: this.trackingId,
      ...idTokenEnv(opts.idToken),
      ...opts.env,
    };
  }

  /** Runs `entry` (relative to the repo root, e.g. "dist/main/index.js") as a node24 action step. */
  step(entry: string, opts: StepOptions = {}): Promise<StepResult> {
    return this.start(entry, opts).result;
  }

  /** Starts a step without waiting for it. */
  start(entry: string, opts: StepOptions = {}): RunningStep {
    const script = isAbsolute(entry) ? entry : resolve(ROOT, entry);
    if (!existsSync(script)) throw new Error(`step entry ${script} does not exist (build dist first?)`);
    const n = ++this.stepCount;
    const files = {
      GITHUB_OUTPUT: join(this.filesDir, `set_output_${n}`),
      GITHUB_STATE: join(this.filesDir, `save_state_${n}`),
      GITHUB_ENV: join(this.filesDir, `set_env_${n}`),
      GITHUB_PATH: join(this.filesDir, `add_path_${n}`),
    };
    for (const f of Object.values(files)) writeFileSync(f, "");
    const scope = opts.stateScope ?? "default";

    const env: Record<string, string> = { ...this.baseEnv, ...files };
    for (const [name, value] of Object.entries({ ...this.inputDefaults, ...opts.inputs })) {
      env[`INPUT_${name.replace(/ /g, "_").toUpperCase()}`] = value;
    }
    for (const [name, value] of Object.entries(this.states.get(scope) ?? {})) env[`STATE_${name}`] = value;
    Object.assign(env, opts.env);

    const child = spawn(NODE24, [script], { cwd: this.workspace, env, stdio: ["ignore", "pipe", "pipe"] });
    live.add(child);
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));

    const escalation = { ...DEFAULT_ESCALATION, ...opts.escalation };
    const timers: NodeJS.Timeout[] = [];
    let exited = false;
    let cancelled = false;
    const cancel = () => {
      if (cancelled || exited || child.pid === undefined) return;
      cancelled = true;
      const pid = child.pid;
      trySignal(pid, "SIGINT");
      timers.push(
        setTimeout(() => {
          if (exited) return;
          trySignal(pid, "SIGTERM");
          timers.push(
            setTimeout(() => {
              if (exited) return;
              for (const p of processTree(pid)) trySignal(p, "SIGKILL");
            }, escalation.killAfterMs),
          );
        }, escalation.termAfterMs),
      );
    };
    if (opts.cancelAfterMs !== undefined) timers.push(setTimeout(cancel, opts.cancelAfterMs));
    if (opts.timeoutMs !== undefined) timers.push(setTimeout(cancel, opts.timeoutMs));

    const result = new Promise<StepResult>((resolvePromise, reject) => {
      child.once("error", (err) => {
        exited = true;
        for (const t of timers) clearTimeout(t);
        live.delete(child);
        reject(err);
      });
      child.once("exit", (exitCode, signal) => {
        exited = true;
        for (const t of timers) clearTimeout(t);
        live.delete(child);
        // A background process may hold the pipes open: give them a moment, then stop reading.
        const closed = new Promise<void>((r) => {
          if (child.stdout.readableEnded && child.stderr.readableEnded) r();
          else child.once("close", () => r());
        });
        const grace = new Promise<void>((r) => setTimeout(r, 500).unref());
        void Promise.race([closed, grace]).then(() => {
          child.stdout.destroy();
          child.stderr.destroy();
          try {
            const outputs = readCommandFile(files.GITHUB_OUTPUT, "GITHUB_OUTPUT");
            const state = readCommandFile(files.GITHUB_STATE, "GITHUB_STATE");
            this.states.set(scope, { ...this.states.get(scope), ...state });
            resolvePromise({
              exitCode,
              signal,
              stdout,
              stderr,
              outputs,
              state,
              summary: existsSync(this.summaryFile) ? readFileSync(this.summaryFile, "utf8") : "",
              annotations: parseAnnotations(stdout),
            });
          } catch (err) {
            reject(err);
          }
        });
      });
    });

    return { result, cancel, pid: child.pid ?? -1 };
  }

  /**
   * End of job: SIGKILL every live process whose environment carries this job's RUNNER_TRACKING_ID (as the
   * runner's orphan-process cleanup does), wait for them to die, and remove the temp dir. Returns their pids.
   */
  async cleanup(): Promise<number[]> {
    const marker = `RUNNER_TRACKING_ID=${this.trackingId}`;
    const killed: number[] = [];
    for (const pid of procPids()) {
      if (pid === process.pid) continue;
      let environ: string;
      try {
        environ = readFileSync(`/proc/${pid}/environ`, "latin1");
      } catch {
        continue; // gone, or not ours to read
      }
      if (!environ.split("\0").includes(marker) || !alive(pid)) continue;
      if (trySignal(pid, "SIGKILL")) killed.push(pid);
    }
    const deadline = Date.now() + 5000;
    while (killed.some(alive)) {
      if (Date.now() > deadline) throw new Error(`processes survived SIGKILL: ${killed.filter(alive)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    rmSync(this.dir, { recursive: true, force: true });
    return killed;
  }
}
