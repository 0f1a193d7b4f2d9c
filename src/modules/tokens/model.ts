import { t } from 'elysia'
import { Timestamp, Uuid } from '../../shared/model'
import { SCOPES } from '../authz/token-scopes'

// Literals written out (a mapped array loses their types); the test checks they match SCOPES.
export const ScopeName = t.Union(
  [
    t.Literal('projects:read'),
    t.Literal('projects:write'),
    t.Literal('tasks:read'),
    t.Literal('tasks:write'),
    t.Literal('comments:write'),
    t.Literal('notifications:read'),
    t.Literal('users:read'),
    t.Literal('webhooks:manage'),
  ],
  { description: 'What the token may reach; see the Integrations section of the README' },
)

const tokenFields = {
  id: Uuid,
  name: t.String(),
  prefix: t.String({ description: 'The first 12 characters of the token, to recognise it' }),
  scopes: t.Array(ScopeName),
  project_ids: t.Nullable(t.Array(Uuid), {
    description: 'The only projects the token may reach; null for every project of its owner',
  }),
  created_at: Timestamp,
  expires_at: t.Nullable(Timestamp),
  last_used_at: t.Nullable(Timestamp, { description: 'Updated at most once a minute' }),
}

export const TokenModel = {
  token: t.Object(tokenFields, {
    title: 'ApiToken',
    description: 'An API token, without its secret',
  }),
  created: t.Object(
    {
      ...tokenFields,
      token: t.String({ description: '`tapi_…`: shown this once; only its hash is stored' }),
    },
    { title: 'NewApiToken', description: 'A new API token, with its secret' },
  ),
  create: t.Object({
    name: t.String({ minLength: 1, maxLength: 100 }),
    scopes: t.Array(ScopeName, { minItems: 1, maxItems: SCOPES.length, uniqueItems: true }),
    project_ids: t.Optional(
      t.Array(Uuid, {
        minItems: 1,
        maxItems: 100,
        uniqueItems: true,
        description: 'Limit the token to these projects (the owner must be a member of each)',
      }),
    ),
    expires_at: t.Optional(
      t.String({ format: 'date-time', description: 'RFC 3339; in the future; none: no expiry' }),
    ),
  }),
}

export type TokenCreate = typeof TokenModel.create.static
export type ApiToken = typeof TokenModel.token.static
