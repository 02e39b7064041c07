-- Slack's own link to a run's post (chat.getPermalink), stored the first time a link is
-- shown (`/kpi history`), so the Tier 4 call is made once per post at most, and only for
-- posts someone looks back at.
ALTER TABLE runs ADD COLUMN permalink TEXT;
