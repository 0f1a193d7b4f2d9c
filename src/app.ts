import './formats'
import { Elysia } from 'elysia'
import pkg from '../package.json'
import { reservedTransactions } from './after-commit'
import type { Config } from './config'
import type { AppContext, Principal } from './context'
import { cors } from './cors'
import type { Database } from './db'
import { requestDeadline, trackQueries } from './deadline'
import { httpBasics } from './http'
import type { Logger } from './logger'
import { createMetrics } from './metrics'
import { activityRoutes } from './modules/activity/routes'
import { adminRoutes } from './modules/admin/routes'
import { attachmentRoutes } from './modules/attachments/routes'
import { authGuard, requestAuthenticator } from './modules/auth/guard'
import { createPasswordHasher } from './modules/auth/passwords'
import { authRoutes } from './modules/auth/routes'
import { cacheVerifiedTokens } from './modules/auth/session-cache'
import { createAccessTokens } from './modules/auth/tokens'
import { requireTokenRoute } from './modules/authz/token-scopes'
import { commentRoutes } from './modules/comments/routes'
import { healthRoutes } from './modules/health/routes'
import { idempotency } from './modules/idempotency/middleware'
import { notificationRoutes } from './modules/notifications/routes'
import { memberRoutes } from './modules/projects/members/routes'
import { projectRoutes } from './modules/projects/routes'
import { rateLimits } from './modules/ratelimit/plugin'
import { taskRoutes } from './modules/tasks/routes'
import { tokenRoutes } from './modules/tokens/routes'
import { userRoutes } from './modules/users/routes'
import { webhookRoutes } from './modules/webhooks/routes'
import { deliveryWorker } from './modules/webhooks/worker'
import { apiDocs } from './openapi'
import { AnnouncingSessionCache, createRealtime, websocketLimits } from './realtime'
import { eventRoutes } from './realtime/routes'
import { representations } from './representation'
import { cacheHeaders, responseHeaders } from './response-headers'

export type AppDeps = { config: Config; db: Database; log: Logger; jwtSecret: string }

const DESCRIPTION = `Task-management REST API.

* JSON in and out, \`snake_case\` fields, UUID ids, RFC 3339 UTC timestamps.
* Errors are \`application/problem+json\` (RFC 9457) with a \`request_id\`; 422 bodies list each
  invalid field in \`errors\` and never repeat the submitted value.
* Authenticate with \`Authorization: Bearer <access_token>\` from /api/v1/auth/login.
  Access tokens live ACCESS_TOKEN_TTL seconds (default 900); refresh tokens are single use.
* Every response carries \`X-Request-Id\` (a valid incoming one is echoed).
* Real time: the WebSocket \`/ws\` is described in AsyncAPI 3 at [/docs/asyncapi.json](/docs/asyncapi.json).`

/** Builds the Elysia app; the caller owns the database and the listening socket. */
export async function createApp({ config, db, log, jwtSecret }: AppDeps) {
  const sessions = new AnnouncingSessionCache(config.sessionCacheTtlMs)
  const ctx: AppContext = {
    config,
    sql: trackQueries(reservedTransactions(db, { sessionsKept: config.db.prepare })),
    log,
    tokens: cacheVerifiedTokens(createAccessTokens(jwtSecret, config.accessTokenTtl)),
    passwords: await createPasswordHasher({
      concurrency: config.passwordHashConcurrency,
      queueMax: config.passwordHashQueueMax,
      waitMs: config.passwordHashWaitMs,
    }),
    sessions,
  }
  const realtime = await createRealtime(ctx, db, sessions)
  const authenticateRequest = requestAuthenticator(ctx)
  const guard = authGuard(authenticateRequest)
  // Guarded routes authenticate before their body is read (and again, from the same promise,
  // before validation): known once every route is registered.
  let guarded: Set<string> | undefined
  const beforeBody = (request: Request, route: string): Promise<Principal> | undefined => {
    guarded ??= guardedRoutes(app.routes)
    if (!guarded.has(`${request.method} ${route}`)) return undefined
    // An API token outside its scopes gets 403 before its body is read too.
    return authenticateRequest(request).then((principal) => {
      requireTokenRoute(principal, request.method, route)
      return principal
    })
  }
  const metrics = createMetrics()
  metrics.sources.inFlight = () => app.server?.pendingRequests ?? 0
  metrics.sources.webSockets = () => realtime.hub.openSockets
  metrics.sources.webSocketMessages = () => realtime.hub.messagesReceived
  metrics.sources.webSocketPublished = () => realtime.hub.messagesPublished
  const app = new Elysia({ websocket: websocketLimits(config) })
    .use(responseHeaders())
    .use(metrics.plugin)
    .use(requestDeadline(config.requestTimeoutMs, log))
    .use(httpBasics(config, log, beforeBody, metrics.observe))
    .use(cors(config.corsOrigins))
    .use(cacheHeaders(config))
    .use(rateLimits(config, authenticateRequest))
    .use(representations(config))
    .use(
      apiDocs({
        info: { title: 'taskapi', version: pkg.version, description: DESCRIPTION },
        tags: [
          { name: 'Auth', description: 'Accounts, sign-in and sessions' },
          { name: 'Users', description: 'Own account and public profiles' },
          { name: 'Projects', description: 'Projects and their members' },
          { name: 'Tasks', description: 'Tasks: CRUD, assignment, status, listing and search' },
          { name: 'Comments', description: 'Comments on tasks, with @mentions' },
          { name: 'Attachments', description: 'Files attached to tasks' },
          { name: 'Notifications', description: 'The caller’s notifications' },
          { name: 'Activity', description: 'What changed in a project or task, and by whom' },
          {
            name: 'Events',
            description: 'Real time: the WebSocket, and its project event feed over HTTP',
          },
          { name: 'Tokens', description: 'Scoped API tokens for scripts and services' },
          { name: 'Webhooks', description: 'Signed event deliveries to other services' },
          { name: 'Admin', description: 'Users, metrics and logs for admins' },
          { name: 'Operations', description: 'Health and documentation' },
        ],
        components: {
          securitySchemes: {
            bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' },
            apiToken: {
              type: 'http',
              scheme: 'bearer',
              bearerFormat: 'tapi_…',
              description:
                'An API token from POST /api/v1/tokens: limited to its scopes and project_ids; 403 on routes closed to tokens',
            },
          },
        },
      }),
    )
    .use(healthRoutes(db))
    .use(idempotency(ctx, authenticateRequest))
    .use(deliveryWorker(ctx))
    .use(realtime.plugin)
    .group('/api/v1', (api) =>
      api
        .use(authRoutes(ctx, guard))
        .use(userRoutes(ctx, guard))
        .use(projectRoutes(ctx, guard))
        .use(memberRoutes(ctx, guard))
        .use(activityRoutes(ctx, guard))
        .use(adminRoutes(ctx, guard, db))
        .use(commentRoutes(ctx, guard))
        .use(attachmentRoutes(ctx, guard))
        .use(notificationRoutes(ctx, guard))
        .use(eventRoutes(ctx, guard))
        .use(tokenRoutes(ctx, guard))
        .use(webhookRoutes(ctx, guard))
        .use(taskRoutes(ctx, guard)),
    )
  return app
}

type RouteInfo = { method: string; path: string; hooks: { detail?: { security?: unknown[] } } }

/** "METHOD /path" of every route that the auth macro guards (it marks them bearer-secured). */
function guardedRoutes(routes: readonly RouteInfo[]): Set<string> {
  const secured = routes.filter((route) => (route.hooks.detail?.security?.length ?? 0) > 0)
  return new Set(secured.map((route) => `${route.method} ${route.path}`))
}

export type App = Awaited<ReturnType<typeof createApp>>
