/**
 * A real browser for page tests: Debian's chromium (/usr/bin/chromium, or CHROMIUM_PATH) driven by
 * playwright-core, headless, with nothing of its own running in the background (no sync, no
 * component updates, no QUIC). Playwright gives every launch a fresh temporary profile
 * (user-data-dir) and deletes it on close. And the app served over HTTP on a free port.
 */
import { existsSync } from "node:fs";
import { type ServerType, serve } from "@hono/node-server";
import { type Browser, chromium } from "playwright-core";
import { freePort } from "./ports.js";

export const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

export const hasChromium = () => existsSync(CHROMIUM);

export const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

export function launchBrowser(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
}

export interface Served {
  url: string;
  close(): Promise<void>;
}

/** Serve a fetch handler (an app's `fetch`) on 127.0.0.1 at a free port. */
export async function serveApp(fetch: (req: Request) => Response | Promise<Response>): Promise<Served> {
  const port = await freePort();
  const server = await new Promise<ServerType>((resolve) => {
    const s = serve({ fetch, port, hostname: "127.0.0.1" }, () => resolve(s));
  });
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        // Live updates keep connections open: close them too.
        (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
        server.close(() => resolve());
      }),
  };
}
