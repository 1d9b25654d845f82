/** The job summary: what was locked or waited for, how long, who held it, the fencing token. */
import type { HeldLease } from "../client/client.js";
import { describeHolder } from "../client/describe.js";
import { formatDuration } from "../protocol/durations.js";

export interface SummaryFacts {
  title: string;
  lock: string;
  server: string;
  holder?: string;
  waitedMs?: number;
  heldBefore?: HeldLease | null;
  fencingToken?: number | null;
  expiry?: string;
  note?: string;
}

const cell = (text: string) => text.replace(/\|/g, "\\|").replace(/\n/g, " ");

export function summaryMarkdown(f: SummaryFacts): string {
  const rows: Array<[string, string | undefined]> = [
    ["Lock", `\`${f.lock}\` on ${f.server}`],
    ["Holder", f.holder],
    ["Waited", f.waitedMs === undefined ? undefined : formatDuration(f.waitedMs)],
    ["It was", f.heldBefore === undefined ? undefined : describeHolder(f.heldBefore)],
    ["Fencing token", f.fencingToken == null ? undefined : `\`${f.fencingToken}\``],
    ["Lease", f.expiry],
  ];
  const table = rows
    .filter((r): r is [string, string] => r[1] !== undefined)
    .map(([k, v]) => `| ${k} | ${cell(v)} |`)
    .join("\n");
  return `### ${f.title}\n\n| | |\n|---|---|\n${table}\n${f.note ? `\n${f.note}\n` : ""}\n`;
}
