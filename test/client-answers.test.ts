/**
 * The client reads the server's answers with the protocol's schemas (loaded when first needed):
 * what they describe comes through as it is, anything else is a bad_response naming the field.
 */
import { describe, expect, it } from "vitest";
import { createClient } from "../src/client/client.js";
import { FREE } from "./support/fakes.js";

const answering = (body: unknown, status = 200) =>
  createClient({ url: "http://lss", fetch: (async () => Response.json(body, { status })) as typeof fetch });

describe("answers read with the protocol's schemas", () => {
  it("a status as the protocol describes it comes through", async () => {
    await expect(answering(FREE).status("qa-env")).resolves.toEqual(FREE);
  });

  it("a status without a field the protocol requires is a bad_response naming the field", async () => {
    const { waiting: _, ...withoutWaiting } = FREE;
    await expect(answering(withoutWaiting).status("qa-env")).rejects.toMatchObject({
      code: "bad_response",
      message: expect.stringMatching(
        /^status of qa-env: 200 with an answer the protocol does not know \(waiting: /,
      ),
    });
  });

  it("a history whose event is of no known kind is a bad_response", async () => {
    const body = {
      status: "ok",
      key: "qa-env",
      next_cursor: null,
      events: [{ event: "exploded", at: "2025-01-01T00:00:00.000Z" }],
    };
    await expect(answering(body).history("qa-env")).rejects.toMatchObject({ code: "bad_response" });
  });

  it("a listing comes through with its keys", async () => {
    const body = { status: "ok", locks: [], next_cursor: null };
    await expect(answering(body).list()).resolves.toEqual(body);
  });
});
