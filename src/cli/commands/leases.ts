/** The lease steps apart: `acquire`, `renew`, `release`, `status` and `wait`. */
import { type Command, CommanderError } from "commander";
import { type LockTarget, newToken, targetName } from "../../client/client.js";
import { describeHolder, supersededText, timedOutText, waitingText } from "../../client/describe.js";
import { LONG_POLL_MS, waitFor } from "../../client/wait.js";
import { LockKey } from "../../protocol/lease.js";
import {
  defaultHolder,
  durationOption,
  IF_HELD_HELP,
  ifHeldArg,
  limitArg,
  priorityArg,
  SUPERSEDE_HELP,
  schemaArg,
  supersedeArg,
  targetArg,
} from "../args.js";
import type { CliContext } from "../context.js";
import { Exit } from "../exit-codes.js";
import { unconfirmedAcquire } from "../settle.js";

export function registerAcquire(program: Command, { term, clientOf, json, print, exit }: CliContext) {
  program
    .command("acquire")
    .description("take a lock (waiting up to --timeout); prints the lease token")
    .argument("<key>", "the lock (or a pool: keys separated by commas; prints the key it got too)", targetArg)
    .option("--shared", "hold it shared: others may hold it shared at the same time")
    .option("--limit <n>", "hold one of n slots (implies --shared)", limitArg)
    .addOption(durationOption("--ttl <duration>", "lease length", 60_000))
    .addOption(durationOption("--timeout <duration>", "how long to wait (0: try once)", 0))
    .option("--if-held <what>", IF_HELD_HELP, ifHeldArg, "wait")
    .option("--priority <n>", "while waiting: place in the queue, highest first (-100 … 100)", priorityArg, 0)
    .option("--supersede <group>", SUPERSEDE_HELP, supersedeArg)
    .addOption(durationOption("--poll <duration>", "how often to ask while waiting", 5000))
    .option("--lease-token <token>", "your own lease token (acquiring again with it extends the lease)")
    .option("--holder <name>", "who holds it", defaultHolder(false))
    .option("--reason <text>", "why")
    .action(async (k: LockTarget, o, cmd: Command) => {
      // A script reads acquire's exit code: "held, skipped" with 0 would read as acquired.
      if (o.ifHeld === "skip")
        throw new CommanderError(
          Exit.usage,
          "lss.acquire",
          "lss: acquire --if-held skip would exit 0 without a lease: use --if-held fail (exit 75), or lss run --if-held skip",
        );
      const client = clientOf(cmd);
      const token = o.leaseToken ?? newToken();
      const params = {
        ttlMs: o.ttl,
        holderId: o.holder,
        reason: o.reason,
        token,
        shared: o.shared,
        limit: o.limit,
        priority: o.priority,
        supersede: o.supersede,
      };
      const timeoutMs = o.ifHeld === "wait" ? o.timeout : 0;
      const waiting = {
        timeoutMs,
        pollMs: o.poll,
        longPollMs: LONG_POLL_MS,
        onWait: (p: Parameters<typeof waitingText>[2]) =>
          term.progress(waitingText(targetName(k), o.timeout, p)),
      };
      const r = await waitFor(client, { kind: "acquire", key: k, params }, waiting).catch(async (err) => {
        throw await unconfirmedAcquire(client, k, token, err);
      });
      term.progress(null);
      if (r.outcome === "superseded") {
        if (json(cmd))
          term.out(JSON.stringify({ acquired: false, key: k, superseded: true, superseded_by: r.by }));
        term.err(`lss: ${supersededText(targetName(k), r.by)}`);
        return exit(Exit.superseded);
      }
      if (r.outcome !== "acquired") {
        const held = r.outcome === "timeout" ? r.holder : null;
        if (json(cmd)) term.out(JSON.stringify({ acquired: false, key: k, ...held }));
        term.err(`lss: ${targetName(k)} is ${describeHolder(held)}`);
        return exit(Exit.timeout);
      }
      // Of a pool, which key it got comes first: `read key token < <(lss acquire qa-1,qa-2)`.
      const plain = typeof k === "string" ? r.lease.token : `${r.lease.key} ${r.lease.token}`;
      print(cmd, { acquired: true, ...r.lease }, plain);
    });
}

export function registerLeaseSteps(program: Command, { clientOf, print }: CliContext) {
  program
    .command("renew")
    .description("extend a lease to --ttl from now")
    .argument("<key>", "the lock", schemaArg(LockKey))
    .requiredOption("--lease-token <token>", "the lease's token")
    .addOption(durationOption("--ttl <duration>", "new lease length", 60_000))
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
      const plain = s.locked
        ? `${k} is ${describeHolder(s)} (fencing token ${s.fencing_token})`
        : `${k} is free`;
      print(cmd, s, plain);
    });
}

export function registerWait(program: Command, { term, clientOf, print, exit }: CliContext) {
  program
    .command("wait")
    .description("wait until a lock is free, without taking it")
    .argument("<key>", "the lock", schemaArg(LockKey))
    .addOption(durationOption("--timeout <duration>", "how long to wait", 600_000))
    .addOption(durationOption("--poll <duration>", "how often to ask", 5000))
    .action(async (k: string, o, cmd: Command) => {
      const waiting = {
        timeoutMs: o.timeout,
        pollMs: o.poll,
        longPollMs: LONG_POLL_MS,
        onWait: (p: Parameters<typeof waitingText>[2]) => term.progress(waitingText(k, o.timeout, p)),
      };
      const r = await waitFor(clientOf(cmd), { kind: "free", key: k }, waiting);
      term.progress(null);
      if (r.outcome === "free")
        return print(cmd, { free: true, key: k, waited_ms: r.waitedMs }, `${k} is free`);
      term.err(`lss: ${timedOutText(k, o.timeout, r.outcome === "timeout" ? r.holder : null)}`);
      exit(Exit.timeout);
    });
}
