--
-- Regulatory purchases per country of the emulator's inventory, and E911:
-- what the catalog says is required (an address) and what Twilio's
-- Regulations say is (a bundle, which the account does not have) is refused
-- before the POST; given SIDs Twilio does not accept are Twilio's refusal,
-- as TN003 with its code.
--
INSERT INTO twilio_numbers.accounts (name) VALUES ('Global Co') RETURNING account_id AS g \gset
SELECT twilio_numbers.numbers_deposit(:g, 200);

-- one number per country and type, as the catalog describes it
CREATE TEMP TABLE cases AS
SELECT s.iso_country, s.number_type, s.phone_number, s.address_requirements
FROM (VALUES ('US', 'local'), ('US', 'toll_free'), ('CA', 'local'), ('GB', 'local'), ('GB', 'mobile'),
             ('DE', 'local'), ('DE', 'toll_free'), ('AU', 'local'), ('AU', 'mobile'), ('AU', 'toll_free')) c(iso, type),
     LATERAL (SELECT * FROM twilio_numbers.numbers_search(c.iso, number_type => c.type, max_results => 1)) s;
SELECT iso_country, number_type, address_requirements FROM cases ORDER BY 1, 2;

-- without any regulatory SID: refused before the POST where the catalog says
-- an address is needed, or Twilio's Regulations a bundle (TN003, no POST)
SELECT emu.clear_requests();
SELECT c.iso_country, c.number_type, r.state, r.message, r.detail
FROM cases c, LATERAL emu.try_full(format('SELECT twilio_numbers.numbers_purchase(%s, %L)', :g, c.phone_number)) r
ORDER BY 1, 2;
SELECT form->>'PhoneNumber' AS posted, status, twilio_code FROM emu.log WHERE method = 'POST' ORDER BY seq;

-- Twilio takes only addresses the account holds, in the number's country
-- where it needs a local one: one per country
CREATE TEMP TABLE addr AS
SELECT a.iso AS iso_country,
       emu.twilio('POST', emu.account() || '/Addresses.json',
                  jsonb_build_object('CustomerName', 'Global Co', 'Street', a.street, 'City', a.city, 'Region', a.region,
                                     'PostalCode', a.postal, 'IsoCountry', a.iso))->>'sid' AS address_sid
FROM (VALUES ('AU', '1 Martin Place', 'Sydney', 'NSW', '2000'), ('DE', 'Friedrichstrasse 100', 'Berlin', 'BE', '10117'),
             ('GB', '1 Colmore Row', 'Birmingham', 'West Midlands', 'B3 2BJ'),
             ('US', '1 Main Street', 'New York', 'NY', '10001'), ('CA', '1 King Street W', 'Toronto', 'ON', 'M5H 1A1'))
     a(iso, street, city, region, postal);
SELECT count(*) AS addresses, count(*) FILTER (WHERE address_sid ~ '^AD[0-9a-f]{32}$') AS with_sid FROM addr;

-- with an address: the DE local, DE toll-free and AU mobile numbers still need a bundle
SELECT c.iso_country, c.number_type, r.state, r.detail
FROM cases c JOIN addr USING (iso_country),
     LATERAL emu.try_full(format('SELECT twilio_numbers.numbers_purchase(%s, %L, address_sid => %L)',
                                 :g, c.phone_number, addr.address_sid)) r
WHERE c.phone_number NOT IN (SELECT phone_number FROM twilio_numbers.owned_numbers WHERE status = 'active')
ORDER BY 1, 2;

-- with address and bundle: every remaining one is bought, and Twilio records both SIDs
SELECT c.iso_country, c.number_type, o.status, o.address_sid IS NOT NULL AS has_address,
       o.bundle_sid IS NOT NULL AS has_bundle
FROM cases c
LEFT JOIN twilio_numbers.owned_numbers o ON o.phone_number = c.phone_number AND o.status = 'active'
ORDER BY 1, 2;
-- approved bundles of the account, one per regulated country and type
CREATE TEMP TABLE bund AS
SELECT b.iso AS iso_country, b.type AS number_type,
       (emu.call('POST', '/_emulator/bundles',
                 jsonb_build_object('iso_country', b.iso, 'number_type', b.wire_type)))->>'sid' AS bundle_sid
FROM (VALUES ('DE', 'local', 'local'), ('DE', 'toll_free', 'toll free'), ('AU', 'mobile', 'mobile')) b(iso, type, wire_type);
SELECT c.iso_country, c.number_type, n.status
FROM cases c JOIN addr USING (iso_country) LEFT JOIN bund USING (iso_country, number_type),
     LATERAL twilio_numbers.numbers_purchase(:g, c.phone_number, address_sid => addr.address_sid,
                                             bundle_sid => bund.bundle_sid) n
WHERE NOT EXISTS (SELECT 1 FROM twilio_numbers.owned_numbers o
                  WHERE o.phone_number = c.phone_number AND o.status = 'active')
ORDER BY 1, 2;
SELECT n->>'address_sid' = (SELECT address_sid FROM addr WHERE iso_country = 'DE') AS our_address,
       n->>'bundle_sid' = (SELECT bundle_sid FROM bund WHERE iso_country = 'DE' AND number_type = 'local') AS our_bundle
FROM jsonb_array_elements(emu.state()->'numbers') n
WHERE n->>'phone_number' IN (SELECT phone_number FROM cases WHERE iso_country = 'DE' AND number_type = 'local');

-- ---- E911: set at purchase, changed and removed through numbers_update ----
SELECT phone_number, emergency_address_sid, emergency_status
FROM twilio_numbers.numbers_purchase(:g, '+16465550100', emergency_address_sid => 'AD00000000000000000000000000000911');
SELECT emu.clear_requests();
SELECT emergency_address_sid, emergency_status
FROM twilio_numbers.numbers_update(:g, '+16465550100', emergency_address_sid => 'AD00000000000000000000000000000912');
SELECT form FROM emu.log WHERE method = 'POST';
SELECT emergency_address_sid, emergency_status
FROM twilio_numbers.numbers_update(:g, '+16465550100', emergency_address_sid => '');
SELECT r->>'emergency_status' AS at_twilio, r->>'emergency_address_sid' AS address_at_twilio
FROM (SELECT emu.twilio('GET', emu.account() || '/IncomingPhoneNumbers/' || twilio_sid || '.json') r
      FROM twilio_numbers.owned_numbers WHERE phone_number = '+16465550100' AND status = 'active') x;
SELECT emu.try(format('SELECT twilio_numbers.numbers_update(%s, %L, emergency_address_sid => %L)',
                      :g, '+16465550100', 'AD-not-a-sid'));
