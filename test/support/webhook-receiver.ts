/**
 * A webhook receiver on loopback for the notification tests: it records every delivery (headers,
 * raw body) and answers by path: /ok 200, /flaky 500 the first time and 200 after, /hang never,
 * /gone 410, /redirect 302 to another receiver's /ok.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface Received {
  path: string;
  headers: IncomingMessage["headers"];
  body: string;
  at: number;
}

export interface WebhookReceiver {
  url: string;
  received: Received[];
  /** Resolves once `n` deliveries have come (or rejects after `ms`). */
  waitFor(n: number, ms?: number): Promise<Received[]>;
  close(): Promise<void>;
}

export async function startWebhookReceiver(opts: { redirectTo?: string } = {}): Promise<WebhookReceiver> {
  const received: Received[] = [];
  const flaky = new Set<string>();
  const hanging: ServerResponse[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const path = req.url ?? "/";
      received.push({
        path,
        headers: req.headers,
        body: Buffer.concat(chunks).toString("utf8"),
        at: Date.now(),
      });
      if (path.startsWith("/hang")) return void hanging.push(res);
      if (path.startsWith("/gone")) return void res.writeHead(410).end();
      if (path.startsWith("/redirect")) {
        return void res.writeHead(302, { Location: `${opts.redirectTo ?? "http://127.0.0.1:1"}/ok` }).end();
      }
      if (path.startsWith("/flaky") && !flaky.has(path)) {
        flaky.add(path);
        return void res.writeHead(500).end("down");
      }
      res.writeHead(200, { "Content-Type": "text/plain" }).end("ok");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    received,
    async waitFor(n, ms = 5000) {
      const deadline = Date.now() + ms;
      while (received.length < n) {
        if (Date.now() > deadline) throw new Error(`${received.length} of ${n} deliveries after ${ms} ms`);
        await new Promise((r) => setTimeout(r, 10));
      }
      return received;
    },
    async close() {
      for (const res of hanging) res.destroy();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}
