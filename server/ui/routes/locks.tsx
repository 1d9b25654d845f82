/** GET /ui (the namespace's locks; ?prefix, ?cursor) and GET /ui/fragment/locks (its rows, for the live update). */
import type { Hono } from "hono";
import type { Ctx, UiDeps, UiEnv } from "../context.js";
import type { Guard } from "../guard.js";
import { ListPage, LockRows } from "../pages.js";

const PAGE_SIZE = 50;

export function registerLockList(ui: Hono<UiEnv>, { leases }: UiDeps, guard: Guard) {
  const listOf = async (c: Ctx) => {
    const prefix = c.req.query("prefix") ?? "";
    const cursor = c.req.query("cursor") || null;
    const list = await leases.list(c.var.principal.namespace, { prefix, cursor, limit: PAGE_SIZE });
    return { prefix, cursor, list };
  };

  ui.get("/ui", guard.signedIn("page"), async (c) => {
    const { prefix, cursor, list } = await listOf(c);
    return c.html(
      <ListPage
        session={c.var.session}
        locks={list.locks}
        prefix={prefix}
        cursor={cursor}
        nextCursor={list.next_cursor}
      />,
    );
  });

  ui.get("/ui/fragment/locks", guard.signedIn("fragment"), async (c) => {
    const { prefix, list } = await listOf(c);
    return c.html(<LockRows locks={list.locks} prefix={prefix} />);
  });
}
