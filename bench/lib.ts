import { createServer } from 'node:net';

/** Small pieces the benchmarks share: a free port for a child server, and JSON requests to it. */

export async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

/** One request; the body is sent as JSON, the answer parsed when it is a JSON object (else kept as text). */
export async function http(base: string, method: string, path: string, headers: Record<string, string> = {}, body?: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(base + path, {
    method, headers: body === undefined ? headers : { ...headers, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(30_000),
  });
  const text = await res.text();
  return { status: res.status, body: text && text.startsWith('{') ? JSON.parse(text) : text };
}

/** The answer's body; anything but a 2xx throws with the status and body. */
export async function must(base: string, method: string, path: string, headers: Record<string, string> = {}, body?: unknown): Promise<any> {
  const r = await http(base, method, path, headers, body);
  if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}
