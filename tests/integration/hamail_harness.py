"""Test harness: runs a real hamail-backend on loopback, with its own
certificate authority, accounts file and store directory, and stops exactly the
process it started (by pid)."""

import base64
import glob
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

BACKEND = os.environ.get("HAMAIL_BACKEND", "")
PROXY = os.environ.get("HAMAIL_PROXY", "")
ADMIN = os.environ.get("HAMAIL_ADMIN", "")
HERE = os.path.dirname(os.path.abspath(__file__))
SCHEMA_LDIF = os.path.join(HERE, "..", "..", "ldap-schema", "hamail.ldif")
SUFFIX = "dc=example,dc=org"
ROOT_DN = "cn=admin,dc=example,dc=org"
ROOT_PW = "admin-secret"


def ssha512(password, salt=None):
    salt = salt or os.urandom(16)
    digest = hashlib.sha512(password.encode() + salt).digest()
    return "{SSHA512}" + base64.b64encode(digest + salt).decode()


def make_ca(directory):
    """A throwaway CA and a server certificate for 127.0.0.1/localhost, made
    with the openssl command. Returns (ca_cert, server_cert, server_key)."""
    ca_key = os.path.join(directory, "ca.key")
    ca_cert = os.path.join(directory, "ca.pem")
    key = os.path.join(directory, "server.key")
    csr = os.path.join(directory, "server.csr")
    cert = os.path.join(directory, "server.pem")
    ext = os.path.join(directory, "server.ext")
    run = lambda *a: subprocess.run(a, check=True, capture_output=True)
    run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
        "-nodes", "-keyout", ca_key, "-out", ca_cert, "-days", "2", "-subj", "/CN=hamail test CA",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    run("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", key, "-out", csr, "-subj", "/CN=localhost")
    with open(ext, "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"
                "basicConstraints=CA:FALSE\n")
    run("openssl", "x509", "-req", "-in", csr, "-CA", ca_cert, "-CAkey", ca_key, "-CAcreateserial",
        "-out", cert, "-days", "1", "-extfile", ext)
    return ca_cert, cert, key


class Daemon:
    """What Backend and Proxy share: start a hamail daemon on its configuration, wait for its
    runtime listeners file (ports chosen by the kernel), stop exactly that process by its pid."""

    label = "hamail daemon"

    def binary(self):
        raise NotImplementedError

    def start(self, timeout=20):
        listeners = os.path.join(self.runtime_dir, "listeners")
        if os.path.exists(listeners):
            os.unlink(listeners)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([self.binary(), "--config", self.config], stdout=log, stderr=log,
                                     start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(self.label + " exited with %d:\n%s" % (self.proc.returncode, self.log()))
            if os.path.exists(listeners):
                self.ports = {}
                with open(listeners) as f:
                    for line in f:
                        name, _proto, _addr, port = line.split()
                        self.ports[name] = int(port)
                return self
            time.sleep(0.02)
        self.kill()
        raise RuntimeError(self.label + " did not start:\n" + self.log())

    def stop(self, timeout=15):
        """SIGTERM and wait (graceful drain); SIGKILL if it does not end."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        rc = self.proc.returncode
        self.proc = None
        return rc

    def kill(self):
        """A crash: SIGKILL, no drain."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()[-8000:]
        except OSError:
            return ""


class Backend(Daemon):
    """One hamail-backend instance serving store `store` from a temporary directory."""

    label = "hamail-backend"

    def binary(self):
        return BACKEND

    def __init__(self, accounts, store="store-a", smtp=None, quota=None, limits=None, fsync=True,
                 workdir=None, auth=None, directory=None, listeners=None, imap=None, pop3=None,
                 sync=None):
        if not BACKEND:
            raise RuntimeError("HAMAIL_BACKEND is not set")
        self.dir = workdir or tempfile.mkdtemp(prefix="hamail-it-")
        self.owns_dir = workdir is None
        self.store = store
        self.data_dir = os.path.join(self.dir, "data")
        self.runtime_dir = os.path.join(self.dir, "run")
        self.log_path = os.path.join(self.dir, "backend.log")
        self.ca, cert, key = (make_ca(self.dir) if not os.path.exists(os.path.join(self.dir, "ca.pem"))
                              else (os.path.join(self.dir, "ca.pem"), os.path.join(self.dir, "server.pem"),
                                    os.path.join(self.dir, "server.key")))
        self.accounts_file = os.path.join(self.dir, "accounts.toml")
        with open(self.accounts_file, "w") as f:
            for a in accounts:
                f.write("[[account]]\n")
                for k, v in a.items():
                    if isinstance(v, list):
                        f.write('%s = [%s]\n' % (k, ", ".join('"%s"' % x for x in v)))
                    elif isinstance(v, int):
                        f.write("%s = %d\n" % (k, v))
                    else:
                        f.write('%s = "%s"\n' % (k, v))
                if "store" not in a:
                    f.write('store = "%s"\n' % store)
        self.config = os.path.join(self.dir, "backend.toml")
        sections = {
            "store": {"name": store, "data_dir": self.data_dir, "hostname": "mx.test",
                      "runtime_dir": self.runtime_dir, "fsync": fsync},
            "directory": directory or {"type": "file", "accounts_file": self.accounts_file},
            "tls": {"cert": cert, "key": key},
            "log": {"level": "debug"},
            "smtp": smtp or {},
            "quota": quota or {},
            "limits": limits or {},
            "auth": auth or {},
            "imap": imap or {},
            "pop3": pop3 or {},
            "sync": sync or {},
        }
        with open(self.config, "w") as f:
            for name, values in sections.items():
                if not values:
                    continue
                f.write("[%s]\n" % name)
                for k, v in values.items():
                    if isinstance(v, bool):
                        f.write("%s = %s\n" % (k, "true" if v else "false"))
                    elif isinstance(v, list):
                        f.write("%s = [%s]\n" % (k, ", ".join('"%s"' % x for x in v)))
                    elif isinstance(v, int):
                        f.write("%s = %d\n" % (k, v))
                    else:
                        f.write('%s = "%s"\n' % (k, v))
            # (name, protocol, tls, address, port); port 0: the kernel chooses.
            for name, proto, tls, address, port in listeners or (
                    ("smtp", "smtp", "starttls", "127.0.0.1", 0),
                    ("submission", "submission", "starttls", "127.0.0.1", 0),
                    ("lmtp", "lmtp", "none", "127.0.0.1", 0)):
                f.write('[[listener]]\nname = "%s"\nprotocol = "%s"\naddress = "%s"\nport = %d\n'
                        'tls = "%s"\n' % (name, proto, address, port, tls))
        self.proc = None
        self.ports = {}

    def run_tool(self, *args):
        return subprocess.run([BACKEND, "--config", self.config] + list(args), capture_output=True, text=True)

    def maildir(self, account):
        found = glob.glob(os.path.join(self.data_dir, "accounts", "*", account))
        return found[0] if found else None

    def messages(self, account, folder=""):
        """Contents of every message file of a mailbox (INBOX by default)."""
        md = self.maildir(account)
        if md is None:
            return []
        base = os.path.join(md, folder) if folder else md
        out = []
        for sub in ("new", "cur"):
            for path in sorted(glob.glob(os.path.join(base, sub, "*"))):
                with open(path, "rb") as f:
                    out.append(f.read())
        return out

    def cleanup(self):
        self.kill()
        if self.owns_dir and not os.environ.get("HAMAIL_KEEP_TEST_DIRS"):
            shutil.rmtree(self.dir, ignore_errors=True)

    def finish(self, *scratch_dirs):
        """A test class's end: stop (graceful drain), remove the backend's directory and the
        test's scratch directories (kept with HAMAIL_KEEP_TEST_DIRS), then fail unless the
        backend exited 0, with the end of its log."""
        rc = self.stop()
        log = self.log()
        self.cleanup()
        if not os.environ.get("HAMAIL_KEEP_TEST_DIRS"):
            for d in scratch_dirs:
                shutil.rmtree(d, ignore_errors=True)
        assert rc == 0, "backend exited %r\n%s" % (rc, log)


def write_toml(path, sections, listeners=()):
    """Writes `sections` ({table: {key: value}}, a list of dicts for [[table]] arrays, and
    "a.b" names for sub-tables) and [[listener]] entries (name, protocol, tls, address, port)."""
    def value(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, list):
            return "[%s]" % ", ".join('"%s"' % x for x in v)
        if isinstance(v, int):
            return "%d" % v
        return '"%s"' % v

    with open(path, "w") as f:
        for name, values in sections.items():
            for table in (values if isinstance(values, list) else [values]):
                if not table:
                    continue
                f.write(("[[%s]]\n" if isinstance(values, list) else "[%s]\n") % name)
                for k, v in table.items():
                    f.write("%s = %s\n" % (k, value(v)))
        for name, proto, tls, address, port, *extra in listeners:
            f.write('[[listener]]\nname = "%s"\nprotocol = "%s"\naddress = "%s"\nport = %d\n'
                    'tls = "%s"\n' % (name, proto, address, port, tls))
            for k, v in (extra[0] if extra else {}).items():
                f.write("%s = %s\n" % (k, value(v)))


class Proxy(Daemon):
    """One hamail-proxy instance in a temporary directory, stopped by its pid.

    `backend`: the [backend] table (login, password_file, timeouts, tls); `stores`: pinned
    [[backend.store]] entries; `directory`: the [directory] table. Listeners default to IMAP and
    POP3 with STARTTLS and their implicit-TLS forms, and the HTTP endpoint (/metrics, /ready), all
    on port 0. A listener tuple may carry a sixth element: a dict of further keys."""

    def __init__(self, backend, directory, name="proxy-1", stores=(), imap=None, pop3=None,
                 listeners=None, auth=None, limits=None, proxy=None, smtp=None):
        if not PROXY:
            raise RuntimeError("HAMAIL_PROXY is not set")
        self.dir = tempfile.mkdtemp(prefix="hamail-proxy-it-")
        self.runtime_dir = os.path.join(self.dir, "run")
        self.log_path = os.path.join(self.dir, "proxy.log")
        self.ca, cert, key = make_ca(self.dir)
        self.config = os.path.join(self.dir, "proxy.toml")
        write_toml(self.config, {
            "proxy": dict({"name": name, "hostname": "proxy.test", "runtime_dir": self.runtime_dir},
                          **(proxy or {})),
            "backend": backend,
            "backend.store": list(stores),
            "directory": directory,
            "tls": {"cert": cert, "key": key},
            "log": {"level": "debug"},
            "imap": imap or {},
            "pop3": pop3 or {},
            "smtp": smtp or {},
            "auth": auth or {},
            "limits": limits or {},
        }, listeners or (("imap", "imap", "starttls", "127.0.0.1", 0),
                         ("imaps", "imap", "implicit", "127.0.0.1", 0),
                         ("pop3", "pop3", "starttls", "127.0.0.1", 0),
                         ("pop3s", "pop3", "implicit", "127.0.0.1", 0),
                         ("metrics", "http", "none", "127.0.0.1", 0)))
        self.proc = None
        self.ports = {}

    label = "hamail-proxy"

    def binary(self):
        return PROXY

    def cleanup(self):
        self.stop()
        if not os.environ.get("HAMAIL_KEEP_TEST_DIRS"):
            shutil.rmtree(self.dir, ignore_errors=True)


def ssha(password):
    salt = os.urandom(8)
    digest = hashlib.sha1(password.encode() + salt).digest()
    return "{SSHA}" + base64.b64encode(digest + salt).decode()


def free_port():
    """A port free now. Tests run in parallel: another process may take it before it is bound
    again, so a daemon given one must be seen listening on it (listening_ports)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening_ports(pid):
    """The TCP ports process `pid` itself listens on (its socket inodes matched against
    /proc/net/tcp{,6}); empty when the process is gone."""
    inodes = set()
    try:
        for fd in os.listdir("/proc/%d/fd" % pid):
            try:
                target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    except OSError:
        return set()
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    fields = line.split()
                    if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                        ports.add(int(fields[1].rsplit(":", 1)[1], 16))
        except OSError:
            pass
    return ports


class Slapd:
    """A throwaway slapd; stop() ends exactly the process it started."""

    def __init__(self, directory, host="127.0.0.1", preexec_fn=None):
        """`host`: the address slapd listens on; `preexec_fn`: run in the child before exec
        (the cluster lab puts slapd into its cgroup with it)."""
        self.dir = directory
        self.host = host
        conf = os.path.join(directory, "slapd.d")
        db = os.path.join(directory, "db")
        os.makedirs(conf)
        os.makedirs(db)
        schemas = ["core", "cosine", "nis", "inetorgperson", "misc"]
        includes = "".join("include: file:///etc/ldap/schema/%s.ldif\n\n" % s for s in schemas)
        includes += "include: file://%s\n\n" % os.path.abspath(SCHEMA_LDIF)
        config = (
            "dn: cn=config\nobjectClass: olcGlobal\ncn: config\n"
            "olcPidFile: %(d)s/slapd.pid\nolcArgsFile: %(d)s/slapd.args\n\n"
            "dn: cn=module{0},cn=config\nobjectClass: olcModuleList\ncn: module{0}\n"
            "olcModulePath: /usr/lib/ldap\nolcModuleLoad: back_mdb\n\n"
            "dn: cn=schema,cn=config\nobjectClass: olcSchemaConfig\ncn: schema\n\n"
            "%(includes)s"
            "dn: olcDatabase={-1}frontend,cn=config\nobjectClass: olcDatabaseConfig\n"
            "objectClass: olcFrontendConfig\nolcDatabase: {-1}frontend\n\n"
            "dn: olcDatabase={0}config,cn=config\nobjectClass: olcDatabaseConfig\n"
            "olcDatabase: {0}config\nolcAccess: {0}to * by * none\n\n"
            "dn: olcDatabase={1}mdb,cn=config\nobjectClass: olcDatabaseConfig\n"
            "objectClass: olcMdbConfig\nolcDatabase: {1}mdb\nolcSuffix: %(suffix)s\n"
            "olcRootDN: %(root)s\nolcRootPW: %(pw)s\nolcDbDirectory: %(db)s\n"
            "olcDbMaxSize: 67108864\n"
            "olcDbIndex: objectClass eq\nolcDbIndex: uid eq\nolcDbIndex: mail eq\n"
            "olcDbIndex: mailLocalAddress eq\nolcDbIndex: hamailOwningStore eq\n"
            "olcAccess: {0}to attrs=userPassword by self write by anonymous auth by * none\n"
            "olcAccess: {1}to * by * read\n"
        ) % {"d": directory, "includes": includes, "suffix": SUFFIX, "root": ROOT_DN,
             "pw": ssha(ROOT_PW), "db": db}
        base = ("dn: %s\nobjectClass: dcObject\nobjectClass: organization\ndc: example\n"
                "o: example\n\n"
                "dn: ou=stores,%s\nobjectClass: organizationalUnit\nou: stores\n\n"
                "dn: ou=accounts,%s\nobjectClass: organizationalUnit\nou: accounts\n"
                % (SUFFIX, SUFFIX, SUFFIX))
        for name, text in (("config.ldif", config), ("base.ldif", base)):
            with open(os.path.join(directory, name), "w") as f:
                f.write(text)
        self._slapadd(["-n0", "-F", conf, "-l", os.path.join(directory, "config.ldif")])
        self._slapadd(["-F", conf, "-b", SUFFIX, "-l", os.path.join(directory, "base.ldif")])
        self.proc = None
        self.log = open(os.path.join(directory, "slapd.log"), "ab")
        for _ in range(4):
            self.port = free_port()
            self.uri = "ldap://%s:%d" % (host, self.port)
            self.proc = subprocess.Popen(
                ["/usr/sbin/slapd", "-d", "none", "-F", conf, "-h", self.uri],
                stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True, preexec_fn=preexec_fn)
            if self._wait_ready():
                return
            self.stop()
        raise RuntimeError("slapd did not start; see " + os.path.join(directory, "slapd.log"))

    @staticmethod
    def _slapadd(args):
        r = subprocess.run(["/usr/sbin/slapadd"] + args, capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError("slapadd %s failed: %s%s" % (args, r.stdout, r.stderr))

    def _wait_ready(self):
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    return True
            except OSError:
                time.sleep(0.05)
        return False

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def stop_daemons(daemons, tmp=None, slapd=None):
    """Stops every daemon and removes its files, then `slapd` and (unless HAMAIL_KEEP_TEST_DIRS)
    the test's directory `tmp`; fails unless every daemon exited 0, showing their logs."""
    rcs, logs = [], []
    for d in daemons:
        rcs.append(d.stop())
        logs.append(d.log())
        d.cleanup()
    if slapd is not None:
        slapd.stop()
    if tmp and not os.environ.get("HAMAIL_KEEP_TEST_DIRS"):
        shutil.rmtree(tmp, ignore_errors=True)
    assert rcs == [0] * len(rcs), "exit codes %r\n%s" % (rcs, "\n".join(logs))


class LdapDirectory:
    """A throwaway slapd (Slapd under `tmp`) with what hamail-admin needs to write to it: the root
    DN's secret file, the environment naming the server, and an empty admin configuration."""

    def __init__(self, tmp):
        self.slapd = Slapd(os.path.join(tmp, "slapd"))
        self.secret = os.path.join(tmp, "bind.secret")
        with open(self.secret, "w") as f:
            f.write(ROOT_PW + "\n")
        os.chmod(self.secret, 0o600)
        self.env = dict(os.environ, HAMAIL_LDAP_URI=self.slapd.uri, HAMAIL_LDAP_BASE_DN=SUFFIX,
                        HAMAIL_LDAP_BIND_DN=ROOT_DN, HAMAIL_LDAP_BIND_SECRET_FILE=self.secret)
        self.admin_config = os.path.join(tmp, "admin.toml")
        open(self.admin_config, "w").close()

    def add_loopback_stores(self, stores):
        """Records stores served on 127.0.0.1: {name: {"imap": port, "pop3": port, "lmtp": port}},
        and "sync": port when the store has a sync listener (account moves)."""
        for name, ports in stores.items():
            self.admin("store", "add", name, "--host", "localhost", "--address", "127.0.0.1",
                       "--imap-port", str(ports["imap"]), "--pop3-port", str(ports["pop3"]),
                       "--lmtp-port", str(ports["lmtp"]), "--weight", "1",
                       *(("--sync-port", str(ports["sync"])) if "sync" in ports else ()))

    def admin(self, *args):
        """Runs hamail-admin with `args`; fails the caller's test unless it succeeds."""
        r = subprocess.run([ADMIN, "--config", self.admin_config] + list(args), env=self.env,
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, "hamail-admin %s: %s%s" % (args, r.stdout, r.stderr)
        return r.stdout


class SmtpRaw:
    """A line-oriented raw SMTP/LMTP client for the cases real clients avoid.
    reply() raises EOFError when the server closes, or returns (0, text) with
    eof_is_reply."""

    eof_is_reply = False

    def __init__(self, port, host="127.0.0.1", timeout=10):
        self.s = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""

    def send(self, data):
        self.s.sendall(data if isinstance(data, bytes) else data.encode())

    def reply(self):
        """One whole (possibly multi-line) reply: (code, text)."""
        lines = []
        while True:
            while b"\r\n" not in self.buf:
                chunk = self.s.recv(65536)
                if not chunk:
                    if self.eof_is_reply:
                        return 0, "\n".join(lines)
                    raise EOFError("connection closed; got %r" % (lines,))
                self.buf += chunk
            line, self.buf = self.buf.split(b"\r\n", 1)
            lines.append(line.decode(errors="replace"))
            if len(line) < 4 or line[3:4] != b"-":
                return int(lines[-1][:3]), "\n".join(lines)

    def closed(self):
        try:
            return self.s.recv(1) == b""
        except OSError:
            return True

    def close(self):
        self.s.close()
