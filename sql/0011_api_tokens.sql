-- 0011_api_tokens: long-lived, scoped bearer tokens for programs (issue 11).

-- Only the SHA-256 of a token is kept; `prefix` (its first 12 characters) lets people recognise it.
-- `project_ids` null means every project the owner can reach.
create table api_tokens (
  id uuid primary key default uuid_generate_v7(),
  user_id uuid not null references users (id) on delete cascade,
  name varchar(100) not null,
  prefix varchar(12) not null,
  token_hash char(64) not null unique,
  scopes text[] not null,
  project_ids uuid[],
  created_at timestamptz not null default now(),
  expires_at timestamptz,
  last_used_at timestamptz,
  revoked_at timestamptz
);

-- GET /tokens: the owner's live tokens, newest first.
create index api_tokens_user_id_idx on api_tokens (user_id, created_at desc);
