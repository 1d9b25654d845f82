/**
 * Runs the built `lss` (dist/cli/index.js) as its own process, with LSS_URL / LSS_TOKEN in an
 * otherwise clean environment, and collects { code, signal, stdout, stderr }. Each process leads
 * its own process group, so that killGroups() also takes whatever command `lss run` started.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { constants } from "node:os";
import { fileURLToPath } from "node:url";
import { onExit } from "./processes.js";

export const CLI = fileURLToPath(new URL("../../dist/cli/index.js", import.meta.url));
const ROOT = fileURLToPath(new URL("../..", import.meta.url));

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Date.now() when the lss process exited. */
  exitedAt: number;
  /** From spawn to exit. */
  ms: number;
}

export interface CliProcess {
  pid: number;
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves when lss has exited and its output streams are closed (its command's too). */
  done: Promise<CliResult>;
}

export interface CliOptions {
  /** LSS_URL; null leaves it unset. */
  url: string | null;
  /** LSS_TOKEN; null or absent leaves it unset. */
  token?: string | null;
  env?: Record<string, string>;
  /** The process group is SIGKILLed after this (default 20 s) and done rejects. */
  timeoutMs?: number;
}

const groups = new Set<number>();

const killGroup = (pgid: number) => {
  try {
    process.kill(-pgid, "SIGKILL");
  } catch {
    // already gone
  }
};

// Should the worker exit without running afterEach/afterAll (processes.ts).
onExit(() => {
  for (const pgid of groups) killGroup(pgid);
});

/** SIGKILLs every process group started by startCli (lss and anything it ran). */
export function killGroups() {
  for (const pgid of groups) killGroup(pgid);
  groups.clear();
}

export function startCli(args: string[], opts: CliOptions): CliProcess {
  const env: Record<string, string> = { PATH: process.env.PATH ?? "/usr/bin:/bin" };
  if (opts.url !== null) env.LSS_URL = opts.url;
  if (opts.token) env.LSS_TOKEN = opts.token;
  Object.assign(env, opts.env);
  const started = Date.now();
  const child = spawn(process.execPath, [CLI, ...args], {
    cwd: ROOT,
    env,
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error("could not spawn the lss CLI");
  groups.add(pid);
  let stdout = "";
  let stderr = "";
  child.stdout?.setEncoding("utf8").on("data", (d: string) => (stdout += d));
  child.stderr?.setEncoding("utf8").on("data", (d: string) => (stderr += d));
  let exitedAt = 0;
  child.once("exit", () => {
    exitedAt = Date.now();
  });
  const timeoutMs = opts.timeoutMs ?? 20_000;
  const done = new Promise<CliResult>((resolve, reject) => {
    const timer = setTimeout(() => {
      killGroup(pid);
      reject(
        new Error(
          `lss ${args.join(" ")} did not finish within ${timeoutMs} ms\nstdout: ${stdout}\nstderr: ${stderr}`,
        ),
      );
    }, timeoutMs);
    child.once("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, exitedAt: exitedAt || Date.now(), ms: exitedAt - started });
    });
  });
  return { pid, child, stdout: () => stdout, stderr: () => stderr, done };
}

export const runCli = (args: string[], opts: CliOptions) => startCli(args, opts).done;

/** The lines of stderr that are not commander's "(run with --help for usage)" hint or blank. */
export const problemLines = (stderr: string) =>
  stderr
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "" && l !== "(run with --help for usage)");

/** Whether a process has a handler for a signal (Linux: SigCgt in /proc/<pid>/status). */
export function catches(pid: number, signal: NodeJS.Signals): boolean {
  try {
    const mask = /^SigCgt:\s*([0-9a-f]+)$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
    const n = constants.signals[signal];
    return mask !== undefined && ((BigInt(`0x${mask}`) >> BigInt(n - 1)) & 1n) === 1n;
  } catch {
    return false;
  }
}
