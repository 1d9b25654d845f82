/** The job summary: what was locked or waited for, how long, who held it, the fencing token. */
import type { HeldLease } from "../client/client.js";
import { describeHolder } from "../client/describe.js";
import { formatDuration } from "../protocol/durations.js";
import type { HistoryEvent } from "../protocol/lease.js";

export interface SummaryFacts {
  title: string;
  lock: string;
  server: string;
  holder?: string;
  waitedMs?: number;
  heldBefore?: HeldLease | null;
  fencingToken?: number | null;
  expiry?: string;
  /** Held shared: the other holders at the grant. */
  sharedWith?: string[];
  /** The key's last holders, from its history (recentHolders). */
  recentHolders?: string[];
  note?: string;
}

const HTML_ENTITIES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;" };

/**
 * Text shown as itself: another job's holder id and reason are written by whoever took the lock,
 * and must not become links, images, HTML or formatting in this job's summary. GitHub links bare
 * addresses too (https://…, www.…, a@b.c): an escaped ':' or '@', or the dot after "www",
 * breaks each without changing what is shown.
 */
export const mdText = (text: string) =>
  text
    .replace(/[&<>]/g, (c) => HTML_ENTITIES[c] ?? c)
    .replace(/[\\`*_{}[\]()#+!|~:@]/g, "\\$&")
    .replace(/(www)\./gi, "$1\\.")
    .replace(/\s+/g, " ");

/** A code span its content cannot end: a fence longer than any run of backticks inside. */
export function mdCode(text: string): string {
  const longest = Math.max(0, ...(text.match(/`+/g) ?? []).map((run) => run.length));
  const fence = "`".repeat(longest + 1);
  // In a table a pipe ends the cell even inside a code span, unless escaped.
  const inner = text.replace(/\s+/g, " ").replace(/\|/g, "\\|");
  // A space each side keeps a backtick at either end from joining the fence (and is not shown).
  const pad = /^`|`$/.test(inner) ? " " : "";
  return `${fence}${pad}${inner}${pad}${fence}`;
}

const ENDED: Partial<Record<HistoryEvent["event"], string>> = {
  released: "released",
  expired: "expired",
  forced_release: "force-released",
};

/** The last leases of a key that ended, newest first, one line each: who, why, how it ended, when, after how long. */
export function recentHolders(events: HistoryEvent[], max = 5): string[] {
  return events
    .filter((e) => ENDED[e.event])
    .slice(0, max)
    .map((e) => {
      const who = e.holder_id ?? "an anonymous holder";
      const why = e.reason ? ` (${e.reason})` : "";
      const held = e.held_ms == null ? "" : ` after ${formatDuration(e.held_ms)}`;
      return `${who}${why}: ${ENDED[e.event]} ${e.at}${held}`;
    });
}

/** `title` is Markdown (build it with mdCode/mdText); every other fact is text. */
export function summaryMarkdown(f: SummaryFacts): string {
  const rows: Array<[string, string | undefined]> = [
    ["Lock", `${mdCode(f.lock)} on ${mdText(f.server)}`],
    ["Holder", f.holder === undefined ? undefined : mdText(f.holder)],
    ["Waited", f.waitedMs === undefined ? undefined : formatDuration(f.waitedMs)],
    ["It was", f.heldBefore === undefined ? undefined : mdText(describeHolder(f.heldBefore))],
    ["Fencing token", f.fencingToken == null ? undefined : mdCode(String(f.fencingToken))],
    ["Lease", f.expiry === undefined ? undefined : mdText(f.expiry)],
    [
      "Shared with",
      f.sharedWith === undefined
        ? undefined
        : f.sharedWith.length === 0
          ? "nobody yet"
          : f.sharedWith.map(mdText).join("<br>"),
    ],
    [
      "Held before",
      f.recentHolders === undefined || f.recentHolders.length === 0
        ? undefined
        : f.recentHolders.map(mdText).join("<br>"),
    ],
  ];
  const table = rows
    .filter((r): r is [string, string] => r[1] !== undefined)
    .map(([k, v]) => `| ${k} | ${v} |`)
    .join("\n");
  return `### ${f.title}\n\n| | |\n|---|---|\n${table}\n${f.note ? `\n${f.note}\n` : ""}\n`;
}
