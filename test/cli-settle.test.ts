/** What the CLI does after an acquire the server could not confirm (pure logic, with a fake client). */
import { describe, expect, it } from "vitest";
import { unconfirmedAcquire, withoutApiToken } from "../src/cli/settle.js";
import type { LssClient } from "../src/client/client.js";
import { LssError, type LssErrorCode } from "../src/client/errors.js";

/** A client whose release succeeds or fails, recording what it was asked to release. */
function fakeClient(releaseWorks: boolean) {
  const released: Array<{ key: string; token: string }> = [];
  const client = {
    release: async (key: string, how: { token: string }) => {
      released.push({ key, token: how.token });
      if (!releaseWorks) throw new LssError("unreachable", "cannot reach LSS");
    },
  } as unknown as LssClient;
  return { client, released };
}

describe("an acquire that may have been granted", () => {
  it.each<LssErrorCode>(["outcome_unknown", "unreachable", "unavailable"])(
    "%s: releases it with its token and says so",
    async (code) => {
      const { client, released } = fakeClient(true);
      const err = await unconfirmedAcquire(
        client,
        "qa-env",
        "tok-1",
        new LssError(code, "acquire qa-env: 503"),
      );
      expect(released).toEqual([{ key: "qa-env", token: "tok-1" }]);
      expect(err).toBeInstanceOf(LssError);
      expect((err as LssError).code).toBe(code);
      expect((err as Error).message).toBe(
        "acquire qa-env: 503; it may have been granted, so it was released",
      );
    },
  );

  it("when the release fails too, tells how to release it by hand", async () => {
    const { client } = fakeClient(false);
    const err = await unconfirmedAcquire(client, "qa-env", "tok-2", new LssError("outcome_unknown", "x"));
    expect((err as Error).message).toContain("lss release qa-env --lease-token tok-2");
  });

  it("of a pool, releases each key, and when that fails tells how to release them all", async () => {
    const works = fakeClient(true);
    await unconfirmedAcquire(works.client, ["qa-1", "qa-2"], "tok-3", new LssError("unreachable", "x"));
    expect(works.released.map((r) => r.key).sort()).toEqual(["qa-1", "qa-2"]);
    const fails = fakeClient(false);
    const err = await unconfirmedAcquire(
      fails.client,
      ["qa-1", "qa-2"],
      "tok-3",
      new LssError("unreachable", "x"),
    );
    expect((err as Error).message).toContain(
      'for k in qa-1 qa-2; do lss release "$k" --lease-token tok-3; done',
    );
  });

  it.each<LssErrorCode>(["unauthorized", "forbidden", "bad_request", "quota_exceeded"])(
    "%s: nothing was granted, nothing is released",
    async (code) => {
      const { client, released } = fakeClient(true);
      const original = new LssError(code, "no");
      expect(await unconfirmedAcquire(client, "k", "t", original)).toBe(original);
      expect(released).toEqual([]);
    },
  );
});

it("a wrapped command's environment loses LSS_TOKEN and keeps the rest", () => {
  expect(withoutApiToken({ LSS_TOKEN: "secret", LSS_URL: "u", PATH: "/bin" })).toEqual({
    LSS_URL: "u",
    PATH: "/bin",
  });
});
