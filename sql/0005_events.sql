-- 0005_events: the project event feed behind WebSocket replay, GET /events and cross-instance fan-out.

-- Ids grow in commit order within a project: writers take a per-project advisory lock just
-- before inserting (src/realtime/events.ts). No foreign key: events outlive their project until pruned.
create table events (
  id bigint generated always as identity primary key,
  project_id uuid not null,
  event varchar(50) not null,
  data jsonb not null,
  at timestamptz not null default clock_timestamp()
);

-- Replay and GET /events read one project's events after an id.
create index events_project_id_id_idx on events (project_id, id);
-- The pruner finds events past the retention period.
create index events_at_idx on events (at);

-- The highest event id pruned per project: a `since` below it has lost events (replay_gap).
create table event_horizons (
  project_id uuid primary key,
  pruned_through bigint not null
);
