'use strict';
// Command line: test/twilio-emulator --port PORT --account-sid AC... --auth-token TOKEN
//   [--seed N] [--deterministic-sids] [--api-key SK... --api-secret S] [--host 127.0.0.1] [--max-log N]
//   [--concurrency-limit N]
// Prints exactly one line when ready; SIGTERM/SIGINT close it and exit 0.

const { Emulator } = require('./server');

const USAGE = 'usage: twilio-emulator --port PORT --account-sid AC... --auth-token TOKEN '
  + '[--seed N] [--deterministic-sids] [--api-key SK... --api-secret SECRET] [--host ADDR] [--max-log N] '
  + '[--concurrency-limit N]';

function parseArgs(argv) {
  const opts = { seed: 1, host: '127.0.0.1' };
  const names = {
    '--port': 'port', '--account-sid': 'accountSid', '--auth-token': 'authToken', '--seed': 'seed',
    '--api-key': 'apiKey', '--api-secret': 'apiSecret', '--host': 'host', '--max-log': 'maxLog',
    '--concurrency-limit': 'concurrencyLimit',
  };
  const switches = { '--deterministic-sids': 'deterministicSids' }; // no value
  for (let i = 0; i < argv.length; i++) {
    let [flag, value] = argv[i].split(/=(.*)/s);
    if (flag === '--help' || flag === '-h') return { help: true };
    if (switches[flag]) {
      if (value !== undefined) throw new Error(`${flag} takes no value`);
      opts[switches[flag]] = true;
      continue;
    }
    if (!names[flag]) throw new Error(`unknown option ${flag}`);
    if (value === undefined) {
      value = argv[++i];
      if (value === undefined) throw new Error(`${flag} needs a value`);
    }
    opts[names[flag]] = value;
  }
  if (opts.port === undefined || !/^\d+$/.test(opts.port) || Number(opts.port) > 65535) throw new Error('--port must be 0..65535');
  if (!/^AC[0-9a-fA-F]{32}$/.test(opts.accountSid || '')) throw new Error('--account-sid must be AC followed by 32 hex digits');
  if (!opts.authToken) throw new Error('--auth-token is required');
  if (!!opts.apiKey !== !!opts.apiSecret) throw new Error('--api-key and --api-secret go together');
  if (opts.apiKey && !/^SK[0-9a-fA-F]{32}$/.test(opts.apiKey)) throw new Error('--api-key must be SK followed by 32 hex digits');
  if (!/^-?\d+$/.test(String(opts.seed))) throw new Error('--seed must be an integer');
  opts.port = Number(opts.port);
  opts.seed = Number(opts.seed);
  opts.maxLog = opts.maxLog === undefined ? 100000 : Number(opts.maxLog);
  if (opts.concurrencyLimit !== undefined && !/^\d+$/.test(opts.concurrencyLimit)) {
    throw new Error('--concurrency-limit must be an integer >= 0 (0: no limit)');
  }
  opts.concurrencyLimit = opts.concurrencyLimit === undefined ? 0 : Number(opts.concurrencyLimit);
  return opts;
}

async function main() {
  let opts;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`twilio-emulator: ${e.message}\n${USAGE}\n`);
    process.exit(2);
  }
  if (opts.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const emu = new Emulator(opts);
  // Handlers first: a SIGTERM right after the ready line must still exit 0.
  const stop = () => emu.close().then(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  const port = await emu.listen(opts.port, opts.host);
  process.stdout.write(`twilio-emulator listening on http://127.0.0.1:${port}\n`);
}

if (require.main === module) main();
module.exports.main = main;
module.exports.parseArgs = parseArgs;
