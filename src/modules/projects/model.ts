import { t } from 'elysia'
import { PageQuery, Pagination, Timestamp, Uuid } from '../../shared/model'

// Unions of literals, so a 422 lists the allowed values.
export const ProjectStatus = t.Union(
  [t.Literal('active'), t.Literal('on_hold'), t.Literal('completed'), t.Literal('archived')],
  { description: 'active (default), on_hold, completed, archived' },
)
export const Priority = t.Union(
  [t.Literal('low'), t.Literal('medium'), t.Literal('high'), t.Literal('urgent')],
  { description: 'low, medium (default), high, urgent' },
)
export const ProjectRoleName = t.Union([
  t.Literal('owner'),
  t.Literal('manager'),
  t.Literal('member'),
  t.Literal('viewer'),
])

const CalendarDate = t.String({ format: 'date', description: 'Calendar date, YYYY-MM-DD' })
const Name = t.String({
  minLength: 1,
  maxLength: 255,
  pattern: '\\S',
  description: '1 to 255 characters, not only spaces',
})
const Description = t.String({ maxLength: 10_000 })

const TaskCounts = t.Object(
  {
    todo: t.Integer(),
    in_progress: t.Integer(),
    in_review: t.Integer(),
    done: t.Integer(),
    cancelled: t.Integer(),
  },
  { description: 'The project’s tasks by status' },
)

export const ProjectModel = {
  project: t.Object(
    {
      id: Uuid,
      name: t.String(),
      description: t.Nullable(t.String()),
      owner_id: Uuid,
      status: ProjectStatus,
      priority: Priority,
      start_date: t.Nullable(CalendarDate),
      due_date: t.Nullable(CalendarDate),
      completed_at: t.Nullable(Timestamp),
      member_role: t.Nullable(ProjectRoleName, {
        description: 'The caller’s role here; null for an admin who is not a member',
      }),
      task_counts: TaskCounts,
      created_at: Timestamp,
      updated_at: Timestamp,
    },
    { title: 'Project' },
  ),
  create: t.Object(
    {
      name: Name,
      description: t.Optional(t.Nullable(Description)),
      status: t.Optional(ProjectStatus),
      priority: t.Optional(Priority),
      start_date: t.Optional(t.Nullable(CalendarDate)),
      due_date: t.Optional(t.Nullable(CalendarDate)),
    },
    { description: 'The caller becomes the owner; other fields are ignored' },
  ),
  update: t.Object(
    {
      name: t.Optional(Name),
      description: t.Optional(t.Nullable(Description)),
      status: t.Optional(ProjectStatus),
      priority: t.Optional(Priority),
      start_date: t.Optional(t.Nullable(CalendarDate)),
      due_date: t.Optional(t.Nullable(CalendarDate)),
    },
    { description: 'Partial: an absent field is left alone, null clears it' },
  ),
  listQuery: t.Object({
    status: t.Optional(ProjectStatus),
    search: t.Optional(
      t.String({ maxLength: 100, description: 'Part of the name or description' }),
    ),
    all: t.Optional(
      t.Boolean({ description: 'Admins only: every project, not just the caller’s own' }),
    ),
    ...PageQuery,
  }),
}

export const ProjectList = t.Object(
  { data: t.Array(ProjectModel.project), pagination: Pagination },
  { title: 'ProjectList' },
)

export type Project = typeof ProjectModel.project.static
export type NewProject = typeof ProjectModel.create.static
export type ProjectChanges = typeof ProjectModel.update.static
export type ProjectListQuery = typeof ProjectModel.listQuery.static
