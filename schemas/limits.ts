/**
 * Every bound a request is checked against, named once with its unit last. The schemas, the routes and the
 * engine read these; the ones engine/config.ts `Config` lets the environment change (body, WebSocket, rate)
 * are its defaults. Lower bounds of 0 and 1 (an offset, a non-empty string, a positive count) stay in the schemas.
 * test/gateway/limits.test.ts sends every schema bound of the route table at N and N + 1.
 */
export const LIMITS = {
  // Request: body size (Config.body_bytes_max) and nesting of objects and arrays in path, query and body.
  body_bytes_max: 1024 * 1024,
  json_depth_max: 32,

  // Pages: the deepest offset, and per list the largest and the default page (rows).
  offset_max: 10_000_000,
  agents_offset_max: 1_000_000,
  agents_page_max: 500,
  agents_page_default: 100,
  orders_page_max: 500,
  orders_page_default: 100,
  open_orders_page_max: 200,
  open_orders_page_default: 100,
  trade_history_page_max: 500,
  trade_history_page_default: 50,
  market_candles_page_max: 1000,
  market_candles_page_default: 100,
  market_trades_page_max: 500,
  market_trades_page_default: 100,
  /** The reference's history limit is 1..1000, default 100; its leaderboard shows the top 50. */
  equity_history_page_max: 1000,
  equity_history_page_default: 100,
  leaderboard_page_max: 500,
  leaderboard_page_default: 50,
  backtests_page_max: 200,
  backtests_page_default: 50,
  backtest_trades_page_max: 10_000,
  backtest_trades_page_default: 1_000,
  backtest_candles_page_max: 1_000,
  backtest_candles_page_default: 100,
  battles_page_max: 200,
  battles_page_default: 50,
  battle_replay_page_max: 100_000,
  battle_replay_page_default: 10_000,

  // Text fields (characters).
  /** Account and agent names: display_name, name, agent_name, new_name. */
  display_name_chars_max: 100,
  /** llm_model, framework, strategy_label. */
  label_chars_max: 100,
  description_chars_max: 500,
  avatar_url_chars_max: 2048,
  email_chars_min: 3,
  email_chars_max: 254,
  password_chars_min: 8,
  password_chars_max: 72,
  /** api_key and api_secret at login, owner_id at onboarding. */
  credential_chars_max: 200,
  tag_chars_max: 50,
  /** A risk limit sent as a string. */
  risk_value_chars_max: 20,
  /** A symbol in a body (orders, pairs, authorized_instruments). */
  symbol_chars_min: 2,
  symbol_chars_max: 20,
  /** A symbol in a path. */
  path_symbol_chars_max: 30,
  client_order_id_chars_max: 64,
  exchange_chars_max: 20,
  /** ISO-8601 times in bodies (start_time, end_time). */
  time_chars_min: 10,
  time_chars_max: 40,
  /** A candle interval label (battles, WebSocket). */
  interval_chars_max: 8,
  /** Comma-separated lists in a query: symbols, sessions. */
  query_list_chars_max: 4000,
  battle_name_chars_max: 200,
  preset_chars_max: 50,

  // Items in a list.
  tags_max: 50,
  instruments_max: 500,
  /** One of each action group. */
  actions_max: 7,
  pairs_max: 100,
  tickers_symbols_max: 100,
  compare_sessions_min: 2,
  compare_sessions_max: 50,
  battle_participants_max: 50,
  replay_agents_max: 50,

  // Amounts (decimal strings) and numbers.
  /** Balances, quantities and prices, where no bound below is narrower. */
  amount_max: '1000000000',
  /** A backtest's or battle's starting balance. */
  backtest_balance_min: '1',
  backtest_balance_max: '10000000',
  fee_rate_max: '0.1',
  risk_pct_max: 100,
  risk_open_orders_max: 200,
  risk_min_order_usd_max: 1_000_000,
  risk_orders_per_minute_max: 1_000_000,
  /** One year. */
  duration_minutes_max: 525_600,

  // Backtest and battle work per request: candle steps, and symbols × candle slots held in memory (40 bytes each).
  batch_steps_max: 10_000,
  fast_steps_max: 100_000,
  series_cells_max: 4_000_000,

  // WebSocket: Config.ws defaults (per frame, connection, API key) and frame fields (characters).
  ws_frame_bytes_max: 64 * 1024,
  ws_subscriptions_max: 10,
  ws_connections_per_key_max: 20,
  ws_channel_chars_max: 128,
  ws_symbol_chars_max: 24,
  ws_battle_id_chars_max: 64,
  ws_api_key_chars_max: 256,
  ws_request_id_chars_max: 128,
  ws_method_chars_max: 64,

  // Rate: Config.rate defaults, requests per fixed 60 s window (0 disables one).
  rate_agent_per_minute: 60_000,
  rate_account_per_minute: 300_000,
  rate_auth_per_ip_per_minute: 20,
  rate_public_per_ip_per_minute: 60_000,
} as const;
