import { Type } from '@sinclair/typebox';
import { Amount, AmountOut, Nullable, Timestamp, Uuid } from './common.js';
import { LIMITS as L } from './limits.js';

export const RegisterBody = Type.Object({
  display_name: Type.Optional(Type.String({ maxLength: L.display_name_chars_max })),
  email: Type.Optional(Nullable(Type.String({ maxLength: L.email_chars_max, pattern: '^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$' }))),
  password: Type.Optional(Nullable(Type.String({ minLength: L.password_chars_min, maxLength: L.password_chars_max }))),
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
  api_key: Type.String({ minLength: 1, maxLength: L.credential_chars_max }),
  api_secret: Type.String({ minLength: 1, maxLength: L.credential_chars_max }),
});

export const UserLoginBody = Type.Object({
  email: Type.String({ minLength: L.email_chars_min, maxLength: L.email_chars_max }),
  password: Type.String({ minLength: L.password_chars_min, maxLength: L.password_chars_max }),
});

export const TokenResponse = Type.Object({
  token: Type.String(),
  expires_in: Type.Integer({ description: 'seconds' }),
  expires_at: Timestamp,
  token_type: Type.Literal('Bearer'),
});
