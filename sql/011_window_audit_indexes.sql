-- CallWindow: the dashboard's window page reads a window's audit rows by index (issue 14).
--
-- /campaigns/{id}/windows/{window_id} shows the window's last 100 audit rows and its errors
-- grouped by reason. Through (campaign_id, attempted_at) both read every audit row of the
-- campaign and dropped the other windows' (10,000 rows, 10,000 heap pages, for a campaign of
-- 30 windows in `callwindow bench dashboard`'s 10 million rows): 125 ms for the page in a
-- release build. Now the last rows are read newest first from (window_id, attempted_at), and
-- the errors from a partial index holding only the rows that are not acceptances, so the
-- group-by reads those rows and no others, however large the window. The partial index is
-- written only for such rows (3 % of them in a healthy run). Its `window_id IS NOT NULL` keeps
-- it to statements that name a window: with `outcome <> 'accepted'` alone the planner also
-- ANDed the whole index (every error row of each month) into /audit?campaign=&outcome=
-- filters, which went from 4 to 67 ms. `callwindow bench pipeline` before and after: README,
-- "Dashboard".
--
-- Like 007's, CREATE INDEX on the partitioned table builds the index on every partition,
-- present and future. While it is built, audit writes wait (README, "Upgrading").
CREATE INDEX push_attempts_window_idx ON callwindow.push_attempts (window_id, attempted_at);
CREATE INDEX push_attempts_window_problems_idx ON callwindow.push_attempts (window_id)
  WHERE outcome <> 'accepted' AND window_id IS NOT NULL;
