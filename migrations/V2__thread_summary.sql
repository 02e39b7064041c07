-- Thread mode posts in two steps, the summary in the channel and then the chart in its
-- thread. The summary's ts is recorded as soon as it is posted, so a run that stops
-- between the two is completed by posting only the missing reply.
ALTER TABLE runs ADD COLUMN summary_ts TEXT;
