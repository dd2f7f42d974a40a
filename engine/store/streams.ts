/**
 * Journal stream names of wallets: an agent's own wallet is the stream `<agent id>`; its wallet in a live
 * battle is `<battle id>:<agent id>`, so a battle never touches the agent's own wallet.
 */
export const battleStream = (battleId: string, agentId: string): string => `${battleId}:${agentId}`;

export function parseStream(stream: string): { agent_id: string; battle_id: string | null } {
  const i = stream.indexOf(':');
  return i < 0 ? { agent_id: stream, battle_id: null } : { agent_id: stream.slice(i + 1), battle_id: stream.slice(0, i) };
}
