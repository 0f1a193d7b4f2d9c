import { Elysia } from 'elysia'
import type { AppContext } from '../../context'
import type { Database } from '../../db'
import { problems } from '../../shared/docs'
import { IdParams } from '../../shared/model'
import { ActivityList } from '../activity/model'
import type { AuthGuard } from '../auth/guard'
import { AdminModel, AdminUserList } from './model'
import { listUsers, logs, metrics, updateUser } from './service'

const ADMIN_ONLY = 'Needs admin.access (403 otherwise).'

export const adminRoutes = (ctx: AppContext, guard: AuthGuard, db: Database) =>
  new Elysia({ name: 'admin-routes', prefix: '/admin', detail: { tags: ['Admin'] } })
    .use(guard)
    .get('/users', ({ principal, query }) => listUsers(ctx, principal, query), {
      auth: true,
      query: AdminModel.listQuery,
      response: { 200: AdminUserList, ...problems(401, 403, 422) },
      detail: {
        summary: 'Every user, with email, roles and is_active, oldest first',
        description: `\`search\` matches part of the email, username or name; \`is_active\` and \`role\` narrow the list. ${ADMIN_ONLY}`,
      },
    })
    .patch(
      '/users/:id',
      ({ principal, params, body }) => updateUser(ctx, principal, params.id, body),
      {
        auth: true,
        params: IdParams,
        body: AdminModel.update,
        response: { 200: AdminModel.user, ...problems(400, 401, 403, 404, 409, 415, 422) },
        detail: {
          summary: 'Set a user’s global roles or deactivate them',
          description: `\`roles\` replaces the user's roles; \`is_active: false\` ends every session of the user at once. An admin cannot remove their own admin role or deactivate themselves (422); the last active admin cannot be demoted or deactivated (409). ${ADMIN_ONLY}`,
        },
      },
    )
    .get('/metrics', ({ principal }) => metrics(ctx, principal, db), {
      auth: true,
      response: { 200: AdminModel.metrics, ...problems(401, 403) },
      detail: {
        operationId: 'getAdminMetrics',
        summary:
          'Server summary: uptime, requests by status class, latency percentiles, connections, row counts',
        description: `Request counts are this process's since start; latency percentiles cover its last 10,000 requests of the last 5 minutes. ${ADMIN_ONLY}`,
      },
    })
    .get('/logs', ({ principal, query }) => logs(ctx, principal, query), {
      auth: true,
      query: AdminModel.logsQuery,
      response: { 200: ActivityList, ...problems(401, 403, 422) },
      detail: {
        operationId: 'listActivityLogs',
        summary: 'Recent activity across the system, newest first',
        description: `Filters: \`user_id\` (the actor), \`project_id\`, \`action\`, \`entity_type\`. Paged like every activity feed (\`page\`/\`limit\` or \`cursor\`). ${ADMIN_ONLY}`,
      },
    })
