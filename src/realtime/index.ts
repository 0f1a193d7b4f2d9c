import { Elysia } from 'elysia'
import type { Config } from '../config'
import type { AppContext } from '../context'
import type { Database } from '../db'
import { RealtimeHub } from './hub'
import { asyncApiRoutes } from './routes'
import type { AnnouncingSessionCache } from './session-cache'
import { realtimeSocket } from './socket'

/** Bun's WebSocket limits, from the settings (Bun's own defaults are far more generous). */
export function websocketLimits(config: Config) {
  return {
    maxPayloadLength: config.realtime.maxPayloadBytes,
    backpressureLimit: config.realtime.backpressureLimitBytes,
    // A consumer that falls that far behind is closed, not buffered for without bound.
    closeOnBackpressureLimit: true,
    idleTimeout: config.realtime.idleTimeoutSeconds,
    sendPings: true,
    perMessageDeflate: false,
  }
}

/**
 * Starts the process's real-time hub (its LISTEN connection and the event pruner) and returns
 * the plugin with `/ws` and `/docs/asyncapi.json`; the app's stop closes every socket.
 */
export async function createRealtime(
  ctx: AppContext,
  db: Pick<Database, 'listen' | 'mode'>,
  sessions: AnnouncingSessionCache,
) {
  const hub = new RealtimeHub(ctx, db, sessions)
  await hub.start()
  const plugin = new Elysia({ name: 'realtime' })
    .decorate('realtime', hub)
    .onStop(() => hub.stop())
    .use(realtimeSocket(ctx, hub))
    .use(asyncApiRoutes())
  return { hub, plugin }
}

export { AnnouncingSessionCache } from './session-cache'
