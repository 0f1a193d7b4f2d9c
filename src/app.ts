import { Elysia } from 'elysia'
import pkg from '../package.json'
import type { Config } from './config'
import type { AppContext } from './context'
import { cors } from './cors'
import type { Database } from './db'
import { httpBasics } from './http'
import type { Logger } from './logger'
import { activityRoutes } from './modules/activity/routes'
import { adminRoutes } from './modules/admin/routes'
import { authGuard } from './modules/auth/guard'
import { createPasswordHasher } from './modules/auth/passwords'
import { authRoutes } from './modules/auth/routes'
import { SessionCache } from './modules/auth/session-cache'
import { createAccessTokens } from './modules/auth/tokens'
import { healthRoutes } from './modules/health/routes'
import { memberRoutes } from './modules/projects/members/routes'
import { projectRoutes } from './modules/projects/routes'
import { userRoutes } from './modules/users/routes'
import { apiDocs } from './openapi'

export type AppDeps = { config: Config; db: Database; log: Logger; jwtSecret: string }

const DESCRIPTION = `Task-management REST API.

* JSON in and out, \`snake_case\` fields, UUID ids, RFC 3339 UTC timestamps.
* Errors are \`application/problem+json\` (RFC 9457) with a \`request_id\`; 422 bodies list each
  invalid field in \`errors\` and never repeat the submitted value.
* Authenticate with \`Authorization: Bearer <access_token>\` from /api/v1/auth/login.
  Access tokens live ACCESS_TOKEN_TTL seconds (default 900); refresh tokens are single use.
* Every response carries \`X-Request-Id\` (a valid incoming one is echoed).`

/** Builds the Elysia app; the caller owns the database and the listening socket. */
export async function createApp({ config, db, log, jwtSecret }: AppDeps) {
  const ctx: AppContext = {
    config,
    sql: db.sql,
    log,
    tokens: createAccessTokens(jwtSecret, config.accessTokenTtl),
    passwords: await createPasswordHasher(config.passwordHashConcurrency),
    sessions: new SessionCache(config.sessionCacheTtlMs),
  }
  const guard = authGuard(ctx)
  return new Elysia()
    .use(httpBasics(config, log))
    .use(cors(config.corsOrigins))
    .use(
      apiDocs({
        info: { title: 'taskapi', version: pkg.version, description: DESCRIPTION },
        tags: [
          { name: 'Auth', description: 'Accounts, sign-in and sessions' },
          { name: 'Users', description: 'Own account and public profiles' },
          { name: 'Operations', description: 'Health and documentation' },
          { name: 'Projects', description: 'Projects and their members' },
          { name: 'Activity', description: 'What changed in a project or task, and by whom' },
          { name: 'Admin', description: 'Users, metrics and logs for admins' },
        ],
        components: {
          securitySchemes: {
            bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' },
          },
        },
      }),
    )
    .use(healthRoutes(db))
    .group('/api/v1', (api) =>
      api
        .use(authRoutes(ctx, guard))
        .use(userRoutes(ctx, guard))
        .use(projectRoutes(ctx, guard))
        .use(memberRoutes(ctx, guard))
        .use(activityRoutes(ctx, guard))
        .use(adminRoutes(ctx, guard, db)),
    )
}

export type App = Awaited<ReturnType<typeof createApp>>
