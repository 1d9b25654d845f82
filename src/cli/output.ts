/** What the CLI prints: results on stdout (plain or --json), progress and errors on stderr. */

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
