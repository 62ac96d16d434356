-- Orders of the interval whose status says they moved on (paid, shipped) while the amount is not
-- positive: money recorded for nothing. Returns the bad rows; the check counts and samples them.
SELECT o.id, o.customer_id, o.amount, o.currency, o.status, o.created_at
FROM orders AS o
WHERE o.created_at >= :data_interval_start
  AND o.created_at < :data_interval_end
  AND o.status IN ('paid', 'shipped')
  AND o.amount <= 0
