import { t } from 'elysia'
import { PageQuery, Pagination, Timestamp, Username, Uuid } from '../../../shared/model'
import { ProjectRoleName } from '../model'

export const MemberModel = {
  member: t.Object(
    {
      user_id: Uuid,
      username: Username,
      first_name: t.Nullable(t.String()),
      last_name: t.Nullable(t.String()),
      role: ProjectRoleName,
      joined_at: Timestamp,
    },
    { title: 'ProjectMember' },
  ),
  add: t.Object({
    user_id: Uuid,
    role: t.Optional(ProjectRoleName),
  }),
  change: t.Object({ role: ProjectRoleName }),
  params: t.Object({ id: Uuid, user_id: Uuid }),
  listQuery: t.Object({ ...PageQuery }),
}

export const MemberList = t.Object(
  { data: t.Array(MemberModel.member), pagination: Pagination },
  { title: 'ProjectMemberList' },
)

export type Member = typeof MemberModel.member.static
