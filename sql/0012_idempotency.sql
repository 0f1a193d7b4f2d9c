-- 0012_idempotency: Idempotency-Key on POST (issue 11). A row claims (caller, key): inserted
-- with status null while the first request runs, so a second one (on any instance) gets 409;
-- then it holds the 2xx answer for replays until `expires_at` (24 hours), or is deleted if the
-- answer was not a 2xx, so the request can be fixed and sent again with the same key.
create table idempotency_keys (
  user_id uuid not null references users (id) on delete cascade,
  key varchar(255) not null,
  fingerprint char(64) not null,
  status smallint,
  body text,
  headers jsonb not null default '{}',
  created_at timestamptz not null default now(),
  expires_at timestamptz not null,
  primary key (user_id, key)
);

-- The pruner deletes expired keys.
create index idempotency_keys_expires_at_idx on idempotency_keys (expires_at);
