-- 0013_webhooks: signed webhooks with an outbox and a delivery log (issue 11).

create table webhooks (
  id uuid primary key default uuid_generate_v7(),
  project_id uuid not null references projects (id) on delete cascade,
  url varchar(2048) not null,
  events text[] not null,
  description varchar(500),
  active boolean not null default true,
  -- `whsec_` + base64 of 32 random bytes; the HMAC key is the decoded bytes.
  secret text not null,
  failures_in_a_row integer not null default 0,
  created_by uuid references users (id) on delete set null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

create index webhooks_project_id_idx on webhooks (project_id);

-- The outbox and the delivery log in one: a row is written in the transaction of the change (or
-- by ping / redeliver), claimed by one worker at a time (`for update skip locked` and a lease in
-- `locked_until`), and keeps its own copy of the payload.
create table webhook_deliveries (
  id uuid primary key default uuid_generate_v7(),
  webhook_id uuid not null references webhooks (id) on delete cascade,
  event_id bigint,
  -- The `webhook-id` header: stable across the retries of one delivery.
  message_id text not null,
  event varchar(50) not null,
  payload text not null,
  status varchar(10) not null default 'pending'
    check (status in ('pending', 'retrying', 'succeeded', 'failed')),
  attempts integer not null default 0,
  response_status integer,
  duration_ms integer,
  error varchar(300),
  response_excerpt varchar(500),
  next_attempt_at timestamptz not null default now(),
  locked_until timestamptz,
  created_at timestamptz not null default now(),
  delivered_at timestamptz
);

-- The workers' queue: what is due.
create index webhook_deliveries_due_idx on webhook_deliveries (next_attempt_at)
  where status in ('pending', 'retrying');
-- The delivery log of one webhook, newest first.
create index webhook_deliveries_webhook_idx on webhook_deliveries (webhook_id, created_at desc);

-- One attempt per row: status, code, duration and a short error, for the log.
create table webhook_attempts (
  id bigint generated always as identity primary key,
  delivery_id uuid not null references webhook_deliveries (id) on delete cascade,
  response_status integer,
  duration_ms integer not null,
  error varchar(300),
  at timestamptz not null default now()
);

create index webhook_attempts_delivery_idx on webhook_attempts (delivery_id, id);
