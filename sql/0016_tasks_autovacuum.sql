-- 0016_tasks_autovacuum: keep the task listing's index-only scans index-only.
-- GET /tasks reads (project_id, status, priority, ...) index entries alone (0014) only where the
-- table's pages are marked all-visible; every insert or update clears that mark on its page until
-- the next vacuum, and the scan then reads those rows from the table too. Measured on the
-- benchmark's dataset after about 230,000 writes and no vacuum: a partition count took 5.4 ms
-- with 839 table reads, 0.22 ms after a vacuum. PostgreSQL's default vacuums a table after a
-- fifth of it changed (200,000 writes at 1,000,000 tasks); this table is vacuumed and analyzed
-- after 2% instead (vacuum then reads only the pages changed since).
alter table tasks set (
  autovacuum_vacuum_scale_factor = 0.02,
  autovacuum_vacuum_insert_scale_factor = 0.02,
  autovacuum_analyze_scale_factor = 0.02
);
