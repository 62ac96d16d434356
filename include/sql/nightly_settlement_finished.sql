-- Hours between the end of the run's data interval and the last successful
-- nightly settlement finished before it (NULL when there is none).
SELECT (julianday(:data_interval_end) - julianday(MAX(finished_at))) * 24.0
FROM batch_runs
WHERE job = 'nightly_settlement'
  AND status = 'success'
  AND finished_at <= :data_interval_end
