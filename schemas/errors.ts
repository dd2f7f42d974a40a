/**
 * The one error table: code -> HTTP status -> WebSocket close code.
 * Codes are never renumbered or reused. Every code of the reference spec (§11) is here,
 * plus the few this server adds (marked "ours").
 */
export interface ErrorSpec {
  readonly status: number;
  readonly wsClose: number;
  readonly message: string;
}

const spec = (status: number, wsClose: number, message: string): ErrorSpec => ({ status, wsClose, message });

export const ERRORS = {
  INVALID_API_KEY: spec(401, 4401, 'Invalid or missing API key.'),
  INVALID_TOKEN: spec(401, 4401, 'Invalid or expired token.'),
  ACCOUNT_SUSPENDED: spec(403, 4403, 'Account is suspended.'),
  PERMISSION_DENIED: spec(403, 4403, 'Permission denied.'),
  DAILY_LOSS_LIMIT: spec(403, 4403, 'Daily loss limit reached; trading is halted until 00:00 UTC.'),
  RATE_LIMIT_EXCEEDED: spec(429, 4429, 'Rate limit exceeded.'),
  INSUFFICIENT_BALANCE: spec(400, 4400, 'Insufficient balance.'),
  ORDER_REJECTED: spec(400, 4400, 'Order rejected.'),
  INVALID_ORDER_TYPE: spec(400, 4400, 'Invalid order type.'),
  INVALID_QUANTITY: spec(400, 4400, 'Invalid quantity.'),
  ORDER_NOT_FOUND: spec(404, 4404, 'Order not found.'),
  ORDER_NOT_CANCELLABLE: spec(400, 4400, 'Order cannot be cancelled.'),
  TRADE_NOT_FOUND: spec(404, 4404, 'Trade not found.'),
  INVALID_SYMBOL: spec(400, 4400, 'Invalid symbol.'),
  PRICE_NOT_AVAILABLE: spec(503, 4503, 'Price not available.'),
  RISK_LIMIT_EXCEEDED: spec(400, 4400, 'Risk limit exceeded.'),
  ACCOUNT_NOT_FOUND: spec(404, 4404, 'Account not found.'),
  DUPLICATE_ACCOUNT: spec(409, 4409, 'An account with these details already exists.'),
  VALIDATION_ERROR: spec(422, 4422, 'Request validation failed.'),
  DATABASE_ERROR: spec(500, 1011, 'Database error.'),
  CACHE_ERROR: spec(500, 1011, 'Cache error.'),
  SERVICE_UNAVAILABLE: spec(503, 1013, 'Service temporarily unavailable.'),
  BACKTEST_NOT_FOUND: spec(404, 4404, 'Backtest session not found.'),
  BACKTEST_INVALID_STATE: spec(409, 4409, 'Backtest is not in a state that allows this.'),
  BACKTEST_NO_DATA: spec(400, 4400, 'No historical data for this range.'),
  BATTLE_NOT_FOUND: spec(404, 4404, 'Battle not found.'),
  BATTLE_INVALID_STATE: spec(409, 4409, 'Battle is not in a state that allows this.'),
  STRATEGY_NOT_FOUND: spec(404, 4404, 'Strategy not found.'),
  STRATEGY_INVALID_STATE: spec(409, 4409, 'Strategy is not in a state that allows this.'),
  TRAINING_RUN_NOT_FOUND: spec(404, 4404, 'Training run not found.'),
  FEEDBACK_NOT_FOUND: spec(404, 4404, 'Feedback not found.'),
  INTERNAL_ERROR: spec(500, 1011, 'An unexpected error occurred.'),
  // ours
  NOT_FOUND: spec(404, 4404, 'No such route.'),
  METHOD_NOT_ALLOWED: spec(405, 4405, 'Method not allowed on this route.'),
  PAYLOAD_TOO_LARGE: spec(413, 1009, 'Request body too large.'),
  AGENT_NOT_FOUND: spec(404, 4404, 'Agent not found.'),
  AGENT_SUSPENDED: spec(403, 4403, 'Agent is suspended.'),
  AGENT_INVALID_STATE: spec(409, 4409, 'Agent is not in a state that allows this.'),
  INVALID_CHANNEL: spec(400, 4400, 'Unknown channel, or a channel without its symbol or interval.'),
  SUBSCRIPTION_LIMIT: spec(400, 4400, 'Too many subscriptions on this connection.'),
  UNKNOWN_ACTION: spec(400, 4400, 'Unknown WebSocket action or method.'),
  CONNECTION_LIMIT: spec(429, 4429, 'Too many WebSocket connections for this API key.'),
  LIVE_TRADING_UNAVAILABLE: spec(400, 4400, 'Live mode is not offered: this simulator connects to no real broker.'),
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERRORS;

export interface ErrorBody {
  error: { code: ErrorCode; message: string; details: Record<string, unknown> | null };
}

/** A business or request error that travels as a value up to the gateway. */
export class ApiError extends Error {
  constructor(
    readonly code: ErrorCode,
    message?: string,
    readonly details: Record<string, unknown> | null = null,
  ) {
    super(message ?? ERRORS[code].message);
  }
  get status(): number {
    return ERRORS[this.code].status;
  }
  toBody(): ErrorBody {
    return { error: { code: this.code, message: this.message, details: this.details } };
  }
}
