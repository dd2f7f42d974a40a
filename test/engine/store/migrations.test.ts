import t from 'tap';
import { randomUUID } from 'node:crypto';
import type { Db } from '../../../engine/store/db.js';
import { migrate, MIGRATIONS } from '../../../engine/store/migrations.js';
import { backends } from '../../helpers/server.js';

const EXPECTED_TABLES = [
  'accounts', 'agents', 'trading_sessions', 'balances', 'orders', 'trades', 'positions', 'snapshots',
  'battles', 'battle_participants', 'backtests', 'candles', 'journal', 'schema_migrations', 'trading_pairs',
];

async function tables(db: Db): Promise<string[]> {
  const rows = await db.query<{ name: string }>(
    `SELECT table_name AS name FROM information_schema.tables
     WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY 1`,
  );
  return rows.map((r) => r.name);
}

/** An account and an agent to hang balances and orders on. */
async function seedAgent(db: Db, startingBalance = '10000') {
  const account = randomUUID();
  const agent = randomUUID();
  await db.query(
    `INSERT INTO accounts (id, display_name, api_key_hash, api_key_preview, api_secret_hash, starting_balance)
     VALUES ($1, 'A', $2, 'ak_live_xxxx...', 'scrypt$1$a$b', $3)`,
    [account, `hash-${account}`, startingBalance],
  );
  await db.query(
    `INSERT INTO agents (id, account_id, display_name, api_key_hash, api_key_preview, api_key_enc, starting_balance)
     VALUES ($1, $2, 'B', $3, 'ak_live_yyyy...', 'v1.x.y.z', $4)`,
    [agent, account, `hash-${agent}`, startingBalance],
  );
  return { account, agent };
}

for (const backend of backends()) {
  t.test(`migrations on ${backend.name}`, async (t) => {
    const { db, drop } = await backend.db();
    t.teardown(async () => {
      await db.close();
      await drop();
    });

    t.test('ids are unique and ascending', async (t) => {
      const ids = MIGRATIONS.map((m) => m.id);
      t.same(ids, [...ids].sort((a, b) => a - b));
      t.equal(new Set(ids).size, ids.length);
      t.equal(ids[0], 1);
    });

    t.test('migrate applies every migration once; a second run applies nothing', async (t) => {
      t.same(await tables(db), [], 'starts empty');
      t.same(await migrate(db), MIGRATIONS.map((m) => m.id), 'first run applies all');
      t.same(await migrate(db), [], 'second run applies nothing');
      const recorded = await db.query<{ id: number; name: string }>(`SELECT id, name FROM schema_migrations ORDER BY id`);
      t.same(recorded, MIGRATIONS.map((m) => ({ id: m.id, name: m.name })), 'each recorded once with its name');
    });

    t.test('all expected tables exist', async (t) => {
      const present = await tables(db);
      for (const name of EXPECTED_TABLES) t.ok(present.includes(name), `table ${name}`);
    });

    t.test('NUMERIC money columns round-trip as strings with 8 decimal places', async (t) => {
      const { agent } = await seedAgent(db, '5000');
      const [acc] = await db.query<{ starting_balance: unknown }>(`SELECT starting_balance FROM agents WHERE id = $1`, [agent]);
      t.equal(acc.starting_balance, '5000.00000000');
      const cases: Array<[input: string, stored: string]> = [
        ['0', '0.00000000'],
        ['0.00000001', '0.00000001'],
        ['1.5', '1.50000000'],
        ['10000', '10000.00000000'],
        ['123456789012345678.12345678', '123456789012345678.12345678'],
        ['999999999999999999999999999999.99999999', '999999999999999999999999999999.99999999'],
      ];
      for (const [i, [input, stored]] of cases.entries()) {
        const asset = `A${i}`;
        await db.query(`INSERT INTO balances (agent_id, asset, available, locked) VALUES ($1, $2, $3, $3)`, [agent, asset, input]);
        const [row] = await db.query<{ available: unknown; locked: unknown }>(
          `SELECT available, locked FROM balances WHERE agent_id = $1 AND asset = $2`, [agent, asset]);
        t.equal(typeof row.available, 'string', `${input}: a string, not a JS number`);
        t.equal(row.available, stored, `${input} reads back as ${stored}`);
        t.equal(row.locked, stored);
      }
      // More than 8 decimals are rounded by the column, not kept.
      await db.query(`INSERT INTO balances (agent_id, asset, available) VALUES ($1, 'R', '0.123456785')`, [agent]);
      const [r] = await db.query<{ available: string }>(`SELECT available FROM balances WHERE agent_id = $1 AND asset = 'R'`, [agent]);
      t.equal(r.available, '0.12345679');
      // Sums of NUMERIC stay exact.
      const [sum] = await db.query<{ s: string }>(`SELECT (0.1::numeric(38,8) + 0.2::numeric(38,8)) AS s`);
      t.equal(sum.s, '0.30000000');
    });

    t.test('BIGINT columns come back as JS numbers', async (t) => {
      await db.query(`INSERT INTO journal (stream, type, payload) VALUES ('m', 'e', '{}')`);
      const [row] = await db.query<{ seq: unknown; n: unknown }>(`SELECT seq, count(*) OVER () AS n FROM journal LIMIT 1`);
      t.equal(typeof row.seq, 'number');
      t.equal(typeof row.n, 'number');
    });

    t.test('CHECK constraints refuse negative balances and bad enums', async (t) => {
      const { agent } = await seedAgent(db);
      const checkViolation = { code: '23514' };
      await t.rejects(
        db.query(`INSERT INTO balances (agent_id, asset, available) VALUES ($1, 'NEG', '-0.00000001')`, [agent]),
        checkViolation, 'negative available refused');
      await t.rejects(
        db.query(`INSERT INTO balances (agent_id, asset, locked) VALUES ($1, 'NEG', '-1')`, [agent]),
        checkViolation, 'negative locked refused');
      await db.query(`INSERT INTO balances (agent_id, asset, available) VALUES ($1, 'USDT', '10')`, [agent]);
      await t.rejects(
        db.query(`UPDATE balances SET available = available - 10.00000001 WHERE agent_id = $1 AND asset = 'USDT'`, [agent]),
        checkViolation, 'an update that would go below zero refused');
      const [row] = await db.query<{ available: string }>(`SELECT available FROM balances WHERE agent_id = $1 AND asset = 'USDT'`, [agent]);
      t.equal(row.available, '10.00000000', 'balance unchanged');
      await db.query(`UPDATE balances SET available = available - 10 WHERE agent_id = $1 AND asset = 'USDT'`, [agent]);
      await t.rejects(
        db.query(`INSERT INTO accounts (id, display_name, api_key_hash, api_key_preview, api_secret_hash, starting_balance)
          VALUES ($1, 'Z', $2, 'p', 's', 0)`, [randomUUID(), randomUUID()]),
        checkViolation, 'zero starting balance refused');
      await t.rejects(db.query(`UPDATE agents SET status = 'deleted' WHERE id = $1`, [agent]), checkViolation, 'unknown agent status refused');
    });

    t.test('a client_order_id is unique per wallet: the own wallet and each battle wallet', async (t) => {
      const { agent } = await seedAgent(db);
      const insert = (battle: string | null) => db.query(
        `INSERT INTO orders (id, agent_id, client_order_id, symbol, side, type, quantity, status, created_at, battle_id)
         VALUES ($1, $2, 'cid-1', 'BTCUSDT', 'buy', 'market', 1, 'filled', now(), $3)`, [randomUUID(), agent, battle]);
      const battle = randomUUID();
      await insert(null);
      await insert(battle);
      await insert(randomUUID());
      await t.rejects(insert(null), { code: '23505' }, 'twice on the own wallet refused');
      await t.rejects(insert(battle), { code: '23505' }, 'twice on one battle wallet refused');
      const [n] = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM orders WHERE agent_id = $1`, [agent]);
      t.equal(n.n, 3);
    });

    t.test('deleting an account cascades to its agents and balances', async (t) => {
      const { account, agent } = await seedAgent(db);
      await db.query(`INSERT INTO balances (agent_id, asset, available) VALUES ($1, 'USDT', 1)`, [agent]);
      await db.query(`DELETE FROM accounts WHERE id = $1`, [account]);
      t.same(await db.query(`SELECT 1 FROM agents WHERE id = $1`, [agent]), []);
      t.same(await db.query(`SELECT 1 FROM balances WHERE agent_id = $1`, [agent]), []);
    });

    if (db.kind === 'postgres') {
      t.test('concurrent migrate calls on a fresh schema all succeed and apply each migration once', async (t) => {
        const fresh = await backend.db();
        t.teardown(async () => {
          await fresh.db.close();
          await fresh.drop();
        });
        const runs = await Promise.all([migrate(fresh.db), migrate(fresh.db), migrate(fresh.db), migrate(fresh.db)]);
        t.same(runs.flat().sort((a, b) => a - b), MIGRATIONS.map((m) => m.id), 'every migration applied by exactly one caller');
        const [n] = await fresh.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM schema_migrations`);
        t.equal(n.n, MIGRATIONS.length);
      });
    }
  });
}
