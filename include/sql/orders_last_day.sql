-- Orders created in the 24 hours before the end of the run's data interval.
SELECT COUNT(*)
FROM orders
WHERE created_at > datetime(:data_interval_end, '-1 day')
  AND created_at <= :data_interval_end
