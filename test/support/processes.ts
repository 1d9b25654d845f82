/**
 * What the test support shares about time and processes: one sleep, one check that a process is
 * alive, and one safety net for what the tests started.
 */
import type { ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Whether a process exists and is neither a zombie nor dead. */
export function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
    return state !== "Z" && state !== "X";
  } catch {
    return false;
  }
}

// The safety net: a vitest worker exits without running afterEach/afterAll when a suite crashes or
// times out. One 'exit' listener for all; 'exit' handlers must be synchronous (child.kill(),
// process.kill() and rmSync() are).
const children = new Set<ChildProcess>();
const cleanups = new Set<() => void>();
let installed = false;

function install() {
  if (installed) return;
  installed = true;
  process.once("exit", () => {
    for (const child of children) child.kill("SIGKILL");
    for (const cleanup of cleanups) {
      try {
        cleanup();
      } catch {
        // the worker is going anyway: clean up the rest
      }
    }
  });
}

/** SIGKILLs `child` if the worker exits while it still runs. */
export function killOnExit(child: ChildProcess): void {
  install();
  children.add(child);
  child.once("exit", () => children.delete(child));
}

/** Runs `cleanup` (synchronous) if the worker exits first; call the function returned to take it back. */
export function onExit(cleanup: () => void): () => void {
  install();
  cleanups.add(cleanup);
  return () => cleanups.delete(cleanup);
}
