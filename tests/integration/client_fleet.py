"""A fleet of mail clients that measures a fault as a client sees it.

The cluster lab's fault tests (and test_client_fleet.py) run a ClientFleet against the load
balancer, cause a fault, stop the fleet and ask it what clients saw: how long logins were
impossible, how long established sessions stayed away, whether any client got a permanent error,
and whether every message the system acknowledged is still there. Standard library only.

Usage
-----
    from client_fleet import Account, ClientFleet

    fleet = ClientFleet(imap=(vip, 143), pop3=(vip, 110), smtp=(vip, 25),   # any may be None
                        accounts=[Account("alice", "secret", "alice@example.org"), ...],
                        idle_holders=2, login_loops=2, appenders=1, smtp_senders=1,
                        pop3_readers=1, ssl_context=ctx, starttls=True, timeout=20.0)
    fleet.start()
    fleet.wait_ready()                 # every worker succeeded once, holders are in IDLE
    t0 = time.monotonic()
    <the fault>
    fleet.stop()                       # joins every thread, bounded
    rep = fleet.report(since=t0)       # a FleetReport over [t0, the stop]
    missing = fleet.verify(rep.acked)  # [] when nothing acknowledged was lost
    print(rep.summary())

One fleet can also span several faults: report(since=t1, until=t2) looks at one window only.
Times are time.monotonic() seconds throughout. Give `timeout` more than the proxy's [backend]
retry_for (15 s by default): a login the proxy holds while it retries is slow, not failed.

Workers
-------
Each worker is a thread with its own account; accounts are given round-robin in the order
holders, login loops, appenders, SMTP senders, POP3 readers (so with accounts on several stores,
put them alternately in the list and every kind of worker reaches every store). A worker loops
until stop() and records an Event for every protocol step (start, end, kind, outcome, response).
After a temporary failure a worker closes its connection and starts again after `retry_pause`;
after a permanent one after `permanent_pause` (a person would have to act, and the servers
throttle failed logins).

- IDLE holder: LOGIN, SELECT INBOX, IDLE; every `idle_refresh` seconds DONE and IDLE again.
  A * BYE, EOF, reset or failed refresh is a disconnect: it logs in again at once, in a loop.
- login loop: LOGIN, SELECT INBOX, FETCH of the last message (BODY.PEEK[]), LOGOUT, then
  `login_pause`.
- appender: one logged-in session that APPENDs to INBOX every `append_interval`.
- SMTP sender: EHLO (STARTTLS and AUTH PLAIN with `smtp_auth`), then one message per transaction
  to the fleet's accounts in turn, `smtp_messages_per_connection` per connection, every
  `smtp_interval`.
- POP3 reader: USER/PASS (or AUTH PLAIN with pop3_auth="plain"), STAT, RETR of the last
  `pop3_retr` messages, QUIT (never DELE: what was acknowledged stays to be verified), then
  `login_pause`.

Every message sent (APPEND or SMTP DATA) carries a unique Message-ID. It is acknowledged only on
the tagged OK of its APPEND or the 250 after its DATA; verify() looks for exactly those.

TLS: without `ssl_context` every protocol is plain text (the endpoint must allow plain-text logins,
e.g. the proxy's [imap]/[pop3] login_without_tls); with it and starttls=True, STARTTLS/STLS
before logging in (and before EHLO's AUTH); with starttls=False, TLS from the first byte
(993/995/465-style endpoints). `tls_server_name` overrides the name the certificate is checked
against (the host by default).

IMAP is spoken by a small client of this module rather than imaplib: IDLE needs reads that time
out and go on, which imaplib's buffered socket file does not survive, and the classification
needs every response line as it came.

Classification
--------------
The report relies on this definition.

temporary: connection refused, reset, timed out or closed (EOF) and TLS failures other than a
certificate that does not verify; IMAP NO [UNAVAILABLE], NO [INUSE], NO [LIMIT] and an untagged
* BYE from the server (also as the greeting, and a tagged NO that follows one); POP3
-ERR [SYS/TEMP], -ERR [IN-USE], -ERR [LOGIN-DELAY]; SMTP 4xx, including 421, and a connection
lost without a reply.

permanent: IMAP NO with any other response code ([AUTHENTICATIONFAILED], [AUTHORIZATIONFAILED],
[OVERQUOTA], ...) or with none, on any command (LOGIN, SELECT, APPEND, FETCH, ...); any BAD;
a response that is not IMAP at all; POP3 -ERR [AUTH], -ERR [SYS/PERM] or -ERR without a code
(a login refused, or any other command refused); SMTP 5xx; a server certificate that does not
verify.

Failures after stop() was asked for are not recorded: they are the fleet closing itself.

Report
------
FleetReport over the window [since, until] (an event belongs to it by the time it ended):

- new_login_gap: over login loops and POP3 readers, the longest interval between consecutive
  successful login completions, counting `since` and `until` as completions: how long a user who
  tried to log in waited, slow logins stretched by the proxy's retries included. A client that
  never logged in during the window gives until - since.
  new_login_gaps: the same per client.
- reconnect_gap: over IDLE holders, the longest time from a disconnect noticed (BYE, EOF, error on
  an established IDLE session) to being logged in and in IDLE again; a holder still away at
  `until` counts until - disconnect. reconnect_gaps: per client; reconnects: every
  (client, disconnected, back or None, response).
- permanent: ErrorRecord(time, client, command, response) for every permanent error.
- temporary: how many temporary errors; temporary_samples: the first few as ErrorRecords.
- acked: AckedMessage(account, message_id, via="append"|"smtp", time) for every message
  acknowledged from the start up to `until` (not only since `since`: a fault can lose mail
  acknowledged before it; after stop() with the default `until`, also what a step in flight
  when stop() was called acknowledged).
- ok_counts: successful steps per kind ("LOGIN", "APPEND", "DATA", ...).

verify(acked) logs in through the IMAP endpoint as each account (retrying temporary failures for
up to `verify_timeout`, 30 s by default), EXAMINEs INBOX, reads every message's Message-ID and
SEARCHes HEADER Message-ID for each acknowledged one not seen; it returns the AckedMessages not
found. An account it cannot log in to (a permanent failure, or temporary ones past the timeout)
raises VerifyError: that is not evidence of a lost message.
"""

import base64
import collections
import itertools
import os
import poplib
import re
import smtplib
import socket
import ssl
import threading
import time

__all__ = ["Account", "AckedMessage", "ClientFleet", "ErrorRecord", "Event", "FleetReport",
           "VerifyError", "classify_imap", "classify_pop3", "classify_smtp"]

Account = collections.namedtuple("Account", "login password address")
AckedMessage = collections.namedtuple("AckedMessage", "account message_id via time")
ErrorRecord = collections.namedtuple("ErrorRecord", "time client command response")
# outcome: "ok", "temporary" or "permanent"; kind: the protocol step ("LOGIN", "IDLE", "DATA"...).
Event = collections.namedtuple("Event", "client kind start end outcome response")

OK, TEMPORARY, PERMANENT = "ok", "temporary", "permanent"
IMAP_TEMPORARY_CODES = frozenset({"UNAVAILABLE", "INUSE", "LIMIT"})
POP3_TEMPORARY_CODES = frozenset({"SYS/TEMP", "IN-USE", "LOGIN-DELAY"})
# The steps whose success is a login completed (new_login_gap).
LOGIN_KINDS = frozenset({"LOGIN", "PASS", "AUTH"})
TEMPORARY_SAMPLES = 10
RESPONSE_CHARS = 300


class VerifyError(Exception):
    """verify() could not look into an account (it says nothing about the messages there)."""


class Refusal(Exception):
    """A server said no (or broke the protocol): TEMPORARY or PERMANENT, and what it said."""

    def __init__(self, outcome, response):
        super().__init__(response)
        self.outcome = outcome
        self.response = response


def _text(data):
    if isinstance(data, (bytes, bytearray)):
        data = bytes(data).decode("utf-8", "replace")
    return str(data).strip()[:RESPONSE_CHARS]


def _response_code(text):
    """The response code of "[CODE ...] text" ("UNAVAILABLE"), upper-case, or ""."""
    m = re.match(r"\s*\[([^\]\s]+)", text)
    return m.group(1).upper() if m else ""


def classify_imap(status, text):
    """OK, TEMPORARY or PERMANENT for a tagged IMAP status ("OK", "NO", "BAD") and its text
    ("[UNAVAILABLE] ..."), or for an untagged "BYE"."""
    status = status.upper()
    if status == "OK":
        return OK
    if status == "BYE":
        return TEMPORARY
    if status == "NO" and _response_code(text) in IMAP_TEMPORARY_CODES:
        return TEMPORARY
    return PERMANENT


def classify_pop3(reply):
    """OK, TEMPORARY or PERMANENT for a POP3 reply line ("+OK ..." or "-ERR [SYS/TEMP] ...").
    poplib's own "-ERR EOF" (the server closed) is temporary."""
    reply = _text(reply)
    if reply.startswith("+OK"):
        return OK
    if reply == "-ERR EOF":
        return TEMPORARY
    if reply.startswith("-ERR") and _response_code(reply[4:]) in POP3_TEMPORARY_CODES:
        return TEMPORARY
    return PERMANENT


def classify_smtp(code):
    """OK for 2xx/3xx, TEMPORARY for 4xx, PERMANENT for 5xx and anything else (smtplib's -1:
    a reply that is no SMTP reply). A connection lost is smtplib's SMTPServerDisconnected."""
    if 200 <= code < 400:
        return OK
    if 400 <= code < 500:
        return TEMPORARY
    return PERMANENT


def classify_exception(e):
    """(outcome, response) for an exception a step raised."""
    if isinstance(e, Refusal):
        return e.outcome, e.response
    if isinstance(e, smtplib.SMTPServerDisconnected):
        return TEMPORARY, "connection lost: %s" % e
    if isinstance(e, smtplib.SMTPResponseException):
        return classify_smtp(e.smtp_code), "%d %s" % (e.smtp_code, _text(e.smtp_error))
    if isinstance(e, smtplib.SMTPRecipientsRefused):
        code, text = next(iter(e.recipients.values()))
        return classify_smtp(code), "%d %s" % (code, _text(text))
    if isinstance(e, poplib.error_proto):
        text = _text(e.args[0] if e.args else "")
        return classify_pop3(text), text
    if isinstance(e, ssl.SSLCertVerificationError):
        return PERMANENT, "TLS: %s" % e
    if isinstance(e, (OSError, EOFError)):  # refused, reset, timeout, TLS failures, EOF
        return TEMPORARY, "%s: %s" % (type(e).__name__, e)
    return PERMANENT, "%s: %s" % (type(e).__name__, e)


def imap_quote(s):
    """An IMAP quoted string (the fleet's logins and passwords are printable ASCII)."""
    if any(ord(c) < 32 or ord(c) > 126 for c in s):
        raise ValueError("IMAP quoted strings here take printable ASCII only: %r" % s)
    return '"%s"' % s.replace("\\", "\\\\").replace('"', '\\"')


def new_message(message_id, sender, to, subject, size=0):
    """A small RFC 5322 message (CRLF line ends) with the given Message-ID."""
    body = "Sent by the hamail client fleet.\r\n" + ("x" * 70 + "\r\n") * (size // 72)
    date = time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime())
    return ("From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\nDate: %s\r\nMessage-ID: %s\r\n"
            "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n%s"
            % (sender, to, subject, date, message_id, body)).encode()


class ImapConnection:
    """A minimal IMAP4rev1 client over a socket: tagged commands, literals both ways, IDLE.

    command() returns (status, text, untagged) where untagged is a list of (line, literals);
    a server that closes the connection raises EOFError, or Refusal(TEMPORARY) when it said
    * BYE first. Reads time out after `timeout` (TimeoutError), except poll() which waits as
    long as it is told and returns None when nothing came."""

    def __init__(self, endpoint, timeout, ssl_context=None, starttls=False, server_name=None,
                 source_address=None, on_socket=None):
        self.timeout = timeout
        self.buf = bytearray()
        self.tags = itertools.count(1)
        self.bye = None
        self.sock = socket.create_connection(endpoint, timeout, source_address=source_address)
        try:
            self._open(ssl_context, starttls, server_name or endpoint[0], on_socket)
        except BaseException:
            self.close()
            raise

    def _open(self, ssl_context, starttls, server_name, on_socket):
        """TLS as asked, the greeting, STARTTLS."""
        if on_socket:
            on_socket(self.sock)
        if ssl_context is not None and not starttls:
            self.sock = ssl_context.wrap_socket(self.sock, server_hostname=server_name)
            if on_socket:
                on_socket(self.sock)
        greeting = self.read_line()[0]
        if greeting.startswith(b"* BYE"):
            raise Refusal(TEMPORARY, _text(greeting))
        if not greeting.startswith((b"* OK", b"* PREAUTH")):
            raise Refusal(PERMANENT, "greeting: " + _text(greeting))
        if ssl_context is not None and starttls:
            self.check(self.command("STARTTLS"))
            if self.buf:
                raise Refusal(PERMANENT, "bytes after the STARTTLS answer, before TLS")
            self.sock = ssl_context.wrap_socket(self.sock, server_hostname=server_name)
            if on_socket:
                on_socket(self.sock)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def send(self, data):
        self.sock.sendall(data if isinstance(data, bytes) else data.encode())

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            if self.bye is not None:
                raise Refusal(TEMPORARY, self.bye)
            raise EOFError("the server closed the connection")
        self.buf += chunk

    def _take_line(self):
        """The next CRLF-ended line from the buffer (without CRLF), or None."""
        i = self.buf.find(b"\r\n")
        if i < 0:
            return None
        line = bytes(self.buf[:i])
        del self.buf[:i + 2]
        return line

    def read_line(self):
        """One response (line, [literals]): a line ending in {n} continues after n bytes."""
        parts, literals = [], []
        while True:
            line = self._take_line()
            while line is None:
                self._fill()
                line = self._take_line()
            parts.append(line)
            m = re.search(rb"\{(\d+)\}$", line)
            if not m:
                break
            n = int(m.group(1))
            while len(self.buf) < n:
                self._fill()
            literals.append(bytes(self.buf[:n]))
            del self.buf[:n]
        whole = b"".join(parts)
        if whole.startswith(b"* BYE"):
            self.bye = _text(whole)
        return whole, literals

    def poll(self, wait):
        """The next response if one comes within `wait` seconds, else None. Only for lines
        without literals (IDLE's untagged updates)."""
        line = self._take_line()
        if line is not None:
            return self._untagged(line)
        self.sock.settimeout(wait)
        try:
            self._fill()
        except (socket.timeout, TimeoutError):
            return None
        finally:
            self.sock.settimeout(self.timeout)
        line = self._take_line()
        return None if line is None else self._untagged(line)

    def _untagged(self, line):
        if line.startswith(b"* BYE"):
            self.bye = _text(line)
        return line

    def start(self, text):
        """Sends a command line; returns its tag."""
        tag = "f%d" % next(self.tags)
        self.send("%s %s\r\n" % (tag, text))
        return tag

    def finish(self, tag):
        """Reads up to the tagged response of `tag`: (status, text, untagged)."""
        untagged = []
        while True:
            line, literals = self.read_line()
            if line.startswith(tag.encode() + b" "):
                status, _, text = line[len(tag) + 1:].decode("utf-8", "replace").partition(" ")
                return status.upper(), text, untagged
            if line.startswith(b"+"):
                raise Refusal(PERMANENT, "unexpected continuation: " + _text(line))
            untagged.append((line, literals))

    def command(self, text):
        return self.finish(self.start(text))

    def continuation(self, tag):
        """Waits for "+" after a command that takes one (APPEND literal, IDLE); a tagged
        answer instead is returned as (status, text), else None."""
        while True:
            line, _ = self.read_line()
            if line.startswith(b"+"):
                return None
            if line.startswith(tag.encode() + b" "):
                status, _, text = line[len(tag) + 1:].decode("utf-8", "replace").partition(" ")
                return status.upper(), text

    @staticmethod
    def check(answer):
        """The answer when OK; Refusal otherwise (a NO after a BYE is temporary)."""
        status, text, untagged = answer
        if status == "OK":
            return answer
        for line, _ in untagged:
            if status == "NO" and line.startswith(b"* BYE"):
                raise Refusal(TEMPORARY, _text(line))
        raise Refusal(classify_imap(status, text), "%s %s" % (status, _text(text)))

    def login(self, login, password):
        return self.check(self.command("LOGIN %s %s" % (imap_quote(login), imap_quote(password))))

    def select(self, mailbox="INBOX", readonly=False):
        """SELECT (or EXAMINE); returns the EXISTS count."""
        _, _, untagged = self.check(
            self.command("%s %s" % ("EXAMINE" if readonly else "SELECT", imap_quote(mailbox))))
        exists = 0
        for line, _ in untagged:
            m = re.match(rb"\* (\d+) EXISTS", line)
            if m:
                exists = int(m.group(1))
        return exists

    def append(self, mailbox, message):
        tag = self.start("APPEND %s {%d}" % (imap_quote(mailbox), len(message)))
        refused = self.continuation(tag)
        if refused:
            return self.check((refused[0], refused[1], []))
        self.send(message + b"\r\n")
        return self.check(self.finish(tag))

    def logout(self):
        return self.check(self.command("LOGOUT"))


class _Stopping(Exception):
    """The fleet is stopping: leave the worker's loop."""


class _Worker(threading.Thread):
    """What every worker shares: its account, steps timed and recorded, its socket (so that
    stop() can cut a step that hangs)."""

    role = "worker"

    def __init__(self, fleet, index, account):
        super().__init__(name="%s-%d(%s)" % (self.role, index, account.login), daemon=True)
        self.fleet = fleet
        self.index = index
        self.account = account
        self.ready = threading.Event()
        self.sock = None
        self.seq = itertools.count(1)

    def track(self, sock):
        self.sock = sock

    def cut(self):
        """Unblocks a step in progress (after stop(), when the worker did not end in time)."""
        sock = self.sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def step(self, kind, fn, *args):
        """Runs fn(*args) as the protocol step `kind`, records it and returns its result; a
        failure is recorded and re-raised."""
        start = time.monotonic()
        try:
            result = fn(*args)
        except Exception as e:
            outcome, response = classify_exception(e)
            self.fleet._record(self.name, kind, start, outcome, response)
            e.fleet_recorded = True
            raise
        self.fleet._record(self.name, kind, start, OK, "")
        return result

    def pause(self, seconds):
        if self.fleet._stopping.wait(seconds):
            raise _Stopping()

    def stopping(self):
        return self.fleet._stopping.is_set()

    def message_id(self):
        return "<fleet-%s-%d-%d@hamail-fleet.test>" % (self.fleet.run_id, self.index,
                                                      next(self.seq))

    def run(self):
        while not self.stopping():
            try:
                self.cycle()
                self.close()
            except _Stopping:
                break
            except Exception as e:
                self.close()
                if self.stopping():
                    break
                outcome, response = classify_exception(e)
                if not getattr(e, "fleet_recorded", False):  # failed between two steps
                    self.fleet._record(self.name, "CLIENT", time.monotonic(), outcome, response)
                try:
                    self.pause(self.fleet.permanent_pause if outcome == PERMANENT
                               else self.fleet.retry_pause)
                except _Stopping:
                    break
        self.close()

    def cycle(self):
        raise NotImplementedError

    def close(self):
        pass


class _ImapWorker(_Worker):
    conn = None

    def connect(self):
        f = self.fleet
        self.conn = ImapConnection(f.imap, f.timeout, f.ssl_context, f.starttls,
                                   f.tls_server_name, f.source_address, self.track)
        return self.conn

    def open_session(self):
        """CONNECT, LOGIN, SELECT INBOX; returns the EXISTS count."""
        self.step("CONNECT", self.connect)
        self.step("LOGIN", self.conn.login, self.account.login, self.account.password)
        return self.step("SELECT", self.conn.select, "INBOX")

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


class _IdleHolder(_ImapWorker):
    role = "idle"

    def idle(self):
        tag = self.conn.start("IDLE")
        refused = self.conn.continuation(tag)
        if refused:
            self.conn.check((refused[0], refused[1], []))
            raise Refusal(PERMANENT, "IDLE ended at once: %s %s" % refused)
        return tag

    def done(self, tag):
        self.conn.send("DONE\r\n")
        return self.conn.check(self.conn.finish(tag))

    def hold(self, tag):
        """Waits in IDLE for up to idle_refresh; a BYE or EOF raises."""
        until = time.monotonic() + self.fleet.idle_refresh
        while time.monotonic() < until and not self.stopping():
            line = self.conn.poll(0.2)
            if line is not None and line.startswith(b"* BYE"):
                raise Refusal(TEMPORARY, _text(line))

    def cycle(self):
        self.open_session()
        tag = self.step("IDLE", self.idle)
        self.ready.set()
        while True:
            # A failure from here on is a disconnect of an established session.
            self.step("IDLE", self.hold, tag)
            if self.stopping():
                try:
                    self.done(tag)
                    self.conn.logout()
                except Exception:
                    pass
                raise _Stopping()
            self.step("DONE", self.done, tag)
            tag = self.step("IDLE", self.idle)


class _LoginLoop(_ImapWorker):
    role = "login"

    def fetch_last(self, exists):
        return self.conn.check(self.conn.command("FETCH %d (BODY.PEEK[])" % exists))

    def cycle(self):
        exists = self.open_session()
        self.ready.set()
        if exists > 0:
            self.step("FETCH", self.fetch_last, exists)
        self.step("LOGOUT", self.conn.logout)
        self.close()
        self.pause(self.fleet.login_pause)


class _Appender(_ImapWorker):
    role = "append"

    def cycle(self):
        self.open_session()
        while True:
            mid = self.message_id()
            msg = new_message(mid, self.account.address, self.account.address,
                              "fleet append %s" % mid, self.fleet.message_size)
            self.step("APPEND", self.conn.append, "INBOX", msg)
            self.fleet._ack(self.account.login, mid, "append")
            self.ready.set()
            self.pause(self.fleet.append_interval)


class _StdlibClientWorker(_Worker):
    """A worker whose session is a smtplib or poplib client object in self.client."""

    client = None

    def close(self):
        if self.client is not None:
            try:
                self.client.close()
            except OSError:
                pass
            self.client = None


class _SmtpSender(_StdlibClientWorker):
    role = "smtp"
    recipients = None

    def connect(self):
        f = self.fleet
        host, port = f.smtp
        if f.ssl_context is not None and not f.starttls:
            c = smtplib.SMTP_SSL(host, port, timeout=f.timeout, context=f.ssl_context,
                                 source_address=f.source_address)
        else:
            c = smtplib.SMTP(host, port, timeout=f.timeout, source_address=f.source_address)
        self.client = c
        self.track(c.sock)
        code, text = c.ehlo("fleet.hamail.test")
        if code != 250:
            raise smtplib.SMTPResponseException(code, text)
        if f.ssl_context is not None and f.starttls:
            # server_hostname: smtplib uses the host given to connect().
            code, text = c.starttls(context=f.ssl_context)
            self.track(c.sock)
            code, text = c.ehlo("fleet.hamail.test")
            if code != 250:
                raise smtplib.SMTPResponseException(code, text)

    def authenticate(self):
        c = self.client
        c.user, c.password = self.account.login, self.account.password
        code, text = c.auth("PLAIN", c.auth_plain, initial_response_ok=True)
        return code

    def transaction(self, rcpt):
        c = self.client
        mid = self.message_id()
        sender = self.account.address if self.fleet.smtp_auth else self.fleet.smtp_sender
        code, text = c.mail(sender)
        if code != 250:
            raise smtplib.SMTPResponseException(code, text)
        code, text = c.rcpt(rcpt.address)
        if code not in (250, 251):
            raise smtplib.SMTPResponseException(code, text)
        code, text = c.data(new_message(mid, sender, rcpt.address, "fleet smtp %s" % mid,
                                        self.fleet.message_size))
        if code != 250:
            raise smtplib.SMTPResponseException(code, text)
        self.fleet._ack(rcpt.login, mid, "smtp")

    def cycle(self):
        if self.recipients is None:  # every account in turn, each sender from another one
            accounts = self.fleet.accounts
            i = self.index % len(accounts)
            self.recipients = itertools.cycle(accounts[i:] + accounts[:i])
        self.step("CONNECT", self.connect)
        if self.fleet.smtp_auth:
            self.step("AUTH", self.authenticate)
        for _ in range(self.fleet.smtp_messages_per_connection):
            self.step("DATA", self.transaction, next(self.recipients))
            self.ready.set()
            self.pause(self.fleet.smtp_interval)
        self.step("QUIT", self.client.quit)


class _Pop3Reader(_StdlibClientWorker):
    role = "pop3"

    def connect(self):
        f = self.fleet
        host, port = f.pop3
        if f.ssl_context is not None and not f.starttls:
            c = poplib.POP3_SSL(host, port, timeout=f.timeout, context=f.ssl_context)
        else:
            c = poplib.POP3(host, port, timeout=f.timeout)
        self.client = c
        self.track(c.sock)
        if f.ssl_context is not None and f.starttls:
            c.stls(f.ssl_context)
            self.track(c.sock)

    def login(self):
        c = self.client
        if self.fleet.pop3_auth == "plain":
            token = base64.b64encode(("\0%s\0%s" % (self.account.login, self.account.password))
                                     .encode()).decode()
            return c._shortcmd("AUTH PLAIN " + token)
        c.user(self.account.login)
        return c.pass_(self.account.password)

    def retrieve(self, count):
        for i in range(max(1, count - self.fleet.pop3_retr + 1), count + 1):
            self.client.retr(i)

    def cycle(self):
        self.step("CONNECT", self.connect)
        self.step("AUTH" if self.fleet.pop3_auth == "plain" else "PASS", self.login)
        self.ready.set()
        count, _ = self.step("STAT", self.client.stat)
        if count:
            self.step("RETR", self.retrieve, count)
        self.step("QUIT", self.client.quit)
        self.close()
        self.pause(self.fleet.login_pause)


class FleetReport:
    """What the clients saw during [since, until]; see the module's docstring."""

    def __init__(self, since, until, events, acked, roles, acked_until=None):
        self.since, self.until = since, until
        inside = [e for e in events if since <= e.end <= until]
        self.permanent = [ErrorRecord(e.end, e.client, e.kind, e.response)
                          for e in inside if e.outcome == PERMANENT]
        temporary = [e for e in inside if e.outcome == TEMPORARY]
        self.temporary = len(temporary)
        self.temporary_samples = [ErrorRecord(e.end, e.client, e.kind, e.response)
                                  for e in temporary[:TEMPORARY_SAMPLES]]
        acked_until = until if acked_until is None else acked_until
        self.acked = [a for a in acked if a.time <= acked_until]
        self.ok_counts = collections.Counter(e.kind for e in inside if e.outcome == OK)
        by_client = collections.defaultdict(list)
        for e in events:
            by_client[e.client].append(e)
        self.new_login_gaps = {}
        self.reconnect_gaps = {}
        self.reconnects = []
        for client, role in roles.items():
            mine = sorted(by_client.get(client, []), key=lambda e: e.end)
            if role in ("login", "pop3"):
                points = [since] + [e.end for e in mine if e.kind in LOGIN_KINDS and
                                    e.outcome == OK and since <= e.end <= until] + [until]
                self.new_login_gaps[client] = max(b - a for a, b in zip(points, points[1:]))
            elif role == "idle":
                self.reconnect_gaps[client] = self._reconnects(client, mine)
        self.new_login_gap = max(self.new_login_gaps.values(), default=0.0)
        self.reconnect_gap = max(self.reconnect_gaps.values(), default=0.0)

    def _reconnects(self, client, events):
        """The holder's longest time away within the window; appends to self.reconnects."""
        up, away, why, longest = False, None, "", 0.0
        for e in events:
            if e.end > self.until:
                break
            if e.kind == "IDLE" and e.outcome == OK:
                if away is not None:
                    self.reconnects.append((client, away, e.end, why))
                    longest = max(longest, e.end - away)
                up, away = True, None
            elif e.outcome != OK and up:
                up = False
                if e.end >= self.since:
                    away, why = e.end, e.response
        if away is not None:
            self.reconnects.append((client, away, None, why))
            longest = max(longest, self.until - away)
        return longest

    def summary(self):
        """One line for a log."""
        def worst(gaps):
            return max(gaps, key=gaps.get) if gaps else "-"
        via = collections.Counter(a.via for a in self.acked)
        text = ("window %.1fs: new-login gap %.2fs (%s), reconnect gap %.2fs (%s, %d reconnects), "
                "logins ok %d, acked %d append + %d smtp, temporary %d, permanent %d"
                % (self.until - self.since, self.new_login_gap, worst(self.new_login_gaps),
                   self.reconnect_gap, worst(self.reconnect_gaps), len(self.reconnects),
                   sum(self.ok_counts[k] for k in LOGIN_KINDS), via["append"], via["smtp"],
                   self.temporary, len(self.permanent)))
        if self.permanent:
            p = self.permanent[0]
            text += "; first permanent: %s %s: %s" % (p.client, p.command, p.response)
        return text


class ClientFleet:
    """Worker threads speaking IMAP, POP3 and SMTP to one endpoint each, recording what they
    saw; see the module's docstring for the workers, the classification and the report."""

    def __init__(self, imap=None, pop3=None, smtp=None, accounts=(), idle_holders=2,
                 login_loops=2, appenders=1, smtp_senders=1, pop3_readers=1, timeout=20.0,
                 ssl_context=None, starttls=True, tls_server_name=None, smtp_auth=False,
                 smtp_sender="fleet@remote.test", pop3_auth="user", idle_refresh=5.0,
                 login_pause=0.05, append_interval=0.1, smtp_interval=0.1,
                 smtp_messages_per_connection=10, pop3_retr=3, message_size=0,
                 retry_pause=0.1, permanent_pause=1.0, source_address=None,
                 verify_timeout=30.0):
        """`imap`, `pop3`, `smtp`: (host, port) or None (no worker of that kind then);
        `accounts`: Account(login, password, address) list, given to workers round-robin;
        `timeout`: per-operation socket timeout in seconds; `source_address`: (host, port) the
        clients' sockets bind to (IMAP and SMTP), None for the system's choice."""
        if not accounts:
            raise ValueError("the fleet needs at least one account")
        if pop3_auth not in ("user", "plain"):
            raise ValueError("pop3_auth is \"user\" or \"plain\"")
        if smtp_auth and ssl_context is None:
            raise ValueError("smtp_auth needs an ssl_context (no passwords in plain text)")
        self.imap, self.pop3, self.smtp = imap, pop3, smtp
        self.accounts = [Account(*a) for a in accounts]
        self.timeout = timeout
        self.ssl_context, self.starttls = ssl_context, starttls
        self.tls_server_name = tls_server_name
        self.smtp_auth, self.smtp_sender, self.pop3_auth = smtp_auth, smtp_sender, pop3_auth
        self.idle_refresh, self.login_pause = idle_refresh, login_pause
        self.append_interval, self.smtp_interval = append_interval, smtp_interval
        self.smtp_messages_per_connection = max(1, smtp_messages_per_connection)
        self.pop3_retr, self.message_size = pop3_retr, message_size
        self.retry_pause, self.permanent_pause = retry_pause, permanent_pause
        self.source_address, self.verify_timeout = source_address, verify_timeout
        self.run_id = os.urandom(4).hex()
        self._lock = threading.Lock()
        self._events = []
        self._acked = []
        self._stopping = threading.Event()
        self._started = self._stopped = None
        self.workers = []
        plan = ((_IdleHolder, idle_holders if imap else 0),
                (_LoginLoop, login_loops if imap else 0),
                (_Appender, appenders if imap else 0),
                (_SmtpSender, smtp_senders if smtp else 0),
                (_Pop3Reader, pop3_readers if pop3 else 0))
        n = 0
        for cls, count in plan:
            for _ in range(count):
                self.workers.append(cls(self, n, self.accounts[n % len(self.accounts)]))
                n += 1
        self.roles = {w.name: w.role for w in self.workers}

    def _record(self, client, kind, start, outcome, response):
        if outcome != OK and self._stopping.is_set():
            return  # the fleet closing its own connections
        with self._lock:
            self._events.append(Event(client, kind, start, time.monotonic(), outcome, response))

    def _ack(self, account, message_id, via):
        with self._lock:
            self._acked.append(AckedMessage(account, message_id, via, time.monotonic()))

    def start(self):
        """Starts every worker; returns at once."""
        if self._started is not None:
            raise RuntimeError("a fleet starts once")
        self._started = time.monotonic()
        for w in self.workers:
            w.start()
        return self

    def wait_ready(self, timeout=30.0):
        """True once every worker succeeded once (holders: in IDLE), False after `timeout`."""
        deadline = time.monotonic() + timeout
        return all(w.ready.wait(max(0.0, deadline - time.monotonic())) for w in self.workers)

    def stop(self, grace=2.0):
        """Asks every worker to end, waits `grace` seconds, then cuts the connections of those
        still in a step and joins them (bounded). Returns the names of threads that did not end
        (normally none)."""
        if self._stopped is None:
            self._stopped = time.monotonic()
        self._stopping.set()
        deadline = time.monotonic() + grace
        for w in self.workers:
            w.join(max(0.0, deadline - time.monotonic()))
        for w in self.workers:
            if w.is_alive():
                w.cut()
        deadline = time.monotonic() + 5.0
        for w in self.workers:
            w.join(max(0.0, deadline - time.monotonic()))
        return [w.name for w in self.workers if w.is_alive()]

    def events(self):
        """A copy of every Event recorded so far."""
        with self._lock:
            return list(self._events)

    def report(self, since=None, until=None):
        """A FleetReport over [since, until]: by default from start() to stop() (or now)."""
        if since is None:
            since = self._started if self._started is not None else time.monotonic()
        acked_until = None
        if until is None:
            until = self._stopped if self._stopped is not None else time.monotonic()
            if self._stopped is not None:  # what a step in flight at stop() acknowledged too
                acked_until = float("inf")
        with self._lock:
            events, acked = list(self._events), list(self._acked)
        return FleetReport(since, until, events, acked, self.roles, acked_until)

    def verify(self, acked=None):
        """The AckedMessages (all the fleet's by default) not found in their account's INBOX;
        see the module's docstring. Raises VerifyError when an account cannot be read."""
        if acked is None:
            with self._lock:
                acked = list(self._acked)
        if self.imap is None:
            raise VerifyError("verify() needs the fleet's IMAP endpoint")
        accounts = {a.login: a for a in self.accounts}
        wanted = collections.defaultdict(list)
        for a in acked:
            if a.account not in accounts:
                raise VerifyError("%s: not one of the fleet's accounts" % a.account)
            wanted[a.account].append(a)
        missing = []
        for login, messages in sorted(wanted.items()):
            missing += self._verify_account(accounts[login], messages)
        return missing

    def _verify_account(self, account, messages):
        deadline = time.monotonic() + self.verify_timeout
        last = ""
        while True:
            conn = None
            try:
                conn = ImapConnection(self.imap, self.timeout, self.ssl_context, self.starttls,
                                      self.tls_server_name, self.source_address)
                conn.login(account.login, account.password)
                exists = conn.select("INBOX", readonly=True)
                seen = set()
                if exists:
                    _, _, untagged = conn.check(conn.command(
                        "FETCH 1:* (BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])"))
                    for _, literals in untagged:
                        for lit in literals:
                            seen.update(m.decode("utf-8", "replace") for m in re.findall(
                                rb"(?im)^message-id:\s*(<[^>\r\n]*>)", lit))
                missing = []
                for a in messages:
                    if a.message_id in seen:
                        continue
                    _, _, untagged = conn.check(conn.command(
                        "UID SEARCH HEADER Message-ID %s" % imap_quote(a.message_id)))
                    found = any(re.match(rb"\* SEARCH \d", line) for line, _ in untagged)
                    if not found:
                        missing.append(a)
                try:
                    conn.logout()
                except Exception:
                    pass
                return missing
            except Exception as e:
                outcome, last = classify_exception(e)
                if outcome == PERMANENT:
                    raise VerifyError("%s: %s" % (account.login, last)) from e
            finally:
                if conn is not None:
                    conn.close()
            if time.monotonic() >= deadline:
                raise VerifyError("%s: still failing after %.0fs: %s"
                                  % (account.login, self.verify_timeout, last))
            time.sleep(0.5)
