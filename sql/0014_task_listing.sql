-- 0014_task_listing: GET /tasks over large projects (issue 9 part 11).
-- A list with a status or priority filter reads each (project, status, priority) partition on
-- its own (list-queries.ts). This index is the head of every partition in the default order
-- (newest first, so the scan stops after a page), and carries the search vector, so a search
-- within a partition is checked and ranked on the index entries alone: a term in a fifth of all
-- tasks no longer costs a table read per match. It replaces the (project_id, status, created_at)
-- index of 0003, whose order it keeps for each priority.
create index tasks_project_status_priority_created_idx
  on tasks (project_id, status, priority, created_at desc, id desc) include (search);

drop index tasks_project_id_status_created_at_idx;

-- A count per partition (the list's `total`) reads only these narrow entries; the project's
-- task counts by status (0002's index) still read its prefix.
create index tasks_project_id_status_priority_idx on tasks (project_id, status, priority);

drop index tasks_project_id_status_idx;
