import { t } from 'elysia'
import { CursorPagination, CursorQuery } from '../../shared/keyset'
import { PageQuery, Timestamp, Username, Uuid } from '../../shared/model'

const Content = t.String({
  minLength: 1,
  maxLength: 10_000,
  pattern: '\\S',
  description:
    '1 to 10000 characters, not only whitespace. `@username` mentions of project members notify them.',
})

export const CommentModel = {
  comment: t.Object(
    {
      id: Uuid,
      task_id: Uuid,
      user_id: Uuid,
      username: Username,
      content: t.String(),
      created_at: Timestamp,
      updated_at: Timestamp,
    },
    { title: 'Comment' },
  ),
  write: t.Object({ content: Content }),
  params: t.Object({ id: Uuid, comment_id: Uuid }),
  listQuery: t.Object({ ...PageQuery, cursor: CursorQuery }),
}

export const CommentList = t.Object(
  { data: t.Array(CommentModel.comment), pagination: CursorPagination },
  { title: 'CommentList' },
)

export type Comment = typeof CommentModel.comment.static
export type CommentListQuery = typeof CommentModel.listQuery.static
