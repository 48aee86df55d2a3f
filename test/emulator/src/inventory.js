'use strict';
// The seeded inventory of available numbers and the indexes searches use.
// Generation is a pure function of the seed: the same seed always gives the
// same numbers, attributes and order, so tests may print rows from it.
// Records are kept sorted by phone number in per-(country,type) and
// per-(country,type,area code) lists, so a search walks one short list and
// stops once it has PageSize matches; each record carries its JSON rendering.

const crypto = require('crypto');
const { US_AREA_CODES, CA_AREA_CODES, COUNTRIES } = require('./geo');

// Small deterministic PRNG (mulberry32) keyed by the seed and a label.
function rng(seed, label) {
  let a = crypto.createHash('sha256').update(`${seed}:${label}`).digest().readUInt32LE(0);
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const pad = (n, w) => String(n).padStart(w, '0');
const nanpFriendly = (d) => `(${d.slice(1, 4)}) ${d.slice(4, 7)}-${d.slice(7)}`;

class Inventory {
  constructor(seed) {
    this.seed = seed;
    this.records = [];
    this.byPhone = new Map();
    this.generate();
    this.index();
  }

  add(rec) {
    if (this.byPhone.has(rec.phone)) return false; // keep numbers unique across countries
    rec.digits = rec.phone.slice(1);
    rec.taken = false;
    this.byPhone.set(rec.phone, rec);
    this.records.push(rec);
    return true;
  }

  // NANP local numbers: the 555-01XX block plus random lines on real exchanges.
  nanpLocal(iso, npa, info, fictional, random) {
    const r = rng(this.seed, `${iso}:${npa}`);
    const caps = () => {
      const sms = r() < 0.92;
      return { voice: true, sms, mms: sms && r() < 0.75, fax: r() < 0.35 };
    };
    const make = (exchange, line, place) => ({
      phone: `+1${npa}${exchange}${line}`, iso, type: 'local', areaCode: npa,
      region: info.region, lata: info.lata, rateCenter: place[0], locality: place[1],
      postal: place[2], lat: place[3], lon: place[4],
      addr: 'none', beta: r() < 0.06, caps: caps(), bundle: false,
    });
    for (let i = 0; i < fictional; i++) {
      this.add(make('555', `01${pad(i, 2)}`, info.places[i % info.places.length]));
    }
    let made = 0;
    while (made < random) {
      const place = info.places[Math.floor(r() * info.places.length)];
      const exchange = place[5][Math.floor(r() * place[5].length)];
      if (this.add(make(exchange, pad(Math.floor(r() * 10000), 4), place))) made++;
    }
  }

  nanpTollFree(iso, prefixes, perPrefix) {
    const r = rng(this.seed, `${iso}:tollfree`);
    for (const npa of prefixes) {
      let made = 0;
      while (made < perPrefix) {
        const exchange = String(200 + Math.floor(r() * 800));
        const sms = r() < 0.8;
        if (this.add({
          phone: `+1${npa}${exchange}${pad(Math.floor(r() * 10000), 4)}`, iso, type: 'toll_free', areaCode: npa,
          region: null, lata: null, rateCenter: null, locality: null, postal: null, lat: null, lon: null,
          addr: 'none', beta: false, caps: { voice: true, sms, mms: sms && r() < 0.5, fax: r() < 0.2 }, bundle: false,
        })) made++;
      }
    }
  }

  // Numbers outside NANP: no area code filter, no geography beyond the city.
  intl(iso, type, label, prefixes, count, attrs) {
    const r = rng(this.seed, `${iso}:${type}:${label}`);
    let made = 0;
    while (made < count) {
      const [prefix, width, locality] = prefixes[made % prefixes.length];
      const rec = {
        phone: `+${COUNTRIES[iso].dial}${prefix}${pad(Math.floor(r() * 10 ** width), width)}`,
        iso, type, areaCode: null, region: null, lata: null, rateCenter: null, locality: locality || null,
        postal: null, lat: null, lon: null, beta: r() < (attrs.betaRate || 0), bundle: !!attrs.bundle,
        addr: typeof attrs.addr === 'function' ? attrs.addr(r) : attrs.addr,
        caps: attrs.caps(r),
      };
      if (this.add(rec)) made++;
    }
  }

  generate() {
    for (const [npa, info] of Object.entries(US_AREA_CODES)) this.nanpLocal('US', npa, info, 100, 150);
    this.nanpTollFree('US', ['800', '833', '844', '866', '877', '888'], 45);
    for (const [npa, info] of Object.entries(CA_AREA_CODES)) this.nanpLocal('CA', npa, info, 40, 80);
    this.nanpTollFree('CA', ['855'], 60);
    // GB: local numbers need an address (any or local), mobiles do not; no toll-free offered.
    this.intl('GB', 'local', 'geo', [['2079460', 3, 'London'], ['1614960', 3, 'Manchester'], ['1214960', 3, 'Birmingham']], 240,
      { addr: (r) => (r() < 0.5 ? 'any' : 'local'), caps: () => ({ voice: true, sms: false, mms: false, fax: false }) });
    this.intl('GB', 'mobile', 'mob', [['7700900', 3, null]], 150,
      { addr: 'none', betaRate: 0.1, caps: (r) => ({ voice: true, sms: true, mms: r() < 0.3, fax: false }) });
    // DE: local numbers need a local address and a regulatory bundle; toll-free a bundle.
    this.intl('DE', 'local', 'geo', [['30231', 5, 'Berlin'], ['89210', 5, 'Munich'], ['40309', 5, 'Hamburg']], 300,
      { addr: 'local', bundle: true, caps: (r) => ({ voice: true, sms: false, mms: false, fax: r() < 0.5 }) });
    this.intl('DE', 'toll_free', 'tf', [['800723', 4, null]], 50,
      { addr: 'none', bundle: true, caps: () => ({ voice: true, sms: false, mms: false, fax: false }) });
    // AU: local needs a local address, mobile needs a bundle, toll-free needs nothing.
    this.intl('AU', 'local', 'geo', [['25550', 4, 'Sydney'], ['37010', 4, 'Melbourne']], 160,
      { addr: 'local', caps: () => ({ voice: true, sms: false, mms: false, fax: false }) });
    this.intl('AU', 'mobile', 'mob', [['491570', 3, null], ['491571', 3, null]], 150,
      { addr: 'none', bundle: true, betaRate: 0.2, caps: (r) => ({ voice: true, sms: true, mms: r() < 0.6, fax: false }) });
    this.intl('AU', 'toll_free', 'tf', [['1800160', 3, null]], 40,
      { addr: 'none', caps: () => ({ voice: true, sms: false, mms: false, fax: false }) });

    for (const rec of this.records) {
      rec.friendly = rec.iso === 'US' || rec.iso === 'CA' ? nanpFriendly(rec.digits) : rec.phone;
      rec.json = JSON.stringify(renderAvailable(rec));
    }
  }

  index() {
    this.records.sort((a, b) => (a.phone < b.phone ? -1 : a.phone > b.phone ? 1 : 0));
    this.lists = new Map(); // "US:local" and "US:local:415" -> sorted records
    const push = (key, rec) => {
      if (!this.lists.has(key)) this.lists.set(key, []);
      this.lists.get(key).push(rec);
    };
    for (const rec of this.records) {
      push(`${rec.iso}:${rec.type}`, rec);
      if (rec.areaCode) push(`${rec.iso}:${rec.type}:${rec.areaCode}`, rec);
    }
  }

  // Number types a country offers, in Twilio's subresource order.
  typesOf(iso) {
    return ['local', 'toll_free', 'mobile'].filter((t) => this.lists.has(`${iso}:${t}`));
  }

  list(iso, type, areaCode) {
    return this.lists.get(areaCode ? `${iso}:${type}:${areaCode}` : `${iso}:${type}`) || [];
  }

  release(phone) {
    const rec = this.byPhone.get(phone);
    if (rec) rec.taken = false;
  }

  reset() {
    for (const rec of this.records) rec.taken = false;
  }
}

// AvailablePhoneNumber as Twilio really sends it: string coordinates with six
// decimals, string LATA, capability keys voice/SMS/MMS (plus fax).
function renderAvailable(rec) {
  return {
    friendly_name: rec.friendly,
    phone_number: rec.phone,
    lata: rec.lata,
    rate_center: rec.rateCenter,
    latitude: rec.lat == null ? null : rec.lat.toFixed(6),
    longitude: rec.lon == null ? null : rec.lon.toFixed(6),
    locality: rec.locality,
    region: rec.region,
    postal_code: rec.postal,
    iso_country: rec.iso,
    address_requirements: rec.addr,
    beta: rec.beta,
    capabilities: { voice: rec.caps.voice, SMS: rec.caps.sms, MMS: rec.caps.mms, fax: rec.caps.fax },
  };
}

// A US local number outside the inventory (POST /_emulator/numbers): the
// area code's first place, every capability but fax, no requirements.
function bulkRecord(phone, npa, info) {
  const place = info.places[0];
  const digits = phone.slice(1);
  return {
    phone, digits, iso: 'US', type: 'local', areaCode: npa, region: info.region, lata: info.lata,
    rateCenter: place[0], locality: place[1], postal: place[2], lat: place[3], lon: place[4],
    addr: 'none', beta: false, caps: { voice: true, sms: true, mms: true, fax: false }, bundle: false,
    friendly: nanpFriendly(digits),
  };
}

module.exports = { Inventory, renderAvailable, rng, bulkRecord };
