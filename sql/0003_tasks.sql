-- Tasks: indexes for the list's common filters in its default order (keyset-friendly, id last).
-- `priority` rides along so a status+priority page or count never needs the table's rows.
create index tasks_project_id_status_created_at_idx on tasks (project_id, status, created_at desc, id desc) include (priority);
create index tasks_assignee_id_created_at_idx on tasks (assignee_id, created_at desc, id desc);
