/**
 * The `lss` command line (commander): wrap a command in a lock (`run`), the lease steps apart
 * (`acquire`, `renew`, `release`, `status`, `wait`), and the /locks API (`create`, `lock`,
 * `unlock`, `check`). Configuration by flags or LSS_URL / LSS_TOKEN.
 */
import { hostname, userInfo } from "node:os";
import { Command, CommanderError, InvalidArgumentError, Option } from "commander";
import { version } from "../../package.json" with { type: "json" };
import { createClient, type LockTarget, type LssClient, newToken, targetName } from "../client/client.js";
import { describeHolder, timedOutText, waitingText } from "../client/describe.js";
import { LssError } from "../client/errors.js";
import { LONG_POLL_MS, waitFor } from "../client/wait.js";
import { formatDuration, parseDuration } from "../protocol/durations.js";
import { HolderLimitText, keysOf, LockKey, PoolKeys } from "../protocol/lease.js";
import { StateLockId } from "../protocol/state-locks.js";
import { Exit } from "./exit-codes.js";
import type { Terminal } from "./output.js";
import { runLocked } from "./run-command.js";
import { unconfirmedAcquire } from "./settle.js";

const duration = (text: string) => {
  const ms = parseDuration(text);
  if (ms === null)
    throw new InvalidArgumentError(`'${text}' is not a duration such as 30s, 10m, 1h or seconds`);
  return ms;
};

const schemaArg =
  <T>(schema: {
    safeParse(
      v: unknown,
    ): { success: true; data: T } | { success: false; error: { issues: { message: string }[] } };
  }) =>
  (text: unknown): T => {
    const r = schema.safeParse(text);
    if (!r.success) throw new InvalidArgumentError(r.error.issues[0]?.message ?? "invalid");
    return r.data;
  };

/** A key, or a pool written as keys separated by commas (qa-1,qa-2,qa-3). */
const targetArg = (text: string): LockTarget => {
  const keys = keysOf(text);
  return keys.length === 1 ? schemaArg(LockKey)(keys[0]) : schemaArg(PoolKeys)(keys);
};

const limitArg = schemaArg(HolderLimitText);

/** Who holds it, as others see it: the user and host (and, for `run`, the process that holds it). */
const defaultHolder = (withPid: boolean) =>
  `${userName()}@${hostname()}${withPid ? ` (pid ${process.pid})` : ""}`;

/** The user's name; a container's user may have no passwd entry (userInfo throws), then $USER or the uid. */
function userName(): string {
  try {
    return userInfo().username;
  } catch {
    return process.env.USER || process.env.LOGNAME || `uid ${process.getuid?.() ?? "?"}`;
  }
}

interface Globals {
  url?: string;
  token?: string;
  json?: boolean;
}

export function buildProgram(term: Terminal, env: Record<string, string | undefined> = process.env) {
  let exitCode: number = Exit.ok;
  const program = new Command("lss")
    .description("Locks for cron jobs, scripts and pipelines, on an LSS server")
    .addOption(new Option("--url <url>", "the LSS server").env("LSS_URL"))
    .addOption(new Option("--token <token>", "API token").env("LSS_TOKEN"))
    .version(version, "-V, --version")
    .option("--json", "print results as JSON")
    .showHelpAfterError("(run with --help for usage)")
    .exitOverride()
    .configureOutput({ writeOut: (s) => term.out(s.trimEnd()), writeErr: (s) => term.err(s.trimEnd()) });

  const clientOf = (cmd: Command): LssClient => {
    const g = cmd.optsWithGlobals() as Globals;
    const url = g.url ?? env.LSS_URL;
    if (!url) throw new CommanderError(Exit.usage, "lss.url", "lss: no server: pass --url or set LSS_URL");
    if (!/^https?:\/\//.test(url))
      throw new CommanderError(Exit.usage, "lss.url", `lss: --url must be http(s): '${url}'`);
    return createClient({ url, token: g.token ?? env.LSS_TOKEN, userAgent: "lss-cli" });
  };
  const json = (cmd: Command) => Boolean((cmd.optsWithGlobals() as Globals).json);
  const print = (cmd: Command, value: unknown, plain: string) =>
    term.out(json(cmd) ? JSON.stringify(value) : plain);

  program
    .command("run")
    .description(
      "run a command while holding a lock; release it when the command exits, and exit with its code",
    )
    .argument(
      "<key>",
      "the lock (or a pool: keys separated by commas, for whichever is free first)",
      targetArg,
    )
    .argument("<command...>", "the command, after --")
    .option("--shared", "hold it shared: others may hold it shared at the same time")
    .option("--limit <n>", "hold one of n slots (implies --shared)", limitArg)
    .option("--ttl <duration>", "lease length, renewed every third of it", duration, 30_000)
    .option("--timeout <duration>", "how long to wait for the lock (0: try once)", duration, 600_000)
    .option("--grace <duration>", "after a lost lease: SIGTERM, then SIGKILL after this", duration, 10_000)
    .option("--poll <duration>", "how often to ask while waiting", duration, 5000)
    .option("--holder <name>", "who holds it, as others see it", defaultHolder(true))
    .option("--reason <text>", "why, as others see it")
    .action(async (k: LockTarget, command: string[], o, cmd: Command) => {
      exitCode = await runLocked(
        clientOf(cmd),
        {
          key: k,
          shared: o.shared,
          limit: o.limit,
          command,
          ttlMs: o.ttl,
          timeoutMs: o.timeout,
          graceMs: o.grace,
          pollMs: o.poll,
          holder: o.holder,
          reason: o.reason,
        },
        term,
      );
    });

  program
    .command("acquire")
    .description("take a lock (waiting up to --timeout); prints the lease token")
    .argument("<key>", "the lock (or a pool: keys separated by commas; prints the key it got too)", targetArg)
    .option("--shared", "hold it shared: others may hold it shared at the same time")
    .option("--limit <n>", "hold one of n slots (implies --shared)", limitArg)
    .option("--ttl <duration>", "lease length", duration, 60_000)
    .option("--timeout <duration>", "how long to wait (0: try once)", duration, 0)
    .option("--poll <duration>", "how often to ask while waiting", duration, 5000)
    .option("--lease-token <token>", "your own lease token (acquiring again with it extends the lease)")
    .option("--holder <name>", "who holds it", defaultHolder(false))
    .option("--reason <text>", "why")
    .action(async (k: LockTarget, o, cmd: Command) => {
      const client = clientOf(cmd);
      const token = o.leaseToken ?? newToken();
      const params = {
        ttlMs: o.ttl,
        holderId: o.holder,
        reason: o.reason,
        token,
        shared: o.shared,
        limit: o.limit,
      };
      const r = await waitFor(
        client,
        { kind: "acquire", key: k, params },
        {
          timeoutMs: o.timeout,
          pollMs: o.poll,
          longPollMs: LONG_POLL_MS,
          onWait: (p) => term.progress(waitingText(targetName(k), o.timeout, p)),
        },
      ).catch(async (err) => {
        throw await unconfirmedAcquire(client, k, token, err);
      });
      term.progress(null);
      if (r.outcome !== "acquired") {
        const held = r.outcome === "timeout" ? r.holder : null;
        if (json(cmd)) term.out(JSON.stringify({ acquired: false, key: k, ...held }));
        term.err(`lss: ${targetName(k)} is ${describeHolder(held)}`);
        exitCode = Exit.timeout;
        return;
      }
      // Of a pool, which key it got comes first: `read key token < <(lss acquire qa-1,qa-2)`.
      const plain = typeof k === "string" ? r.lease.token : `${r.lease.key} ${r.lease.token}`;
      print(cmd, { acquired: true, ...r.lease }, plain);
    });

  program
    .command("renew")
    .description("extend a lease to --ttl from now")
    .argument("<key>", "the lock", schemaArg(LockKey))
    .requiredOption("--lease-token <token>", "the lease's token")
    .option("--ttl <duration>", "new lease length", duration, 60_000)
    .action(async (k: string, o, cmd: Command) => {
      const lease = await clientOf(cmd).renew(k, { token: o.leaseToken, ttlMs: o.ttl });
      print(cmd, lease, `${k} renewed until ${lease.expires_at}`);
    });

  program
    .command("release")
    .description("release a lease (with its token, or --force with an admin token)")
    .argument("<key>", "the lock", schemaArg(LockKey))
    .option("--lease-token <token>", "the lease's token")
    .option("--force", "release whoever holds it (admin token)")
    .action(async (k: string, o, cmd: Command) => {
      if (!o.leaseToken === !o.force) {
        throw new CommanderError(
          Exit.usage,
          "lss.release",
          "lss: release needs --lease-token or --force (one of them)",
        );
      }
      await clientOf(cmd).release(k, o.force ? { force: true } : { token: o.leaseToken });
      print(cmd, { released: true, key: k }, `${k} released`);
    });

  program
    .command("status")
    .description("who holds a lock, why, and until when")
    .argument("<key>", "the lock", schemaArg(LockKey))
    .action(async (k: string, _o, cmd: Command) => {
      const s = await clientOf(cmd).status(k);
      print(
        cmd,
        s,
        s.locked ? `${k} is ${describeHolder(s)} (fencing token ${s.fencing_token})` : `${k} is free`,
      );
    });

  const count = (name: string, max: number) => (text: string) => {
    const n = Number(text);
    if (!/^\d+$/.test(text) || n < 1 || n > max)
      throw new InvalidArgumentError(`${name} must be a whole number from 1 to ${max}`);
    return n;
  };

  program
    .command("history")
    .description("who held a lock and when: grants, releases, expiries, forced releases, queue timeouts")
    .argument("<key>", "the lock", schemaArg(LockKey))
    .option("--limit <n>", "how many events (newest first)", count("--limit", 100), 20)
    .option("--cursor <cursor>", "the next page (the previous page's next_cursor)")
    .action(async (k: string, o, cmd: Command) => {
      const h = await clientOf(cmd).history(k, { limit: o.limit, cursor: o.cursor });
      const lines = h.events.map((e) => {
        const who = e.holder_id ?? (e.event === "queue_timeout" ? "a waiter" : "an anonymous holder");
        const why = e.reason ? ` (${e.reason})` : "";
        const fence = e.fencing_token == null ? "" : ` fencing token ${e.fencing_token}`;
        const held = e.held_ms == null ? "" : ` after ${formatDuration(e.held_ms)}`;
        const by = e.actor ? ` by token ${e.actor.token_name ?? e.actor.token_id}` : "";
        return `${e.at}  ${e.event.padEnd(14)} ${who}${why}${fence}${held}${by}`;
      });
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

  program
    .command("wait")
    .description("wait until a lock is free, without taking it")
    .argument("<key>", "the lock", schemaArg(LockKey))
    .option("--timeout <duration>", "how long to wait", duration, 600_000)
    .option("--poll <duration>", "how often to ask", duration, 5000)
    .action(async (k: string, o, cmd: Command) => {
      const r = await waitFor(
        clientOf(cmd),
        { kind: "free", key: k },
        {
          timeoutMs: o.timeout,
          pollMs: o.poll,
          longPollMs: LONG_POLL_MS,
          onWait: (p) => term.progress(waitingText(k, o.timeout, p)),
        },
      );
      term.progress(null);
      if (r.outcome === "free")
        return print(cmd, { free: true, key: k, waited_ms: r.waitedMs }, `${k} is free`);
      term.err(`lss: ${timedOutText(k, o.timeout, r.outcome === "timeout" ? r.holder : null)}`);
      exitCode = Exit.timeout;
    });

  // The /locks API
  program
    .command("create")
    .description("create a /locks lock; prints its id and key")
    .option("--locked", "create it locked")
    .option("--e <seconds>", "with --locked: seconds it stays locked")
    .option("--k <key>", "your own lock key")
    .action(async (o, cmd: Command) => {
      const client = clientOf(cmd);
      const created = await client.createStateLock({ locked: Boolean(o.locked), e: o.e, k: o.k });
      print(cmd, created, `${created.id} ${created.key}`);
    });

  for (const action of ["lock", "unlock"] as const) {
    program
      .command(action)
      .description(
        action === "lock" ? "lock a /locks lock (--e seconds, else until unlocked)" : "unlock a /locks lock",
      )
      .argument("<id>", "the lock's id", schemaArg(StateLockId))
      .requiredOption("--k <key>", "the lock's key")
      .option("--e <seconds>", "seconds it stays locked")
      .action(async (i: string, o, cmd: Command) => {
        await clientOf(cmd).changeStateLock(i, { action, k: o.k, e: o.e });
        print(cmd, { id: i, locked: action === "lock" }, `${i} ${action}ed`);
      });
  }

  program
    .command("check")
    .description(
      `exit ${Exit.ok} if a /locks lock is unlocked, ${Exit.locked} if locked, ${Exit.unknown} if unknown, ${Exit.failure} if the server cannot say`,
    )
    .argument("<id>", "the lock's id", schemaArg(StateLockId))
    .action(async (i: string, _o, cmd: Command) => {
      const s = await clientOf(cmd).stateLock(i);
      print(cmd, { id: i, ...s }, `${i} is ${s.state}`);
      exitCode = s.state === "unlocked" ? Exit.ok : s.state === "locked" ? Exit.locked : Exit.unknown;
    });

  return { program, exitCode: () => exitCode };
}

/** Parses argv, runs the command, and returns the exit code; never throws. */
export async function main(
  argv: string[],
  term: Terminal,
  env?: Record<string, string | undefined>,
): Promise<number> {
  const { program, exitCode } = buildProgram(term, env);
  try {
    await program.parseAsync(argv);
    return exitCode();
  } catch (err) {
    term.progress(null);
    if (err instanceof CommanderError) {
      if (err.code === "commander.helpDisplayed" || err.code === "commander.version") return Exit.ok;
      if (err.code.startsWith("lss.")) term.err(err.message);
      return Exit.usage;
    }
    if (err instanceof LssError) {
      term.err(`lss: ${err.message}${err.status ? ` (${err.code})` : ""}`);
      return Exit.failure;
    }
    term.err(`lss: ${err instanceof Error ? err.message : String(err)}`);
    return Exit.failure;
  }
}
