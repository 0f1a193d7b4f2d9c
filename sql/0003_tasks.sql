-- Tasks: indexes for the list's common filters in the default order, keyset-friendly (id last).
create index tasks_project_id_status_created_at_idx on tasks (project_id, status, created_at desc, id desc);
create index tasks_assignee_id_created_at_idx on tasks (assignee_id, created_at desc, id desc);
