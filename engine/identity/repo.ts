import type { Queryable } from '../store/db.js';
import type { Account, Agent, NewAgentInput, TradingSession } from './types.js';

/** SQL for accounts, agents, their sessions and opening balances. Same statements on both backends. */
const ACCOUNT_COLS = `id, display_name, email, owner_ref, status, starting_balance, risk_profile, api_key_preview, created_at, updated_at`;
const AGENT_COLS = `id, account_id, display_name, description, api_key_preview, starting_balance, llm_model, framework,
  strategy_tags, risk_profile, color, avatar_url, status, agent_type, mode, authorized_instruments, authorized_actions,
  created_at, updated_at`;


export async function accountById(q: Queryable, id: string): Promise<Account | null> {
  const rows = await q.query<Account>(`SELECT ${ACCOUNT_COLS} FROM accounts WHERE id = $1`, [id]);
  return rows[0] ?? null;
}

export async function accountByKeyHash(q: Queryable, hash: string): Promise<(Account & { api_secret_hash: string }) | null> {
  const rows = await q.query<Account & { api_secret_hash: string }>(
    `SELECT ${ACCOUNT_COLS}, api_secret_hash FROM accounts WHERE api_key_hash = $1`,
    [hash],
  );
  return rows[0] ?? null;
}

export async function accountByEmail(q: Queryable, email: string): Promise<(Account & { password_hash: string | null }) | null> {
  const rows = await q.query<Account & { password_hash: string | null }>(
    `SELECT ${ACCOUNT_COLS}, password_hash FROM accounts WHERE lower(email) = lower($1)`,
    [email],
  );
  return rows[0] ?? null;
}

export async function accountByOwnerRef(q: Queryable, ownerRef: string): Promise<Account | null> {
  const rows = await q.query<Account>(`SELECT ${ACCOUNT_COLS} FROM accounts WHERE owner_ref = $1`, [ownerRef]);
  return rows[0] ?? null;
}

export async function insertAccount(
  q: Queryable,
  a: { id: string; display_name: string; email: string | null; password_hash: string | null; owner_ref: string | null;
    api_key_hash: string; api_key_preview: string; api_secret_hash: string; starting_balance: string },
): Promise<Account> {
  const rows = await q.query<Account>(
    `INSERT INTO accounts (id, display_name, email, password_hash, owner_ref, api_key_hash, api_key_preview, api_secret_hash, starting_balance)
     VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9) RETURNING ${ACCOUNT_COLS}`,
    [a.id, a.display_name, a.email, a.password_hash, a.owner_ref, a.api_key_hash, a.api_key_preview, a.api_secret_hash, a.starting_balance],
  );
  return rows[0];
}

export async function agentById(q: Queryable, id: string): Promise<Agent | null> {
  const rows = await q.query<Agent>(`SELECT ${AGENT_COLS} FROM agents WHERE id = $1`, [id]);
  return rows[0] ?? null;
}

export async function agentByKeyHash(q: Queryable, hash: string): Promise<Agent | null> {
  const rows = await q.query<Agent>(`SELECT ${AGENT_COLS} FROM agents WHERE api_key_hash = $1`, [hash]);
  return rows[0] ?? null;
}

export async function agentKeyEnc(q: Queryable, id: string): Promise<string | null> {
  const rows = await q.query<{ api_key_enc: string }>(`SELECT api_key_enc FROM agents WHERE id = $1`, [id]);
  return rows[0]?.api_key_enc ?? null;
}

export async function listAgents(
  q: Queryable,
  accountId: string,
  opts: { includeArchived: boolean; limit: number; offset: number },
): Promise<{ agents: Agent[]; total: number }> {
  const filter = opts.includeArchived ? '' : `AND status <> 'archived'`;
  const [count] = await q.query<{ n: number }>(`SELECT count(*)::int AS n FROM agents WHERE account_id = $1 ${filter}`, [accountId]);
  const agents = await q.query<Agent>(
    `SELECT ${AGENT_COLS} FROM agents WHERE account_id = $1 ${filter} ORDER BY created_at, id LIMIT $2 OFFSET $3`,
    [accountId, opts.limit, opts.offset],
  );
  return { agents, total: count.n };
}

export async function insertAgent(
  q: Queryable,
  a: Required<Omit<NewAgentInput, 'risk_profile'>> & { id: string; account_id: string; risk_profile: object;
    api_key_hash: string; api_key_preview: string; api_key_enc: string; avatar_url: string | null },
): Promise<Agent> {
  const rows = await q.query<Agent>(
    `INSERT INTO agents (id, account_id, display_name, description, api_key_hash, api_key_preview, api_key_enc, starting_balance,
       llm_model, framework, strategy_tags, risk_profile, color, avatar_url, agent_type, authorized_instruments, authorized_actions)
     VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17) RETURNING ${AGENT_COLS}`,
    [a.id, a.account_id, a.display_name, a.description, a.api_key_hash, a.api_key_preview, a.api_key_enc, a.starting_balance,
      a.llm_model, a.framework, JSON.stringify(a.strategy_tags), JSON.stringify(a.risk_profile), a.color, a.avatar_url,
      a.agent_type, json(a.authorized_instruments), json(a.authorized_actions)],
  );
  return rows[0];
}

const json = (v: unknown) => (v === null || v === undefined ? null : JSON.stringify(v));
const JSON_COLS = new Set(['strategy_tags', 'risk_profile', 'authorized_instruments', 'authorized_actions']);

/** Updates the given columns (names come from our own code, never from a request). */
export async function updateAgent(q: Queryable, id: string, fields: Record<string, unknown>): Promise<Agent | null> {
  const keys = Object.keys(fields);
  if (keys.length === 0) return agentById(q, id);
  const sets = keys.map((k, i) => `${k} = $${i + 2}`).join(', ');
  const values = keys.map((k) => (JSON_COLS.has(k) ? json(fields[k]) : fields[k]));
  const rows = await q.query<Agent>(`UPDATE agents SET ${sets}, updated_at = now() WHERE id = $1 RETURNING ${AGENT_COLS}`, [id, ...values]);
  return rows[0] ?? null;
}

export async function deleteAgent(q: Queryable, id: string): Promise<boolean> {
  await q.query(`DELETE FROM journal WHERE stream = $1`, [id]);
  const rows = await q.query(`DELETE FROM agents WHERE id = $1 RETURNING id`, [id]);
  return rows.length > 0;
}

/** Opens a new trading session with a fresh USDT wallet; closes the previous session. */
export async function openSession(q: Queryable, s: { id: string; account_id: string; agent_id: string; starting_balance: string }): Promise<TradingSession> {
  await q.query(`UPDATE trading_sessions SET ended_at = now() WHERE agent_id = $1 AND ended_at IS NULL`, [s.agent_id]);
  await q.query(`DELETE FROM balances WHERE agent_id = $1`, [s.agent_id]);
  await q.query(`DELETE FROM positions WHERE agent_id = $1`, [s.agent_id]);
  await q.query(`UPDATE orders SET status = 'cancelled', cancelled_at = now() WHERE agent_id = $1 AND status = 'pending'`, [s.agent_id]);
  await q.query(`INSERT INTO balances (agent_id, asset, available, locked) VALUES ($1, 'USDT', $2, 0)`, [s.agent_id, s.starting_balance]);
  const rows = await q.query<TradingSession>(
    `INSERT INTO trading_sessions (id, account_id, agent_id, starting_balance) VALUES ($1,$2,$3,$4)
     RETURNING id, agent_id, starting_balance, started_at`,
    [s.id, s.account_id, s.agent_id, s.starting_balance],
  );
  return rows[0];
}

export async function currentSession(q: Queryable, agentId: string): Promise<TradingSession | null> {
  const rows = await q.query<TradingSession>(
    `SELECT id, agent_id, starting_balance, started_at FROM trading_sessions
     WHERE agent_id = $1 AND ended_at IS NULL ORDER BY started_at DESC LIMIT 1`,
    [agentId],
  );
  return rows[0] ?? null;
}

export async function latestAccountSession(q: Queryable, accountId: string): Promise<TradingSession | null> {
  const rows = await q.query<TradingSession>(
    `SELECT s.id, s.agent_id, s.starting_balance, s.started_at FROM trading_sessions s
     WHERE s.account_id = $1 AND s.ended_at IS NULL ORDER BY s.started_at DESC LIMIT 1`,
    [accountId],
  );
  return rows[0] ?? null;
}

/** Cash held by each agent (USDT available + locked) and its trade count. */
export async function agentSummaries(q: Queryable, agentIds: string[]): Promise<Map<string, { cash: string; trades: number }>> {
  const out = new Map<string, { cash: string; trades: number }>();
  if (agentIds.length === 0) return out;
  const rows = await q.query<{ agent_id: string; cash: string | null; trades: number }>(
    `SELECT a.id AS agent_id,
            (SELECT available + locked FROM balances b WHERE b.agent_id = a.id AND b.asset = 'USDT') AS cash,
            (SELECT count(*)::int FROM trades t WHERE t.agent_id = a.id) AS trades
     FROM agents a WHERE a.id = ANY($1::uuid[])`,
    [agentIds],
  );
  for (const r of rows) out.set(r.agent_id, { cash: r.cash ?? '0', trades: r.trades });
  return out;
}
