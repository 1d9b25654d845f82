/** What there is to see: a lock's `history` and the namespace's `list`. */
import type { Command } from "commander";
import { describeHolder } from "../../client/describe.js";
import { formatDuration } from "../../protocol/durations.js";
import type { HistoryResponse } from "../../protocol/lease.js";
import { LockKey } from "../../protocol/lease.js";
import { count, schemaArg } from "../args.js";
import type { CliContext } from "../context.js";

/** One event as a line: when, what, who and why, its fencing token, how long it was held, by whom. */
function eventLine(e: HistoryResponse["events"][number]): string {
  const waiter = e.event === "queue_timeout" || e.event === "superseded";
  const who = e.holder_id ?? (waiter ? "a waiter" : "an anonymous holder");
  const newer = e.event === "superseded" ? ` for ${e.superseded_by ?? "a newer waiter"}` : "";
  const why = e.reason ? ` (${e.reason})` : "";
  const fence = e.fencing_token == null ? "" : ` fencing token ${e.fencing_token}`;
  const held = e.held_ms == null ? "" : ` after ${formatDuration(e.held_ms)}`;
  const by = e.actor ? ` by token ${e.actor.token_name ?? e.actor.token_id}` : "";
  return `${e.at}  ${e.event.padEnd(14)} ${who}${newer}${why}${fence}${held}${by}`;
}

export function registerReads(program: Command, { clientOf, print }: CliContext) {
  program
    .command("history")
    .description(
      "who held a lock and when: grants, releases, expiries, forced releases, queue timeouts, supersedes",
    )
    .argument("<key>", "the lock", schemaArg(LockKey))
    .option("--limit <n>", "how many events (newest first)", count("--limit", 100), 20)
    .option("--cursor <cursor>", "the next page (the previous page's next_cursor)")
    .action(async (k: string, o, cmd: Command) => {
      const h = await clientOf(cmd).history(k, { limit: o.limit, cursor: o.cursor });
      const lines = h.events.map(eventLine);
      if (h.next_cursor) lines.push(`(older: lss history ${k} --cursor ${h.next_cursor})`);
      print(cmd, h, lines.length > 0 ? lines.join("\n") : `${k} has no history`);
    });

  program
    .command("list")
    .description("the namespace's locks: held or free, by whom, until when, how many wait")
    .option("--prefix <prefix>", "only keys that start with it", "")
    .option("--limit <n>", "how many keys", count("--limit", 100), 50)
    .option("--cursor <cursor>", "the next page (the previous page's next_cursor)")
    .action(async (o, cmd: Command) => {
      const page = await clientOf(cmd).list({ prefix: o.prefix, limit: o.limit, cursor: o.cursor });
      const lines = page.locks.map((l) => {
        const waiting = l.waiting > 0 ? `, ${l.waiting} waiting` : "";
        if (!l.locked) return `${l.key}: free${waiting}`;
        const shared = l.mode === "shared" ? ` shared by ${l.holders}, last to end:` : "";
        return `${l.key}:${shared} ${describeHolder(l)}${waiting}`;
      });
      if (page.next_cursor) lines.push(`(more: lss list --cursor ${page.next_cursor})`);
      print(cmd, page, lines.length > 0 ? lines.join("\n") : "no locks");
    });
}
