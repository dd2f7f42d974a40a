import type { TestServer } from './server.js';
import { importCandles } from './candles.js';

/** A backtest scenario over real candles, shared by the backtest API tests (values asserted there). */
export const BT = '/api/v1/backtest';
export const WINDOW = { start_time: '2025-06-01T00:00:00Z', end_time: '2025-06-01T02:00:00Z', candle_interval: 60, pairs: ['ADAUSDT', 'DOGEUSDT'] };
type H = Record<string, string>;

export async function loadData(s: TestServer): Promise<void> {
  // From a day before the start: the warm-up history (24 h volume, candles endpoint).
  for (const sym of ['ADAUSDT', 'DOGEUSDT']) await importCandles(s.engine.db, `bybit-linear/${sym}_1m.csv`, sym, '1m', '2025-05-31T00:00:00Z', '2025-06-01T02:00:00Z');
}

export async function scenario(s: TestServer, h: H, label = 'e2e') {
  const ok = async (method: string, path: string, body?: unknown) => {
    const r = await s.call(method, path, { headers: h, body });
    if (r.status !== 200) throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body;
  };
  const created = await ok('POST', `${BT}/create`, { ...WINDOW, starting_balance: '10000', strategy_label: label });
  const id: string = created.session_id;
  const started = await ok('POST', `${BT}/${id}/start`);
  const order = (body: Record<string, unknown>) => ok('POST', `${BT}/${id}/trade/order`, body);
  const a = await order({ symbol: 'ADAUSDT', side: 'buy', type: 'market', quantity: '1000' });
  const b = await order({ symbol: 'DOGEUSDT', side: 'buy', type: 'limit', quantity: '5000', price: '0.192' });
  const c = await order({ symbol: 'ADAUSDT', side: 'sell', type: 'stop_loss', quantity: '1000', trigger_price: '0.6835' });
  const d = await order({ symbol: 'ADAUSDT', side: 'buy', type: 'limit', quantity: '1000', price: '0.675' });
  const f = await order({ symbol: 'DOGEUSDT', side: 'buy', type: 'limit', quantity: '1000', price: '0.15', client_order_id: 'far-1' });
  return { id, created, started, a, b, c, d, f, ok };
}

