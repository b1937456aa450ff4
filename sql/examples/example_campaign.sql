-- An example campaign, ready to paste into psql (after `callwindow migrate`).
--
-- A campaign is one row in callwindow.campaigns plus its callers and receivers (and, if you
-- need them, explicit caller–receiver pairs). Insert them in one transaction so the
-- scheduler never sees a campaign without its receivers.

BEGIN;

-- The label normally arrives with `callwindow labels sync`; it is inserted here so the
-- example works on its own (this is the sandbox's demo client and label).
INSERT INTO callwindow.labels (client_account_id, id, name, label_type)
VALUES ('6f1c3a52-0d7e-4c1b-9a55-3b2d8e7f4a10', '0b7d7a3e-1f7e-4b8e-9a0c-2f6d1c9e8a01', 'Acme Deliveries', 'dynamic')
ON CONFLICT (client_account_id, id) DO NOTHING;

WITH campaign AS (
  INSERT INTO callwindow.campaigns (
    client_account_id,                       -- your Truecaller for Business account
    name,
    label_id,                                -- a dynamic label of that account
    label_name,                              -- optional: the caller ID shown (1–40 characters)
    call_reason,                             -- optional: 10–100 characters, no ! @ # $ % ^ & * ( ) _ + /
    starts_at, ends_at,                      -- the whole period, [starts_at, ends_at)
    time_zone, daily_start, daily_end,       -- optional daily hours, local time in time_zone
    weekdays,                                -- optional ISO weekdays (Monday = 1 … Sunday = 7)
    lead,                                    -- push each window this long before it starts
    priority                                 -- higher goes first when capacity is short
  ) VALUES (
    '6f1c3a52-0d7e-4c1b-9a55-3b2d8e7f4a10',
    'Parcel delivery calls',
    '0b7d7a3e-1f7e-4b8e-9a0c-2f6d1c9e8a01',
    'Acme Parcel Service',
    'Your parcel is arriving today',
    date_trunc('day', now()) + interval '1 day', date_trunc('day', now()) + interval '15 days',
    'Europe/Berlin', '08:00', '20:00',
    ARRAY[1, 2, 3, 4, 5, 6],
    interval '10 minutes',
    0
  )
  RETURNING id
), callers AS (
  -- Phone numbers are normalised on the way in: "+", spaces, "-", "." and parentheses go.
  INSERT INTO callwindow.campaign_callers (campaign_id, phone)
  SELECT id, phone FROM campaign, unnest(ARRAY['+49 30 1234 5678', '+49 (30) 1234-5679']) AS phone
)
INSERT INTO callwindow.campaign_receivers (campaign_id, phone, call_reason)
SELECT id, receiver.phone, receiver.call_reason
FROM campaign, (VALUES
  ('+49 151 2345 6789', NULL),                              -- uses the campaign's call reason
  ('+49 160 9876 5432', 'Your parcel needs a signature')    -- its own call reason
) AS receiver (phone, call_reason);

COMMIT;
