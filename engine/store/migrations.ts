import type { Db } from './db.js';

/**
 * Ordered, append-only list of schema migrations. Money and quantities are NUMERIC, ids UUID,
 * times TIMESTAMPTZ (UTC). A migration is never edited once it has shipped: add a new one.
 */
export const MIGRATIONS: ReadonlyArray<{ id: number; name: string; sql: string }> = [
  {
    id: 1,
    name: 'foundation',
    sql: `
CREATE TABLE accounts (
  id              UUID PRIMARY KEY,
  display_name    TEXT NOT NULL,
  email           TEXT UNIQUE,
  password_hash   TEXT,
  owner_ref       TEXT UNIQUE,
  api_key_hash    TEXT NOT NULL UNIQUE,
  api_key_preview TEXT NOT NULL,
  api_secret_hash TEXT NOT NULL,
  status          TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active','suspended','archived')),
  starting_balance NUMERIC(30,8) NOT NULL CHECK (starting_balance > 0),
  risk_profile    JSONB NOT NULL DEFAULT '{}',
  created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
  updated_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE agents (
  id              UUID PRIMARY KEY,
  account_id      UUID NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
  display_name    TEXT NOT NULL,
  description     TEXT,
  api_key_hash    TEXT NOT NULL UNIQUE,
  api_key_preview TEXT NOT NULL,
  api_key_enc     TEXT NOT NULL,
  starting_balance NUMERIC(30,8) NOT NULL CHECK (starting_balance > 0),
  llm_model       TEXT,
  framework       TEXT,
  strategy_tags   JSONB NOT NULL DEFAULT '[]',
  risk_profile    JSONB NOT NULL DEFAULT '{}',
  color           TEXT,
  avatar_url      TEXT,
  status          TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active','paused','archived')),
  agent_type      TEXT NOT NULL DEFAULT 'trading' CHECK (agent_type IN ('trading','analysis','risk','composite')),
  mode            TEXT NOT NULL DEFAULT 'sandbox' CHECK (mode IN ('sandbox','suspended','terminated')),
  authorized_instruments JSONB,
  authorized_actions     JSONB,
  created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
  updated_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX agents_account_idx ON agents (account_id, created_at);

CREATE TABLE trading_sessions (
  id              UUID PRIMARY KEY,
  account_id      UUID NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
  agent_id        UUID NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
  starting_balance NUMERIC(30,8) NOT NULL,
  ending_equity   NUMERIC(30,8),
  started_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
  ended_at        TIMESTAMPTZ
);
CREATE INDEX trading_sessions_agent_idx ON trading_sessions (agent_id, started_at);

CREATE TABLE balances (
  agent_id   UUID NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
  asset      TEXT NOT NULL,
  available  NUMERIC(38,8) NOT NULL DEFAULT 0 CHECK (available >= 0),
  locked     NUMERIC(38,8) NOT NULL DEFAULT 0 CHECK (locked >= 0),
  updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
  PRIMARY KEY (agent_id, asset)
);

CREATE TABLE orders (
  id              UUID PRIMARY KEY,
  agent_id        UUID NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
  session_id      UUID,
  client_order_id TEXT,
  symbol          TEXT NOT NULL,
  side            TEXT NOT NULL CHECK (side IN ('buy','sell')),
  type            TEXT NOT NULL CHECK (type IN ('market','limit','stop_loss','take_profit')),
  quantity        NUMERIC(38,8) NOT NULL,
  price           NUMERIC(38,8),
  status          TEXT NOT NULL CHECK (status IN ('pending','filled','cancelled','rejected')),
  locked_amount   NUMERIC(38,8),
  executed_price  NUMERIC(38,8),
  executed_qty    NUMERIC(38,8),
  slippage_pct    NUMERIC(12,6),
  fee             NUMERIC(38,8),
  reject_reason   TEXT,
  created_at      TIMESTAMPTZ NOT NULL,
  filled_at       TIMESTAMPTZ,
  cancelled_at    TIMESTAMPTZ,
  UNIQUE (agent_id, client_order_id)
);
CREATE INDEX orders_agent_idx ON orders (agent_id, created_at DESC);

CREATE TABLE trades (
  id            UUID PRIMARY KEY,
  order_id      UUID NOT NULL REFERENCES orders(id) ON DELETE CASCADE,
  agent_id      UUID NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
  symbol        TEXT NOT NULL,
  side          TEXT NOT NULL,
  quantity      NUMERIC(38,8) NOT NULL,
  price         NUMERIC(38,8) NOT NULL,
  quote_amount  NUMERIC(38,8) NOT NULL,
  fee           NUMERIC(38,8) NOT NULL,
  realized_pnl  NUMERIC(38,8),
  executed_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX trades_agent_idx ON trades (agent_id, executed_at DESC);

CREATE TABLE positions (
  agent_id        UUID NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
  symbol          TEXT NOT NULL,
  quantity        NUMERIC(38,8) NOT NULL,
  avg_entry_price NUMERIC(38,8) NOT NULL,
  total_cost      NUMERIC(38,8) NOT NULL,
  realized_pnl    NUMERIC(38,8) NOT NULL DEFAULT 0,
  opened_at       TIMESTAMPTZ NOT NULL,
  updated_at      TIMESTAMPTZ NOT NULL,
  PRIMARY KEY (agent_id, symbol)
);

CREATE TABLE snapshots (
  id             BIGSERIAL PRIMARY KEY,
  agent_id       UUID NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
  kind           TEXT NOT NULL,
  total_equity   NUMERIC(38,8) NOT NULL,
  available_cash NUMERIC(38,8) NOT NULL,
  position_value NUMERIC(38,8) NOT NULL,
  unrealized_pnl NUMERIC(38,8) NOT NULL,
  realized_pnl   NUMERIC(38,8) NOT NULL,
  taken_at       TIMESTAMPTZ NOT NULL
);
CREATE INDEX snapshots_agent_idx ON snapshots (agent_id, kind, taken_at);

CREATE TABLE battles (
  id              UUID PRIMARY KEY,
  account_id      UUID NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
  name            TEXT NOT NULL,
  status          TEXT NOT NULL,
  battle_mode     TEXT NOT NULL CHECK (battle_mode IN ('live','historical')),
  preset          TEXT,
  ranking_metric  TEXT NOT NULL,
  config          JSONB NOT NULL DEFAULT '{}',
  backtest_config JSONB,
  state           JSONB,
  started_at      TIMESTAMPTZ,
  ended_at        TIMESTAMPTZ,
  created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
  updated_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE battle_participants (
  battle_id        UUID NOT NULL REFERENCES battles(id) ON DELETE CASCADE,
  agent_id         UUID NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
  status           TEXT NOT NULL,
  snapshot_balance NUMERIC(38,8),
  final_equity     NUMERIC(38,8),
  final_rank       INTEGER,
  joined_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
  PRIMARY KEY (battle_id, agent_id)
);

CREATE TABLE backtests (
  id          UUID PRIMARY KEY,
  account_id  UUID NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
  agent_id    UUID REFERENCES agents(id) ON DELETE CASCADE,
  status      TEXT NOT NULL,
  config      JSONB NOT NULL,
  state       JSONB,
  results     JSONB,
  created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
  updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX backtests_agent_idx ON backtests (account_id, agent_id, created_at);

CREATE TABLE candles (
  symbol      TEXT NOT NULL,
  interval    TEXT NOT NULL,
  open_time   TIMESTAMPTZ NOT NULL,
  open        NUMERIC(38,8) NOT NULL,
  high        NUMERIC(38,8) NOT NULL,
  low         NUMERIC(38,8) NOT NULL,
  close       NUMERIC(38,8) NOT NULL,
  volume      NUMERIC(38,8) NOT NULL,
  trade_count INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (symbol, interval, open_time)
);

-- Append-only event journal: the source of truth for wallets. Rows are never updated;
-- deleting an agent deletes its stream.
CREATE TABLE journal (
  seq         BIGSERIAL PRIMARY KEY,
  stream      TEXT NOT NULL,
  type        TEXT NOT NULL,
  payload     JSONB NOT NULL,
  recorded_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX journal_stream_idx ON journal (stream, seq);
`,
  },
  {
    id: 2,
    name: 'trading_pairs',
    sql: `
-- Tradable symbols and their order filters (engine/market/pairs.ts seeds it when empty).
CREATE TABLE trading_pairs (
  symbol       TEXT PRIMARY KEY,
  base_asset   TEXT NOT NULL,
  quote_asset  TEXT NOT NULL,
  status       TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active','inactive')),
  min_qty      NUMERIC NOT NULL DEFAULT 0,
  step_size    NUMERIC NOT NULL DEFAULT 0,
  min_notional NUMERIC NOT NULL DEFAULT 0,
  updated_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);
`,
  },
  {
    id: 3,
    name: 'backtest_log',
    sql: `
-- Orders (each state it reaches), trades and equity snapshots of a backtest session, append-only;
-- with the row in backtests (config, compact state, results) it rebuilds the session after a restart.
CREATE TABLE backtest_log (
  backtest_id UUID NOT NULL REFERENCES backtests(id) ON DELETE CASCADE,
  seq         INTEGER NOT NULL,
  kind        TEXT NOT NULL CHECK (kind IN ('order','trade','snapshot')),
  body        JSONB NOT NULL,
  PRIMARY KEY (backtest_id, seq)
);
`,
  },
  {
    id: 4,
    name: 'battle_wallets',
    sql: `
-- Orders and trades of a participant's battle wallet carry the battle; an agent's own wallet has NULL here.
ALTER TABLE orders ADD COLUMN battle_id UUID;
ALTER TABLE trades ADD COLUMN battle_id UUID;
CREATE INDEX orders_battle_idx ON orders (battle_id, agent_id) WHERE battle_id IS NOT NULL;
CREATE INDEX trades_battle_idx ON trades (battle_id, agent_id) WHERE battle_id IS NOT NULL;
`,
  },
  {
    id: 5,
    name: 'battle_history',
    sql: `
-- Equity points of battle participants (live: every snapshot interval of the battle's clock; historical: at
-- the start, after fills, every hour of data and at the end). One point per participant and instant.
CREATE TABLE battle_snapshots (
  battle_id      UUID NOT NULL REFERENCES battles(id) ON DELETE CASCADE,
  agent_id       UUID NOT NULL,
  taken_at       TIMESTAMPTZ NOT NULL,
  equity         NUMERIC(38,8) NOT NULL,
  available_cash NUMERIC(38,8) NOT NULL,
  locked_cash    NUMERIC(38,8) NOT NULL,
  position_value NUMERIC(38,8) NOT NULL,
  unrealized_pnl NUMERIC(38,8) NOT NULL,
  realized_pnl   NUMERIC(38,8) NOT NULL,
  trade_count    INTEGER NOT NULL,
  PRIMARY KEY (battle_id, agent_id, taken_at)
);
-- Orders (each state they reach) and fills of historical battles, append-only; with battles.state (the
-- participants' sim states) it rebuilds a running historical battle after a restart.
CREATE TABLE battle_log (
  battle_id UUID NOT NULL REFERENCES battles(id) ON DELETE CASCADE,
  seq       INTEGER NOT NULL,
  agent_id  UUID NOT NULL,
  kind      TEXT NOT NULL CHECK (kind IN ('order','trade')),
  body      JSONB NOT NULL,
  PRIMARY KEY (battle_id, seq)
);
CREATE INDEX battles_account_idx ON battles (account_id, created_at DESC);
CREATE INDEX battles_running_idx ON battles (status) WHERE status IN ('active','paused');
`,
  },
  {
    id: 6,
    name: 'client_order_id_per_wallet',
    sql: `
-- A client_order_id is unique within one wallet: the agent's own (battle_id NULL) or one battle wallet. The
-- first schema made it unique per agent, so an id reused inside a battle failed the projection's whole batch.
ALTER TABLE orders DROP CONSTRAINT IF EXISTS orders_agent_id_client_order_id_key;
CREATE UNIQUE INDEX orders_wallet_client_id_idx
  ON orders (agent_id, (COALESCE(battle_id, '00000000-0000-0000-0000-000000000000'::uuid)), client_order_id)
  WHERE client_order_id IS NOT NULL;
`,
  },
];

/** Applies every migration not yet applied, each in its own transaction; safe to run concurrently. */
export async function migrate(db: Db): Promise<number[]> {
  // Under the same lock: concurrent CREATE TABLE IF NOT EXISTS can still collide in pg_type.
  await db.tx(async (q) => {
    if (db.kind === 'postgres') await q.query('SELECT pg_advisory_xact_lock(727274)');
    await q.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
    id INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())`);
  });
  const applied: number[] = [];
  for (const m of MIGRATIONS) {
    const done = await db.tx(async (q) => {
      if (db.kind === 'postgres') await q.query('SELECT pg_advisory_xact_lock(727274)');
      const rows = await q.query('SELECT 1 FROM schema_migrations WHERE id = $1', [m.id]);
      if (rows.length > 0) return false;
      await q.exec(m.sql);
      await q.query('INSERT INTO schema_migrations (id, name) VALUES ($1, $2)', [m.id, m.name]);
      return true;
    });
    if (done) applied.push(m.id);
  }
  return applied;
}
