-- 0002_projects: indexes for the activity feeds (keyset per project, per task, system-wide) and task counts.

-- Newest first with the id as tie-breaker, matching the feeds' `order by created_at desc, id desc`.
create index activity_log_project_created_id_idx on activity_log (project_id, created_at desc, id desc);
drop index activity_log_project_id_created_at_idx;

create index activity_log_created_id_idx on activity_log (created_at desc, id desc);
drop index activity_log_created_at_idx;

-- Entries about a task's comments and attachments name the task in details.task_id.
create index activity_log_details_task_id_idx on activity_log ((details ->> 'task_id'))
  where details ->> 'task_id' is not null;

-- A project's task counts by status (its body's task_counts) from the index alone.
create index tasks_project_id_status_idx on tasks (project_id, status);
