-- 005: the task queue's claim (lease) column.
-- A worker marks the rows it takes with its own token in `claim` while it
-- runs them (status 1, begin_time = when taken) and deletes or puts back a
-- row only while it still carries that token, so a worker that was too
-- slow, or that another worker replaced after [Events] TaskStaleSec, never
-- undoes another's work.  Safe to run again.

ALTER TABLE `taskqueue`
  ADD COLUMN IF NOT EXISTS `claim` varchar(100) NOT NULL DEFAULT ''
    COMMENT 'token of the worker running it (status 1)' AFTER `begin_time`;
