/** The /locks API: `create`, `lock`, `unlock` and `check`. */
import type { Command } from "commander";
import { StateLockId } from "../../protocol/state-locks.js";
import { schemaArg } from "../args.js";
import type { CliContext } from "../context.js";
import { Exit } from "../exit-codes.js";

export function registerStateLocks(program: Command, { clientOf, print, exit }: CliContext) {
  program
    .command("create")
    .description("create a /locks lock; prints its id and key")
    .option("--locked", "create it locked")
    .option("--e <seconds>", "with --locked: seconds it stays locked")
    .option("--k <key>", "your own lock key")
    .action(async (o, cmd: Command) => {
      const created = await clientOf(cmd).createStateLock({ locked: Boolean(o.locked), e: o.e, k: o.k });
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
      exit(s.state === "unlocked" ? Exit.ok : s.state === "locked" ? Exit.locked : Exit.unknown);
    });
}
