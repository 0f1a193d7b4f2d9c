import { Type } from '@sinclair/typebox'
import { t } from 'elysia'
import { PageQuery, Timestamp, Uuid } from '../../shared/model'

export const TASK_STATUSES = ['todo', 'in_progress', 'in_review', 'done', 'cancelled'] as const
export const TASK_PRIORITIES = ['low', 'medium', 'high', 'urgent'] as const
export const TASK_SORTS = ['created_at', 'updated_at', 'due_date', 'priority', 'title'] as const

// Unions of literals, not t.UnionEnum: Elysia fills an absent optional UnionEnum with its first
// value, which would turn "absent" into a change.
const Status = t.Union(
  [
    t.Literal('todo'),
    t.Literal('in_progress'),
    t.Literal('in_review'),
    t.Literal('done'),
    t.Literal('cancelled'),
  ],
  { description: 'Default `todo`' },
)
const Priority = t.Union(
  [t.Literal('low'), t.Literal('medium'), t.Literal('high'), t.Literal('urgent')],
  { description: 'Default `medium`' },
)
const Sort = t.Union(
  [
    t.Literal('created_at'),
    t.Literal('updated_at'),
    t.Literal('due_date'),
    t.Literal('priority'),
    t.Literal('title'),
    t.Literal('-created_at'),
    t.Literal('-updated_at'),
    t.Literal('-due_date'),
    t.Literal('-priority'),
    t.Literal('-title'),
  ],
  {
    description:
      '`-` prefix for descending; default `-created_at`, or best match first with `search`',
  },
)
const Title = t.String({ minLength: 1, maxLength: 255 })
const Description = t.String({ maxLength: 100_000 })
const Hours = t.Integer({ minimum: 0, maximum: 1_000_000, description: 'Whole hours, 0 or more' })
const Tags = t.Array(t.String({ minLength: 1, maxLength: 50 }), {
  maxItems: 20,
  description: 'At most 20 tags of 1 to 50 characters',
})
// Answers use TypeBox's plain integer: Elysia's t.Integer accepts a numeric string too (for query
// strings) and is a Transform, so every answer holding one would go through TypeBox's slow encode.
const Int = Type.Integer

const DueDate = t.String({ format: 'date-time', description: 'RFC 3339 timestamp' })

export const TaskModel = {
  task: t.Object(
    {
      id: Uuid,
      title: t.String(),
      description: t.Nullable(t.String()),
      project_id: Uuid,
      project_name: t.String(),
      assignee_id: t.Nullable(Uuid),
      assignee_name: t.Nullable(t.String({ description: 'The assignee’s username' })),
      created_by: Uuid,
      created_by_name: t.String({ description: 'The creator’s username' }),
      status: Status,
      priority: Priority,
      due_date: t.Nullable(Timestamp),
      completed_at: t.Nullable(
        t.String({ format: 'date-time', description: 'Set when the status becomes `done`' }),
      ),
      estimated_hours: t.Nullable(Int()),
      actual_hours: t.Nullable(Int()),
      tags: t.Array(t.String()),
      version: Int({ description: 'Bumped on every change; the ETag is `"<version>"`' }),
      created_at: Timestamp,
      updated_at: Timestamp,
    },
    { title: 'Task' },
  ),
  create: t.Object(
    {
      title: Title,
      project_id: Uuid,
      description: t.Optional(t.Nullable(Description)),
      assignee_id: t.Optional(t.Nullable(Uuid)),
      status: t.Optional(Status),
      priority: t.Optional(Priority),
      due_date: t.Optional(t.Nullable(DueDate)),
      estimated_hours: t.Optional(t.Nullable(Hours)),
      tags: t.Optional(Tags),
    },
    { description: 'Other fields (`id`, `created_by`, `version`, `completed_at` ...) are ignored' },
  ),
  update: t.Object(
    {
      title: t.Optional(Title),
      description: t.Optional(t.Nullable(Description)),
      assignee_id: t.Optional(t.Nullable(Uuid)),
      status: t.Optional(Status),
      priority: t.Optional(Priority),
      due_date: t.Optional(t.Nullable(DueDate)),
      estimated_hours: t.Optional(t.Nullable(Hours)),
      actual_hours: t.Optional(t.Nullable(Hours)),
      tags: t.Optional(t.Nullable(Tags)),
    },
    {
      description:
        'Partial: an absent field is left alone, null clears it (null `tags` empties them). `project_id`, `version` and the other server fields are ignored',
    },
  ),
  assign: t.Object({
    assignee_id: t.Nullable(Uuid, { description: 'A member of the task’s project, or null' }),
  }),
  status: t.Object({ status: Status }),
  listQuery: t.Object({
    all: t.Optional(
      t.Boolean({ description: 'Admins only: the tasks of every project, not just their own' }),
    ),
    project_id: t.Optional(Uuid),
    assignee_id: t.Optional(
      t.String({ pattern: '^(me|[0-9a-fA-F-]{36})$', description: 'A user id, or `me`' }),
    ),
    status: t.Optional(t.String({ maxLength: 200, description: 'One status or a comma list' })),
    priority: t.Optional(t.String({ maxLength: 200, description: 'One priority or a comma list' })),
    // No bounds here: Elysia splits a comma list itself and, when the pieces fail a bound, throws
    // an error the app's error handler cannot read (an HTML 500). list-service checks them.
    tags: t.Optional(
      t.Array(t.String(), {
        description:
          'Comma-separated or repeated, at most 20 tags of 1 to 50 characters; a task matches when it has all of them',
      }),
    ),
    // Checked by list-service: Elysia's `date-time` format takes a bare date only in 1900 to 2099.
    due_date_from: t.Optional(
      t.String({
        maxLength: 40,
        description: 'Inclusive: a date (YYYY-MM-DD) or an RFC 3339 timestamp',
      }),
    ),
    due_date_to: t.Optional(
      t.String({
        maxLength: 40,
        description: 'Inclusive: a date (YYYY-MM-DD, the whole UTC day) or an RFC 3339 timestamp',
      }),
    ),
    search: t.Optional(
      t.String({
        maxLength: 200,
        description: 'Full text over title (weighted higher) and description; web-search syntax',
      }),
    ),
    sort: t.Optional(Sort),
    cursor: t.Optional(
      t.String({
        maxLength: 1000,
        description: '`pagination.next_cursor` of the previous page; `page` is then ignored',
      }),
    ),
    ...PageQuery,
  }),
}

export const TaskPagination = t.Object({
  page: Int(),
  limit: Int(),
  total: t.Nullable(Int({ description: 'Null when paging by cursor' })),
  pages: t.Nullable(Int({ description: 'Null when paging by cursor' })),
  next_cursor: t.Nullable(t.String({ description: 'Null on the last page' })),
})

export const TaskList = t.Object(
  { data: t.Array(TaskModel.task), pagination: TaskPagination },
  { title: 'TaskList' },
)

export const IfMatchHeaders = t.Object({
  'if-match': t.Optional(
    t.String({
      maxLength: 200,
      description: 'The ETag of the version being changed; a stale one answers 412',
    }),
  ),
})

export type Task = typeof TaskModel.task.static
export type TaskStatus = (typeof TASK_STATUSES)[number]
export type TaskPriority = (typeof TASK_PRIORITIES)[number]
export type TaskSort = (typeof TASK_SORTS)[number]
export type CreateTask = typeof TaskModel.create.static
export type UpdateTask = typeof TaskModel.update.static
export type TaskListQuery = typeof TaskModel.listQuery.static
