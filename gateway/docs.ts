import type { TSchema } from '@sinclair/typebox';
import { ERRORS } from '../schemas/errors.js';
import { LIMITS } from '../schemas/limits.js';
import type { Agent } from '../engine/identity/types.js';
import type { Route } from './router.js';
import { routeTable } from './routes/index.js';
import { BACKTEST_FILL_RULES } from './routes/backtest.js';

const AUTH_TEXT = { public: 'none', optional: 'none (credentials optional)', any: 'X-API-Key or Bearer JWT', jwt: 'Bearer JWT only' } as const;

function fields(schema: TSchema | undefined): string[] {
  const props = (schema?.properties ?? {}) as Record<string, TSchema>;
  const required = new Set<string>((schema?.required as string[]) ?? []);
  return Object.entries(props).map(([name, s]) => {
    const type = s.type ?? (s.anyOf ? (s.anyOf as TSchema[]).map((x) => x.const ?? x.type).join(' | ') : 'value');
    return `\`${name}\`${required.has(name) ? '' : '?'} (${type})${s.description ? ` ${s.description}` : ''}`;
  });
}

/** The WebSocket protocol of `/ws/v1` (not a route, so written out here once for every page). */
export const WS_PROTOCOL = [
  '## WebSocket /ws/v1',
  'Connect to `ws://host/ws/v1?api_key=<agent or account key>` (a bad key is refused with HTTP 401 before the upgrade), or connect',
  'without it and send `{"action":"auth","api_key":"…"}` first (within 10 s, else close 4401). An account key may add `agent_id`.',
  '- Subscribe: `{"action":"subscribe","channel":"ticker","symbol":"BTCUSDT"}` or `{"action":"subscribe","channel":"ticker:BTCUSDT"}`;',
  '  channels `ticker:<SYMBOL>`, `ticker:all` (or `ticker_all`), `candles:<SYMBOL>:<1m|5m|1h|1d>`, `orders`, `portfolio`.',
  `  Answer \`{"type":"subscribed","channel":"<key>"}\`; at most ${LIMITS.ws_subscriptions_max} per connection (\`SUBSCRIPTION_LIMIT\`). \`unsubscribe\` likewise.`,
  '- Pushes carry the full channel key and the values both at top level and in `data`: ticker (each trade), candle (each trade,',
  '  and `is_closed: true` once for a finished candle), order (every event of your orders), portfolio (every 5 s and after a fill).',
  '- Heartbeat: the server sends `{"type":"ping"}`; answer `{"type":"pong"}` or `{"action":"pong"}`. Send `{"action":"ping"}` to get a pong.',
  '- Order entry: `{"id":1,"method":"order.place","params":{…same body as POST /trade/order…}}` → `{"id":1,"status":200,"result":{order}}`',
  '  or `{"id":1,"status":400,"error":{"code","message","details"}}`. Methods: `order.place`, `order.cancel` {order_id},',
  '  `order.status` {order_id}, `orders.open` {symbol?}, `orders.cancel_all`, `account.balance`. Same rules and codes as REST.',
  `- Limits: ${LIMITS.ws_frame_bytes_max / 1024} KiB per frame (larger closes 1009), ${LIMITS.ws_connections_per_key_max} connections per key (HTTP 429 \`CONNECTION_LIMIT\`); a client that stops`,
  '  reading is disconnected once 1 MiB is queued for it, never buffered without bound.',
].join('\n');

/** The API reference as Markdown, generated from the route table. */
export function apiReferenceMarkdown(routes: Route[] = routeTable()): string {
  const out: string[] = [];
  let tag = '';
  for (const r of routes) {
    if (r.tag !== tag) out.push(`\n## ${(tag = r.tag)}\n`);
    out.push(`### ${r.method} ${r.path}`, r.summary, `- Auth: ${AUTH_TEXT[r.auth]}`);
    const q = fields(r.query);
    const b = fields(r.body);
    if (q.length) out.push(`- Query: ${q.join(', ')}`);
    if (b.length) out.push(`- Body (JSON): ${b.join(', ')}`);
    out.push(`- Success: HTTP ${r.status ?? 200}`, '');
  }
  out.push(WS_PROTOCOL, '');
  out.push('## Backtest fill rules', BACKTEST_FILL_RULES, '');
  out.push('## Errors', 'Every error is `{"error":{"code","message","details"}}`.', '');
  out.push('| code | HTTP |', '|---|---|', ...Object.entries(ERRORS).map(([c, e]) => `| ${c} | ${e.status} |`));
  return out.join('\n');
}

export function skillMarkdown(agent: Agent, apiKey: string): string {
  return [
    `# Agent: ${agent.display_name}`,
    `# Agent ID: ${agent.id}`,
    `# API Key: ${apiKey}`,
    '',
    '# Agent Exchange: trading simulator for AI agents',
    '',
    'Send your key as the `X-API-Key` header on every request; everything you do is scoped to your own wallet.',
    'Amounts are decimal strings (e.g. `"0.001"`), never numbers. Times are ISO-8601 UTC.',
    agent.authorized_instruments ? `You may trade only: ${agent.authorized_instruments.join(', ')}.` : '',
    apiReferenceMarkdown(),
  ].join('\n');
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** A human-readable API page: the same reference as HTML. */
export function apiPageHtml(routes: Route[] = routeTable()): string {
  const rows = routes
    .map((r) => `<tr><td><code>${r.method}</code></td><td><code>${esc(r.path)}</code></td><td>${esc(AUTH_TEXT[r.auth])}</td><td>${esc(r.summary)}</td></tr>`)
    .join('\n');
  const errors = Object.entries(ERRORS).map(([c, e]) => `<tr><td><code>${c}</code></td><td>${e.status}</td><td>${esc(e.message)}</td></tr>`).join('\n');
  return `<!doctype html><html><head><meta charset="utf-8"><title>Agent Exchange API</title>
<style>body{font-family:system-ui,sans-serif;margin:2rem;max-width:1200px}td,th{border-bottom:1px solid #ddd;padding:.3rem .6rem;text-align:left;vertical-align:top}table{border-collapse:collapse}</style>
</head><body><h1>Agent Exchange API</h1>
<p>REST under <code>/api/v1</code>. Machine-readable: <a href="/openapi.json">/openapi.json</a> (OpenAPI 3.1).
Authenticate with <code>X-API-Key</code> (agent or account key) or <code>Authorization: Bearer &lt;JWT&gt;</code> from <code>POST /api/v1/auth/login</code>;
<code>X-Agent-Id</code> scopes an account caller to one of its agents. Amounts are decimal strings with 8 decimal places.</p>
<h2>Routes</h2><table><tr><th>Method</th><th>Path</th><th>Auth</th><th>What it does</th></tr>${rows}</table>
<h2>WebSocket</h2><pre style="white-space:pre-wrap">${esc(WS_PROTOCOL.replace(/^## .*\n/, ''))}</pre>
<h2>Backtest fill rules</h2><pre style="white-space:pre-wrap">${esc(BACKTEST_FILL_RULES)}</pre>
<h2>Errors</h2><p>Body: <code>{"error":{"code","message","details"}}</code></p><table><tr><th>Code</th><th>HTTP</th><th>Meaning</th></tr>${errors}</table>
</body></html>`;
}
