'use strict';
// Twilio's error reply: {code, message, more_info, status}. Every code used by
// the emulator is listed here with where it comes from, so none is made up:
// the Twilio error dictionary (twilio.com/docs/api/errors/<code>), its
// changelog, its test-credentials page, or the seeds in shared/seeds.
const CODES = {
  400: 'Bad Request', //            dictionary 00000-09999: generic parameter validation
  20003: 'Authenticate', //         401 on bad credentials
  20004: 'Method not allowed',
  20404: 'Not Found', //            unknown resource, country or number type
  20429: 'Too Many Requests', //    default code for an injected 429
  20500: 'Internal Server Error', // default code for an injected 5xx
  20503: 'Service Unavailable',
  21421: 'PhoneNumber is invalid', //         dictionary 21421
  21422: 'PhoneNumber is not available', // Twilio's test credentials: +15005550000
  21451: 'Invalid area code', //              dictionary 21451
  21452: 'No phone numbers found in area code', // Twilio's test credentials: AreaCode 533
  21457: 'AreaCode Parameter not Supported', // dictionary 21457 (Local/TollFree/Mobile create)
  21613: 'Phone Number Requires a Local Address', // dictionary 21613: an address (or bundle) on file in the account, also for transfers to a subaccount
  21628: 'Address Validation Error', //       dictionary 21628
  21631: 'Phone Number Requires an Address', // dictionary 21631, changelog 2019-09-10
  21649: 'Phone Number Requires a Bundle', //  changelog 2020-02-12 ("fail with error code 21649")
  21650: 'Phone Number Requires a Verified Identity Document', // Twilio's error dictionary
  21710: 'Phone Number Already in Messaging Service', // dictionary 21710
  21712: 'Phone Number Already in Another Messaging Service', // dictionary 21712 (one service per number)
  21714: 'Messaging Service Number Pool Size Limit Reached', // dictionary 21714 (400 numbers)
  21715: 'Phone Number Not SMS Capable', // dictionary 21715 (a sender needs SMS)
};

class TwilioError extends Error {
  constructor(status, code, message) {
    super(message || CODES[code] || 'Error');
    this.status = status;
    this.code = code;
  }
  body() {
    return {
      code: this.code,
      message: this.message,
      more_info: `https://www.twilio.com/docs/errors/${this.code}`,
      status: this.status,
    };
  }
}

const err = (status, code, message) => new TwilioError(status, code, message);
const notFound = (path) => err(404, 20404, `The requested resource ${path} was not found`);
const badParam = (message) => err(400, 400, message);

module.exports = { CODES, TwilioError, err, notFound, badParam };
