import { t } from 'elysia'
import { PageQuery, Timestamp, Uuid } from '../../shared/model'

export const Cursor = t.String({
  minLength: 1,
  maxLength: 200,
  description: 'pagination.next_cursor of the previous page; then `page` is ignored',
})

export const ActivityModel = {
  entry: t.Object(
    {
      id: Uuid,
      user_id: Uuid,
      username: t.String(),
      action: t.String({
        description: '`noun.verb`: project.updated, member.added, task.created …',
      }),
      entity_type: t.String({ description: 'project, member, task, comment, attachment or user' }),
      entity_id: Uuid,
      project_id: t.Nullable(Uuid),
      details: t.Nullable(
        t.Record(t.String(), t.Unknown(), {
          description: 'What changed: `{field: {old, new}}` for updates',
        }),
      ),
      created_at: Timestamp,
    },
    { title: 'ActivityEntry' },
  ),
  listQuery: t.Object({ ...PageQuery, cursor: t.Optional(Cursor) }),
}

export const CursorPagination = t.Object({
  page: t.Integer(),
  limit: t.Integer(),
  total: t.Nullable(t.Integer({ description: 'null when paging by cursor' })),
  pages: t.Nullable(t.Integer({ description: 'null when paging by cursor' })),
  next_cursor: t.Nullable(t.String({ description: 'Send as `cursor` for the next page' })),
})

export const ActivityList = t.Object(
  { data: t.Array(ActivityModel.entry), pagination: CursorPagination },
  { title: 'ActivityList' },
)

export type ActivityEntry = typeof ActivityModel.entry.static
export type ActivityListQuery = typeof ActivityModel.listQuery.static
