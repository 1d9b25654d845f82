/** What the CLI prints: results on stdout (plain or --json), progress and errors on stderr. */

import { describeHolder } from "../client/describe.js";
import type { WaitProgress } from "../client/wait.js";
import { formatDuration } from "../protocol/durations.js";

export interface Terminal {
  out(line: string): void;
  err(line: string): void;
  /** A progress line that rewrites itself; only when stderr is a terminal. */
  progress(line: string | null): void;
  readonly interactive: boolean;
}

export function processTerminal(): Terminal {
  const interactive = Boolean(process.stderr.isTTY);
  let shown = false;
  return {
    interactive,
    out: (line) => process.stdout.write(`${line}\n`),
    err: (line) => {
      if (shown) process.stderr.write("\r\x1b[2K");
      shown = false;
      process.stderr.write(`${line}\n`);
    },
    progress: (line) => {
      if (!interactive) return;
      process.stderr.write(`\r\x1b[2K${line ?? ""}`);
      shown = line !== null;
    },
  };
}

export const progressLine = (what: string, timeoutMs: number) => (p: WaitProgress) => {
  const place = p.holder?.position ? `, number ${p.holder.position} in the queue` : "";
  return `waiting for ${what}: ${describeHolder(p.holder)}${place} — ${formatDuration(p.waitedMs)} of ${formatDuration(timeoutMs)}`;
};
