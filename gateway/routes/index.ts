import { compileRoutes, type Route, type RouteDef } from '../router.js';
import type { TSchema } from '@sinclair/typebox';
import { systemRoutes } from './system.js';
import { authRoutes } from './auth.js';
import { agentRoutes } from './agents.js';
import { accountRoutes } from './account.js';
import { marketRoutes } from './market.js';
import { tradeRoutes } from './trade.js';
import { analyticsRoutes } from './analytics.js';
import { backtestRoutes } from './backtest.js';
import { backtestReadRoutes } from './backtest-read.js';
import { battleRoutes } from './battles.js';

/** Every HTTP route, in the order the docs list them. */
export function allRoutes(): RouteDef<TSchema, TSchema, TSchema>[] {
  return [...systemRoutes, ...authRoutes, ...accountRoutes, ...agentRoutes, ...marketRoutes, ...tradeRoutes, ...analyticsRoutes, ...backtestRoutes, ...backtestReadRoutes, ...battleRoutes];
}

let compiled: Route[] | null = null;
/** The compiled table (built once): the server, OpenAPI, the API page and skill.md all read this. */
export function routeTable(): Route[] {
  return (compiled ??= compileRoutes(allRoutes()));
}
