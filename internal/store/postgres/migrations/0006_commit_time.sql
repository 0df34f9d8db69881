-- The time of a release's source commit, given by CI: lead time for changes
-- counts from it. NULL when CI did not give one. Stored like every other
-- time: UTC text with nine fractional digits.
ALTER TABLE releases ADD COLUMN commit_time text COLLATE "C";

-- Promotions by the time they ended, for the figures of ferry stats.
CREATE INDEX promotions_by_finish ON promotions (finished_at) WHERE finished_at IS NOT NULL;
