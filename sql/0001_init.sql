-- 0001_init: the original design's schema, corrected: v7 ids without extensions, case-insensitive unique emails and usernames, refresh-token rotation, task versions and full-text search.

-- Time-ordered UUID (RFC 9562 v7) from core functions only, so PostgreSQL 13+ and PGlite share it.
create function uuid_generate_v7() returns uuid
language sql
volatile
as $$
  select encode(
    set_bit(
      set_bit(
        overlay(
          uuid_send(gen_random_uuid())
          placing substring(int8send(floor(extract(epoch from clock_timestamp()) * 1000)::bigint) from 3)
          from 1 for 6
        ),
        52, 1
      ),
      53, 1
    ),
    'hex'
  )::uuid
$$;

create table users (
  id uuid primary key default uuid_generate_v7(),
  email varchar(255) not null,
  username varchar(50) not null check (username ~ '^[A-Za-z0-9_.-]{3,50}$'),
  password_hash text not null,
  first_name varchar(100),
  last_name varchar(100),
  avatar_url varchar(2048),
  is_active boolean not null default true,
  email_verified boolean not null default false,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

create unique index users_email_lower_key on users (lower(email));
create unique index users_username_lower_key on users (lower(username));
create index users_created_at_idx on users (created_at);

-- One row per login; token_hash is the SHA-256 of the refresh token currently valid for it.
create table user_sessions (
  id uuid primary key default uuid_generate_v7(),
  user_id uuid not null references users (id) on delete cascade,
  token_hash text not null unique,
  expires_at timestamptz not null,
  created_at timestamptz not null default now(),
  last_used_at timestamptz not null default now(),
  revoked_at timestamptz,
  user_agent varchar(512),
  ip_address inet
);

create index user_sessions_user_id_idx on user_sessions (user_id) where revoked_at is null;
create index user_sessions_expires_at_idx on user_sessions (expires_at);

-- Refresh tokens already rotated out; presenting one again revokes its session (RFC 9700 4.14.2).
create table user_session_retired_tokens (
  token_hash text primary key,
  session_id uuid not null references user_sessions (id) on delete cascade,
  retired_at timestamptz not null default now()
);

create index user_session_retired_tokens_session_id_idx on user_session_retired_tokens (session_id);

create table roles (
  id uuid primary key default uuid_generate_v7(),
  name varchar(50) not null unique,
  description text,
  created_at timestamptz not null default now()
);

create table permissions (
  id uuid primary key default uuid_generate_v7(),
  name varchar(100) not null unique,
  description text,
  resource varchar(100) not null,
  action varchar(50) not null,
  created_at timestamptz not null default now()
);

create table role_permissions (
  role_id uuid not null references roles (id) on delete cascade,
  permission_id uuid not null references permissions (id) on delete cascade,
  primary key (role_id, permission_id)
);

create table user_roles (
  user_id uuid not null references users (id) on delete cascade,
  role_id uuid not null references roles (id) on delete cascade,
  granted_at timestamptz not null default now(),
  granted_by uuid references users (id) on delete set null,
  primary key (user_id, role_id)
);

create index user_roles_role_id_idx on user_roles (role_id);

create table projects (
  id uuid primary key default uuid_generate_v7(),
  name varchar(255) not null,
  description text,
  owner_id uuid not null references users (id) on delete cascade,
  status varchar(20) not null default 'active'
    check (status in ('active', 'on_hold', 'completed', 'archived')),
  priority varchar(20) not null default 'medium'
    check (priority in ('low', 'medium', 'high', 'urgent')),
  start_date date,
  due_date date,
  completed_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

create index projects_owner_id_idx on projects (owner_id);
create index projects_status_idx on projects (status);
create index projects_created_at_idx on projects (created_at);

create table project_members (
  project_id uuid not null references projects (id) on delete cascade,
  user_id uuid not null references users (id) on delete cascade,
  role varchar(20) not null default 'member'
    check (role in ('owner', 'manager', 'member', 'viewer')),
  joined_at timestamptz not null default now(),
  primary key (project_id, user_id)
);

create index project_members_user_id_idx on project_members (user_id);

create table tasks (
  id uuid primary key default uuid_generate_v7(),
  title varchar(255) not null check (length(title) >= 1),
  description text,
  project_id uuid not null references projects (id) on delete cascade,
  assignee_id uuid references users (id) on delete set null,
  created_by uuid not null references users (id),
  status varchar(20) not null default 'todo'
    check (status in ('todo', 'in_progress', 'in_review', 'done', 'cancelled')),
  priority varchar(20) not null default 'medium'
    check (priority in ('low', 'medium', 'high', 'urgent')),
  due_date timestamptz,
  completed_at timestamptz,
  estimated_hours integer check (estimated_hours >= 0),
  actual_hours integer check (actual_hours >= 0),
  tags text[] not null default '{}' check (cardinality(tags) <= 20),
  -- Bumped on every update; the ETag of a task is derived from it.
  version integer not null default 1,
  search tsvector generated always as (
    setweight(to_tsvector('english', coalesce(title, '')), 'A')
    || setweight(to_tsvector('english', coalesce(description, '')), 'B')
  ) stored,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

create index tasks_project_id_created_at_idx on tasks (project_id, created_at desc, id desc);
create index tasks_assignee_id_idx on tasks (assignee_id);
create index tasks_created_by_idx on tasks (created_by);
create index tasks_status_idx on tasks (status);
create index tasks_due_date_idx on tasks (due_date);
create index tasks_tags_idx on tasks using gin (tags);
create index tasks_search_idx on tasks using gin (search);

create table task_comments (
  id uuid primary key default uuid_generate_v7(),
  task_id uuid not null references tasks (id) on delete cascade,
  user_id uuid not null references users (id) on delete cascade,
  content text not null check (length(content) between 1 and 10000),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

create index task_comments_task_id_idx on task_comments (task_id, created_at);
create index task_comments_user_id_idx on task_comments (user_id);

create table task_attachments (
  id uuid primary key default uuid_generate_v7(),
  task_id uuid not null references tasks (id) on delete cascade,
  filename varchar(255) not null,
  file_path text not null,
  file_size bigint not null check (file_size >= 0),
  mime_type varchar(255),
  uploaded_by uuid not null references users (id),
  uploaded_at timestamptz not null default now()
);

create index task_attachments_task_id_idx on task_attachments (task_id);

create table notifications (
  id uuid primary key default uuid_generate_v7(),
  user_id uuid not null references users (id) on delete cascade,
  title varchar(255) not null,
  message text not null,
  type varchar(50) not null,
  entity_type varchar(50),
  entity_id uuid,
  is_read boolean not null default false,
  created_at timestamptz not null default now()
);

create index notifications_user_id_created_at_idx on notifications (user_id, created_at desc);
create index notifications_user_id_unread_idx on notifications (user_id) where not is_read;

create table activity_log (
  id uuid primary key default uuid_generate_v7(),
  user_id uuid not null references users (id) on delete cascade,
  -- Set for entries about a project or anything inside it, so a project's feed is one index scan.
  project_id uuid references projects (id) on delete cascade,
  action varchar(100) not null,
  entity_type varchar(50) not null,
  entity_id uuid not null,
  details jsonb,
  created_at timestamptz not null default now()
);

create index activity_log_user_id_idx on activity_log (user_id);
create index activity_log_project_id_created_at_idx on activity_log (project_id, created_at desc);
create index activity_log_entity_idx on activity_log (entity_type, entity_id);
create index activity_log_created_at_idx on activity_log (created_at);

insert into roles (name, description)
values
  ('admin', 'System administrator with full access'),
  ('manager', 'Project manager with enhanced permissions'),
  ('developer', 'Developer with standard permissions'),
  ('viewer', 'Read-only access to assigned projects');

insert into permissions (name, description, resource, action)
values
  ('users.read', 'Read user information', 'users', 'read'),
  ('users.write', 'Create and update users', 'users', 'write'),
  ('users.delete', 'Delete users', 'users', 'delete'),
  ('projects.read', 'Read project information', 'projects', 'read'),
  ('projects.write', 'Create and update projects', 'projects', 'write'),
  ('projects.delete', 'Delete projects', 'projects', 'delete'),
  ('tasks.read', 'Read task information', 'tasks', 'read'),
  ('tasks.write', 'Create and update tasks', 'tasks', 'write'),
  ('tasks.delete', 'Delete tasks', 'tasks', 'delete'),
  ('admin.access', 'Access admin features', 'admin', 'access');

insert into role_permissions (role_id, permission_id)
select r.id, p.id
from roles r
cross join permissions p
where r.name = 'admin';

insert into role_permissions (role_id, permission_id)
select r.id, p.id
from roles r
cross join permissions p
where r.name = 'manager'
  and (p.resource in ('projects', 'tasks') or p.name = 'users.read');

-- Corrected from the design: developers create projects, so they need projects.write.
insert into role_permissions (role_id, permission_id)
select r.id, p.id
from roles r
cross join permissions p
where r.name = 'developer'
  and p.name in ('projects.read', 'projects.write', 'tasks.read', 'tasks.write', 'users.read');

insert into role_permissions (role_id, permission_id)
select r.id, p.id
from roles r
cross join permissions p
where r.name = 'viewer'
  and p.action = 'read';
