import { t } from 'elysia'
import { Email, Password, PersonName, Timestamp, Username, Uuid } from '../../shared/model'
import { UserModel } from '../users/model'

export const AuthModel = {
  register: t.Object({
    email: Email,
    username: Username,
    password: Password,
    first_name: t.Optional(PersonName),
    last_name: t.Optional(PersonName),
  }),
  login: t.Object({
    email: t.String({ minLength: 1, maxLength: 255 }),
    password: t.String({ minLength: 1, maxLength: 1024 }),
  }),
  refresh: t.Object({ refresh_token: t.String({ minLength: 1, maxLength: 512 }) }),
  tokens: t.Object(
    {
      access_token: t.String({ description: 'JWT (HS256) for `Authorization: Bearer …`' }),
      refresh_token: t.String({
        description: 'Opaque; single use: each refresh returns a new one',
      }),
      token_type: t.Literal('Bearer'),
      expires_in: t.Integer({ description: 'Seconds until the access token expires' }),
      user: UserModel.user,
    },
    { title: 'AuthTokens', description: 'A signed-in session: its tokens and its user' },
  ),
  session: t.Object(
    {
      id: Uuid,
      created_at: Timestamp,
      last_used_at: Timestamp,
      expires_at: Timestamp,
      user_agent: t.Nullable(t.String()),
      ip_address: t.Nullable(t.String()),
      current: t.Boolean({
        description: 'True for the session of the token making this request',
      }),
    },
    { title: 'Session', description: 'A signed-in device or client of the caller' },
  ),
}

export type Register = typeof AuthModel.register.static
export type Login = typeof AuthModel.login.static
export type AuthTokens = typeof AuthModel.tokens.static
