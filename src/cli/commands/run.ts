/** `lss run <key> -- <command>`: a command run while holding a lock, released when it exits. */
import type { Command } from "commander";
import type { LockTarget } from "../../client/client.js";
import {
  defaultHolder,
  durationOption,
  IF_HELD_HELP,
  ifHeldArg,
  limitArg,
  priorityArg,
  SUPERSEDE_HELP,
  supersedeArg,
  targetArg,
} from "../args.js";
import type { CliContext } from "../context.js";
import { runLocked } from "../run-command.js";

export function registerRun(program: Command, ctx: CliContext) {
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
    .addOption(durationOption("--ttl <duration>", "lease length, renewed when a third of it is left", 30_000))
    .addOption(durationOption("--timeout <duration>", "how long to wait for the lock (0: try once)", 600_000))
    .option("--if-held <what>", IF_HELD_HELP, ifHeldArg, "wait")
    .option("--priority <n>", "while waiting: place in the queue, highest first (-100 … 100)", priorityArg, 0)
    .option("--supersede <group>", SUPERSEDE_HELP, supersedeArg)
    .addOption(
      durationOption("--grace <duration>", "after a lost lease: SIGTERM, then SIGKILL after this", 10_000),
    )
    .addOption(durationOption("--poll <duration>", "how often to ask while waiting", 5000))
    .option("--holder <name>", "who holds it, as others see it", defaultHolder(true))
    .option("--reason <text>", "why, as others see it")
    .action(async (key: LockTarget, command: string[], o, cmd: Command) => {
      const run = {
        key,
        shared: o.shared,
        limit: o.limit,
        priority: o.priority,
        supersede: o.supersede,
        command,
        ttlMs: o.ttl,
        timeoutMs: o.ifHeld === "wait" ? o.timeout : 0,
        ifHeld: o.ifHeld,
        graceMs: o.grace,
        pollMs: o.poll,
        holder: o.holder,
        reason: o.reason,
      };
      ctx.exit(await runLocked(ctx.clientOf(cmd), run, ctx.term));
    });
}
