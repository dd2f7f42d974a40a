import { Type, type TSchema } from '@sinclair/typebox';
import { LIMITS } from './limits.js';

/** A decimal amount on the wire: a plain decimal string (numbers accepted on input); never exponent notation. */
export const Amount = Type.Union([Type.String({ pattern: '^\\s*\\d+(\\.\\d+)?\\s*$' }), Type.Number()], {
  description: 'Decimal amount as a string, e.g. "10000.00" (at most 8 decimal places)',
});
export const AmountOut = Type.String({ pattern: '^-?\\d+\\.\\d{8}$', description: 'Decimal string with 8 decimal places' });
export const Uuid = Type.String({ pattern: '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$' });
export const Timestamp = Type.String({ description: 'ISO-8601 UTC time' });
export const Nullable = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()]);
/** A pair symbol in a body: orders, pairs, authorized_instruments. */
export const SymbolName = Type.String({ minLength: LIMITS.symbol_chars_min, maxLength: LIMITS.symbol_chars_max, pattern: '^[A-Za-z0-9]+$' });
/** An `offset` query parameter (rows skipped). */
export const Offset = Type.Integer({ minimum: 0, maximum: LIMITS.offset_max });

export const ErrorEnvelope = Type.Object({
  error: Type.Object({
    code: Type.String(),
    message: Type.String(),
    details: Nullable(Type.Record(Type.String(), Type.Unknown())),
  }),
});

export const Message = Type.Object({ message: Type.String() });
export const AgentIdParams = Type.Object({ agent_id: Uuid });
