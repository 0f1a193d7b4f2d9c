import { t } from 'elysia'
import {
  Email,
  PageQuery,
  Pagination,
  Password,
  PersonName,
  Timestamp,
  Username,
  Uuid,
} from '../../shared/model'

const AvatarUrl = t.String({
  format: 'uri',
  maxLength: 2048,
  pattern: '^https?://',
  description: 'http(s) URL of the picture',
})

export const UserModel = {
  user: t.Object(
    {
      id: Uuid,
      email: Email,
      username: Username,
      first_name: t.Nullable(t.String()),
      last_name: t.Nullable(t.String()),
      avatar_url: t.Nullable(t.String()),
      is_active: t.Boolean(),
      email_verified: t.Boolean(),
      roles: t.Array(t.String(), {
        description: 'Global roles: admin, manager, developer, viewer',
      }),
      created_at: Timestamp,
      updated_at: Timestamp,
    },
    { title: 'User', description: 'The caller’s own account' },
  ),
  profile: t.Object(
    {
      id: Uuid,
      username: Username,
      first_name: t.Nullable(t.String()),
      last_name: t.Nullable(t.String()),
      avatar_url: t.Nullable(t.String()),
    },
    { title: 'PublicProfile', description: 'Public profile of any user' },
  ),
  updateMe: t.Object(
    {
      username: t.Optional(Username),
      first_name: t.Optional(t.Nullable(PersonName)),
      last_name: t.Optional(t.Nullable(PersonName)),
      avatar_url: t.Optional(t.Nullable(AvatarUrl)),
    },
    { description: 'Partial: an absent field is left alone, null clears it' },
  ),
  changePassword: t.Object({
    current_password: t.String({ maxLength: 1024 }),
    new_password: Password,
  }),
  listQuery: t.Object({
    search: t.Optional(t.String({ maxLength: 100, description: 'Part of a username or name' })),
    ...PageQuery,
  }),
}

export const UserList = t.Object(
  { data: t.Array(UserModel.profile), pagination: Pagination },
  { title: 'PublicProfileList', description: 'A page of public profiles' },
)

export type User = typeof UserModel.user.static
export type PublicProfile = typeof UserModel.profile.static
export type UpdateMe = typeof UserModel.updateMe.static
export type UserListQuery = typeof UserModel.listQuery.static
