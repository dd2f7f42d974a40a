import { createHash, randomUUID } from 'node:crypto';
import { ApiError } from '../../schemas/errors.js';
import { fmt } from '../core/money.js';
import { effectiveRiskProfile, type RiskProfile } from '../core/risk-profile.js';
import { isUniqueViolation, type Db } from '../store/db.js';
import { appendInTx } from '../store/journal.js';
import type { Bus } from '../bus.js';
import { hashSecret, keyHash, keyPreview, KeyVault, KEY_PATTERN, newApiKey, newApiSecret, verifySecret } from './credentials.js';
import * as repo from './repo.js';
import type { Account, Agent, AgentMode, AgentPatch, NewAgentInput, Principal, TradingSession } from './types.js';

const INVALIDATE_CHANNEL = 'identity.changed';
const DEFAULT_BALANCE = '10000.00000000';
/** Bound on cached key lookups (unknown keys are cached too, so random keys cannot grow it without end). */
const KEY_CACHE_MAX = 100_000;

/**
 * Accounts, agents and their credentials. Lookups of keys and accounts are cached in memory and the
 * cache is dropped on every change here and, through the bus, in every other process, so a
 * regenerated or archived key stops working at once.
 */
export class IdentityService {
  private readonly keys = new Map<string, Principal | null>();
  private readonly accounts = new Map<string, Account | null>();
  private readonly vault: KeyVault;
  private readonly listeners = new Set<() => void>();

  constructor(
    private readonly db: Db,
    private readonly bus: Bus,
    serverKey: string,
    private readonly kdfCost: number,
  ) {
    this.vault = new KeyVault(serverKey);
  }

  async start(): Promise<void> {
    await this.bus.subscribe(INVALIDATE_CHANNEL, () => this.dropCaches());
  }

  /** Called (after caches drop) whenever a credential or status may have changed: open sockets re-check. */
  onChange(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private dropCaches(): void {
    this.keys.clear();
    this.accounts.clear();
    for (const fn of this.listeners) fn();
  }

  private async changed(): Promise<void> {
    this.dropCaches();
    await this.bus.publish(INVALIDATE_CHANNEL, '1').catch(() => {});
  }

  // ---- registration and login -------------------------------------------------------------

  /** A new account with its first agent (by default "{name}'s Agent" with the account's starting balance). */
  async register(input: { display_name: string; email?: string | null; password?: string | null; starting_balance?: string; owner_ref?: string | null; first_agent?: NewAgentInput }) {
    const apiKey = newApiKey();
    const apiSecret = newApiSecret();
    const balance = fmt(input.starting_balance ?? DEFAULT_BALANCE);
    const [secretHash, passwordHash] = await Promise.all([
      hashSecret(apiSecret, this.kdfCost),
      input.password ? hashSecret(input.password, this.kdfCost) : Promise.resolve(null),
    ]);
    const displayName = input.display_name.trim() || 'Agent';
    try {
      const out = await this.db.tx(async (q) => {
        const account = await repo.insertAccount(q, {
          id: randomUUID(), display_name: displayName, email: input.email ?? null, password_hash: passwordHash,
          owner_ref: input.owner_ref ?? null, api_key_hash: keyHash(apiKey), api_key_preview: keyPreview(apiKey),
          api_secret_hash: secretHash, starting_balance: balance,
        });
        const first = input.first_agent ?? { display_name: `${displayName}'s Agent` };
        return { account, ...(await this.insertAgent(q, account, { starting_balance: balance, ...first })) };
      });
      await this.changed();
      return { ...out, apiKey, apiSecret };
    } catch (err) {
      if (isUniqueViolation(err)) {
        const field = input.owner_ref ? 'owner_id' : 'email';
        throw new ApiError('DUPLICATE_ACCOUNT', `An account with this ${field} already exists.`, { field });
      }
      throw err;
    }
  }

  async login(apiKey: string, apiSecret: string): Promise<Account> {
    if (!KEY_PATTERN.test(apiKey)) throw new ApiError('INVALID_API_KEY', 'API key format is invalid.');
    const account = await repo.accountByKeyHash(this.db, keyHash(apiKey));
    if (!account) throw new ApiError('ACCOUNT_NOT_FOUND', 'No account has this API key (agent keys cannot log in; use them directly as X-API-Key).');
    if (!(await verifySecret(apiSecret, account.api_secret_hash))) throw new ApiError('INVALID_API_KEY', 'API secret is invalid.');
    return this.assertActive(stripSecret(account));
  }

  async userLogin(email: string, password: string): Promise<Account> {
    const account = await repo.accountByEmail(this.db, email);
    const ok = account?.password_hash ? await verifySecret(password, account.password_hash) : false;
    if (!account || !ok) throw new ApiError('INVALID_API_KEY', 'Invalid email or password.');
    const { password_hash: _, ...rest } = account;
    return this.assertActive(rest);
  }

  private assertActive(account: Account): Account {
    if (account.status !== 'active') throw new ApiError('ACCOUNT_SUSPENDED', `Account is ${account.status}.`, { account_id: account.id });
    return account;
  }

  // ---- per-request resolution (cached) ----------------------------------------------------

  /** Resolves an agent or account key; null when unknown. Status checks are the caller's. */
  async resolveKey(key: string): Promise<Principal | null> {
    if (!KEY_PATTERN.test(key)) return null;
    const hash = keyHash(key);
    if (this.keys.has(hash)) return this.keys.get(hash)!;
    let principal: Principal | null = null;
    const agent = await repo.agentByKeyHash(this.db, hash);
    if (agent) {
      const account = await this.accountById(agent.account_id);
      principal = account ? { account, agent, via: 'agent_key' } : null;
    } else {
      const row = await repo.accountByKeyHash(this.db, hash);
      principal = row ? { account: stripSecret(row), agent: null, via: 'account_key' } : null;
    }
    if (this.keys.size >= KEY_CACHE_MAX) this.keys.clear();
    this.keys.set(hash, principal);
    return principal;
  }

  async accountById(id: string): Promise<Account | null> {
    if (this.accounts.has(id)) return this.accounts.get(id)!;
    const account = await repo.accountById(this.db, id);
    this.accounts.set(id, account);
    return account;
  }

  // ---- agents -----------------------------------------------------------------------------

  private async insertAgent(q: Parameters<Parameters<Db['tx']>[0]>[0], account: Account, input: NewAgentInput) {
    const apiKey = newApiKey();
    const id = randomUUID();
    const balance = fmt(input.starting_balance ?? DEFAULT_BALANCE);
    const agent = await repo.insertAgent(q, {
      id, account_id: account.id, display_name: input.display_name, description: input.description ?? null,
      starting_balance: balance, llm_model: input.llm_model ?? null, framework: input.framework ?? null,
      strategy_tags: input.strategy_tags ?? [], risk_profile: input.risk_profile ?? {},
      color: input.color ?? colorFor(id), avatar_url: null, agent_type: input.agent_type ?? 'trading',
      authorized_instruments: input.authorized_instruments ?? null, authorized_actions: input.authorized_actions ?? null,
      api_key_hash: keyHash(apiKey), api_key_preview: keyPreview(apiKey), api_key_enc: this.vault.seal(apiKey),
    });
    const session = await repo.openSession(q, { id: randomUUID(), account_id: account.id, agent_id: id, starting_balance: balance });
    await appendInTx(q, [{ stream: id, type: 'wallet.funded', payload: { asset: 'USDT', amount: balance, session_id: session.id } }]);
    return { agent, agentKey: apiKey, session };
  }

  async createAgent(account: Account, input: NewAgentInput) {
    const out = await this.db.tx((q) => this.insertAgent(q, account, input));
    await this.changed();
    return out;
  }

  listAgents(accountId: string, opts: { includeArchived: boolean; limit: number; offset: number }) {
    return repo.listAgents(this.db, accountId, opts);
  }

  /** The agent if the account owns it: unknown → 404, another account's → 403. */
  async ownedAgent(account: Account, agentId: string): Promise<Agent> {
    const agent = await repo.agentById(this.db, agentId);
    if (!agent) throw new ApiError('AGENT_NOT_FOUND', `Agent ${agentId} not found.`, { agent_id: agentId });
    if (agent.account_id !== account.id) throw new ApiError('PERMISSION_DENIED', 'You do not own this agent.', { agent_id: agentId });
    return agent;
  }

  async updateAgent(account: Account, agentId: string, patch: AgentPatch): Promise<Agent> {
    const agent = await this.ownedAgent(account, agentId);
    const fields: Record<string, unknown> = { ...patch };
    if (patch.risk_profile) fields.risk_profile = { ...agent.risk_profile, ...patch.risk_profile };
    const updated = await repo.updateAgent(this.db, agent.id, fields);
    await this.changed();
    return updated!;
  }

  async cloneAgent(account: Account, agentId: string, newName: string | undefined) {
    const src = await this.ownedAgent(account, agentId);
    return this.createAgent(account, {
      display_name: newName ?? `${src.display_name} (copy)`, starting_balance: src.starting_balance, description: src.description,
      llm_model: src.llm_model, framework: src.framework, strategy_tags: src.strategy_tags, risk_profile: src.risk_profile,
      agent_type: src.agent_type, authorized_instruments: src.authorized_instruments, authorized_actions: src.authorized_actions,
    });
  }

  /** Restores the starting balance in a new session; history is kept. */
  async resetAgent(account: Account, agentId: string, startingBalance?: string): Promise<{ agent: Agent; session: TradingSession }> {
    const agent = await this.ownedAgent(account, agentId);
    if (agent.status === 'archived') throw new ApiError('AGENT_INVALID_STATE', 'An archived agent cannot be reset.', { agent_id: agentId });
    const balance = fmt(startingBalance ?? agent.starting_balance);
    const out = await this.db.tx(async (q) => {
      const updated = startingBalance ? await repo.updateAgent(q, agent.id, { starting_balance: balance, status: 'active' }) : await repo.updateAgent(q, agent.id, { status: 'active' });
      const session = await repo.openSession(q, { id: randomUUID(), account_id: account.id, agent_id: agent.id, starting_balance: balance });
      await appendInTx(q, [{ stream: agent.id, type: 'wallet.reset', payload: { asset: 'USDT', amount: balance, session_id: session.id } }]);
      return { agent: updated!, session };
    });
    await this.changed();
    return out;
  }

  async archiveAgent(account: Account, agentId: string): Promise<Agent> {
    await this.ownedAgent(account, agentId);
    const agent = await repo.updateAgent(this.db, agentId, { status: 'archived' });
    await this.changed();
    return agent!;
  }

  async deleteAgent(account: Account, agentId: string): Promise<void> {
    await this.ownedAgent(account, agentId);
    await this.db.tx((q) => repo.deleteAgent(q, agentId));
    await this.changed();
  }

  async agentKey(account: Account, agentId: string): Promise<string> {
    await this.ownedAgent(account, agentId);
    const sealed = await repo.agentKeyEnc(this.db, agentId);
    return this.vault.open(sealed!);
  }

  async regenerateKey(account: Account, agentId: string): Promise<string> {
    await this.ownedAgent(account, agentId);
    const apiKey = newApiKey();
    await repo.updateAgent(this.db, agentId, { api_key_hash: keyHash(apiKey), api_key_preview: keyPreview(apiKey), api_key_enc: this.vault.seal(apiKey) });
    await this.changed();
    return apiKey;
  }

  effectiveRisk(account: Account, agent: Agent | null): RiskProfile {
    return effectiveRiskProfile(account.risk_profile, agent?.risk_profile ?? null);
  }

  async setMode(agent: Agent, mode: AgentMode | 'live'): Promise<Agent> {
    if (mode === 'live') throw new ApiError('LIVE_TRADING_UNAVAILABLE');
    if (agent.mode === 'terminated') throw new ApiError('AGENT_INVALID_STATE', 'A terminated agent cannot change mode.', { mode: agent.mode });
    const updated = await repo.updateAgent(this.db, agent.id, { mode });
    await this.changed();
    return updated!;
  }

  async updateAccountRisk(account: Account, profile: Partial<RiskProfile>): Promise<Account> {
    await this.db.query(`UPDATE accounts SET risk_profile = $2, updated_at = now() WHERE id = $1`, [account.id, JSON.stringify({ ...account.risk_profile, ...profile })]);
    await this.changed();
    return (await this.accountById(account.id))!;
  }

  accountByOwnerRef(ownerRef: string) {
    return repo.accountByOwnerRef(this.db, ownerRef);
  }

  currentSession(agentId: string) {
    return repo.currentSession(this.db, agentId);
  }

  latestAccountSession(accountId: string) {
    return repo.latestAccountSession(this.db, accountId);
  }

  summaries(agentIds: string[]) {
    return repo.agentSummaries(this.db, agentIds);
  }
}

const stripSecret = <T extends Account>(row: T & { api_secret_hash?: string }): Account => {
  const { api_secret_hash: _, ...rest } = row;
  return rest;
};

/** A stable avatar colour derived from the agent id. */
const colorFor = (id: string): string => '#' + createHash('md5').update(id).digest('hex').slice(6, 12);
