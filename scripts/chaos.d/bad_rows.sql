-- Malformed campaign rows for scripts/chaos (scenario 5): each case must be rejected by the
-- database with the message after "expect:" (and, with VERBOSITY verbose, the named
-- constraint). The cases are those of Tests/StoreTests/SchemaTests.swift plus a few more,
-- written for psql: run one by hand with
--
--   psql "$URL" -v client=<uuid> -v label=<dynamic label> -v static_label=<static label> \
--        -v campaign=<an existing campaign id> -f scripts/chaos.d/bad_rows.sql
--
-- (without ON_ERROR_STOP every statement runs and prints its error). "as: owner" marks rows
-- of callwindow.labels, which the campaign-author role may not write at all.

-- case: blank campaign name
-- expect: campaign name is required and may not be blank
-- constraint: campaigns_name_required
INSERT INTO callwindow.campaigns (client_account_id, name, label_id, starts_at, ends_at)
VALUES (:'client', '  ', :'label', '2026-12-01', '2026-12-02');

-- case: unknown label
-- expect: is not a label of client account
-- constraint: campaigns_label_known
INSERT INTO callwindow.campaigns (client_account_id, name, label_id, starts_at, ends_at)
VALUES (:'client', 'c', gen_random_uuid(), '2026-12-01', '2026-12-02');

-- case: static label
-- expect: is a static label: only dynamic labels can be used
-- constraint: campaigns_label_dynamic
INSERT INTO callwindow.campaigns (client_account_id, name, label_id, starts_at, ends_at)
VALUES (:'client', 'c', :'static_label', '2026-12-01', '2026-12-02');

-- case: another client's label
-- expect: is not a label of client account
-- constraint: campaigns_label_known
INSERT INTO callwindow.campaigns (client_account_id, name, label_id, starts_at, ends_at)
VALUES (gen_random_uuid(), 'c', :'label', '2026-12-01', '2026-12-02');

-- case: label name of 41 characters
-- expect: has 41 characters: it must have 1 to 40
-- constraint: campaigns_label_name_valid
INSERT INTO callwindow.campaigns (client_account_id, name, label_id, starts_at, ends_at, label_name)
VALUES (:'client', 'c', :'label', '2026-12-01', '2026-12-02', repeat('é', 41));

-- case: empty label name
-- expect: has 0 characters: it must have 1 to 40
-- constraint: campaigns_label_name_valid
INSERT INTO callwindow.campaigns (client_account_id, name, label_id, starts_at, ends_at, label_name)
VALUES (:'client', 'c', :'label', '2026-12-01', '2026-12-02', '');

-- case: call reason of 9 characters
-- expect: campaign call_reason "Too short" has 9 characters: it must have 10 to 100
-- constraint: campaigns_call_reason_valid
INSERT INTO callwindow.campaigns (client_account_id, name, label_id, starts_at, ends_at, call_reason)
VALUES (:'client', 'c', :'label', '2026-12-01', '2026-12-02', 'Too short');

-- case: call reason of 101 characters
-- expect: has 101 characters: it must have 10 to 100
-- constraint: campaigns_call_reason_valid
INSERT INTO callwindow.campaigns (client_account_id, name, label_id, starts_at, ends_at, call_reason)
VALUES (:'client', 'c', :'label', '2026-12-01', '2026-12-02', repeat('a', 101));

-- case: call reason with #
-- expect: contains "#", which the API does not support
-- constraint: campaigns_call_reason_valid
INSERT INTO callwindow.campaigns (client_account_id, name, label_id, starts_at, ends_at, call_reason)
VALUES (:'client', 'c', :'label', '2026-12-01', '2026-12-02', 'Order #1234 is here');

-- case: call reason with /
-- expect: contains "/", which the API does not support
-- constraint: campaigns_call_reason_valid
INSERT INTO callwindow.campaigns (client_account_id, name, label_id, starts_at, ends_at, call_reason)
VALUES (:'client', 'c', :'label', '2026-12-01', '2026-12-02', 'Pickup and/or delivery');

-- case: call reason with _
-- expect: contains "_"
-- constraint: campaigns_call_reason_valid
INSERT INTO callwindow.campaigns (client_account_id, name, label_id, starts_at, ends_at, call_reason)
VALUES (:'client', 'c', :'label', '2026-12-01', '2026-12-02', 'Delivery_update today');

-- case: call reason starting with a dash
-- expect: may not start or end with ".", "," or "-"
-- constraint: campaigns_call_reason_valid
INSERT INTO callwindow.campaigns (client_account_id, name, label_id, starts_at, ends_at, call_reason)
VALUES (:'client', 'c', :'label', '2026-12-01', '2026-12-02', '-Your parcel is here');

-- case: call reason ending with a comma
-- expect: may not start or end with ".", "," or "-"
-- constraint: campaigns_call_reason_valid
INSERT INTO callwindow.campaigns (client_account_id, name, label_id, starts_at, ends_at, call_reason)
VALUES (:'client', 'c', :'label', '2026-12-01', '2026-12-02', 'Your parcel is here,');

-- case: call reason with a trailing space
-- expect: may not start or end with a space
-- constraint: campaigns_call_reason_valid
INSERT INTO callwindow.campaigns (client_account_id, name, label_id, starts_at, ends_at, call_reason)
VALUES (:'client', 'c', :'label', '2026-12-01', '2026-12-02', 'Your parcel is here ');

-- case: ends before it starts
-- expect: must be after starts_at
-- constraint: campaigns_period_valid
INSERT INTO callwindow.campaigns (client_account_id, name, label_id, starts_at, ends_at)
VALUES (:'client', 'c', :'label', '2026-12-02', '2026-12-01');

-- case: ends when it starts
-- expect: must be after starts_at
-- constraint: campaigns_period_valid
INSERT INTO callwindow.campaigns (client_account_id, name, label_id, starts_at, ends_at)
VALUES (:'client', 'c', :'label', '2026-12-02', '2026-12-02');

-- case: missing ends_at
-- expect: campaign starts_at and ends_at are both required
-- constraint: campaigns_period_valid
INSERT INTO callwindow.campaigns (client_account_id, name, label_id, starts_at)
VALUES (:'client', 'c', :'label', '2026-12-02');

-- case: unknown time zone
-- expect: campaign time_zone "Mars/Olympus_Mons" is not a time zone name the server knows
-- constraint: campaigns_time_zone_known
INSERT INTO callwindow.campaigns (client_account_id, name, label_id, starts_at, ends_at, time_zone)
VALUES (:'client', 'c', :'label', '2026-12-01', '2026-12-02', 'Mars/Olympus_Mons');

-- case: daily_start without daily_end
-- expect: daily_start and daily_end must be given together
-- constraint: campaigns_daily_hours_valid
INSERT INTO callwindow.campaigns (client_account_id, name, label_id, starts_at, ends_at, daily_start)
VALUES (:'client', 'c', :'label', '2026-12-01', '2026-12-02', '09:00');

-- case: equal daily hours
-- expect: a daily window needs two different times
-- constraint: campaigns_daily_hours_valid
INSERT INTO callwindow.campaigns (client_account_id, name, label_id, starts_at, ends_at, daily_start, daily_end)
VALUES (:'client', 'c', :'label', '2026-12-01', '2026-12-02', '09:00', '09:00');

-- case: weekday 8
-- expect: holds 8: ISO weekdays are 1 (Monday) to 7 (Sunday)
-- constraint: campaigns_weekdays_valid
INSERT INTO callwindow.campaigns (client_account_id, name, label_id, starts_at, ends_at, daily_start, daily_end, weekdays)
VALUES (:'client', 'c', :'label', '2026-12-01', '2026-12-02', '09:00', '17:00', '{1,8}');

-- case: weekday 0
-- expect: holds 0
-- constraint: campaigns_weekdays_valid
INSERT INTO callwindow.campaigns (client_account_id, name, label_id, starts_at, ends_at, daily_start, daily_end, weekdays)
VALUES (:'client', 'c', :'label', '2026-12-01', '2026-12-02', '09:00', '17:00', '{0}');

-- case: empty weekdays
-- expect: campaign weekdays is empty
-- constraint: campaigns_weekdays_valid
INSERT INTO callwindow.campaigns (client_account_id, name, label_id, starts_at, ends_at, daily_start, daily_end, weekdays)
VALUES (:'client', 'c', :'label', '2026-12-01', '2026-12-02', '09:00', '17:00', '{}');

-- case: weekdays without daily hours
-- expect: weekdays needs daily_start and daily_end
-- constraint: campaigns_weekdays_valid
INSERT INTO callwindow.campaigns (client_account_id, name, label_id, starts_at, ends_at, weekdays)
VALUES (:'client', 'c', :'label', '2026-12-01', '2026-12-02', '{1}');

-- case: negative lead
-- expect: campaign lead -00:05:00 is negative
-- constraint: campaigns_lead_valid
INSERT INTO callwindow.campaigns (client_account_id, name, label_id, starts_at, ends_at, lead)
VALUES (:'client', 'c', :'label', '2026-12-01', '2026-12-02', '-5 minutes');

-- case: lead longer than 7 days
-- expect: is longer than 7 days
-- constraint: campaigns_lead_valid
INSERT INTO callwindow.campaigns (client_account_id, name, label_id, starts_at, ends_at, lead)
VALUES (:'client', 'c', :'label', '2026-12-01', '2026-12-02', '8 days');

-- case: period longer than 10 years
-- expect: is longer than 10 years: split it into several campaigns
-- constraint: campaigns_period_valid
INSERT INTO callwindow.campaigns (client_account_id, name, label_id, starts_at, ends_at)
VALUES (:'client', 'c', :'label', '2026-12-01', '2037-12-02');

-- case: unknown status
-- expect: campaign status "completed" is not valid: expected "active", "paused" or "cancelled"
-- constraint: campaigns_status_valid
INSERT INTO callwindow.campaigns (client_account_id, name, label_id, starts_at, ends_at, status)
VALUES (:'client', 'c', :'label', '2026-12-01', '2026-12-02', 'completed');

-- case: status of the live campaign changed to something unknown
-- expect: campaign status "invalid" is not valid
-- constraint: campaigns_status_valid
UPDATE callwindow.campaigns SET status = 'invalid' WHERE id = :campaign;

-- case: label of the live campaign changed to a static one
-- expect: is a static label
-- constraint: campaigns_label_dynamic
UPDATE callwindow.campaigns SET label_id = :'static_label' WHERE id = :campaign;

-- case: call reason of the live campaign changed to 101 characters
-- expect: has 101 characters: it must have 10 to 100
-- constraint: campaigns_call_reason_valid
UPDATE callwindow.campaigns SET call_reason = repeat('b', 101) WHERE id = :campaign;

-- case: receiver that is not a phone number
-- expect: receiver phone "+91 98x" is not a phone number: expected 8 to 15 digits with country code
-- constraint: campaign_receivers_phone_valid
INSERT INTO callwindow.campaign_receivers (campaign_id, phone) VALUES (:campaign, '+91 98x');

-- case: receiver of 7 digits
-- expect: receiver phone "1234567" is not a phone number
-- constraint: campaign_receivers_phone_valid
INSERT INTO callwindow.campaign_receivers (campaign_id, phone) VALUES (:campaign, '1234567');

-- case: receiver of 16 digits
-- expect: is not a phone number
-- constraint: campaign_receivers_phone_valid
INSERT INTO callwindow.campaign_receivers (campaign_id, phone) VALUES (:campaign, '1234567890123456');

-- case: receiver starting with 0
-- expect: receiver phone "0049301234567" is not a phone number
-- constraint: campaign_receivers_phone_valid
INSERT INTO callwindow.campaign_receivers (campaign_id, phone) VALUES (:campaign, '0049301234567');

-- case: receiver without a phone
-- expect: receiver phone is required
-- constraint: campaign_receivers_phone_valid
INSERT INTO callwindow.campaign_receivers (campaign_id, phone) VALUES (:campaign, NULL);

-- case: receiver call reason with @
-- expect: receiver call_reason "Mail us at a@b.example" contains "@"
-- constraint: campaign_receivers_call_reason_valid
INSERT INTO callwindow.campaign_receivers (campaign_id, phone, call_reason) VALUES (:campaign, '919876543211', 'Mail us at a@b.example');

-- case: receiver label name of 41 characters
-- expect: receiver label_name
-- constraint: campaign_receivers_label_name_valid
INSERT INTO callwindow.campaign_receivers (campaign_id, phone, label_name) VALUES (:campaign, '919876543212', repeat('x', 41));

-- case: receiver of an unknown campaign
-- expect: violates foreign key constraint "campaign_receivers_campaign_exists"
-- constraint: campaign_receivers_campaign_exists
INSERT INTO callwindow.campaign_receivers (campaign_id, phone) VALUES (-1, '919876543213');

-- case: caller with letters
-- expect: caller phone "+49 30 CALL NOW" is not a phone number
-- constraint: campaign_callers_phone_valid
INSERT INTO callwindow.campaign_callers (campaign_id, phone) VALUES (:campaign, '+49 30 CALL NOW');

-- case: pair with a bad receiver
-- expect: pair receiver phone "abc" is not a phone number
-- constraint: campaign_pairs_receiver_valid
INSERT INTO callwindow.campaign_pairs (campaign_id, caller, receiver) VALUES (:campaign, '4930123456', 'abc');

-- case: pair with a bad caller
-- expect: pair caller phone "12" is not a phone number
-- constraint: campaign_pairs_caller_valid
INSERT INTO callwindow.campaign_pairs (campaign_id, caller, receiver) VALUES (:campaign, '12', '4930123456');

-- case: pair call reason ending with a period
-- expect: pair call_reason "Your parcel is here." may not start or end with
-- constraint: campaign_pairs_call_reason_valid
INSERT INTO callwindow.campaign_pairs (campaign_id, caller, receiver, call_reason) VALUES (:campaign, '4930123456', '4930123457', 'Your parcel is here.');

-- case: label of an unknown type
-- as: owner
-- expect: label label_type "shiny" is not valid: expected "dynamic" or "static"
-- constraint: labels_label_type_valid
INSERT INTO callwindow.labels (client_account_id, id, name, label_type) VALUES (:'client', gen_random_uuid(), 'L', 'shiny');

-- case: label with a blank name
-- as: owner
-- expect: label name is required and may not be blank
-- constraint: labels_name_required
INSERT INTO callwindow.labels (client_account_id, id, name, label_type) VALUES (:'client', gen_random_uuid(), '', 'dynamic');

-- case: a label written by the campaign-author role
-- expect: permission denied for table labels
INSERT INTO callwindow.labels (client_account_id, id, name, label_type) VALUES (:'client', gen_random_uuid(), 'Mine', 'dynamic');
