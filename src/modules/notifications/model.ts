import { t } from 'elysia'
import { CursorPagination, CursorQuery } from '../../shared/keyset'
import { PageQuery, Timestamp, Uuid } from '../../shared/model'

export const NotificationModel = {
  notification: t.Object(
    {
      id: Uuid,
      title: t.String(),
      message: t.String(),
      type: t.String({
        description:
          'task_assigned, task_completed, comment_added, mentioned, project_member_added, webhook_disabled',
      }),
      entity_type: t.Nullable(t.String({ description: 'task, project, comment or webhook' })),
      entity_id: t.Nullable(Uuid),
      is_read: t.Boolean(),
      created_at: Timestamp,
    },
    { title: 'Notification' },
  ),
  listQuery: t.Object({
    unread: t.Optional(t.Boolean({ description: 'true: only unread; false or absent: all' })),
    ...PageQuery,
    cursor: CursorQuery,
  }),
  unreadCount: t.Object({ count: t.Integer({ minimum: 0 }) }, { title: 'UnreadCount' }),
}

export const NotificationList = t.Object(
  {
    data: t.Array(NotificationModel.notification),
    unread_count: t.Integer({ minimum: 0, description: 'Every unread notification of the caller' }),
    pagination: CursorPagination,
  },
  { title: 'NotificationList' },
)

export type Notification = typeof NotificationModel.notification.static
export type NotificationListQuery = typeof NotificationModel.listQuery.static
