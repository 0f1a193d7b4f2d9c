import { t } from 'elysia'
import { PageQuery, Pagination, Uuid } from '../../shared/model'
import { Cursor } from '../activity/model'
import { UserModel } from '../users/model'

export const RoleName = t.Union(
  [t.Literal('admin'), t.Literal('manager'), t.Literal('developer'), t.Literal('viewer')],
  { description: 'A global role' },
)

const Count = t.Integer({ minimum: 0 })

export const AdminModel = {
  user: t.Object(UserModel.user.properties, { title: 'AdminUser' }),
  listQuery: t.Object({
    search: t.Optional(
      t.String({ maxLength: 100, description: 'Part of the email, username or name' }),
    ),
    is_active: t.Optional(t.Boolean()),
    role: t.Optional(RoleName),
    ...PageQuery,
  }),
  update: t.Object(
    {
      roles: t.Optional(
        t.Array(RoleName, {
          minItems: 1,
          maxItems: 4,
          uniqueItems: true,
          description: 'The complete set of global roles (replaces the current ones)',
        }),
      ),
      is_active: t.Optional(
        t.Boolean({ description: 'false ends every session of the user at once' }),
      ),
    },
    { description: 'Partial: an absent field is left alone' },
  ),
  logsQuery: t.Object({
    user_id: t.Optional(Uuid),
    project_id: t.Optional(Uuid),
    action: t.Optional(t.String({ maxLength: 100, description: 'e.g. project.deleted' })),
    entity_type: t.Optional(t.String({ maxLength: 50 })),
    ...PageQuery,
    cursor: t.Optional(Cursor),
  }),
  metrics: t.Object(
    {
      started_at: t.String({ format: 'date-time' }),
      uptime_seconds: t.Number(),
      requests: t.Object({
        total: Count,
        by_status: t.Object({
          '1xx': Count,
          '2xx': Count,
          '3xx': Count,
          '4xx': Count,
          '5xx': Count,
        }),
        latency_ms: t.Object({
          window_seconds: t.Integer(),
          samples: Count,
          p50: t.Nullable(t.Number()),
          p95: t.Nullable(t.Number()),
          p99: t.Nullable(t.Number()),
        }),
      }),
      database: t.Object({
        mode: t.Union([t.Literal('embedded'), t.Literal('postgres')]),
        pool_max: t.Integer(),
        connections: t.Object(
          { active: Count, idle: Count, idle_in_transaction: Count, total: Count },
          {
            description:
              'This server’s connections to its database, by state, as PostgreSQL sees them (every instance of the app counts)',
          },
        ),
      }),
      rows: t.Object({
        users: Count,
        projects: Count,
        tasks: Count,
        comments: Count,
        attachments: Count,
        notifications: Count,
        activity: Count,
      }),
      memory: t.Object({ rss_bytes: Count, heap_used_bytes: Count }),
    },
    { title: 'AdminMetrics' },
  ),
}

export const AdminUserList = t.Object(
  { data: t.Array(AdminModel.user), pagination: Pagination },
  { title: 'AdminUserList' },
)

export type AdminUser = typeof AdminModel.user.static
export type AdminUserQuery = typeof AdminModel.listQuery.static
export type AdminUserChanges = typeof AdminModel.update.static
export type AdminLogsQuery = typeof AdminModel.logsQuery.static
