import type { Static } from '@sinclair/typebox';
import { ApiError } from '../../schemas/errors.js';
import * as S from '../../schemas/battles.js';
import { LIMITS } from '../../schemas/limits.js';
import type { BattleInput } from '../../engine/battles/input.js';
import type { PlaceRequest } from '../../engine/trading.js';
import { Reply, route } from '../router.js';
import { caller, P, positiveAmount } from './helpers.js';
import { orderOut } from './trade.js';
import { battleOut, participantOut, presetsOut, rankingOut, replayOut, stepOut } from './battle-out.js';

const B = `${P}/battles`;
const common = { auth: 'jwt', group: 'battle', tag: 'battles' } as const;

/** Create and update bodies → engine input; amounts may arrive as numbers, intervals as "1m" or seconds (the engine reads both). */
function battleInput(body: Partial<Static<typeof S.CreateBody>>): BattleInput {
  const out: BattleInput = {};
  if (body.name !== undefined) out.name = body.name;
  if (body.battle_mode !== undefined) out.battle_mode = body.battle_mode;
  if (body.preset !== undefined) out.preset = body.preset;
  if (body.starting_balance !== undefined) out.starting_balance = String(body.starting_balance).trim();
  if (body.duration_minutes !== undefined) out.duration_minutes = body.duration_minutes;
  if (body.ranking_metric !== undefined) out.ranking_metric = body.ranking_metric;
  if (body.backtest_config !== undefined) out.backtest_config = body.backtest_config as BattleInput['backtest_config'];
  if (body.config !== undefined) out.config = body.config;
  return out;
}

/** The live order body's spellings (`type`/`order_type`, `price`/`trigger_price`/`stop_price`) → one order request. */
function orderRequest(body: Static<typeof S.BattleOrderBody>): PlaceRequest {
  const type = body.type ?? body.order_type ?? 'market';
  const raw = body.price ?? body.trigger_price ?? body.stop_price ?? null;
  if (type === 'market' && raw !== null) throw new ApiError('VALIDATION_ERROR', 'price must not be set for a market order.', { field: 'price' });
  if (type !== 'market' && raw === null) throw new ApiError('VALIDATION_ERROR', `price (or trigger_price) is required for a ${type} order.`, { field: 'price' });
  return {
    symbol: body.symbol.toUpperCase(), side: body.side, type, quantity: positiveAmount(body.quantity, 'quantity'),
    price: raw === null ? null : positiveAmount(raw, body.price != null ? 'price' : 'trigger_price'), client_order_id: body.client_order_id ?? null,
  };
}

export const battleRoutes = [
  route({
    ...common, method: 'POST', path: B, status: 201, body: S.CreateBody,
    summary: 'Create a battle in draft: live (real-time prices, optional duration_minutes) or historical (backtest_config: start_time, end_time, candle_interval "1m" or seconds, pairs). A preset fills in what is not given.',
    async handler({ body, principal, engine }) {
      return battleOut(await engine.battles.create(caller(principal), battleInput(body)));
    },
  }),
  route({
    ...common, method: 'GET', path: B, query: S.ListQuery,
    summary: 'Battles of the account, newest first; `total` is the true count.',
    async handler({ query, principal, engine }) {
      const limit = query.limit ?? LIMITS.battles_page_default;
      const offset = query.offset ?? 0;
      const { battles, total } = await engine.battles.list(caller(principal), query.status ?? null, limit, offset);
      return { battles: battles.map(battleOut), total, limit, offset };
    },
  }),
  route({
    ...common, method: 'GET', path: `${B}/presets`,
    summary: 'The 8 presets, keyed by preset (durations, starting balances, candle intervals).',
    handler: () => presetsOut(),
  }),
  route({
    ...common, method: 'GET', path: `${B}/{id}`, params: S.BattleParams,
    summary: 'A battle with its participants (403 for another account\'s battle).',
    async handler({ params, principal, engine }) {
      return battleOut(await engine.battles.get(caller(principal), params.id));
    },
  }),
  route({
    ...common, method: 'PUT', path: `${B}/{id}`, params: S.BattleParams, body: S.UpdateBody,
    summary: 'Change the configuration (draft only, else 409 BATTLE_INVALID_STATE).',
    async handler({ params, body, principal, engine }) {
      return battleOut(await engine.battles.update(caller(principal), params.id, battleInput(body)));
    },
  }),
  route({
    ...common, method: 'DELETE', path: `${B}/{id}`, params: S.BattleParams, status: 204,
    summary: 'Cancel a running battle (no rankings; resting orders cancelled); delete any other.',
    async handler({ params, principal, engine }) {
      await engine.battles.remove(caller(principal), params.id);
      return new Reply(204, '');
    },
  }),
  route({
    ...common, method: 'POST', path: `${B}/{id}/participants`, params: S.BattleParams, body: S.ParticipantBody, status: 201,
    summary: 'Add one of the account\'s agents (draft only). Answers the battle with its participants.',
    async handler({ params, body, principal, engine }) {
      const b = await engine.battles.addParticipant(caller(principal), params.id, body.agent_id);
      const p = b.participants.find((x) => x.agent_id === body.agent_id.toLowerCase())!;
      return { ...battleOut(b), participant: participantOut(b, p) };
    },
  }),
  route({
    ...common, method: 'DELETE', path: `${B}/{id}/participants/{agent_id}`, params: S.BattleAgentParams, status: 204,
    summary: 'Remove an agent (draft only).',
    async handler({ params, principal, engine }) {
      await engine.battles.removeParticipant(caller(principal), params.id, params.agent_id);
      return new Reply(204, '');
    },
  }),
  route({
    ...common, method: 'POST', path: `${B}/{id}/start`, params: S.BattleParams,
    summary: 'Lock the configuration and start (needs 2 participants). Live: each agent trades a fresh battle wallet with its own key. Historical: the virtual clock starts at start_time.',
    async handler({ params, principal, engine }) {
      return battleOut(await engine.battles.startBattle(caller(principal), params.id));
    },
  }),
  ...(['pause', 'resume'] as const).map((verb) => route({
    ...common, method: 'POST', path: `${B}/{id}/${verb}/{agent_id}`, params: S.BattleAgentParams,
    summary: verb === 'pause' ? 'Pause one agent: its orders are refused (409) until it is resumed.' : 'Resume a paused agent.',
    async handler({ params, principal, engine }) {
      const { battle, participant } = await engine.battles.pause(caller(principal), params.id, params.agent_id, verb === 'resume');
      return { ...participantOut(battle, participant), battle_status: battle.status };
    },
  })),
  route({
    ...common, method: 'POST', path: `${B}/{id}/stop`, params: S.BattleParams,
    summary: 'Complete the battle and rank it (historical: positions sold at the last close). A battle that already completed is answered as it is.',
    async handler({ params, principal, engine }) {
      return battleOut(await engine.battles.stop(caller(principal), params.id));
    },
  }),
  route({
    ...common, method: 'GET', path: `${B}/{id}/live`, params: S.BattleParams,
    summary: 'Current standings of a running battle, ranked by its ranking_metric.',
    async handler({ params, principal, engine }) {
      const { battle: b, rankings, elapsed_ms, at } = await engine.battles.live(caller(principal), params.id);
      const list = rankings.map((r) => rankingOut(b, r));
      const d = b.config.duration_minutes;
      const remaining = b.mode === 'live' && d !== null ? Math.max(0, d * 60 - Math.floor(elapsed_ms / 1000)) : null;
      return {
        battle_id: b.id, status: b.status, battle_mode: b.mode, ranking_metric: b.ranking_metric, elapsed_seconds: Math.floor(elapsed_ms / 1000),
        elapsed_minutes: Math.floor(elapsed_ms / 60_000), remaining_seconds: remaining, remaining_minutes: remaining === null ? null : Math.ceil(remaining / 60),
        updated_at: new Date(at).toISOString(), rankings: list, participants: list,
      };
    },
  }),
  route({
    ...common, method: 'GET', path: `${B}/{id}/results`, params: S.BattleParams,
    summary: 'Final rankings with each agent\'s metrics (completed battles only, else 409).',
    async handler({ params, principal, engine }) {
      const b = await engine.battles.results(caller(principal), params.id);
      const list = b.rankings!.map((r) => rankingOut(b, r));
      return {
        battle_id: b.id, name: b.name, status: b.status, battle_mode: b.mode, ranking_metric: b.ranking_metric, started_at: b.started_at,
        ended_at: b.ended_at, completed_at: b.ended_at, rankings: list, participants: list,
      };
    },
  }),
  route({
    ...common, method: 'GET', path: `${B}/{id}/replay`, params: S.BattleParams, query: S.ReplayQuery,
    summary: 'Equity time series: one snapshot per instant with every participant (paged by instant).',
    async handler({ params, query, principal, engine }) {
      const limit = query.limit ?? LIMITS.battle_replay_page_default;
      const offset = query.offset ?? 0;
      const { battle, rows, total } = await engine.battles.replay(caller(principal), params.id, limit, offset);
      return replayOut(battle, rows, total, limit, offset);
    },
  }),
  route({
    ...common, method: 'POST', path: `${B}/{id}/step`, params: S.BattleParams,
    summary: 'Historical: advance the shared clock one candle. The last step completes the battle (rankings computed); stepping further is 409.',
    async handler({ params, principal, engine }) {
      return stepOut(await engine.battles.step(caller(principal), params.id, 1));
    },
  }),
  route({
    ...common, method: 'POST', path: `${B}/{id}/step/batch`, params: S.BattleParams, body: S.BatchBody,
    summary: 'Historical: advance up to `steps` candles (large batches run in the worker pool).',
    async handler({ params, body, principal, engine }) {
      return stepOut(await engine.battles.step(caller(principal), params.id, body.steps ?? 1));
    },
  }),
  route({
    ...common, method: 'POST', path: `${B}/{id}/trade/order`, params: S.BattleParams, body: S.BattleOrderBody,
    summary: 'Historical: an order for a named participant at the current virtual time (the live order body plus agent_id; fills as in backtests).',
    async handler({ params, body, principal, engine }) {
      const o = await engine.battles.order(caller(principal), params.id, body.agent_id, orderRequest(body));
      return { ...orderOut(o), battle_id: params.id, agent_id: body.agent_id.toLowerCase() };
    },
  }),
  route({
    ...common, method: 'GET', path: `${B}/{id}/market/prices`, params: S.BattleParams,
    summary: 'Historical: last closes at the battle\'s virtual time.',
    async handler({ params, principal, engine }) {
      const v = await engine.battles.prices(caller(principal), params.id);
      return { battle_id: v.battle.id, virtual_time: new Date(v.virtual_time).toISOString(), prices: v.prices };
    },
  }),
  route({
    ...common, method: 'POST', path: `${B}/{id}/replay`, params: S.BattleParams, body: S.ReplayBody, status: 201,
    summary: 'A new historical draft from a completed battle\'s configuration and period, with optional override_config and agent_ids.',
    async handler({ params, body, principal, engine }) {
      return battleOut(await engine.battles.replayCreate(caller(principal), params.id, body.override_config ?? {}, body.agent_ids ?? null));
    },
  }),
];
