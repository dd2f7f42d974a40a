import { Type } from '@sinclair/typebox';
import { Amount, AmountOut, Nullable, Timestamp, Uuid } from './common.js';

export const RegisterBody = Type.Object({
  display_name: Type.Optional(Type.String({ maxLength: 100 })),
  email: Type.Optional(Nullable(Type.String({ maxLength: 254, pattern: '^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$' }))),
  password: Type.Optional(Nullable(Type.String({ minLength: 8, maxLength: 72 }))),
  starting_balance: Type.Optional(Amount),
});

export const RegisterResponse = Type.Object({
  account_id: Uuid,
  api_key: Type.String(),
  api_secret: Type.String(),
  display_name: Type.String(),
  starting_balance: AmountOut,
  agent_id: Uuid,
  agent_api_key: Type.String(),
  message: Type.String(),
});

export const LoginBody = Type.Object({
  api_key: Type.String({ minLength: 1, maxLength: 200 }),
  api_secret: Type.String({ minLength: 1, maxLength: 200 }),
});

export const UserLoginBody = Type.Object({
  email: Type.String({ minLength: 3, maxLength: 254 }),
  password: Type.String({ minLength: 8, maxLength: 72 }),
});

export const TokenResponse = Type.Object({
  token: Type.String(),
  expires_in: Type.Integer({ description: 'seconds' }),
  expires_at: Timestamp,
  token_type: Type.Literal('Bearer'),
});
