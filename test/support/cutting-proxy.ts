/**
 * A TCP proxy in front of a local server that loses answers: the first `cut` connections carry
 * their request through and are closed as the answer begins (the server did the work, the client
 * never hears of it). After that it forwards as it is, or, with `thenRefuse`, stops listening so
 * that every later connection is refused.
 */
import { type AddressInfo, connect, createServer, type Socket } from "node:net";

export interface CuttingProxy {
  url: string;
  /** Connections made to it so far. */
  connections(): number;
  close(): Promise<void>;
}

export async function startCuttingProxy(
  targetUrl: string,
  opts: { cut?: number; thenRefuse?: boolean } = {},
): Promise<CuttingProxy> {
  const target = new URL(targetUrl);
  let cutLeft = opts.cut ?? 1;
  let connections = 0;
  const open = new Set<Socket>();
  const proxy = createServer((client) => {
    connections++;
    open.add(client);
    client.on("close", () => open.delete(client));
    const cutting = cutLeft-- > 0;
    const upstream = connect(Number(target.port), target.hostname);
    client.pipe(upstream);
    if (cutting) {
      upstream.once("data", () => {
        client.destroy();
        upstream.destroy();
        if (opts.thenRefuse) proxy.close();
      });
    } else {
      upstream.pipe(client);
    }
    client.on("error", () => upstream.destroy());
    upstream.on("error", () => client.destroy());
  });
  await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
  const { port } = proxy.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    connections: () => connections,
    // Kept-alive connections would hold close() up for seconds.
    close: () =>
      new Promise((resolve) => {
        proxy.close(() => resolve());
        for (const socket of open) socket.destroy();
      }),
  };
}
