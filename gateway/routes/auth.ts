import { route } from '../router.js';
import { LoginBody, RegisterBody, RegisterResponse, TokenResponse, UserLoginBody } from '../../schemas/auth.js';
import { P, positiveAmount } from './helpers.js';

export const authRoutes = [
  route({
    method: 'POST', path: `${P}/auth/register`, auth: 'public', group: null, tag: 'auth', status: 201,
    summary: 'Register an account; returns its API key and secret (shown once) and a default agent with its own key.',
    body: RegisterBody, response: RegisterResponse,
    async handler({ body, engine }) {
      const starting = body.starting_balance === undefined ? undefined : positiveAmount(body.starting_balance, 'starting_balance');
      const r = await engine.identity.register({
        display_name: body.display_name ?? '', email: body.email ?? null, password: body.password ?? null, starting_balance: starting,
      });
      return {
        account_id: r.account.id, api_key: r.apiKey, api_secret: r.apiSecret, display_name: r.account.display_name,
        starting_balance: r.account.starting_balance, agent_id: r.agent.id, agent_api_key: r.agentKey,
        message: 'Save your API secret now. It will not be shown again.',
      };
    },
  }),
  route({
    method: 'POST', path: `${P}/auth/login`, auth: 'public', group: null, tag: 'auth',
    summary: 'Exchange an account API key and secret for a JWT. Agent keys cannot log in (404 ACCOUNT_NOT_FOUND).',
    body: LoginBody, response: TokenResponse,
    async handler({ body, engine, tokens }) {
      const account = await engine.identity.login(body.api_key.trim(), body.api_secret.trim());
      return tokens.issue(account.id);
    },
  }),
  route({
    method: 'POST', path: `${P}/auth/user-login`, auth: 'public', group: null, tag: 'auth',
    summary: 'Exchange an email and password for a JWT.',
    body: UserLoginBody, response: TokenResponse,
    async handler({ body, engine, tokens }) {
      const account = await engine.identity.userLogin(body.email.trim(), body.password);
      return tokens.issue(account.id);
    },
  }),
];
