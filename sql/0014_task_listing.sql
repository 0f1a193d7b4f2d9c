-- 0014_task_listing: GET /tasks over large projects (issue 9 part 11).
-- The list reads each (project, status, priority) partition on its own (list-queries.ts): the
-- newest-first rows come from tasks_project_id_status_created_at_idx (0003); a search within a
-- partition needs its equalities and the text in one index, which GIN can hold only through
-- btree_gin (a trusted contrib extension on PostgreSQL 13+, bundled with PGlite).
create extension if not exists btree_gin;

create index tasks_project_status_priority_search_idx
  on tasks using gin (project_id, status, priority, search);
