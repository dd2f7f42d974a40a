import { STATUS_CODES } from 'node:http';
import type { HttpRequest, HttpResponse } from 'uWebSockets.js';

/** What a handler needs from a uWS request, copied out synchronously (uWS frees `req` after return). */
export interface RawRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  headers: Record<string, string>;
  ip: string;
}

export interface ResState {
  aborted: boolean;
  done: boolean;
}

/** `trustProxy`: take the client address from X-Forwarded-For (only behind a proxy that sets it; else it is spoofable). */
export function readRequest(res: HttpResponse, req: HttpRequest, trustProxy = false): RawRequest {
  const headers: Record<string, string> = {};
  req.forEach((k, v) => {
    headers[k] = v;
  });
  const query: Record<string, string> = {};
  const qs = req.getQuery();
  if (qs) for (const [k, v] of new URLSearchParams(qs)) query[k] = v;
  const forwarded = trustProxy ? headers['x-forwarded-for']?.split(',')[0]?.trim() : undefined;
  return {
    method: req.getMethod().toUpperCase(),
    path: req.getUrl(),
    query,
    headers,
    ip: forwarded || Buffer.from(res.getRemoteAddressAsText()).toString(),
  };
}

export class BodyTooLarge extends Error {}

/** Collects the body up to `limit` bytes. Must be called before the handler first awaits. */
export function readBody(res: HttpResponse, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    res.onData((chunk, isLast) => {
      if (over) return;
      size += chunk.byteLength;
      if (size > limit) {
        over = true;
        reject(new BodyTooLarge());
        return;
      }
      chunks.push(Buffer.from(chunk.slice(0)));
      if (isLast) resolve(Buffer.concat(chunks));
    });
  });
}

export function send(
  res: HttpResponse,
  state: ResState,
  status: number,
  body: string | Buffer,
  headers: Record<string, string>,
  close = false,
): void {
  if (state.aborted || state.done) return;
  state.done = true;
  res.cork(() => {
    res.writeStatus(`${status} ${STATUS_CODES[status] ?? ''}`);
    for (const [k, v] of Object.entries(headers)) res.writeHeader(k, v);
    if (status === 204) res.endWithoutBody(0, close);
    else res.end(body, close);
  });
}
