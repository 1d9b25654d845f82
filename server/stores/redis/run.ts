/**
 * Running a script: one EVALSHA (EVAL once when Redis lost the script cache), its KEYS and ARGV
 * built by name and its reply read by name (scripts/define.ts). Any failure to get an answer is
 * "unavailable", and callers fail closed on it; one that may have run says so (maybeApplied).
 */

import type { Invocation, LuaScript, Names } from "../scripts/define.js";
import { StoreUnavailableError } from "../types.js";
import type { RedisTransport } from "./transport.js";

const isNoScript = (err: unknown) => err instanceof Error && /NOSCRIPT/i.test(err.message);

export function scriptRunner(transport: RedisTransport, ensureSafe: () => Promise<void> | undefined) {
  /** Any failure to get an answer is "unavailable": callers fail closed on it. */
  const guard = async <T>(op: () => Promise<T>): Promise<T> => {
    try {
      return await op();
    } catch (err) {
      throw err instanceof StoreUnavailableError
        ? err
        : new StoreUnavailableError(err, transport.explain?.(err) ?? null);
    }
  };
  const send = async (script: LuaScript, keys: string[], args: string[]) => {
    const writes = script.spec.writes ?? false;
    try {
      return await transport.evalsha(script.sha1, keys, args, writes);
    } catch (err) {
      if (!isNoScript(err)) throw err;
      return transport.eval(script.source, keys, args, writes);
    }
  };
  const run = <K extends Names, A extends Names, EK extends Names, EA extends Names, R>(
    script: LuaScript<K, A, EK, EA, R>,
    call: Invocation<K, A, EK, EA>,
  ): Promise<R> =>
    guard(async () => {
      const checking = ensureSafe();
      if (checking) await checking;
      const { keys, args } = script.build(call);
      let raw: unknown;
      try {
        raw = await send(script as unknown as LuaScript, keys, args);
      } catch (err) {
        // Sent and unanswered (a timeout, a connection lost mid-way): the script may have run.
        const maybe = !transport.notApplied?.(err);
        throw new StoreUnavailableError(err, transport.explain?.(err) ?? null, maybe);
      }
      return script.decode(raw);
    });
  return { run, guard };
}
