'use strict';
// pricing.twilio.com/v1/PhoneNumbers/Countries (paged) and /Countries/{Iso}.
// Prices are decimal strings and number_type uses Twilio's spelling
// ("toll free" with a space), as on the real wire.

const { PRICES, COUNTRIES } = require('../geo');
const { notFound } = require('../errors');
const P = require('../params');
const R = require('../render');

const nameOf = (iso) => (COUNTRIES[iso] ? COUNTRIES[iso].name : PRICES[iso].name);
// Twilio lists the countries alphabetically by name.
const ORDER = Object.keys(PRICES).sort((a, b) => nameOf(a).localeCompare(nameOf(b)));

module.exports = (emu) => {
  emu.route('GET', /^\/v1\/PhoneNumbers\/Countries$/, (ctx) => {
    const pg = P.paging(ctx);
    const items = ORDER.map((iso) => ({ sid: iso, iso }));
    const keys = new Map(ORDER.map((iso, i) => [iso, String(i).padStart(4, '0')]));
    const page = R.slicePage(items, pg, (it) => keys.get(it.iso), keys);
    const rendered = page.chunk.map(({ iso }) => ({
      country: nameOf(iso), iso_country: iso, url: `${ctx.base}/v1/PhoneNumbers/Countries/${iso}`,
    }));
    return { body: R.pageMeta('countries', ctx.base, '/v1/PhoneNumbers/Countries', P.filtersOf(ctx.query), page, rendered) };
  });
  emu.route('GET', /^\/v1\/PhoneNumbers\/Countries\/(?<Iso>[^/]+)$/, (ctx) => {
    const iso = ctx.params.Iso.toUpperCase();
    const entry = PRICES[iso];
    if (!entry) throw notFound(ctx.path);
    return {
      body: {
        country: nameOf(iso),
        iso_country: iso,
        phone_number_prices: entry.prices.map(([number_type, base_price, current_price]) => ({ number_type, base_price, current_price })),
        price_unit: entry.unit,
        url: `${ctx.base}/v1/PhoneNumbers/Countries/${iso}`,
      },
    };
  });
};
