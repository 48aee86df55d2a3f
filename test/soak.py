#!/usr/bin/python3
"""test/soak.py — the driver of test/soak (run it through test/soak, which
builds, starts the emulator and a throwaway cluster and passes their
addresses in PGHOST/PGPORT/EMU_URL).

What runs, for --seconds:
  * --clients client threads, each with its own seeded RNG and connections,
    drawing weighted operations (OPS below) on shared customer accounts (some
    mapped to Twilio subaccounts, some insolvent) and on a private "solo"
    account that only that client touches — which makes funds checks inside
    its own transactions deterministic;
  * a billing thread: numbers_run_billing(as_of) with as_of moving days to
    months ahead, deposits keeping some accounts solvent and not others;
  * a fault thread: random emulator faults (reset_before, reset_after, 5xx,
    429 + Retry-After, latency, hang, malformed, truncate) on purchase POSTs,
    updates, DELETEs, lists/look-ups, searches, trunks and hosted orders;
  * a killer: kill -9 of client backends (mid-purchase when it can catch
    one) and of the background worker; the postmaster restarts, everyone
    reconnects;
  * "another system" buying numbers directly at Twilio (before CREATE
    EXTENSION and during the run), in the main account and in a subaccount
    the extension manages: they must never be released, moved or changed;
  * a watcher sampling Twilio and the tables every ~1.5 s: no released row's
    number is at Twilio, no live row's number is missing from Twilio, the
    other system's numbers are intact.
Then: faults cleared, the worker settles, numbers_reconcile(), settles again,
and every invariant is checked and printed.  Last line: "N passed, N failed".
"""

import argparse
import base64
import collections
import datetime
import decimal
import http.client
import json
import os
import random
import re
import signal
import sys
import threading
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request

import psycopg2
import psycopg2.extensions
import psycopg2.extras

# ---------------------------------------------------------------------------
# settings and small helpers
# ---------------------------------------------------------------------------

EMU_URL = os.environ.get('EMU_URL', '').rstrip('/')
MAIN_SID = os.environ.get('TN_ACCOUNT_SID', '')
MAIN_TOKEN = os.environ.get('TN_AUTH_TOKEN', '')
AREA_CODES = ['206', '212', '213', '305', '310', '312', '415', '503', '512', '617', '646']
OTHER_AREA_CODE = '702'          # the other system buys from here; clients never do
HOSTED_PREFIX = '+1501555'       # not in the emulator's inventory: can be hosted
ADDRESS_SID = 'AD00000000000000000000000000000001'
STATEMENT_TIMEOUT_MS = 30000

# SQLSTATEs the README documents (plus PostgreSQL's own for read-only
# transactions, serialization, deadlocks between user transactions, and
# statement_timeout): anything else a client sees is a finding.
DOCUMENTED = {'22023', 'P0002', '55000', '23000', '53400', 'TN001', 'TN002', 'TN003', 'TN004', 'TN005',
              'TN006', 'TN007', 'TN008', 'TN009', '25006', '40001', '40P01', '57014'}
CONN_LOST = 'connection lost'
# errors a crash restart sends before it closes the connection
CRASH_CODES = {'57P01', '57P02', '57P03'}


def now():
    return time.time()


def iso(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime('%H:%M:%S.%f')[:-3]


def parse_iso(s):
    return datetime.datetime.fromisoformat(s.replace('Z', '+00:00')).timestamp()


def log(msg):
    print(f'[{iso(now())}] {msg}', file=sys.stderr, flush=True)


class SetupError(Exception):
    pass


# ---------------------------------------------------------------------------
# the emulator
# ---------------------------------------------------------------------------

class Emu:
    def __init__(self, base):
        self.base = base

    def _req(self, method, path, data=None, headers=None, timeout=15):
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                body = r.read()
                return r.status, (json.loads(body) if body else None)
        except urllib.error.HTTPError as e:
            body = e.read()
            try:
                return e.code, json.loads(body)
            except ValueError:
                return e.code, body.decode(errors='replace')
        except (OSError, ValueError, http.client.HTTPException) as e:
            # an injected fault (reset, hang, damaged body) on an API call
            return None, f'{type(e).__name__}: {e}'

    def control(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        st, js = self._req(method, '/_emulator' + path, data, {'Content-Type': 'application/json'}, timeout=60)
        return st, js

    def state(self):
        st, js = self.control('GET', '/state')
        if st != 200:
            raise RuntimeError(f'GET /_emulator/state: {st}')
        return js

    def api(self, method, path, form=None, auth=(None, None)):
        user, token = auth
        user = user or MAIN_SID
        token = token or MAIN_TOKEN
        hdr = {'Authorization': 'Basic ' + base64.b64encode(f'{user}:{token}'.encode()).decode()}
        data = None
        if form is not None:
            data = urllib.parse.urlencode(form).encode()
            hdr['Content-Type'] = 'application/x-www-form-urlencoded'
        return self._req(method, path, data, hdr)


# ---------------------------------------------------------------------------
# the database
# ---------------------------------------------------------------------------

def connect(app, timeout_s=90):
    """A connection (autocommit), waiting out a crash restart."""
    deadline = now() + timeout_s
    last = None
    while now() < deadline:
        try:
            c = psycopg2.connect(host=os.environ['PGHOST'], port=os.environ.get('PGPORT', '5432'),
                                 user=os.environ.get('PGUSER', 'postgres'), dbname='postgres',
                                 application_name=app, connect_timeout=5,
                                 options=f'-c statement_timeout={STATEMENT_TIMEOUT_MS}')
            c.autocommit = True
            return c
        except psycopg2.Error as e:
            last = e
            time.sleep(0.2)
    raise RuntimeError(f'could not connect within {timeout_s}s: {last}')


def q(conn, sql, args=None):
    with conn.cursor() as cur:
        cur.execute(sql, args)
        return cur.fetchall() if cur.description else None


def q1(conn, sql, args=None):
    rows = q(conn, sql, args)
    return rows[0] if rows else None


def qd(conn, sql, args=None):
    with conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
        cur.execute(sql, args)
        return cur.fetchall() if cur.description else None


def code_of(e):
    """The outcome of a database error: its SQLSTATE, or CONN_LOST."""
    c = getattr(e, 'pgcode', None)
    if c is None or c in CRASH_CODES:
        return CONN_LOST
    return c


def alive(conn):
    return conn is not None and conn.closed == 0


def map_twilio_account(conn, account_id, twilio_sid):
    """THE place where a customer account is mapped to a Twilio (sub)account:
    numbers_map_account, the DBA's function (it checks the SID with Twilio)."""
    q(conn, 'SELECT twilio_numbers.numbers_map_account(%s, %s)', (account_id, twilio_sid))


# ---------------------------------------------------------------------------
# shared state of a run
# ---------------------------------------------------------------------------

class Shared:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.kills_stop = threading.Event()
        self.t_start = None
        self.deadline = None
        self.emu = Emu(EMU_URL)
        self.stats = collections.defaultdict(collections.Counter)      # op -> outcome -> n
        self.samples = {}                                                # (op, code) -> message
        self.violations = collections.defaultdict(list)                 # invariant -> [detail]
        self.violation_keys = set()
        self.sqlstates = collections.Counter()                           # (op, SQLSTATE) -> n
        self.fault_counts = collections.Counter()
        self.kills = []                                                  # (t, kind, pid, what)
        self.readonly = []                                               # attempts in READ ONLY
        self.other = []                                                  # the other system's numbers
        self.pool = []                                                   # (phone, price) to buy
        self.unavailable = []                                            # never in the inventory
        self.hosted_pool = []
        self.reserved = set()
        self.accounts = {}                                               # name -> id
        self.twilio_of = {}                                              # account id -> AC sid
        self.shared = []                                                 # shared account ids
        self.solo = {}                                                   # client -> account id
        self.victim = None                                               # account for bad deposits
        self.subs = []                                                   # [(sid, token)]
        self.trunks = []
        self.services = []                                               # Messaging Services (MG)
        self.billing_as_of = None
        self.billing_totals = collections.Counter()
        self.watch_rounds = 0
        self.races = collections.Counter()
        self.trail = collections.defaultdict(list)                      # phone -> what the soak did to it
        self.last_outcome = {}

    def count(self, op, outcome, msg=None):
        with self.lock:
            self.stats[op][outcome] += 1
            self.last_outcome[threading.current_thread().name] = outcome
            if msg and (op, outcome) not in self.samples:
                self.samples[(op, outcome)] = msg.strip().splitlines()[0][:300]

    def violate(self, inv, detail, key=None):
        """Record a violated invariant (once per key, e.g. per number)."""
        with self.lock:
            if key is not None:
                if (inv, key) in self.violation_keys:
                    return
                self.violation_keys.add((inv, key))
            if len(self.violations[inv]) < 200:
                self.violations[inv].append(f'{iso(now())} {detail}')
        log(f'VIOLATION {inv}: {detail}')

    def error(self, op, e):
        """A database error a client saw (returns its outcome code)."""
        c = code_of(e)
        if c != CONN_LOST:
            with self.lock:
                self.sqlstates[(op, c)] += 1
                if (op, c) not in self.samples:
                    self.samples[(op, c)] = str(e).strip().splitlines()[0][:300]
        return c

    def pick(self, rng, n=1):
        """n distinct pool numbers nobody has reserved."""
        out = []
        with self.lock:
            for _ in range(50 * n):
                p = rng.choice(self.pool)
                if p[0] not in self.reserved and p not in out:
                    out.append(p)
                    if len(out) == n:
                        break
        return out

    def reserve(self, phone):
        with self.lock:
            if phone in self.reserved:
                return False
            self.reserved.add(phone)
            return True

    def unreserve(self, phone):
        with self.lock:
            self.reserved.discard(phone)


# ---------------------------------------------------------------------------
# set-up
# ---------------------------------------------------------------------------

def other_system_buy(sh, rng, where, label):
    """The other system buys a number directly at Twilio (its own code, its
    own configuration) — a typed path no injected fault matches."""
    if where == 'main':
        acct, auth = MAIN_SID, (MAIN_SID, MAIN_TOKEN)
    else:
        acct, auth = sh.subs[0]
        auth = (acct, auth)
    for _ in range(20):
        st, js = sh.emu.api('GET', f'/2010-04-01/Accounts/{acct}/AvailablePhoneNumbers/US/Local.json?'
                            + urllib.parse.urlencode({'AreaCode': OTHER_AREA_CODE, 'PageSize': 50}),
                            auth=auth)
        if st != 200 or not isinstance(js, dict) or not js.get('available_phone_numbers'):
            time.sleep(0.2)
            continue
        phone = rng.choice(js['available_phone_numbers'])['phone_number']
        form = {'PhoneNumber': phone, 'FriendlyName': f'Other system: {label}',
                'VoiceUrl': f'https://other.example.com/voice/{label}',
                'SmsUrl': f'https://other.example.com/sms/{label}'}
        st, js = sh.emu.api('POST', f'/2010-04-01/Accounts/{acct}/IncomingPhoneNumbers/Local.json', form,
                            auth=auth)
        if st is None:
            # no reply: it may have bought it all the same — look it up, as anyone should
            for _ in range(10):
                lst, ljs = sh.emu.api('GET', f'/2010-04-01/Accounts/{acct}/IncomingPhoneNumbers.json?'
                                      + urllib.parse.urlencode({'PhoneNumber': phone}), auth=auth)
                if lst == 200 and isinstance(ljs, dict):
                    found = ljs.get('incoming_phone_numbers') or []
                    if found:
                        st, js = 201, found[0]
                    break
                time.sleep(0.2)
        if st == 201:
            rec = {'sid': js['sid'], 'phone': phone, 'account_sid': acct, 'friendly_name': form['FriendlyName'],
                   'voice_url': form['VoiceUrl'], 'sms_url': form['SmsUrl'], 'bought_at': now(), 'label': label}
            with sh.lock:
                sh.other.append(rec)
            return rec
        time.sleep(0.2)
    raise RuntimeError(f'the other system could not buy a number ({where})')


def setup(sh):
    emu = sh.emu
    rng = random.Random(f'{sh.args.seed}:setup')
    st, _ = emu.control('POST', '/reset')
    if st != 200:
        raise SetupError('the emulator did not reset')

    # subaccounts: created at Twilio by the reseller (its DBA)
    for name in ('Soak sub one', 'Soak sub two'):
        st, js = emu.api('POST', '/2010-04-01/Accounts.json', {'FriendlyName': name})
        if st != 201:
            raise SetupError(f'could not create a subaccount at the emulator: {st} {js}')
        sh.subs.append((js['sid'], js['auth_token']))

    # the other system was there before us: main account and subaccount one
    for i in range(3):
        other_system_buy(sh, rng, 'main', f'before-{i}')
    for i in range(2):
        other_system_buy(sh, rng, 'sub', f'before-sub-{i}')

    conn = connect('soak-setup', 30)
    try:
        q(conn, 'CREATE EXTENSION twilio_numbers')
    except psycopg2.Error as e:
        raise SetupError(f'CREATE EXTENSION twilio_numbers failed: {e}'.strip())
    # prices: a setup fee (not refunded) and our own monthly prices
    q(conn, """INSERT INTO twilio_numbers.price_list (iso_country, number_type, setup_price, monthly_price, currency)
               VALUES ('US', 'local', 0.50, 2.50, 'USD'), ('US', 'toll_free', 0.00, 3.00, 'USD'),
                      ('US', 'hosted', 1.00, 1.50, 'USD')""")

    def account(name, credit_limit, deposit, twilio=None):
        aid = q1(conn, 'INSERT INTO twilio_numbers.accounts (name, credit_limit) VALUES (%s, %s) RETURNING account_id',
                 (name, credit_limit))[0]
        if twilio:
            map_twilio_account(conn, aid, twilio)
        if deposit:
            q(conn, 'SELECT twilio_numbers.numbers_deposit(%s, %s, %s)', (aid, deposit, 'opening deposit'))
        sh.accounts[name] = aid
        sh.twilio_of[aid] = twilio or MAIN_SID
        return aid

    sub1, sub2 = sh.subs[0][0], sh.subs[1][0]
    sh.shared = [account('solvent main', 0, 300), account('credit main', 25, 80),
                 account('solvent sub1', 0, 250, sub1), account('solvent sub2', 10, 250, sub2),
                 account('insolvent main', 0, 30), account('insolvent sub1', 0, 30, sub1)]
    sh.solvent = sh.shared[:4]
    for i in range(sh.args.clients):
        sh.solo[i] = account(f'solo {i}', 0, 10)
    sh.victim = account('bad deposits', 0, 5)

    # trunks of the main account
    for i in range(3):
        st, js = emu.api('POST', '/v1/Trunks', {'FriendlyName': f'soak trunk {i}'})
        if st != 201:
            raise SetupError(f'could not create a trunk at the emulator: {st} {js}')
        sh.trunks.append(js['sid'])
    # Messaging Services of the main account
    for i in range(2):
        st, js = emu.api('POST', '/v1/Services', {'FriendlyName': f'soak service {i}'})
        if st != 201:
            raise SetupError(f'could not create a Messaging Service at the emulator: {st} {js}')
        sh.services.append(js['sid'])

    # what the clients buy from: every available US local number of the
    # area codes (through the extension: it also warms the price cache)
    every = set()
    for ac in AREA_CODES + [OTHER_AREA_CODE]:
        rows = q(conn, """SELECT phone_number, setup_price + monthly_price, address_requirements
                          FROM twilio_numbers.numbers_search(country => 'US', area_code => %s, max_results => 1000)""",
                 (ac,))
        for phone, price, req in rows:
            every.add(phone)
            if ac != OTHER_AREA_CODE and (req or 'none') == 'none':
                sh.pool.append((phone, price))
    for ac in AREA_CODES:
        for x in range(100):
            p = f'+1{ac}55500{x:02d}'
            if p not in every:
                sh.unavailable.append(p)
    # owned ones (the other system's) are not available either
    sh.hosted_pool = [f'{HOSTED_PREFIX}{x:04d}' for x in range(100, 200)]
    if len(sh.pool) < 500 or len(sh.unavailable) < 50:
        raise SetupError(f'only {len(sh.pool)} numbers to buy and {len(sh.unavailable)} unavailable ones')
    conn.close()
    log(f'set-up: {len(sh.pool)} numbers to buy, {len(sh.unavailable)} never available, '
        f'subaccounts {sub1} {sub2}, trunks {len(sh.trunks)}, other system {len(sh.other)} numbers')


# ---------------------------------------------------------------------------
# clients
# ---------------------------------------------------------------------------

class Skip(Exception):
    """Nothing to do for this operation right now (e.g. no number to release)."""


class Client(threading.Thread):
    def __init__(self, sh, i):
        super().__init__(name=f'client-{i}', daemon=True)
        self.sh = sh
        self.i = i
        self.rng = random.Random(f'{sh.args.seed}:client:{i}')
        self.conn = None
        self.conn2 = None
        self.solo = sh.solo[i]
        self.n = 0
        self.touched = []
        weights = dict(OPS)
        weights.update(sh.args.weights)
        self.ops = [(weights[name], name, getattr(self, 'op_' + name)) for name, _ in OPS if weights[name] > 0]
        self.total_w = sum(w for w, _, _ in self.ops)

    # -- plumbing --------------------------------------------------------

    def app(self, k=''):
        return f'soak-c{self.i}{k}'

    def ensure(self):
        if not alive(self.conn):
            self.conn = connect(self.app())
        return self.conn

    def ensure2(self):
        if not alive(self.conn2):
            self.conn2 = connect(self.app('b'))
        return self.conn2

    def rollback(self, conn=None):
        conn = conn or self.conn
        if alive(conn):
            try:
                q(conn, 'ROLLBACK')
            except psycopg2.Error:
                pass

    def run(self):
        while not self.sh.stop.is_set() and now() < self.sh.deadline:
            r = self.rng.uniform(0, self.total_w)
            for w, name, fn in self.ops:
                r -= w
                if r <= 0:
                    break
            self.n += 1
            self.touched = []
            t0 = now()
            try:
                self.ensure()
            except Exception as e:
                self.sh.count(name, 'no connection', str(e))
                time.sleep(0.5)
                continue
            try:
                out = fn()
                self.sh.count(name, out or 'ok')
            except Skip as s:
                self.sh.count(name, 'skipped' + (f' ({s})' if str(s) else ''))
            except psycopg2.Error as e:
                self.sh.count(name, self.sh.error(name, e), str(e))
                self.rollback()
            except Exception as e:
                self.sh.count(name, 'driver error', f'{type(e).__name__}: {e}')
                log(f'client {self.i} {name}: {traceback.format_exc()}')
                self.rollback()
            # no operation leaves a transaction open for the next one
            if alive(self.conn) and self.conn.get_transaction_status() != \
                    psycopg2.extensions.TRANSACTION_STATUS_IDLE:
                self.rollback()
            if self.touched:
                last = self.sh.last_outcome.get(self.name, '')
                with self.sh.lock:
                    for p in dict.fromkeys(self.touched):
                        self.sh.trail[p].append(f'{iso(t0)}-{iso(now())[6:]} c{self.i} {name}: {last}')
            time.sleep(self.rng.uniform(0, 0.03))
        for c in (self.conn, self.conn2):
            if alive(c):
                c.close()

    def touch(self, *phones):
        self.touched.extend(phones)

    def x(self, sql, args=None, conn=None):
        return q(conn or self.conn, sql, args)

    def owned(self, accts, where="status IN ('active', 'past_due')"):
        rows = self.x(f"""SELECT account_id, phone_number, twilio_sid, twilio_account_sid, trunk_sid
                          FROM twilio_numbers.owned_numbers WHERE account_id = ANY(%s) AND {where}
                          ORDER BY phone_number""", (list(accts),))
        if not rows:
            raise Skip('no number')
        r = self.rng.choice(rows)
        self.touch(r[1])
        return r

    def config(self):
        cfg = {}
        if self.rng.random() < 0.6:
            cfg['friendly_name'] = f'soak c{self.i} #{self.n}'
        if self.rng.random() < 0.4:
            cfg['sms_url'] = f'https://app.example.com/sms/{self.i}/{self.n}'
        if self.rng.random() < 0.3:
            cfg['voice_url'] = f'https://pbx.example.com/in/{self.i}'
        return cfg

    def purchase_sql(self, acct, phones, cfg, conn=None):
        self.touch(*(phones if isinstance(phones, list) else [phones]))
        names = ''.join(f', {k} => %({k})s' for k in cfg)
        args = dict(cfg, acct=acct)
        if isinstance(phones, list):
            args['phones'] = phones
            sql = f"""SELECT phone_number, twilio_sid FROM twilio_numbers.numbers_purchase(
                      account_id => %(acct)s, phone_numbers => %(phones)s::text[]{names})"""
        else:
            args['phone'] = phones
            sql = f"""SELECT phone_number, twilio_sid FROM twilio_numbers.numbers_purchase(
                      account_id => %(acct)s, phone_number => %(phone)s{names})"""
        return q(conn or self.conn, sql, args)

    def shared_acct(self):
        return self.rng.choice(self.sh.shared)

    def main_accts(self):
        return [a for a in self.sh.shared if self.sh.twilio_of[a] == MAIN_SID]

    # -- purchases -------------------------------------------------------

    def buying(self, phones):
        """Hold the numbers a purchase is buying reserved while it runs, so
        that a read-only try (which checks that nothing reaches Twilio in its
        window) never picks one of them: the purchase's POST would be taken
        for the read-only transaction's (seen once with concurrent arrays)."""
        held = [p for p in phones if self.sh.reserve(p)]

        class Held:
            def __enter__(_):
                return held

            def __exit__(_, *exc):
                for p in held:
                    self.sh.unreserve(p)
                return False
        return Held()

    def op_buy(self):
        acct = self.solo if self.rng.random() < 0.15 else self.shared_acct()
        p = self.sh.pick(self.rng)
        cfg = self.config()
        if self.sh.twilio_of[acct] == MAIN_SID and self.rng.random() < 0.2:
            cfg['trunk_sid'] = self.rng.choice(self.sh.trunks)
        with self.buying([p[0][0]]):
            self.purchase_sql(acct, p[0][0], cfg)

    def op_buy_many(self):
        acct = self.shared_acct()
        ps = [p for p, _ in self.sh.pick(self.rng, self.rng.randint(2, 4))]
        with self.buying(ps):
            self.purchase_sql(acct, ps, self.config())

    def op_buy_rollback(self):
        acct = self.shared_acct()
        p = self.sh.pick(self.rng)[0][0]
        then_update = self.rng.random() < 0.4
        self.x('BEGIN')
        self.purchase_sql(acct, p, self.config())
        if then_update:
            self.x('SELECT twilio_numbers.numbers_update(%s, %s, friendly_name => %s)', (acct, p, 'to be undone'))
        time.sleep(self.rng.uniform(0, 0.1))
        self.x('ROLLBACK')
        return 'ok (rolled back)'

    def op_race(self):
        """Two sessions buy the same number at once, the first POST of the two
        answered 503 or dropped before Twilio acted: each may only keep a
        number its own request created."""
        sh = self.sh
        p = sh.pick(self.rng)[0][0]
        if not sh.reserve(p):
            raise Skip('reserved')
        try:
            c2 = self.ensure2()
            acct_a, acct_b = self.rng.sample(sh.shared, 2)
            fault = self.rng.choice([{'action': 'status', 'status': 503}, {'action': 'reset_before'},
                                     {'action': 'status', 'status': 500}])
            delay = self.rng.uniform(0.005, 0.04)
            b_commits = self.rng.random() < 0.5
            res = {}

            def buyer(key, conn, acct, commit):
                try:
                    q(conn, 'BEGIN')
                    rows = self.purchase_sql(acct, p, {}, conn)
                    res[key] = ('ok', rows[0][1])
                    q(conn, 'COMMIT' if commit else 'ROLLBACK')
                except psycopg2.Error as e:
                    res[key] = (self.sh.error('race', e), str(e))
                    self.rollback(conn)

            sh.emu.control('POST', '/faults', dict(fault, method='POST', path=r'IncomingPhoneNumbers\.json$',
                                                   times=1))
            with sh.lock:
                sh.fault_counts[('purchase POST (race)', str(fault.get('status', fault['action'])))] += 1
            ta = threading.Thread(target=buyer, args=('a', self.conn, acct_a, True))
            tb = threading.Thread(target=buyer, args=('b', c2, acct_b, b_commits))
            ta.start()
            time.sleep(delay)
            tb.start()
            ta.join()
            tb.join()
            a, b = res.get('a', ('?', '')), res.get('b', ('?', ''))
            for k, (o, msg) in (('first', a), ('second', b)):
                sh.count('race:' + k, o, msg if o != 'ok' else None)
            if a[0] == 'ok' and b[0] == 'ok' and a[1] == b[1]:
                sh.violate('one Twilio number per purchase',
                           f'race for {p}: both transactions got {a[1]} (the second one '
                           f'{"committed" if b_commits else "rolled back"}, the first committed)')
            with sh.lock:
                sh.races[f'{a[0]} / {b[0]}'] += 1
            if CONN_LOST in (a[0], b[0]):
                return CONN_LOST
        finally:
            sh.unreserve(p)

    # -- changes ---------------------------------------------------------

    def op_update(self):
        acct, phone, *_ = self.owned(self.sh.shared)
        rollback = self.rng.random() < 0.3
        if rollback:
            self.x('BEGIN')
        self.x("""SELECT twilio_numbers.numbers_update(%s, %s, friendly_name => %s, voice_url => %s)""",
               (acct, phone, f'upd c{self.i} #{self.n}', self.rng.choice(
                   [None, '', f'https://pbx.example.com/u/{self.n}'])))
        if rollback:
            time.sleep(self.rng.uniform(0, 0.05))
            self.x('ROLLBACK')
            return 'ok (rolled back)'

    def op_trunk(self):
        acct, phone, _, _, trunk = self.owned(self.main_accts())
        rollback = self.rng.random() < 0.25
        if rollback:
            self.x('BEGIN')
        if trunk and self.rng.random() < 0.5:
            self.x('SELECT twilio_numbers.numbers_trunk_unassign(%s, %s)', (acct, phone))
            out = 'unassign'
        else:
            self.x('SELECT twilio_numbers.numbers_trunk_assign(%s, %s, %s)',
                   (acct, phone, self.rng.choice(self.sh.trunks)))
            out = 'assign'
        if rollback:
            self.x('ROLLBACK')
            return f'ok {out} (rolled back)'
        return f'ok {out}'

    def op_messaging(self):
        """A main-account number into a Messaging Service or out of it; some
        rolled back, some after a savepoint that rolled back another service."""
        acct, phone, *_ = self.owned(self.main_accts())
        ours = self.x('SELECT messaging_service_sid FROM twilio_numbers.owned_numbers '
                      "WHERE phone_number = %s AND status <> 'released'", (phone,))
        ours = ours[0][0] if ours else None
        r = self.rng.random()
        if ours and r < 0.4:
            rollback = self.rng.random() < 0.25
            if rollback:
                self.x('BEGIN')
            self.x('SELECT twilio_numbers.numbers_messaging_unassign(%s, %s)', (acct, phone))
            if rollback:
                self.x('ROLLBACK')
                return 'ok unassign (rolled back)'
            return 'ok unassign'
        a, b = self.rng.sample(self.sh.services, 2)
        if ours:
            a, b = ours, ours
        if r > 0.85:
            self.x('BEGIN')
            self.x('SAVEPOINT s')
            self.x('SELECT twilio_numbers.numbers_messaging_assign(%s, %s, %s)', (acct, phone, b))
            self.x('ROLLBACK TO SAVEPOINT s')
            self.x('SELECT twilio_numbers.numbers_messaging_assign(%s, %s, %s)', (acct, phone, a))
            self.x('COMMIT')
            return 'ok assign after a savepoint'
        rollback = self.rng.random() < 0.25
        if rollback:
            self.x('BEGIN')
        self.x('SELECT twilio_numbers.numbers_messaging_assign(%s, %s, %s)', (acct, phone, a))
        if rollback:
            self.x('ROLLBACK')
            return 'ok assign (rolled back)'
        return 'ok assign'

    def op_transfer(self):
        acct, phone, *_ = self.owned(self.sh.shared)
        to = self.rng.choice([a for a in self.sh.shared if a != acct])
        across = self.sh.twilio_of[acct] != self.sh.twilio_of[to]
        rollback = self.rng.random() < 0.35
        self.x('BEGIN')
        self.x('SELECT twilio_numbers.numbers_transfer(%s, %s, %s)', (phone, acct, to))
        time.sleep(self.rng.uniform(0, 0.05))
        self.x('ROLLBACK' if rollback else 'COMMIT')
        return f'ok {"across" if across else "within"}{" (rolled back)" if rollback else ""}'

    def op_release(self):
        acct, phone, *_ = self.owned(self.sh.shared)
        rollback = self.rng.random() < 0.2
        if rollback:
            self.x('BEGIN')
        self.x('SELECT twilio_numbers.numbers_release(%s, %s)', (acct, phone))
        if rollback:
            self.x('ROLLBACK')
            return 'ok (rolled back)'

    def op_transfer_release(self):
        """BEGIN; SAVEPOINT; transfer to another Twilio subaccount; ROLLBACK TO;
        release; COMMIT (a transfer rolled back, then a release)."""
        acct, phone, *_ = self.owned(self.sh.shared)
        others = [a for a in self.sh.shared if self.sh.twilio_of[a] != self.sh.twilio_of[acct]]
        to = self.rng.choice(others)
        self.x('BEGIN')
        self.x('SAVEPOINT s')
        try:
            self.x('SELECT twilio_numbers.numbers_transfer(%s, %s, %s)', (phone, acct, to))
            moved = 'moved'
        except psycopg2.Error as e:
            if code_of(e) == CONN_LOST:
                raise
            moved = f'transfer {self.sh.error("transfer_release", e)}'
        self.x('ROLLBACK TO SAVEPOINT s')
        self.x('SELECT twilio_numbers.numbers_release(%s, %s)', (acct, phone))
        self.x('COMMIT')
        return f'ok ({moved})'

    def op_savepoints(self):
        """A purchase, then in a savepoint rolled back another purchase or an
        update or a transfer; then commit or roll back the whole."""
        acct = self.shared_acct()
        p1, p2 = [p for p, _ in self.sh.pick(self.rng, 2)]
        commit = self.rng.random() < 0.6
        self.x('BEGIN')
        self.purchase_sql(acct, p1, self.config())
        self.x('SAVEPOINT a')
        what = self.rng.choice(['purchase', 'update', 'transfer'])
        try:
            if what == 'purchase':
                self.purchase_sql(acct, p2, {})
            elif what == 'update':
                self.x('SELECT twilio_numbers.numbers_update(%s, %s, friendly_name => %s)', (acct, p1, 'in savepoint'))
            else:
                to = self.rng.choice([a for a in self.sh.shared if a != acct])
                self.x('SELECT twilio_numbers.numbers_transfer(%s, %s, %s)', (p1, acct, to))
        except psycopg2.Error as e:
            if code_of(e) == CONN_LOST:
                raise
            self.sh.error('savepoints', e)
        self.x('ROLLBACK TO SAVEPOINT a')
        if self.rng.random() < 0.3:
            self.x('SAVEPOINT b')
            try:
                _, phone, *_ = self.owned([acct])
                self.x('SELECT twilio_numbers.numbers_release(%s, %s)', (acct, phone))
                self.x('RELEASE SAVEPOINT b')
            except Skip:
                self.x('RELEASE SAVEPOINT b')
            except psycopg2.Error as e:
                if code_of(e) == CONN_LOST:
                    raise
                self.sh.error('savepoints', e)
                self.x('ROLLBACK TO SAVEPOINT b')
        self.x('COMMIT' if commit else 'ROLLBACK')
        return f'ok {what} ({"committed" if commit else "rolled back"})'

    def op_exception_block(self):
        """PL/pgSQL exception blocks: a purchase and an update undone by an
        exception, or a refused purchase caught and another bought after it."""
        acct = self.shared_acct()
        p = self.sh.pick(self.rng)[0][0]
        if self.rng.random() < 0.5:
            self.x(f"""DO $$ BEGIN
                PERFORM twilio_numbers.numbers_purchase({int(acct)}, '{p}');
                PERFORM twilio_numbers.numbers_update({int(acct)}, '{p}', friendly_name => 'undone');
                RAISE EXCEPTION 'soak: undo it all';
            EXCEPTION WHEN OTHERS THEN NULL;
            END $$""")
            return 'ok (undone)'
        u = self.rng.choice(self.sh.unavailable)
        self.x(f"""DO $$ BEGIN
            BEGIN
                PERFORM twilio_numbers.numbers_purchase({int(acct)}, '{u}');
            EXCEPTION WHEN OTHERS THEN NULL;
            END;
            PERFORM twilio_numbers.numbers_purchase({int(acct)}, '{p}');
        END $$""")
        return 'ok (refused, then bought)'

    # -- the solo account: funds checks in the client's own transaction ---

    def solo_topup(self, price):
        bal, limit = self.x('SELECT balance, credit_limit FROM twilio_numbers.accounts WHERE account_id = %s',
                            (self.solo,))[0]
        target = price + price / 4 + decimal.Decimal(self.rng.randint(0, 40)) / 100
        if bal + limit < target:
            need = (target - bal - limit).quantize(decimal.Decimal('0.01'), rounding=decimal.ROUND_UP)
            if need > 0:
                self.x('SELECT twilio_numbers.numbers_deposit(%s, %s, %s)', (self.solo, need, 'solo top-up'))

    def my_holds(self):
        return self.x("""SELECT coalesce(sum(held), 0), count(*) FROM twilio_numbers.inflight
                         WHERE pid = pg_backend_pid() AND state = 'in progress'""")[0]

    def op_solo_refused_then_fit(self):
        """A purchase refused inside a savepoint must not
        keep its hold: the next purchase that the balance covers goes through."""
        x, price = self.sh.pick(self.rng)[0]
        self.solo_topup(price)
        u = self.rng.choice(self.sh.unavailable)
        commit = self.rng.random() < 0.5
        self.x('BEGIN')
        self.x('SAVEPOINT a')
        try:
            self.purchase_sql(self.solo, u, {})
            first = 'ok?!'
        except psycopg2.Error as e:
            if code_of(e) == CONN_LOST:
                raise
            first = self.sh.error('solo_refused_then_fit', e)
        self.x('ROLLBACK TO SAVEPOINT a')
        held, n = self.my_holds()
        if held > 0:
            self.sh.violate('refused purchases release their holds',
                            f'account {self.solo}: the purchase of {u} was refused ({first}) and its savepoint '
                            f'rolled back, yet this transaction still holds {held} in {n} in-flight purchase(s)')
        self.x('SAVEPOINT b')
        try:
            self.purchase_sql(self.solo, x, {})
            out = 'ok'
        except psycopg2.Error as e:
            if code_of(e) == CONN_LOST:
                raise
            c = self.sh.error('solo_refused_then_fit', e)
            self.x('ROLLBACK TO SAVEPOINT b')
            out = c
            if c == 'TN001':
                bal, limit = self.x('SELECT balance, credit_limit FROM twilio_numbers.accounts '
                                    'WHERE account_id = %s', (self.solo,))[0]
                others = self.x("""SELECT coalesce(sum(held), 0) FROM twilio_numbers.inflight
                                   WHERE account_id = %s AND pid <> pg_backend_pid()""", (self.solo,))[0][0]
                if bal - others - price >= -limit:
                    self.sh.violate('no purchase refused for funds the balance covered',
                                    f'account {self.solo} (only client {self.i} uses it): {x} at {price} refused '
                                    f'with TN001 after a refused purchase of {u} ({first}) was rolled back to its '
                                    f'savepoint; committed balance {bal}, credit limit {limit}, holds of other '
                                    f'sessions {others}, this transaction holds {held}')
        self.x('COMMIT' if commit else 'ROLLBACK')
        return f'{out} (first {first})'

    def op_refused_loop(self):
        """One transaction looping refused purchases in exception blocks:
        nothing may stay held (not a hold, not an in-flight slot)."""
        price = self.sh.pool[0][1]
        self.solo_topup(price)
        us = self.rng.sample(self.sh.unavailable, 25)
        arr = 'ARRAY[' + ','.join(f"'{u}'" for u in us) + ']'
        self.x('BEGIN')
        self.x(f"""DO $$ DECLARE u text; BEGIN
            FOREACH u IN ARRAY {arr} LOOP
                BEGIN
                    PERFORM twilio_numbers.numbers_purchase({int(self.solo)}, u);
                EXCEPTION WHEN OTHERS THEN NULL;
                END;
            END LOOP;
        END $$""")
        held, n = self.my_holds()
        self.x('ROLLBACK')
        if held > 0 or n > 0:
            self.sh.violate('refused purchases release their holds',
                            f'account {self.solo}: after 25 refused purchases in exception blocks the '
                            f'transaction still had {n} purchase(s) in flight holding {held}')
        return 'ok'

    # -- read-only transactions -----------------------------------------

    def op_read_only(self):
        """A change attempted in a READ ONLY transaction must fail before any
        request that changes Twilio."""
        kind = self.rng.choice(['purchase', 'purchase', 'hosted', 'update'])
        sid = None
        if kind == 'purchase':
            phone = self.sh.pick(self.rng)[0][0]
        elif kind == 'hosted':
            phone = self.rng.choice(self.sh.hosted_pool)
        else:
            try:
                _, phone, sid, *_ = self.owned([self.solo])
            except Skip:
                raise
        if kind != 'update' and not self.sh.reserve(phone):
            raise Skip('reserved')
        self.touch(phone)
        t0 = now()
        try:
            self.x('BEGIN READ ONLY')
            try:
                if kind == 'purchase':
                    self.purchase_sql(self.shared_acct(), phone, {})
                elif kind == 'hosted':
                    self.x("""SELECT twilio_numbers.numbers_hosted_order(%s, %s, 'ro@example.com', '+15005550006', %s)""",
                           (self.shared_acct(), phone, ADDRESS_SID))
                else:
                    self.x('SELECT twilio_numbers.numbers_update(%s, %s, friendly_name => %s)',
                           (self.solo, phone, 'read only?'))
                out = 'ok?!'
            except psycopg2.Error as e:
                if code_of(e) == CONN_LOST:
                    raise
                out = self.sh.error('read_only', e)
            self.rollback()
        finally:
            t1 = now()
            if kind != 'update':
                # keep it reserved a little: a late request would still be ours
                time.sleep(0.05)
                self.sh.unreserve(phone)
        with self.sh.lock:
            self.sh.readonly.append({'kind': kind, 'phone': phone, 'sid': sid, 't0': t0, 't1': t1, 'out': out})
        return f'{kind}: {out}'

    # -- money -----------------------------------------------------------

    def op_deposit(self):
        acct = self.shared_acct()
        if acct in self.sh.solvent or self.rng.random() < 0.2:
            self.x('SELECT twilio_numbers.numbers_deposit(%s, %s, %s)',
                   (acct, self.rng.randint(100, 3000) / 100, f'deposit c{self.i}'))
        else:
            raise Skip('insolvent account')

    def op_bad_deposit(self):
        amount = self.rng.choice(['NaN', 'Infinity', '-Infinity', '-5', '0', '1.234', '-0.01'])
        try:
            self.x('SELECT twilio_numbers.numbers_deposit(%s, %s::numeric)', (self.sh.victim, amount))
            return f'accepted {amount}'
        except psycopg2.Error as e:
            if code_of(e) in ('22023', '22003'):
                return f'{self.sh.error("bad_deposit", e)} (refused)'
            raise

    # -- hosted orders ---------------------------------------------------

    def op_hosted_order(self):
        acct = self.shared_acct()
        phone = self.rng.choice(self.sh.hosted_pool)
        with self.sh.lock:
            if phone in self.sh.reserved:
                raise Skip('reserved')
        self.touch(phone)
        rollback = self.rng.random() < 0.25
        self.x('BEGIN')
        self.x("""SELECT twilio_numbers.numbers_hosted_order(account_id => %s, phone_number => %s,
                    contact_email => 'it@example.com', contact_phone_number => '+15005550006', address_sid => %s,
                    friendly_name => %s, sms_url => %s)""",
               (acct, phone, ADDRESS_SID, f'hosted c{self.i}', f'https://app.example.com/hosted/{self.i}'))
        self.x('ROLLBACK' if rollback else 'COMMIT')
        return 'ok (rolled back)' if rollback else 'ok'

    def op_hosted_drive(self):
        """The carrier and Twilio's staff move an order on — one the tables
        know (committed), from the status Twilio has now, never back."""
        rows = self.x("""SELECT order_sid FROM twilio_numbers.hosted_orders
                         WHERE status NOT IN ('completed', 'failed', 'canceled', 'action-required')
                         ORDER BY order_sid""")
        if not rows:
            raise Skip('no order')
        at_twilio = {o['sid']: o for o in self.sh.emu.state()['hosted_orders']}
        seq = ['received', 'pending-verification', 'verified', 'pending-loa', 'carrier-processing', 'testing',
               'completed']
        live = [r[0] for r in rows if at_twilio.get(r[0], {}).get('status') in seq[:-1]]
        if not live:
            raise Skip('no live order at Twilio')
        sid = self.rng.choice(live)
        self.touch(at_twilio[sid]['phone_number'])
        status = at_twilio[sid]['status']
        r = self.rng.random()
        if r < 0.08:
            nxt = 'failed'
        elif r < 0.12:
            nxt = 'action-required'
        elif r < 0.3:
            nxt = 'completed'
        else:
            nxt = seq[seq.index(status) + 1]
        st, _ = self.sh.emu.control('POST', f'/hosted/{sid}', {'status': nxt})
        return f'-> {nxt}' if st == 200 else f'emulator {st}'

    def op_hosted_cancel(self):
        rows = self.x("""SELECT account_id, order_sid FROM twilio_numbers.hosted_orders
                         WHERE status NOT IN ('completed', 'failed', 'canceled') ORDER BY order_sid""")
        if not rows:
            raise Skip('no order')
        acct, sid = self.rng.choice(rows)
        rollback = self.rng.random() < 0.2
        self.x('BEGIN')
        self.x('SELECT twilio_numbers.numbers_hosted_cancel(%s, %s)', (acct, sid))
        self.x('ROLLBACK' if rollback else 'COMMIT')
        return 'ok (rolled back)' if rollback else 'ok'

    def op_search(self):
        self.x("""SELECT count(*) FROM twilio_numbers.numbers_search(country => 'US', area_code => %s,
                                                                    max_results => 20)""",
               (self.rng.choice(AREA_CODES),))


# weights of the operations (name, weight)
OPS = [
    ('buy', 12), ('buy_many', 5), ('buy_rollback', 4), ('race', 5),
    ('update', 6), ('trunk', 4), ('transfer', 6), ('release', 7),
    ('transfer_release', 5), ('savepoints', 5), ('exception_block', 4),
    ('solo_refused_then_fit', 5), ('refused_loop', 1), ('read_only', 3),
    ('deposit', 4), ('bad_deposit', 1),
    ('hosted_order', 3), ('hosted_drive', 4), ('hosted_cancel', 1), ('search', 2), ('messaging', 4),
]


# ---------------------------------------------------------------------------
# background threads: billing, faults, kills, the other system, the watcher
# ---------------------------------------------------------------------------

def loop_until_end(sh, rng, lo, hi, fn, name, stop_event=None):
    conn = None
    while not sh.stop.is_set() and now() < sh.deadline and not (stop_event and stop_event.is_set()):
        time.sleep(rng.uniform(lo, hi))
        if sh.stop.is_set() or now() >= sh.deadline or (stop_event and stop_event.is_set()):
            break
        try:
            if fn.__code__.co_argcount >= 2:
                if not alive(conn):
                    conn = connect(f'soak-{name}')
                fn(conn, rng)
            else:
                fn(rng)
        except psycopg2.Error as e:
            sh.count(name, sh.error(name, e), str(e))
            if alive(conn):
                try:
                    q(conn, 'ROLLBACK')
                except psycopg2.Error:
                    pass
        except Exception as e:
            sh.count(name, 'driver error', f'{type(e).__name__}: {e}')
            log(f'{name}: {traceback.format_exc()}')
    if alive(conn):
        conn.close()


def billing_thread(sh):
    rng = random.Random(f'{sh.args.seed}:billing')
    sh.billing_as_of = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)

    def one(conn, rng):
        r = rng.random()
        days = rng.randint(1, 10) if r < 0.7 else rng.randint(15, 45) if r < 0.95 else rng.randint(60, 120)
        as_of = sh.billing_as_of + datetime.timedelta(days=days, seconds=rng.randint(0, 86399))
        # keep the solvent accounts solvent: every period due by as_of (28-day
        # months, so more than enough), and a little more
        for acct in sh.solvent:
            if rng.random() < 0.85:
                due = q1(conn, """SELECT coalesce(sum(monthly_price * (1 + greatest(0,
                                      extract(epoch FROM (%s - next_billing_at)) / 86400 / 28)::int)), 0)
                                  FROM twilio_numbers.owned_numbers
                                  WHERE account_id = %s AND status IN ('active', 'past_due')""", (as_of, acct))[0]
                amount = round(float(due) * 1.2 + rng.randint(100, 1000) / 100, 2)
                q(conn, 'SELECT twilio_numbers.numbers_deposit(%s, %s, %s)', (acct, amount, 'billing top-up'))
        row = qd(conn, 'SELECT * FROM twilio_numbers.numbers_run_billing(%s)', (as_of,))[0]
        sh.billing_as_of = as_of
        sh.count('billing', 'ok')
        with sh.lock:
            for k in ('numbers_charged', 'periods_charged', 'past_due', 'reactivated', 'released'):
                sh.billing_totals[k] += int(row.get(k) or 0)
            sh.billing_totals['amount_cents'] += int(round(float(row.get('amount') or 0) * 100))

    loop_until_end(sh, rng, 0.7, 2.5, one, 'billing')


FAULT_TARGETS = [
    # name, method, path regex, weight
    ('purchase POST', 'POST', r'IncomingPhoneNumbers\.json$', 6),
    ('update POST', 'POST', r'IncomingPhoneNumbers/PN[0-9a-f]{32}\.json$', 3),
    ('release DELETE', 'DELETE', r'IncomingPhoneNumbers/PN', 4),
    ('owned list GET', 'GET', r'IncomingPhoneNumbers\.json$', 3),
    ('search GET', 'GET', r'AvailablePhoneNumbers/US', 3),
    ('trunk', None, r'^/v1/Trunks/TK[0-9a-f]{32}/PhoneNumbers', 2),
    ('hosted order', None, r'^/v2/HostedNumber/Orders', 2),
    ('messaging', None, r'^/v1/Services/MG[0-9a-f]{32}/PhoneNumbers', 2),
]
FAULT_ACTIONS = [('reset_before', 3), ('reset_after', 3), ('status 500', 2), ('status 503', 2), ('status 502', 1),
                 ('status 429', 2), ('latency', 3), ('hang', 1), ('malformed', 1), ('truncate', 1)]


def wchoice(rng, items):
    r = rng.uniform(0, sum(i[-1] for i in items))
    for i in items:
        r -= i[-1]
        if r <= 0:
            return i
    return items[-1]


def fault_thread(sh):
    rng = random.Random(f'{sh.args.seed}:faults')

    def one(rng):
        name, method, path, _ = wchoice(rng, FAULT_TARGETS)
        action = wchoice(rng, FAULT_ACTIONS)[0]
        f = {'path': path, 'times': rng.randint(1, 3)}
        if method:
            f['method'] = method
        if action.startswith('status'):
            f['action'] = 'status'
            f['status'] = int(action.split()[1])
            if f['status'] == 429:
                f['retry_after'] = 1
        else:
            f['action'] = action
        if action == 'latency':
            f['ms'] = rng.randint(50, 900)
        if action == 'hang':
            f['times'] = 1
        st, js = sh.emu.control('POST', '/faults', f)
        if st == 201:
            with sh.lock:
                sh.fault_counts[(name, action)] += 1
        # faults nobody hits pile up: clear them now and then
        if rng.random() < 0.03:
            sh.emu.control('DELETE', '/faults')
            with sh.lock:
                sh.fault_counts[('all', 'cleared')] += 1

    loop_until_end(sh, rng, 0.1, 0.5, one, 'faults')


def wait_up(timeout_s=120):
    c = connect('soak-wait', timeout_s)
    deadline = now() + timeout_s
    while now() < deadline:
        try:
            r = q1(c, 'SELECT pid FROM twilio_numbers.worker_status')
            if r and r[0]:
                c.close()
                return r[0]
        except psycopg2.Error:
            c = connect('soak-wait', timeout_s)
        time.sleep(0.2)
    c.close()
    return None


def killer_thread(sh):
    rng = random.Random(f'{sh.args.seed}:kills')

    def one(conn, rng):
        if sh.kills_stop.is_set():
            return
        kind = wchoice(rng, [('backend mid-purchase', 5), ('worker', 3), ('backend', 2)])[0]
        pid = None
        what = ''
        if kind == 'worker':
            r = q1(conn, 'SELECT pid FROM twilio_numbers.worker_status')
            pid = r and r[0]
            what = 'worker'
        else:
            deadline = now() + 3
            while now() < deadline and pid is None:
                cond = "AND query ILIKE '%%numbers_purchase%%'" if kind == 'backend mid-purchase' else ''
                rows = q(conn, f"""SELECT pid, left(regexp_replace(query, '\\s+', ' ', 'g'), 90)
                                   FROM pg_stat_activity
                                   WHERE application_name LIKE 'soak-c%%' AND state = 'active' {cond}
                                   ORDER BY pid""")
                if rows:
                    pid, what = rng.choice(rows)
                else:
                    time.sleep(0.01)
            if pid is None:
                sh.count('kill', f'nothing to kill ({kind})')
                return
        if not pid:
            sh.count('kill', 'no worker pid')
            return
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError as e:
            sh.count('kill', f'kill failed: {e}')
            return
        t = now()
        with sh.lock:
            sh.kills.append((t, kind, pid, what))
        sh.count('kill', kind)
        log(f'kill -9 {pid} ({kind}: {what})')
        conn.close()
        wait_up()

    loop_until_end(sh, rng, 3.0, 10.0, one, 'killer', sh.kills_stop)


def other_system_thread(sh):
    rng = random.Random(f'{sh.args.seed}:other')
    n = [0]

    def one(rng):
        n[0] += 1
        other_system_buy(sh, rng, rng.choice(['main', 'sub']), f'during-{n[0]}')
        sh.count('other system buys', 'ok')

    loop_until_end(sh, rng, 6.0, 15.0, one, 'other system')


def db_view(conn):
    """live rows by SID, and the SIDs of released rows."""
    live, released = {}, set()
    for sid, status, phone, acct, nid, tw in q(conn, """
            SELECT twilio_sid, status, phone_number, account_id, number_id, twilio_account_sid
            FROM twilio_numbers.owned_numbers
            WHERE twilio_sid IS NOT NULL AND status IN ('active', 'past_due', 'released')"""):
        if status == 'released':
            released.add(sid)
        else:
            live[sid] = (nid, phone, acct, status, tw)
    return live, released


def check_sandwich(sh, conn, label):
    """DB before, Twilio, DB after: a released row's number must not be at
    Twilio; a row live before and after must be at Twilio; the other
    system's numbers must be there, unchanged."""
    others = list(sh.other)
    live0, rel0 = db_view(conn)
    st = sh.emu.state()
    live2, _ = db_view(conn)
    emu = {n['sid']: n for n in st['numbers']}
    for sid in sorted(rel0 & emu.keys()):
        n = emu[sid]
        sh.violate('released numbers are gone from Twilio',
                   f'{label}: {n["phone_number"]} {sid} is released in owned_numbers but still at Twilio '
                   f'(account {n["account_sid"]})', key=sid)
    for sid, (nid, phone, acct, status, tw) in sorted(live0.items()):
        if sid in emu or live2.get(sid, (None,))[0] != nid:
            continue
        sh.violate('live numbers are at Twilio',
                   f'{label}: number {nid} {phone} {sid} of account {acct} is {status} in owned_numbers but '
                   f'Twilio does not have it', key=sid)
    for o in others:
        n = emu.get(o['sid'])
        if n is None:
            sh.violate('the other system\'s numbers are untouched',
                       f'{label}: {o["phone"]} {o["sid"]} ({o["label"]}) is gone from Twilio', key=o['sid'])
        elif n['account_sid'] != o['account_sid'] or n['friendly_name'] != o['friendly_name'] or n['trunk_sid']:
            sh.violate('the other system\'s numbers are untouched',
                       f'{label}: {o["phone"]} {o["sid"]} changed: account {n["account_sid"]} (was '
                       f'{o["account_sid"]}), friendly name {n["friendly_name"]!r}, trunk {n["trunk_sid"]}',
                       key=o['sid'])
    return st


def watcher_thread(sh):
    rng = random.Random(f'{sh.args.seed}:watch')

    def one(conn, rng):
        check_sandwich(sh, conn, 'during the run')
        with sh.lock:
            sh.watch_rounds += 1

    loop_until_end(sh, rng, 1.0, 2.0, one, 'watcher')


# ---------------------------------------------------------------------------
# settling and the invariants
# ---------------------------------------------------------------------------

def settle(sh, conn, label, timeout_s=90, stall_s=25):
    """Wait until no job but hosted polls is pending, nothing is in flight,
    and the hosted orders agree with Twilio — at most timeout_s, and at most
    stall_s without any progress.  Returns (settled, seconds, conn)."""
    t0 = now()
    ok_rounds = 0
    last, last_change = None, now()
    pend = inflight = hosted_diff = '?'
    while now() - t0 < timeout_s and now() - last_change < stall_s:
        try:
            pend, inflight, done = q1(conn, """SELECT
                (SELECT count(*) FROM twilio_numbers.work_queue WHERE status = 'pending' AND kind <> 'hosted_poll'
                 AND NOT coalesce(payload ? 'watching_until', false)),
                (SELECT count(*) FROM twilio_numbers.inflight),
                (SELECT count(*) FROM twilio_numbers.work_queue WHERE status <> 'pending')""")
            st = sh.emu.state()
            emu_orders = {o['sid']: o['status'] for o in st['hosted_orders']}
            db_orders = q(conn, "SELECT order_sid, status FROM twilio_numbers.hosted_orders")
            hosted_diff = sum(1 for sid, s in db_orders
                              if s not in ('canceled',) and emu_orders.get(sid, 'canceled') != s)
        except psycopg2.Error:
            conn = connect('soak-check')
            continue
        if (pend, inflight, done, hosted_diff) != last:
            last, last_change = (pend, inflight, done, hosted_diff), now()
        if pend == 0 and inflight == 0 and hosted_diff == 0:
            ok_rounds += 1
            if ok_rounds >= 3:
                return True, now() - t0, conn
        else:
            ok_rounds = 0
        time.sleep(0.5)
    log(f'{label}: not settled after {now() - t0:.0f}s (pending jobs {pend}, in flight {inflight}, '
        f'hosted orders differing {hosted_diff})')
    return False, now() - t0, conn


class Results:
    def __init__(self):
        self.items = []

    def add(self, name, failures, info=None):
        self.items.append((name, list(failures), info))


def history_of(conn, sid, phone, reqlog, until=None):
    """Where a number at Twilio came from: rows, jobs, drift, the requests
    (the last ones before until, HH:MM:SS.mmm UTC, when given)."""
    parts = []
    for r in q(conn, """SELECT number_id, account_id, status, origin, released_at FROM twilio_numbers.owned_numbers
                        WHERE twilio_sid = %s OR phone_number = %s ORDER BY number_id""", (sid, phone)):
        parts.append(f'row {r[0]} acct {r[1]} {r[2]} {r[3]}' + (f' released {r[4]:%H:%M:%S}' if r[4] else ''))
    for r in q(conn, """SELECT job_id, kind, status, attempts, last_error FROM twilio_numbers.work_queue
                        WHERE twilio_sid = %s ORDER BY job_id""", (sid,)):
        parts.append(f'job {r[0]} {r[1]} {r[2]} x{r[3]}' + (f' ({r[4][:60]})' if r[4] else ''))
    for r in q(conn, """SELECT finding, action FROM twilio_numbers.drift WHERE twilio_sid = %s ORDER BY drift_id""",
               (sid,)):
        parts.append(f'drift {r[0]}: {r[1]}')
    reqs = [e for e in reqlog if (e['method'] != 'GET' and sid and sid in e['path'])
            or (e['method'] == 'POST' and e['path'].endswith('IncomingPhoneNumbers.json')
                and e['form'].get('PhoneNumber') == phone)]
    if until:
        reqs = [e for e in reqs if e['started_at'][11:23] <= until]
    for e in reqs[-5:]:
        parts.append(f'{e["method"]} {e["path"].split("/")[-1]} {e["started_at"][11:23]} -> {e["status"]}'
                     + (f' fault {e["fault"]}' if e.get('fault') else ''))
    return '; '.join(parts) or 'no trace in the database'


def hosted_history(conn, order_sid, phone, reqlog):
    """What happened to a hosted order: its row and history, the requests."""
    parts = []
    for r in q(conn, """SELECT h.status, h.account_id, h.number_id, string_agg(x.status, '>' ORDER BY x.seen_at)
                        FROM twilio_numbers.hosted_orders h
                        LEFT JOIN twilio_numbers.hosted_order_history x USING (order_sid)
                        WHERE h.order_sid = %s GROUP BY 1, 2, 3""", (order_sid,)):
        parts.append(f'row {r[0]} acct {r[1]} number {r[2]} seen {r[3]}')
    for r in q(conn, """SELECT job_id, kind, status, attempts, last_error FROM twilio_numbers.work_queue
                        WHERE payload->>'order_sid' = %s ORDER BY job_id""", (order_sid,)):
        parts.append(f'job {r[0]} {r[1]} {r[2]} x{r[3]}' + (f' ({r[4][:70]})' if r[4] else ''))
    reqs = [e for e in reqlog if e['path'].startswith('/v2/HostedNumber/Orders')
            and (order_sid in e['path'] or e['form'].get('PhoneNumber') == phone) and e['method'] != 'GET']
    for e in reqs[-5:]:
        parts.append(f'{e["method"]} {e["path"].split("/")[-1]} {e["started_at"][11:23]} -> {e["status"]}'
                     + (f' fault {e["fault"]}' if e.get('fault') else ''))
    return '; '.join(parts) or 'no trace in the database'


def twilio_vs_rows(sh, conn, st, reqlog, label):
    """(missing, unaccounted, wrong_account) lists of strings."""
    emu = {n['sid']: n for n in st['numbers']}
    rows = qd(conn, """SELECT o.number_id, o.account_id, o.phone_number, o.twilio_sid, o.status,
                              o.twilio_account_sid, a.twilio_account_sid AS mapped
                       FROM twilio_numbers.owned_numbers o JOIN twilio_numbers.accounts a USING (account_id)
                       WHERE o.status <> 'released'""")
    jobs = {r[0]: r[1] for r in q(conn, """SELECT twilio_sid, string_agg(kind || ' ' || status, ',')
                                           FROM twilio_numbers.work_queue
                                           WHERE kind IN ('release', 'compensate') AND status IN ('pending', 'dead')
                                           AND twilio_sid IS NOT NULL GROUP BY 1""")}
    others = {o['sid'] for o in sh.other}
    live = {r['twilio_sid']: r for r in rows if r['status'] in ('active', 'past_due')}
    releasing = {r['twilio_sid']: r for r in rows if r['status'] == 'releasing'}
    missing, unaccounted, wrong = [], [], []
    for sid, r in sorted(live.items(), key=lambda kv: kv[1]['phone_number']):
        n = emu.get(sid)
        if n is None:
            missing.append(f'number {r["number_id"]} {r["phone_number"]} {sid} of account {r["account_id"]} is '
                           f'{r["status"]} but not at Twilio')
            continue
        want = {r['twilio_account_sid'] or MAIN_SID, r['mapped'] or MAIN_SID}
        if want != {n['account_sid']}:
            wrong.append(f'{r["phone_number"]} {sid} is in {n["account_sid"]} at Twilio; its row says '
                         f'{r["twilio_account_sid"] or "main"}, its account {r["account_id"]} maps to '
                         f'{r["mapped"] or "main"}')
    for sid, n in sorted(emu.items(), key=lambda kv: kv[1]['phone_number']):
        if sid in live or sid in others or sid in jobs:
            continue
        if sid in releasing:
            unaccounted.append(f'{n["phone_number"]} {sid}: row {releasing[sid]["number_id"]} is releasing but no '
                               f'release job is pending')
            continue
        unaccounted.append(f'{n["phone_number"]} {sid} in {n["account_sid"]} ({n["origin"]}): '
                           + history_of(conn, sid, n['phone_number'], reqlog))
    return missing, unaccounted, wrong


def explained(err):
    err = err or ''
    markers = ['Injected fault', 'reset', 'Empty reply', 'timed out', 'Timeout', 'timeout', 'not valid JSON',
               'transfer closed', 'Recv failure', 'Connection', 'connection', 'HTTP 5', 'HTTP 429', 'TN005',
               'TN007', 'TN008', 'TN009', 'Retry-After', 'hang']
    return any(m in err for m in markers)


def check_all(sh, conn, st_pre, reqlog, settled_info):
    R = Results()
    st = sh.emu.state()
    emu = {n['sid']: n for n in st['numbers']}

    # 1. money
    # twilio_numbers.integrity: balance = ledger sum, within the limit, one
    # charge per (number, period), a paid period for every active number; and never NaN
    bad = q(conn, """SELECT violation, account_id, number_id, detail FROM twilio_numbers.integrity
                     UNION ALL
                     SELECT 'nan', a.account_id, NULL, 'a NaN balance or ledger entry'
                     FROM twilio_numbers.accounts a
                     WHERE a.balance = 'NaN'::numeric
                        OR EXISTS (SELECT 1 FROM twilio_numbers.ledger l
                                   WHERE l.account_id = a.account_id AND l.amount = 'NaN'::numeric)
                     ORDER BY 1, 2, 3""")
    R.add('twilio_numbers.integrity is empty (balance = ledger sum, within limits), never NaN',
          [f'{v} (account {a}, number {n}): {d}' for v, a, n, d in bad],
          f'{q1(conn, "SELECT count(*) FROM twilio_numbers.accounts")[0]} accounts, '
          f'{q1(conn, "SELECT count(*) FROM twilio_numbers.ledger")[0]} ledger entries')

    # 2. limits
    bad = q(conn, """SELECT account_id, name, balance, credit_limit FROM twilio_numbers.accounts
                     WHERE balance < -credit_limit AND balance <> 'NaN'::numeric ORDER BY 1""")
    R.add('no balance below -credit_limit', [f'account {a} ({n}): balance {b}, credit limit {c}' for a, n, b, c in bad])

    # 3. one charge per (number, period), no overlap
    dup = q(conn, """SELECT number_id, period_start, count(*) FROM twilio_numbers.ledger WHERE kind = 'monthly_fee'
                     GROUP BY 1, 2 HAVING count(*) > 1 ORDER BY 1, 2 LIMIT 20""")
    # (a period charged again for its rest, e.g. at a transfer, is no
    # overlap when the first charge was refunded for it)
    over = q(conn, """SELECT number_id, prev_start, prev_end, period_start, period_end FROM (
                        SELECT number_id, account_id, period_start, period_end,
                               lag(period_start) OVER w AS prev_start, lag(period_end) OVER w AS prev_end,
                               lag(account_id) OVER w AS prev_account
                        FROM twilio_numbers.ledger WHERE kind = 'monthly_fee'
                        WINDOW w AS (PARTITION BY number_id ORDER BY period_start, entry_id)) x
                      WHERE prev_end > period_start
                        AND NOT EXISTS (SELECT 1 FROM twilio_numbers.ledger r
                                        WHERE r.kind = 'refund' AND r.number_id = x.number_id
                                          AND r.account_id = x.prev_account AND r.period_start = x.prev_start)
                      ORDER BY 1 LIMIT 20""")
    charges = q1(conn, "SELECT count(*) FROM twilio_numbers.ledger WHERE kind = 'monthly_fee'")[0]
    R.add('one monthly charge per (number, period), periods never overlap',
          [f'number {n} charged {c} times for the period from {p}' for n, p, c in dup]
          + [f'number {n}: period {a}..{b} overlaps {c}..{d}' for n, a, b, c, d in over],
          f'{charges} monthly charges')

    # 4. Twilio == live rows (+ queued releases + the other system's), right accounts
    missing, unaccounted, wrong = twilio_vs_rows(sh, conn, st, reqlog, 'after reconcile')
    R.add('Twilio holds exactly the live rows (+ queued releases + the other system\'s numbers)',
          [f'live row not at Twilio: {m}' for m in missing]
          + [f'at Twilio, no row accounts for it: {u}' for u in unaccounted],
          f'{len(emu)} numbers at Twilio, '
          f'{q1(conn, "SELECT count(*) FROM twilio_numbers.owned_numbers WHERE status IN (%s, %s)", ("active", "past_due"))[0]} live rows, '
          f'{len(sh.other)} of the other system')
    R.add('every number is in the (sub)account its row and its customer account say', wrong)

    # 5/6. sampled during the run, and now
    check_sandwich(sh, conn, 'after reconcile')
    R.add('released numbers are gone from Twilio (sampled during the run, before and after reconcile)',
          sh.violations.get('released numbers are gone from Twilio', []), f'{sh.watch_rounds} samples')
    vanished = q(conn, """SELECT d.found_at, d.phone_number, d.twilio_sid, d.number_id, d.account_id, d.action
                          FROM twilio_numbers.drift d WHERE d.finding = 'vanished_at_twilio' ORDER BY d.drift_id""")
    R.add('live numbers are at Twilio (sampled; and reconcile never finds one vanished)',
          sh.violations.get('live numbers are at Twilio', [])
          + [f'reconcile at {f:%H:%M:%S}: {p} {s} (number {n}, account {a}) vanished at Twilio: {act}'
             for f, p, s, n, a, act in vanished])

    # 7. the other system's numbers
    fails = list(sh.violations.get('the other system\'s numbers are untouched', []))
    other_sids = {o['sid'] for o in sh.other}
    for o in sh.other:
        s, js = sh.emu.api('GET', f'/2010-04-01/Accounts/{o["account_sid"]}/IncomingPhoneNumbers/{o["sid"]}.json')
        if s != 200:
            fails.append(f'{o["phone"]} {o["sid"]} ({o["label"]}): GET answers {s} — gone')
            continue
        for k in ('friendly_name', 'voice_url', 'sms_url', 'account_sid'):
            if js.get(k) != o[k]:
                fails.append(f'{o["phone"]} {o["sid"]}: {k} is {js.get(k)!r}, was {o[k]!r}')
        if js.get('trunk_sid'):
            fails.append(f'{o["phone"]} {o["sid"]}: put on trunk {js["trunk_sid"]}')
    for e in reqlog:
        if e['method'] == 'GET':
            continue
        touched = [s for s in other_sids if s in e['path'] or e['form'].get('PhoneNumberSid') == s]
        if touched:
            fails.append(f'{e["method"]} {e["path"]} at {e["started_at"][11:23]} -> {e["status"]}'
                         + (f' {json.dumps(e["form"])}' if e['form'] else ''))
    found = q(conn, """SELECT finding, action, count(*) FROM twilio_numbers.drift WHERE twilio_sid = ANY(%s)
                       GROUP BY 1, 2 ORDER BY 1, 2""", (list(other_sids),))
    R.add('the other system\'s numbers are never released, moved or reconfigured', fails,
          f'{len(sh.other)} numbers; reconcile said of them: '
          + (', '.join(f'{f} / {a} x{n}' for f, a, n in found) or 'nothing'))

    # 8. refunds only to the payer of the period
    bad = q(conn, """SELECT r.entry_id, r.account_id, r.number_id, o.phone_number, r.amount, r.period_start, r.period_end,
                            (SELECT string_agg(DISTINCT f.account_id::text, ',') FROM twilio_numbers.ledger f
                             WHERE f.kind = 'monthly_fee' AND f.number_id = r.number_id
                               AND daterange(f.period_start, f.period_end) && daterange(r.period_start, r.period_end, '[]'))
                     FROM twilio_numbers.ledger r JOIN twilio_numbers.owned_numbers o USING (number_id)
                     WHERE r.kind = 'refund' AND NOT EXISTS (
                        SELECT 1 FROM twilio_numbers.ledger f
                        WHERE f.kind = 'monthly_fee' AND f.number_id = r.number_id AND f.account_id = r.account_id
                          AND -f.amount >= r.amount
                          AND (r.period_start IS NULL OR
                               daterange(f.period_start, f.period_end) && daterange(r.period_start, r.period_end, '[]')))
                     ORDER BY r.entry_id""")
    refunds = q1(conn, "SELECT count(*) FROM twilio_numbers.ledger WHERE kind = 'refund'")[0]
    R.add('nobody refunded for a period they did not pay',
          [f'refund {e} of {amt} to account {a} for {p} (number {n}, period {ps}..{pe}); that period was paid by '
           f'account {payers or "nobody"}' for e, a, n, p, amt, ps, pe, payers in bad],
          f'{refunds} refunds')

    # 9. dead letters
    dead = q(conn, """SELECT job_id, kind, phone_number, twilio_sid, attempts, last_error
                      FROM twilio_numbers.queue_dead_letters ORDER BY job_id""")
    R.add('no dead letter without an injected cause',
          [f'job {j} {k} {p} {s} after {a} attempts: {e}' for j, k, p, s, a, e in dead if not explained(e)],
          f'{len(dead)} dead letters'
          + (': ' + '; '.join(f'job {j} {k} {p}: {(e or "")[:80]}' for j, k, p, s, a, e in dead if explained(e))
             if any(explained(d[5]) for d in dead) else ''))

    # 10. errors the clients saw
    fails = [f'{op}: {c} x{n}: {sh.samples.get((op, c), "")}'
             for (op, c), n in sorted(sh.sqlstates.items()) if c not in DOCUMENTED]
    fails += [f'{op}: driver error x{c["driver error"]}: {sh.samples.get((op, "driver error"), "")}'
              for op, c in sorted(sh.stats.items()) if c.get('driver error')]
    by_code = collections.Counter()
    for (_, c), n in sh.sqlstates.items():
        by_code[c] += n
    R.add('every error a client saw is a documented SQLSTATE', fails,
          f'{sum(by_code.values())} errors: ' + ', '.join(f'{c} x{n}' for c, n in sorted(by_code.items())))

    # 11/12. funds checks inside the clients' transactions
    R.add('no purchase refused for funds the balance covered (checked in the buyer\'s transaction)',
          sh.violations.get('no purchase refused for funds the balance covered', []),
          f'{sum(sh.stats["solo_refused_then_fit"].values())} tries')
    R.add('refused purchases release their holds when their savepoint rolls back',
          sh.violations.get('refused purchases release their holds', []),
          f'{sum(sh.stats["solo_refused_then_fit"].values()) + sum(sh.stats["refused_loop"].values())} tries')

    # 13. no number bought twice
    dup = q(conn, """SELECT twilio_sid, string_agg(number_id || ' acct ' || account_id || ' ' || status, ', ')
                     FROM twilio_numbers.owned_numbers WHERE twilio_sid IS NOT NULL
                     GROUP BY 1 HAVING count(*) > 1 ORDER BY 1 LIMIT 20""")
    R.add('one Twilio number per purchase (races for one number)',
          sh.violations.get('one Twilio number per purchase', []) + [f'{s} in rows {r}' for s, r in dup],
          'races: ' + ', '.join(f'{k} x{n}' for k, n in sorted(sh.races.items())))

    # 14. read-only transactions change nothing at Twilio
    fails = []
    for a in sh.readonly:
        for e in reqlog:
            if e['method'] not in ('POST', 'DELETE'):
                continue
            t = parse_iso(e['started_at'])
            # from the op's start (the number is reserved for it from then:
            # a request just before is another client's) to just after its end
            if not (a['t0'] <= t <= a['t1'] + 0.05):
                continue
            hit = ((a['kind'] == 'purchase' and e['path'].endswith('IncomingPhoneNumbers.json')
                    and e['form'].get('PhoneNumber') == a['phone'])
                   or (a['kind'] == 'hosted' and e['path'].startswith('/v2/HostedNumber/Orders')
                       and e['form'].get('PhoneNumber') == a['phone'])
                   or (a['kind'] == 'update' and a['sid'] and a['sid'] in e['path']))
            if hit:
                fails.append(f'{a["kind"]} of {a["phone"]} in BEGIN READ ONLY ({a["out"]}) sent {e["method"]} '
                             f'{e["path"]} -> {e["status"]} at {e["started_at"][11:23]}')
    R.add('read-only transactions send nothing that changes Twilio', fails, f'{len(sh.readonly)} tries')

    # 15. slots
    n53400 = sum(outs.get('53400', 0) for outs in sh.stats.values())
    R.add('no purchase refused for want of in-flight slots (53400) at this load',
          [f'{op}: 53400 x{outs["53400"]}: {sh.samples.get((op, "53400"), "")}'
           for op, outs in sorted(sh.stats.items()) if outs.get('53400')] if n53400 else [])

    # 16. hosted orders
    emu_orders = {o['sid']: o for o in st['hosted_orders']}
    fails = []
    dbo = {r['order_sid']: r for r in qd(conn, """SELECT h.order_sid, h.status, h.number_id, h.incoming_phone_number_sid,
                                                         o.twilio_sid, o.status AS row_status
                                                  FROM twilio_numbers.hosted_orders h
                                                  LEFT JOIN twilio_numbers.owned_numbers o USING (number_id)""")}
    for sid, o in sorted(emu_orders.items()):
        d = dbo.get(sid)
        if d is None:
            if o['status'] not in ('canceled', 'failed'):
                fails.append(f'order {sid} ({o["phone_number"]}) is {o["status"]} at Twilio and unknown here')
            continue
        if d['status'] != o['status']:
            fails.append(f'order {sid} ({o["phone_number"]}) is {o["status"]} at Twilio, {d["status"]} here')
        if o['status'] == 'completed' and d['number_id'] is None:
            fails.append(f'order {sid} ({o["phone_number"]}) completed, but no owned number was made of it')
        if o['status'] == 'completed' and d['twilio_sid'] and d['twilio_sid'] != o['incoming_phone_number_sid']:
            fails.append(f'order {sid}: its number row has {d["twilio_sid"]}, Twilio made {o["incoming_phone_number_sid"]}')
    for sid, d in sorted(dbo.items()):
        if sid not in emu_orders and d['status'] != 'canceled':
            fails.append(f'order {sid} is {d["status"]} here and unknown at Twilio')
    R.add('hosted orders: the tables and Twilio agree', fails,
          f'{len(emu_orders)} orders at Twilio: '
          + ', '.join(f'{k} x{n}' for k, n in sorted(collections.Counter(o['status'] for o in emu_orders.values()).items())))

    # 17. configuration agrees
    fails = []
    for r in qd(conn, """SELECT number_id, phone_number, twilio_sid, friendly_name, trunk_sid FROM twilio_numbers.owned_numbers
                        WHERE status IN ('active', 'past_due') ORDER BY phone_number"""):
        n = emu.get(r['twilio_sid'])
        if n is None:
            continue
        if (r['friendly_name'] or '') != (n['friendly_name'] or '') or (r['trunk_sid'] or '') != (n['trunk_sid'] or ''):
            fails.append(f'{r["phone_number"]} {r["twilio_sid"]}: row has friendly name {r["friendly_name"]!r}, '
                         f'trunk {r["trunk_sid"]}; Twilio {n["friendly_name"]!r}, trunk {n["trunk_sid"]}')
    R.add('live rows\' configuration (friendly name, trunk) is Twilio\'s', fails)

    # 17b. Messaging Services: Twilio's sender pools hold exactly what the live rows say
    pools = {}
    for s in st.get('messaging_services', []):
        for phone in s['phone_numbers']:
            pools[phone] = s['sid']
    fails = []
    rows = {r['phone_number']: r['messaging_service_sid']
            for r in qd(conn, """SELECT phone_number, messaging_service_sid FROM twilio_numbers.owned_numbers
                                 WHERE status IN ('active', 'past_due')""")}
    for phone in sorted(set(pools) | {p for p, s in rows.items() if s}):
        if rows.get(phone) != pools.get(phone):
            fails.append(f'{phone}: row says {rows.get(phone)}, Twilio has it in {pools.get(phone)}')
    R.add('Messaging Service pools are what the live rows say', fails,
          f'{len(pools)} numbers in {len(st.get("messaging_services", []))} services')

    # 18. everything settled
    fails = []
    if not settled_info[0]:
        fails.append(f'the worker did not settle within {settled_info[1]:.0f}s')
    for r in q(conn, """SELECT job_id, kind, phone_number, attempts, next_attempt_at, last_error FROM twilio_numbers.work_queue
                        WHERE status = 'pending' AND kind <> 'hosted_poll'
                          AND NOT coalesce(payload ? 'watching_until', false) ORDER BY job_id LIMIT 20"""):
        fails.append(f'job {r[0]} {r[1]} {r[2]} still pending after {r[3]} attempts: {r[5]}')
    for r in q(conn, """SELECT o.number_id, o.phone_number FROM twilio_numbers.owned_numbers o
                        WHERE o.status = 'releasing' AND NOT EXISTS (
                          SELECT 1 FROM twilio_numbers.work_queue q WHERE q.number_id = o.number_id
                          AND q.status IN ('pending', 'dead')) ORDER BY 1 LIMIT 20"""):
        fails.append(f'number {r[0]} {r[1]} is releasing with no release job pending')
    for r in q(conn, 'SELECT kind, state, pid, phone_number, held FROM twilio_numbers.inflight LIMIT 20'):
        fails.append(f'still in flight: {r}')
    R.add('the worker settled: no job pending, no release half done, nothing in flight', fails,
          f'settled in {settled_info[1]:.1f}s')
    return R


# ---------------------------------------------------------------------------
# the run
# ---------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--seconds', type=int, default=60)
    ap.add_argument('--clients', type=int, default=8)
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--replay', default='')
    ap.add_argument('--weights', default='', help='name=weight,... to change the mix (for experiments)')
    args = ap.parse_args()
    try:
        args.weights = {k: float(v) for k, v in (kv.split('=') for kv in args.weights.split(',') if kv)}
        bad = set(args.weights) - set(dict(OPS))
        if bad:
            raise ValueError(f'no such operation: {", ".join(sorted(bad))}')
    except ValueError as e:
        print(f'soak: --weights: {e}; operations: {", ".join(n for n, _ in OPS)}')
        print('0 passed, 1 failed')
        return 1
    replay = args.replay or f'bash test/soak --seconds {args.seconds} --clients {args.clients} --seed {args.seed}'
    sh = Shared(args)
    print(f'soak: seed {args.seed}, {args.seconds} s, {args.clients} clients', flush=True)
    try:
        if not EMU_URL or not MAIN_SID:
            raise SetupError('EMU_URL and TN_ACCOUNT_SID must be set (run test/soak, not soak.py)')
        setup(sh)
        if not wait_up(60):
            raise SetupError('the background worker is not running')
    except Exception as e:
        msg = str(e) if isinstance(e, SetupError) else f'{type(e).__name__}: {e}'
        print(f'soak: set-up failed: {msg}', flush=True)
        print('0 passed, 1 failed', flush=True)
        return 1

    sh.t_start = now()
    sh.deadline = sh.t_start + args.seconds
    threads = [Client(sh, i) for i in range(args.clients)]
    threads += [threading.Thread(target=f, args=(sh,), name=f.__name__, daemon=True)
                for f in (billing_thread, fault_thread, killer_thread, other_system_thread, watcher_thread)]
    for t in threads:
        t.start()
    # no kills in the last tenth: what they leave behind is then judged by
    # the worker alone, not only by the reconcile at start-up
    while now() < sh.deadline:
        time.sleep(0.2)
        if now() > sh.t_start + 0.9 * args.seconds:
            sh.kills_stop.set()
        if int(now() - sh.t_start) % 10 == 0:
            pass
    sh.stop.set()
    for t in threads:
        t.join(timeout=STATEMENT_TIMEOUT_MS / 1000 + 30)
    hung = [t.name for t in threads if t.is_alive()]
    ran = now() - sh.t_start
    sh.emu.control('DELETE', '/faults')
    log(f'run over after {ran:.1f}s; faults cleared; settling')

    conn = connect('soak-check')
    wait_up()
    settled1 = settle(sh, conn, 'before reconcile')
    conn = settled1[2]
    # before reconcile: the worker alone must have put Twilio in step
    reqlog = sh.emu.control('GET', '/requests')[1]
    st_pre = check_sandwich(sh, conn, 'settled, before reconcile')
    missing_pre, unacc_pre, wrong_pre = twilio_vs_rows(sh, conn, st_pre, reqlog, 'before reconcile')
    findings = qd(conn, 'SELECT * FROM twilio_numbers.numbers_reconcile()')
    settled2 = settle(sh, conn, 'after reconcile')
    conn = settled2[2]
    reqlog = sh.emu.control('GET', '/requests')[1]
    R = check_all(sh, conn, st_pre, reqlog, (settled1[0] and settled2[0], settled1[1] + settled2[1]))

    # ---- the report ----------------------------------------------------
    out = []
    total_ops = sum(sum(c.values()) for op, c in sh.stats.items() if op in dict(OPS))
    out.append(f'ran {ran:.1f}s: {total_ops} operations by {args.clients} clients'
               + (f'; threads still running at the end: {", ".join(hung)}' if hung else ''))
    out.append('operations (outcome x count):')
    for op in [o for o, _ in OPS] + sorted(k for k in sh.stats if k not in dict(OPS)):
        if op in sh.stats:
            c = sh.stats[op]
            out.append(f'  {op:24} {sum(c.values()):6}  ' + ', '.join(f'{k} x{n}' for k, n in c.most_common()))
    nf = sum(v for (t, a), v in sh.fault_counts.items() if t != 'all')
    out.append(f'faults injected: {nf}')
    by_t = collections.defaultdict(list)
    for (t, a), v in sorted(sh.fault_counts.items()):
        by_t[t].append(f'{a} x{v}')
    for t, v in by_t.items():
        out.append(f'  {t:24} ' + ', '.join(v))
    out.append(f'kills (kill -9): {len(sh.kills)}: '
               + ', '.join(f'{k} x{n}' for k, n in collections.Counter(k for _, k, _, _ in sh.kills).items()))
    bt = sh.billing_totals
    out.append(f'billing: {sh.stats["billing"]["ok"]} passes up to as_of {sh.billing_as_of:%Y-%m-%d}; '
               f'{bt["numbers_charged"]} numbers / {bt["periods_charged"]} periods charged, '
               f'{bt["amount_cents"] / 100:.2f} billed, {bt["past_due"]} past due, {bt["reactivated"]} reactivated, '
               f'{bt["released"]} released after grace')
    out.append(f'other system: {len(sh.other)} numbers bought directly at Twilio '
               f'({sum(1 for o in sh.other if o["label"].startswith("before"))} before CREATE EXTENSION)')
    out.append(f'settled before reconcile in {settled1[1]:.1f}s: {len(missing_pre)} live rows missing at Twilio, '
               f'{len(unacc_pre)} numbers at Twilio no row accounts for, {len(wrong_pre)} in a wrong account')
    for u in unacc_pre[:10]:
        out.append(f'  before reconcile, at Twilio without a row: {u}')
    fc = collections.Counter((f.get('finding'), f.get('action')) for f in findings)
    out.append(f'numbers_reconcile(): {len(findings)} findings'
               + (': ' + ', '.join(f'{f} / {a} x{n}' for (f, a), n in sorted(fc.items())) if findings else ''))
    out.append('invariants:')
    passed = failed = 0
    for name, fails, info in R.items:
        if fails:
            failed += 1
            out.append(f'  FAIL  {name}' + (f'  [{info}]' if info else ''))
            for f in fails[:12]:
                out.append(f'          {f}')
            if len(fails) > 12:
                out.append(f'          ... and {len(fails) - 12} more')
            # evidence for the first two: the tables, the requests Twilio got, what the soak did
            for f in fails[:3]:
                m = re.search(r'(\+[1-9][0-9]{6,14})\b(?:.*?\b(PN[0-9a-f]{32})\b)?', f)
                if not m:
                    continue
                phone, sid = m.groups()
                h = re.search(r'\b(HR[0-9a-f]{32})\b', f)
                if h:
                    try:
                        out.append(f'          evidence {h.group(1)}: {hosted_history(conn, h.group(1), phone, reqlog)}')
                    except psycopg2.Error as e:
                        out.append(f'          evidence {h.group(1)}: {e}')
                until = f[:12] if re.match(r'\d\d:\d\d:\d\d\.\d{3} ', f) else None
                if sid:
                    try:
                        out.append(f'          evidence {phone} {sid}: {history_of(conn, sid, phone, reqlog, until)}')
                    except psycopg2.Error as e:
                        out.append(f'          evidence {phone}: {e}')
                trail = [t for t in sh.trail.get(phone, []) if not until or t[:12] <= until]
                if trail and not sid and not h:
                    out.append(f'          evidence {phone}: what the soak did to it')
                for t in trail[-6:]:
                    out.append(f'            soak: {t}')
        else:
            passed += 1
            out.append(f'  ok    {name}' + (f'  [{info}]' if info else ''))
    if failed:
        out.append(f'seed {args.seed} found {failed} violated invariant(s); replay: {replay}')
    print('\n'.join(out), flush=True)
    print(f'{passed} passed, {failed} failed', flush=True)
    return 1 if failed else 0


if __name__ == '__main__':
    try:
        sys.exit(main())
    except Exception:
        traceback.print_exc()
        print('soak: the driver failed: see the traceback above')
        print('0 passed, 1 failed')
        sys.exit(1)
