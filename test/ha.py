"""test/ha.py — the scenarios of test/ha (which sets up etcd, two Patroni
nodes and the emulator, and runs this): kill -9 of the leader during a
purchase POST and during a billing pass, then a planned switchover.  Prints
each check as ok/not ok with its evidence; the last line is
`N passed, N failed`.  Environment: HA_DIR, HA_REST, HA_PG (node1's and
node2's ports), HA_PATRONICTL, EMU_URL and the tests' credentials."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import psycopg2

W = os.environ['HA_DIR']
REST = dict(zip(('node1', 'node2'), os.environ['HA_REST'].split()))
PG = dict(zip(('node1', 'node2'), os.environ['HA_PG'].split()))
EMU = os.environ['EMU_URL']
PATRONICTL = os.environ['HA_PATRONICTL'].split()
ACCOUNT = os.environ['TN_ACCOUNT_SID']

passed = failed = 0


def check(ok, name, evidence=''):
    """One check: ok/not ok, its name, and the evidence on the next lines."""
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
    print('%s %d - %s' % ('ok' if ok else 'not ok', passed + failed, name))
    for line in str(evidence).splitlines():
        if line.strip():
            print('#   ' + line)
    sys.stdout.flush()


def note(text):
    print('# ' + text)
    sys.stdout.flush()


def finish():
    print('%d passed, %d failed' % (passed, failed))
    sys.exit(1 if failed else 0)


def http(method, url, body=None, auth=None, form=None):
    """An HTTP request; returns (status, decoded JSON or text)."""
    headers = {}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers['Content-Type'] = 'application/json'
    if form is not None:
        data = urllib.parse.urlencode(form).encode()
        headers['Content-Type'] = 'application/x-www-form-urlencoded'
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    if auth:
        import base64
        req.add_header('Authorization', 'Basic ' + base64.b64encode(('%s:%s' % auth).encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            status, text = r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        status, text = e.code, e.read().decode()
    try:
        return status, json.loads(text) if text else None
    except ValueError:
        return status, text


import urllib.parse  # noqa: E402 (used by http)


def emu(method, path, body=None):
    return http(method, EMU + path, body)[1]


def emu_owned():
    return sorted(n['phone_number'] for n in emu('GET', '/_emulator/state')['numbers'])


def emu_requests(method=None, contains=None):
    return [r for r in emu('GET', '/_emulator/requests')
            if (method is None or r['method'] == method) and (contains is None or contains in r['path'])]


def connect(node):
    c = psycopg2.connect(host=os.path.join(W, node), port=PG[node], user='postgres', dbname='postgres',
                         connect_timeout=5)
    c.autocommit = True
    return c


def q(node, sql, args=None):
    """One query on a node; returns all rows."""
    c = connect(node)
    try:
        with c.cursor() as cur:
            cur.execute(sql, args)
            return cur.fetchall() if cur.description else []
    finally:
        c.close()


def q1(node, sql, args=None):
    rows = q(node, sql, args)
    return rows[0][0] if rows else None


def wait(cond, seconds, step=0.2):
    """Poll cond (exceptions count as not yet) until true or time is up."""
    deadline = time.time() + seconds
    while True:
        try:
            v = cond()
            if v:
                return v
        except Exception:
            pass
        if time.time() > deadline:
            return None
        time.sleep(step)


def members():
    """Patroni's view of the cluster: {name: (role, state, timeline)}."""
    for node in REST:
        try:
            st, cl = http('GET', 'http://127.0.0.1:%s/cluster' % REST[node])
            if st == 200:
                return {m['name']: (m['role'], m['state'], m.get('timeline')) for m in cl['members']}
        except Exception:
            pass
    return {}


def leader():
    """The node that leads and accepts writes with its worker running, or None."""
    for name, (role, state, _) in members().items():
        if role == 'leader' and state == 'running':
            try:
                if q1(name, 'SELECT NOT pg_is_in_recovery() AND '
                            '(SELECT pid IS NOT NULL FROM twilio_numbers.worker_status)'):
                    return name
            except Exception:
                pass
    return None


def replica_streaming():
    """Both nodes up: one leader, one replica running on the leader's
    timeline (it follows the leader's latest promotion)."""
    m = members()
    up = sorted((r, tl) for r, s, tl in m.values() if s in ('running', 'streaming'))
    return len(m) == 2 and [r for r, _ in up] == ['leader', 'replica'] and up[0][1] == up[1][1] is not None


def patronictl_list():
    return subprocess.run(PATRONICTL + ['list'], capture_output=True, text=True).stdout


def postmaster_pid(node):
    with open(os.path.join(W, node, 'data', 'postmaster.pid')) as f:
        return int(f.readline())


def wait_replayed(lead, other, seconds=30):
    """The replica has replayed everything the leader wrote so far."""
    lsn = q1(lead, 'SELECT pg_current_wal_lsn()::text')
    return wait(lambda: q1(other, "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (lsn,)), seconds)


def server_log(node):
    try:
        with open(os.path.join(W, node, 'log', 'postgresql.log'), errors='replace') as f:
            return f.read()
    except OSError:
        return ''


def integrity(node):
    return q(node, 'SELECT violation, account_id, number_id, detail FROM twilio_numbers.integrity')


def double_charges(node):
    return q1(node, "SELECT count(*) FROM (SELECT number_id FROM twilio_numbers.ledger WHERE kind = 'monthly_fee' "
                    "GROUP BY number_id, period_start HAVING count(*) > 1) d")


def queue_drained(node):
    return q1(node, "SELECT NOT EXISTS (SELECT 1 FROM twilio_numbers.work_queue WHERE status = 'pending') "
                    "AND NOT EXISTS (SELECT 1 FROM twilio_numbers.inflight)")


def kill_leader(node):
    pid = postmaster_pid(node)
    os.kill(pid, signal.SIGKILL)
    note('kill -9 %d (the postmaster of %s, the leader) at %s' % (pid, node, time.strftime('%H:%M:%S')))
    return pid


def kill_instance(node):
    """kill -9 of every process of the leader's PostgreSQL, postmaster first
    (as a crash of the machine would): killing the postmaster alone leaves
    its children running until they notice, and the worker's billing pass
    goes on to its end."""
    pm = postmaster_pid(node)
    children = []
    for d in os.listdir('/proc'):
        if d.isdigit():
            try:
                with open('/proc/%s/stat' % d) as f:
                    if int(f.read().rsplit(')', 1)[1].split()[1]) == pm:
                        children.append(int(d))
            except (OSError, ValueError, IndexError):
                pass
    os.kill(pm, signal.SIGKILL)
    for pid in children:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    note('kill -9 of %s\'s postmaster (%d) and its %d processes at %s'
         % (node, pm, len(children), time.strftime('%H:%M:%S')))


def kill_machine(node):
    """kill -9 of the node's Patroni, then of its PostgreSQL (every process):
    the machine is gone."""
    with open(os.path.join(W, node, 'patroni.pid')) as f:
        pid = int(f.read())
    os.kill(pid, signal.SIGKILL)
    note('kill -9 of %s\'s Patroni (%d)' % (node, pid))
    kill_instance(node)


def restart_node(node):
    """Start the node's Patroni again (after kill_machine), as test/ha does."""
    subprocess.Popen(['runuser', '-u', 'postgres', '--', 'sh', '-c',
                      'cd "$1" && echo $$ >patroni.pid && exec patroni patroni.yml >>patroni.log 2>&1',
                      'sh', os.path.join(W, node)], start_new_session=True,
                     stderr=open(os.path.join(W, node, 'runuser.log'), 'a'))
    rejoined = wait(replica_streaming, 180, 0.5)
    check(rejoined, 'the dead node\'s Patroni started again: %s rejoins as a replica' % node, patronictl_list())


def new_account(node, name, deposit):
    acct = q1(node, 'INSERT INTO twilio_numbers.accounts (name) VALUES (%s) RETURNING account_id', (name,))
    q(node, 'SELECT twilio_numbers.numbers_deposit(%s, %s)', (acct, deposit))
    return acct


def after_failover(what, old):
    """Wait for a leader again, both nodes back; note who leads and how."""
    lead = wait(leader, 120, 0.5)
    check(lead is not None, '%s: a leader accepts writes again, its worker running, without a DBA' % what,
          patronictl_list())
    if lead is None:
        finish()
    status = q(lead, 'SELECT status, live_timeline, this_timeline FROM twilio_numbers.numbers_incarnation()')[0]
    note('%s leads now (%s), timeline %s; numbers_incarnation(): %s (live as timeline %s)'
         % (lead, 'the same node, restarted and promoted by Patroni' if lead == old else 'failed over',
            status[2], status[0], status[1]))
    return lead


# ---------------------------------------------------------------------------
lead = leader()
other = [n for n in REST if n != lead][0]
check(lead == 'node1' and replica_streaming(), 'two Patroni nodes: node1 leads, node2 streams from it',
      patronictl_list())
if not lead:
    finish()
wait(lambda: q1(lead, 'SELECT last_reconcile_at IS NOT NULL FROM twilio_numbers.worker_status'), 30)
check(q1(lead, 'SELECT status FROM twilio_numbers.numbers_incarnation()') == 'live'
      and q1(lead, "SHOW twilio_numbers.follow_promotion") == 'on',
      'the leader is the live incarnation; follow_promotion = on',
      repr(q(lead, 'SELECT status, live_system_identifier, live_timeline FROM twilio_numbers.numbers_incarnation()')))

# ---------------------------------------------------------------------------
def purchase_crash(label, machine, acct, kept, lost):
    """Scenario 1: kill -9 of the leader while a purchase POST is on its way
    to Twilio: its postmaster alone (Patroni restarts and promotes it, or
    fails over), or its machine (Patroni too: the other node takes over
    when the leader key expires; the dead node's Patroni is started again
    afterwards and rejoins as a replica)."""
    global lead, other
    KEPT, LOST = kept, lost
    note('scenario %s: kill -9 of %s while a purchase POST is on its way to Twilio'
         % (label, "the leader's postmaster" if not machine else "the leader's machine (Patroni and PostgreSQL)"))
    both = wait(replica_streaming, 120, 0.5)
    check(both, 'both nodes are up: one leader, one streaming replica', patronictl_list())
    lead = leader() or lead
    other = [n for n in REST if n != lead][0]
    q(lead, 'SELECT twilio_numbers.numbers_purchase(%s, %s)', (acct, KEPT))
    emu('POST', '/_emulator/faults', {'method': 'POST', 'path': r'IncomingPhoneNumbers\.json$',
                                      'action': 'latency', 'ms': 3000, 'times': 1})
    buyer_error = []


    def buy():
        c = connect(lead)
        try:
            with c.cursor() as cur:
                cur.execute('SELECT twilio_numbers.numbers_purchase(%s, %s)', (acct, LOST))
            buyer_error.append('committed')
        except Exception as e:
            buyer_error.append(str(e).strip().splitlines()[0])


    t = threading.Thread(target=buy)
    t.start()
    posted = wait(lambda: q1(lead, 'SELECT posted FROM twilio_numbers.inflight WHERE phone_number = %s', (LOST,)), 10, 0.05)
    check(posted, 'the purchase of %s is in flight, its POST sent (inflight.posted)' % LOST)
    replayed = wait_replayed(lead, other)
    attempt = q(lead, 'SELECT attempt_id, state, recorded_in FROM twilio_numbers.purchase_attempts WHERE phone_number = %s',
                (LOST,))
    note('its attempt on %s: %s; replayed by %s: %s' % (lead, attempt, other, bool(replayed)))
    old = lead
    if machine:
        kill_machine(lead)
    else:
        kill_leader(lead)
    t.join(30)
    check(buyer_error and buyer_error[0] != 'committed', "the buyer's session ended without a commit",
          'the buyer saw: %s' % (buyer_error[0] if buyer_error else 'nothing (still waiting)'))
    landed = wait(lambda: [n['sid'] for n in emu('GET', '/_emulator/state')['numbers'] if n['phone_number'] == LOST],
                  10, 0.1)
    lost_sid = landed[0] if landed else None
    check(landed, 'the POST landed at Twilio after the crash (the emulator holds %s, %s)' % (LOST, lost_sid),
          repr([(r['seq'], r['method'], r['path'].rsplit('/', 1)[-1], r['status'], r['started_at'])
                for r in emu_requests('POST', 'IncomingPhoneNumbers')][-1:]))
    lead = after_failover('scenario %s' % label, old)
    outcome = wait(lambda: q1(lead, "SELECT outcome FROM twilio_numbers.purchase_attempts WHERE phone_number = %s "
                                    "AND state = 'closed'", (LOST,)), 90)
    check(outcome == 'compensated', "the dead purchase's attempt is settled as compensated, without a DBA",
          repr(q(lead, 'SELECT attempt_id, state, outcome, recorded_in, closed_at FROM twilio_numbers.purchase_attempts '
                       'WHERE phone_number = %s', (LOST,))))
    gone = wait(lambda: LOST not in emu_owned(), 60)
    deletes = [r for r in emu_requests('DELETE') if lost_sid and lost_sid in r['path']]
    check(gone and [r['status'] for r in deletes] == [204],
          '%s is released at Twilio: one DELETE of %s, answered 204; the emulator no longer holds it' % (LOST, lost_sid),
          'request log: %s\nthe emulator holds: %s' % (
              [(r['seq'], r['method'], r['path'].rsplit('/', 1)[-1], r['status'], r['started_at']) for r in deletes],
              emu_owned()))
    check(KEPT in emu_owned() and q1(lead, "SELECT status FROM twilio_numbers.owned_numbers WHERE phone_number = %s",
                                     (KEPT,)) == 'active',
          'the committed purchase %s is kept: at Twilio and active' % KEPT,
          'emulator holds: %s' % emu_owned())
    unproven = q(lead, "SELECT finding, phone_number, action FROM twilio_numbers.drift "
                       "WHERE finding = 'unproven_after_failover'")
    check(not unproven, 'nothing is left unproven_after_failover for a DBA', repr(unproven))
    if machine:
        restart_node(old)
    follows = [l for l in server_log(lead).splitlines() if 'follows its promotion' in l]
    note('server log of %s: %s' % (lead, follows[-1] if follows else '(no "follows its promotion" line)'))
    iv = integrity(lead)
    check(not iv, 'twilio_numbers.integrity is empty (money conserved)', repr(iv))


KEPT, LOST = '+14155550190', '+14155550192'
acct = new_account(lead, 'HA scenario 1', 100)
purchase_crash('1a', False, acct, KEPT, LOST)
purchase_crash('1b', True, new_account(lead, 'HA scenario 1b', 100), '+14155550180', '+14155550182')

# ---------------------------------------------------------------------------
def billing_crash(label, postmaster_only):
    """Scenario 2: kill -9 of the leader in the middle of the worker's
    billing pass (its postmaster alone, or every process of it); returns the
    leader afterwards."""
    global lead, other
    note('scenario %s: kill -9 of %s in the middle of the worker\'s billing pass'
         % (label, "the leader's postmaster alone" if postmaster_only else 'every process of the leader'))
    both = wait(replica_streaming, 120, 0.5)
    check(both, 'both nodes are back: one leader, one streaming replica', patronictl_list())
    lead = leader() or lead
    other = [n for n in REST if n != lead][0]
    # numbers that Twilio holds (bought there directly, as if long ago by this
    # database) so that the reconcile of a new leader keeps them: 30 accounts x
    # 30 numbers, each bought 24 months and a day ago -> 24 periods due
    N_ACCTS, PER_ACCT = 30, 30
    st, avail = http('GET', '%s/2010-04-01/Accounts/%s/AvailablePhoneNumbers/US/Local.json?PageSize=1000'
                     % (EMU, ACCOUNT), auth=(os.environ['TN_API_KEY'], os.environ['TN_API_SECRET']))
    # not the numbers of scenario 1 (+1415555018x, +1415555019x)
    phones = [n['phone_number'] for n in avail['available_phone_numbers']
              if n['phone_number'][:11] not in ('+1415555018', '+1415555019')]
    bought = []
    for p in phones[:N_ACCTS * PER_ACCT]:
        st, num = http('POST', '%s/2010-04-01/Accounts/%s/IncomingPhoneNumbers.json' % (EMU, ACCOUNT),
                       auth=(os.environ['TN_API_KEY'], os.environ['TN_API_SECRET']), form={'PhoneNumber': p})
        if st == 201:
            bought.append((num['phone_number'], num['sid']))
    note('bought %d numbers at Twilio (as another system would) for this billing scenario' % len(bought))
    c = connect(lead)
    c.autocommit = False
    with c.cursor() as cur:
        cur.execute("INSERT INTO twilio_numbers.accounts (name) SELECT %s || i FROM generate_series(1, %s) i "
                    "RETURNING account_id", ('HA billing %s, ' % label, N_ACCTS))
        accts = [r[0] for r in cur.fetchall()]
        for a in accts:
            cur.execute('SELECT twilio_numbers.numbers_deposit(%s, 1000)', (a,))
        rows = [(accts[i // PER_ACCT], p, s) for i, (p, s) in enumerate(bought)]
        cur.execute("""
            INSERT INTO twilio_numbers.owned_numbers
                (account_id, phone_number, twilio_sid, status, number_type, iso_country, monthly_price, currency,
                 billing_anchor_day, period_start, next_billing_at)
            SELECT r.a, r.p, r.s, 'active', 'local', 'US', 1.00, 'USD', extract(day FROM d0)::int, d0,
                   twilio_numbers.period_end(d0, extract(day FROM d0)::int)::timestamp AT TIME ZONE 'UTC'
            FROM json_to_recordset(%s::json) r(a bigint, p text, s text),
                 (SELECT ((now() AT TIME ZONE 'UTC')::date - interval '24 months' - interval '1 day')::date AS d0) x
        """, (json.dumps([{'a': a, 'p': p, 's': s} for a, p, s in rows]),))
        cur.execute("""
            SELECT count(*) FROM generate_series(1, 48) k,
                 (SELECT ((now() AT TIME ZONE 'UTC')::date - interval '24 months' - interval '1 day')::date AS d0) x
            WHERE twilio_numbers._period_start(d0, extract(day FROM d0)::int, k) <= (now() AT TIME ZONE 'UTC')::date""")
        expected = cur.fetchone()[0]
        cur.execute('SELECT coalesce(max(run_id), 0) FROM twilio_numbers.billing_runs')
        before_run = cur.fetchone()[0]
    c.commit()
    c.close()
    note('%d numbers in %d accounts, %d periods due each; the worker bills every 3 s, in batches of 100 numbers'
         % (len(rows), N_ACCTS, expected))


    def mid_pass():
        r = q(lead, "SELECT run_id, batches_done, batches_total FROM twilio_numbers.billing_runs "
                    "WHERE run_id > %s AND started_by = 'worker' AND status = 'running' "
                    "AND batches_done >= 1 AND batches_done < batches_total", (before_run,))
        return r[0] if r else None


    caught = wait(mid_pass, 30, 0.01)
    old = lead
    worker = q1(lead, 'SELECT pid FROM twilio_numbers.worker_status')
    if caught and postmaster_only:
        kill_leader(lead)
        t_kill = time.time()
        stopped = wait(lambda: not os.path.exists('/proc/%d' % worker), 120, 0.05)
        note('its worker (pid %d) exited %.1f s after the postmaster died' % (worker, time.time() - t_kill)
             if stopped else 'its worker (pid %d) still runs 120 s after the postmaster died' % worker)
    elif caught:
        kill_instance(lead)
    check(caught, "the leader is killed in the middle of the worker's billing pass",
          'run %s: %s of %s batches done when killed' % caught if caught else
          repr(q(lead, 'SELECT run_id, status, batches_done, batches_total FROM twilio_numbers.billing_runs '
                       'WHERE run_id > %s', (before_run,))))
    killed_run = caught[0] if caught else None
    lead = after_failover('scenario %s' % label, old)
    finished = wait(lambda: q1(lead, "SELECT run_id FROM twilio_numbers.billing_runs WHERE run_id > %s "
                                     "AND status = 'finished' AND started_by = 'worker' ORDER BY run_id LIMIT 1",
                               (killed_run or before_run,)), 120)
    runs = q(lead, 'SELECT run_id, status, batches_done, batches_total, periods_charged FROM twilio_numbers.billing_runs '
                   'WHERE run_id > %s ORDER BY run_id', (before_run,))
    check(finished, 'the new leader\'s worker finishes a billing pass', '\n'.join(map(repr, runs)))
    killed = [r for r in runs if r[0] == killed_run]
    check(killed and killed[0][1] == 'interrupted' and killed[0][2] <= caught[1] + 1 < killed[0][3],
          'the killed pass stopped within a batch of the crash and is marked interrupted, before its last batch',
          repr(killed) if killed else 'run %s is not on the new leader (its start was not replicated)' % killed_run)
    dc = double_charges(lead)
    check(dc == 0, 'no (number, period) is charged twice', 'pairs charged more than once: %s' % dc)
    per = q(lead, """SELECT n, count(*) FROM (SELECT o.number_id, count(l.entry_id) n
                     FROM twilio_numbers.owned_numbers o
                     LEFT JOIN twilio_numbers.ledger l ON l.number_id = o.number_id AND l.kind = 'monthly_fee'
                     WHERE o.account_id = ANY (%s) GROUP BY o.number_id) c GROUP BY n ORDER BY n""", (accts,))
    check(per == [(expected, len(rows))], 'every number is charged each of its %d periods once' % expected,
          'charges per number: count of numbers: %s' % per)
    money = q(lead, """SELECT sum(a.balance), sum(l.amount), (SELECT count(*) FROM twilio_numbers.accounts
                       WHERE account_id = ANY (%s) AND balance <> 1000 - %s)
                       FROM twilio_numbers.accounts a, LATERAL (SELECT sum(amount) amount FROM twilio_numbers.ledger
                       WHERE account_id = a.account_id) l WHERE a.account_id = ANY (%s)""",
              (accts, PER_ACCT * expected, accts))[0]
    check(money[0] == money[1] and money[2] == 0,
          'money is conserved: each account paid exactly %d, its balance the sum of its ledger' % (PER_ACCT * expected),
          'balances %s, ledger %s, accounts off: %s' % money)
    iv = integrity(lead)
    check(not iv, 'twilio_numbers.integrity is empty', repr(iv))
    return lead


billing_crash('2a', True)
billing_crash('2b', False)

# ---------------------------------------------------------------------------
note('scenario 3: a planned switchover while a release waits in the queue')
both = wait(replica_streaming, 120, 0.5)
check(both, 'both nodes are back: one leader, one streaming replica', patronictl_list())
lead = leader() or lead
other = [n for n in REST if n != lead][0]
emu('POST', '/_emulator/faults', {'method': 'DELETE', 'path': 'IncomingPhoneNumbers/PN', 'action': 'status',
                                  'status': 503, 'times': 0})
q(lead, 'SELECT twilio_numbers.numbers_release(%s, %s)', (acct, KEPT))
job = wait(lambda: q(lead, "SELECT job_id, kind, attempts, last_error FROM twilio_numbers.work_queue "
                           "WHERE phone_number = %s AND status = 'pending' AND attempts >= 1", (KEPT,)), 30)
check(job, 'the release of %s is queued on %s, Twilio answering its DELETE 503' % (KEPT, lead), repr(job))
wait_replayed(lead, other)
old = lead
t_switch = time.time()
out = subprocess.run(PATRONICTL + ['switchover', '--leader', old, '--candidate', other, '--force'],
                     capture_output=True, text=True)
note('patronictl switchover --leader %s --candidate %s --force: %s'
     % (old, other, ' / '.join(l for l in (out.stdout + out.stderr).splitlines() if l.strip())))
lead = wait(lambda: leader() == other and other, 120, 0.5)
check(lead == other, 'the switchover made %s the leader' % other, patronictl_list())
if not lead:
    finish()
pending = q(lead, "SELECT job_id, status, attempts FROM twilio_numbers.work_queue WHERE phone_number = %s "
                  "AND kind = 'release'", (KEPT,))
check(job and pending and pending[0][0] == job[0][0] and pending[0][1] == 'pending',
      'the new leader has the queued release', repr(pending))
emu('DELETE', '/_emulator/faults')
drained = wait(lambda: queue_drained(lead), 60)
check(drained, "the new leader's queue drains",
      repr(q(lead, "SELECT job_id, kind, status, attempts, last_error FROM twilio_numbers.work_queue "
                   "WHERE status <> 'done'")))
kept_sid = q1(lead, 'SELECT twilio_sid FROM twilio_numbers.owned_numbers WHERE phone_number = %s', (KEPT,))
dels = [r for r in emu_requests('DELETE') if kept_sid in r['path']]
check(KEPT not in emu_owned() and q1(lead, 'SELECT status FROM twilio_numbers.owned_numbers WHERE phone_number = %s',
                                     (KEPT,)) == 'released'
      and [r['status'] for r in dels][-1:] == [204],
      'the release reached Twilio: %s is gone, its row released' % KEPT,
      'switchover asked at %s UTC; DELETEs of %s: %d answered 503 (the fault), then %s' % (
          time.strftime('%H:%M:%S', time.gmtime(t_switch)), kept_sid,
          sum(1 for r in dels if r['status'] == 503),
          ', '.join('%s at %s' % (r['status'], r['started_at']) for r in dels if r['status'] != 503)))
both = wait(replica_streaming, 120, 0.5)
check(both and members().get(old, ('',))[0] == 'replica', 'the old leader %s streams from the new one' % old,
      patronictl_list())

# ---------------------------------------------------------------------------
note('at the end')
live = sorted(r[0] for r in q(lead, "SELECT phone_number FROM twilio_numbers.owned_numbers WHERE status <> 'released'"))
check(live == emu_owned(), 'Twilio holds exactly the live rows',
      '%d live rows, %d numbers at Twilio; differences: %s'
      % (len(live), len(emu_owned()), sorted(set(live) ^ set(emu_owned()))))
iv = integrity(lead)
check(not iv, 'twilio_numbers.integrity is empty on the final leader', repr(iv))
dead = q(lead, 'SELECT job_id, kind, phone_number, last_error FROM twilio_numbers.queue_dead_letters')
check(not dead, 'no dead letter', repr(dead))
finish()
