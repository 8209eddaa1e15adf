"""The lab's directory and frontend tier, as production runs them (used by lab.py).

- **PKI**: one lab CA; a server certificate naming every node, store and their addresses (slapd's
  StartTLS, the stores' STARTTLS); a client certificate ``cn=replicator,o=hamail-lab`` that the
  providers present to each other (SASL EXTERNAL), mapped by ``olcAuthzRegexp`` to the layout's
  ``replicator_dn``.
- **Directory**: every provider node gets its own ``/etc/ldap`` (``<node>/etc-ldap``: Debian's
  schema and ldap.conf, ``slapd.d/``, ``tls/``) and ``/var/lib/ldap`` (``<node>/ldap-data``),
  bind-mounted by the node's boot script. cn=config is the lab's base configuration plus the
  generator's replication LDIF (``hamail-cluster-config slapd LAYOUT --node N``) applied with
  ``slapmodify``, as an operator applies it with ``ldapmodify``. The stores and accounts are placed
  with ``hamail-admin`` into node1's database through a temporary slapd, then node1's database is
  copied (``slapcat`` / ``slapadd -w``) to the other providers, so all start identical; from then on
  Pacemaker runs slapd (``ocf:heartbeat:slapd`` in ``directory-clone``) and changes replicate.
- **Frontend**: ``/etc/hamail/proxy.toml`` for ``ocf:hamail:proxy`` (``frontend-clone``) on every
  node: client listeners, listeners that take HAProxy's PROXY v2 header from the bridge address,
  and the readiness endpoint.
- **Balancer**: HAProxy in the root namespace on the bridge address, TCP mode, health checks on
  the proxies' ``/ready``, ``send-proxy-v2``; the lab's clients connect only to it.

Every command that touches a node's slapd files outside the cluster runs in a private mount
namespace with that node's directories bound over ``/etc/ldap``, ``/var/lib/ldap`` and ``/run``,
so the machine's own ``/etc/ldap`` and ``/var/lib/ldap`` are never touched.
"""

import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
from hamail_harness import free_port, ssha  # noqa: E402

SUFFIX = "dc=example,dc=org"
ROOT_DN = "cn=admin,dc=example,dc=org"
ROOT_PW = "admin-secret"
REPLICATOR_SUBJECT = "cn=replicator,o=hamail-lab"
PROXY_LOGIN = "hamail-proxy"
PROXY_PASSWORD = "lab-proxy-secret"
# Ports of hamail-proxy on every node: what clients would use, and what HAProxy connects to
# (with a PROXY v2 header, accepted only from the bridge address).
PROXY_PORTS = {"imap": 143, "pop3": 110, "smtp": 25, "submission": 587, "http": 8080,
               "imap-lb": 1143, "pop3-lb": 1110, "smtp-lb": 1025}
# HAProxy on the bridge address (root namespace): the only endpoints the lab's clients use.
BALANCER_PORTS = {"imap": 10143, "pop3": 10110, "smtp": 10025}


def _run(*argv, **kw):
    kw.setdefault("check", True)
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    r = subprocess.run(list(argv), **kw)
    return r


def _openldap_ids():
    p = pwd.getpwnam("openldap")
    return p.pw_uid, p.pw_gid


def _chown_tree(path, uid, gid):
    for root, dirs, files in os.walk(path):
        os.chown(root, uid, gid)
        for f in files:
            os.chown(os.path.join(root, f), uid, gid)


# -- PKI ---------------------------------------------------------------------------------------

def make_pki(directory, names, addresses):
    """CA, a server certificate for `names` and `addresses`, and the replicator's client
    certificate, with the openssl command. Returns a dict of paths."""
    os.makedirs(directory, exist_ok=True)
    p = {k: os.path.join(directory, v) for k, v in (
        ("ca_key", "ca.key"), ("ca", "ca.crt"), ("server_key", "server.key"),
        ("server", "server.crt"), ("repl_key", "replicator.key"), ("repl", "replicator.crt"))}
    _run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-keyout", p["ca_key"], "-out", p["ca"], "-days", "2",
         "-subj", "/CN=hamail lab CA", "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    san = ",".join(["DNS:" + n for n in names] + ["IP:" + a for a in addresses])
    for key, cert, subj, ext in (
            ("server_key", "server", "/CN=hamail-lab", "subjectAltName=%s\n"
             "extendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n" % san),
            ("repl_key", "repl", "/O=hamail-lab/CN=replicator",
             "extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n")):
        csr = p[cert] + ".csr"
        extf = p[cert] + ".ext"
        _run("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", p[key], "-out", csr, "-subj", subj)
        with open(extf, "w") as f:
            f.write(ext)
        _run("openssl", "x509", "-req", "-in", csr, "-CA", p["ca"], "-CAkey", p["ca_key"],
             "-CAcreateserial", "-out", p[cert], "-days", "2", "-extfile", extf)
    return p


# -- the directory -------------------------------------------------------------------------------

def base_config(schema_ldif):
    """cn=config of every provider before the generator's replication LDIF: the hamail schema,
    one mdb database, StartTLS with the lab's certificates, the replicator's identity and rights."""
    schemas = ["core", "cosine", "nis", "inetorgperson", "misc"]
    includes = "".join("include: file:///etc/ldap/schema/%s.ldif\n\n" % s for s in schemas)
    includes += "include: file://%s\n\n" % os.path.abspath(schema_ldif)
    return (
        "dn: cn=config\nobjectClass: olcGlobal\ncn: config\n"
        "olcPidFile: /run/slapd/slapd.pid\nolcArgsFile: /run/slapd/slapd.args\n"
        "olcTLSCACertificateFile: /etc/ldap/tls/ca.crt\n"
        "olcTLSCertificateFile: /etc/ldap/tls/server.crt\n"
        "olcTLSCertificateKeyFile: /etc/ldap/tls/server.key\n"
        # Ask for a client certificate (the replicator's), do not require one (proxies and
        # stores bind with a password).
        "olcTLSVerifyClient: try\n"
        "olcAuthzRegexp: {0}\"^%s$\" \"%s\"\n\n"
        "dn: cn=module{0},cn=config\nobjectClass: olcModuleList\ncn: module{0}\n"
        "olcModulePath: /usr/lib/ldap\nolcModuleLoad: back_mdb\n\n"
        "dn: cn=schema,cn=config\nobjectClass: olcSchemaConfig\ncn: schema\n\n"
        "%s"
        "dn: olcDatabase={-1}frontend,cn=config\nobjectClass: olcDatabaseConfig\n"
        "objectClass: olcFrontendConfig\nolcDatabase: {-1}frontend\n\n"
        "dn: olcDatabase={0}config,cn=config\nobjectClass: olcDatabaseConfig\n"
        "olcDatabase: {0}config\n"
        "olcAccess: {0}to * by dn.exact=gidNumber=0+uidNumber=0,cn=peercred,cn=external,cn=auth "
        "manage by * none\n\n"
        "dn: olcDatabase={1}mdb,cn=config\nobjectClass: olcDatabaseConfig\n"
        "objectClass: olcMdbConfig\nolcDatabase: {1}mdb\nolcSuffix: %s\n"
        "olcRootDN: %s\nolcRootPW: %s\nolcDbDirectory: /var/lib/ldap\n"
        "olcDbMaxSize: 67108864\n"
        "olcDbIndex: objectClass eq\nolcDbIndex: uid eq\nolcDbIndex: mail eq\n"
        "olcDbIndex: mailLocalAddress eq\nolcDbIndex: hamailOwningStore eq\n"
        "olcDbIndex: entryCSN eq\nolcDbIndex: entryUUID eq\n"
        "olcLimits: {0}dn.exact=\"%s\" time=unlimited size=unlimited\n"
        "olcAccess: {0}to attrs=userPassword by dn.exact=\"%s\" read by self write "
        "by anonymous auth by * none\n"
        "olcAccess: {1}to * by dn.exact=\"%s\" read by * read\n"
    ) % (REPLICATOR_SUBJECT, REPLICATOR_DN, includes, SUFFIX, ROOT_DN, ssha(ROOT_PW),
         REPLICATOR_DN, REPLICATOR_DN, REPLICATOR_DN)


REPLICATOR_DN = "cn=replicator,dc=example,dc=org"
BASE_LDIF = ("dn: %s\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: example\n\n"
             "dn: ou=stores,%s\nobjectClass: organizationalUnit\nou: stores\n\n"
             "dn: ou=accounts,%s\nobjectClass: organizationalUnit\nou: accounts\n"
             % (SUFFIX, SUFFIX, SUFFIX))


class ProviderFiles:
    """One provider node's slapd files on the host: <node>/etc-ldap and <node>/ldap-data."""

    def __init__(self, node_dir):
        self.etc = os.path.join(node_dir, "etc-ldap")
        self.data = os.path.join(node_dir, "ldap-data")
        self.run = os.path.join(node_dir, "ldap-run")

    def binds(self):
        """(source, target) pairs the node's boot script mounts."""
        return [(self.etc, "/etc/ldap"), (self.data, "/var/lib/ldap")]

    def in_namespace(self, command):
        """argv running the shell `command` with this provider's files in place, in a private
        mount namespace of the host (nothing of the machine's /etc/ldap is touched)."""
        script = "set -e; mount --bind %s /etc/ldap; mount --bind %s /var/lib/ldap; " \
                 "mount --bind %s /run; mkdir -p /run/slapd; chown openldap:openldap /run/slapd; " \
                 "%s" % (self.etc, self.data, self.run, command)
        return ["unshare", "--mount", "--propagation", "private", "--", "/bin/sh", "-c", script]

    def create(self, pki, config_ldif, replication_ldif):
        uid, gid = _openldap_ids()
        for d in (self.etc, self.data, self.run):
            if os.path.exists(d):
                shutil.rmtree(d)
        shutil.copytree("/etc/ldap/schema", os.path.join(self.etc, "schema"))
        if os.path.exists("/etc/ldap/ldap.conf"):
            shutil.copy("/etc/ldap/ldap.conf", os.path.join(self.etc, "ldap.conf"))
        os.makedirs(os.path.join(self.etc, "slapd.d"))
        tls = os.path.join(self.etc, "tls")
        os.makedirs(tls)
        for k, name in (("ca", "ca.crt"), ("server", "server.crt"), ("server_key", "server.key"),
                        ("repl", "replicator.crt"), ("repl_key", "replicator.key")):
            shutil.copy(pki[k], os.path.join(tls, name))
            os.chmod(os.path.join(tls, name), 0o600 if name.endswith(".key") else 0o644)
        os.makedirs(self.data)
        os.makedirs(self.run)
        for name, text in (("config.ldif", config_ldif), ("replication.ldif", replication_ldif)):
            with open(os.path.join(self.etc, name), "w") as f:
                f.write(text)
        _chown_tree(self.etc, uid, gid)
        _chown_tree(self.data, uid, gid)
        self.sh("slapadd -n0 -F /etc/ldap/slapd.d -l /etc/ldap/config.ldif")

    def ldapi(self):
        """The URI of the temporary slapd's ldapi socket, from the host."""
        return "ldapi://" + urllib.parse.quote(os.path.join(self.run, "slapd", "ldapi"), safe="")

    def apply_replication(self):
        """The generator's replication LDIF, applied as the operator does (`ldapmodify -Y
        EXTERNAL -H ldapi:///`), to the running temporary slapd."""
        r = subprocess.run(["ldapmodify", "-Q", "-Y", "EXTERNAL", "-H", self.ldapi(), "-f",
                            os.path.join(self.etc, "replication.ldif")],
                           capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise RuntimeError("ldapmodify of the replication LDIF: %s%s" % (r.stdout, r.stderr))

    def sh(self, command, timeout=60):
        r = subprocess.run(self.in_namespace(command), capture_output=True, text=True,
                           timeout=timeout)
        if r.returncode != 0:
            raise RuntimeError("%s: %s%s" % (command, r.stdout, r.stderr))
        _chown_tree(self.etc, *_openldap_ids())
        _chown_tree(self.data, *_openldap_ids())
        return r

    def load(self, ldif_path):
        """Replaces the database by `ldif_path` (slapcat output), with its contextCSN (-w)."""
        for f in os.listdir(self.data):
            os.unlink(os.path.join(self.data, f))
        self.sh("slapadd -q -w -F /etc/ldap/slapd.d -b %s -l %s" % (SUFFIX, ldif_path))

    def start_temporary(self, port=None, preexec_fn=None, log=None):
        """slapd over these files in the host's network namespace, on its ldapi socket and,
        with `port`, on 127.0.0.1:`port` (to place accounts); None if it did not start."""
        urls = "ldapi:///" + (" ldap://127.0.0.1:%d/" % port if port else "")
        proc = subprocess.Popen(
            self.in_namespace("exec /usr/sbin/slapd -d 0 -u openldap -g openldap "
                              "-F /etc/ldap/slapd.d -h '%s'" % urls),
            stdin=subprocess.DEVNULL, stdout=log or subprocess.DEVNULL,
            stderr=subprocess.STDOUT, preexec_fn=preexec_fn)
        sock = os.path.join(self.run, "slapd", "ldapi")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and proc.poll() is None:
            if _accepts(sock) and (not port or wait_port("127.0.0.1", port, proc, 0.2)):
                return proc
            time.sleep(0.05)
        stop(proc)
        return None


def wait_port(host, port, proc=None, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def _accepts(path):
    """True once a Unix socket at `path` accepts connections (slapd creates it before listening)."""
    with socket.socket(socket.AF_UNIX) as s:
        try:
            s.connect(path)
            return True
        except OSError:
            return False


def stop(proc, timeout=10):
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# -- configuration files ------------------------------------------------------------------------

def directory_section(uris, secret="/etc/hamail/ldap.secret", fast=False):
    """[directory] of the stores and proxies. `fast`: the fast profile's 1 s timeout (a provider
    whose node died costs a lookup its share of it before the next provider answers)."""
    return ('[directory]\ntype = "ldap"\nuris = [%s]\nbase_dn = "%s"\nbind_dn = "%s"\n'
            'bind_secret_file = "%s"\nallow_plaintext_bind = true\ntimeout = "%s"\n\n'
            % (", ".join('"%s"' % u for u in uris), SUFFIX, ROOT_DN, secret,
               "1s" if fast else "2s"))


def proxy_config(uris, bridge_addr, retry_for="15s", fast=False):
    """/etc/hamail/proxy.toml, the same file on every node (listeners on every address of the
    node's namespace). Logins without TLS are allowed: the lab's clients speak plain text to
    HAProxy on a private bridge; TLS to the stores is verified against the lab CA. `fast`: the
    retry settings docs/cluster.md recommends with the fast profile (a store's address that
    is not up yet is retried every 0.25 s at most, instead of waiting out a SYN retransmission)."""
    connect, delay, max_delay = ("250ms", "100ms", "250ms") if fast else ("1s", "250ms", "1s")
    out = ['[proxy]\nname = "lab-proxy"\nhostname = "mail.example.org"\n'
           'runtime_dir = "/run/hamail/proxy"\n\n',
           '[backend]\nlogin = "%s"\npassword_file = "/etc/hamail/proxy.secret"\n'
           'tls = "starttls"\nca_file = "/etc/hamail/ca.pem"\nverify_name = true\n'
           'connect_timeout = "%s"\nlogin_timeout = "5s"\nretry_for = "%s"\n'
           'retry_delay = "%s"\nretry_max_delay = "%s"\ndisconnect_delay = "1s"\n'
           'store_cache_ttl = "5s"\n\n' % (PROXY_LOGIN, connect, retry_for, delay, max_delay),
           '[imap]\nlogin_without_tls = true\n\n[pop3]\nlogin_without_tls = true\n\n',
           '[smtp]\nlocal_domains = ["example.org"]\n\n',
           '[tls]\ncert = "/etc/hamail/server.crt"\nkey = "/etc/hamail/server.key"\n\n',
           '[limits]\ndrain_timeout = "5s"\n\n[log]\nlevel = "info"\n\n',
           directory_section(uris, fast=fast)]
    lb = 'proxy_protocol_from = ["%s"]\n' % bridge_addr
    for name, proto, tls, extra in (
            ("imap", "imap", "starttls", ""), ("pop3", "pop3", "starttls", ""),
            ("smtp", "smtp", "starttls", ""), ("submission", "submission", "starttls", ""),
            ("http", "http", "none", ""),
            ("imap-lb", "imap", "starttls", lb), ("pop3-lb", "pop3", "starttls", lb),
            ("smtp-lb", "smtp", "starttls", lb)):
        out.append('[[listener]]\nname = "%s"\nprotocol = "%s"\naddress = "0.0.0.0"\nport = %d\n'
                   'tls = "%s"\n%s\n' % (name, proto, PROXY_PORTS[name], tls, extra))
    return "".join(out)


# -- the load balancer ---------------------------------------------------------------------------

def haproxy_config(bridge_addr, node_addrs, runtime):
    """HAProxy as crm-config/haproxy/haproxy.cfg sets it up: TCP, leastconn, /ready checks,
    PROXY v2 to the proxies' -lb listeners."""
    out = ["global\n    maxconn 4000\n    pidfile %s/haproxy.pid\n\n" % runtime,
           "defaults\n    mode tcp\n    timeout connect 1s\n    timeout check 500ms\n"
           "    timeout client 35m\n"
           "    timeout server 35m\n    retries 2\n    option redispatch 1\n\n"]
    for svc in ("imap", "pop3", "smtp"):
        out.append("frontend %s\n    bind %s:%d\n    default_backend proxies_%s\n\n"
                   % (svc, bridge_addr, BALANCER_PORTS[svc], svc))
        out.append("backend proxies_%s\n    balance leastconn\n    option httpchk\n"
                   "    http-check send meth GET uri /ready ver HTTP/1.1 hdr Host proxy\n"
                   "    http-check expect status 200\n"
                   "    default-server inter 500ms fall 2 rise 1 on-marked-down shutdown-sessions\n"
                   % svc)
        for i, addr in enumerate(node_addrs):
            out.append("    server proxy%d %s:%d send-proxy-v2 check port %d\n"
                       % (i + 1, addr, PROXY_PORTS[svc + "-lb"], PROXY_PORTS["http"]))
        out.append("\n")
    return "".join(out)


class Balancer:
    """HAProxy in the root namespace, in the lab's host cgroup; stop() ends it by pid."""

    def __init__(self, workdir, bridge_addr, node_addrs, preexec_fn=None):
        self.dir = os.path.join(workdir, "haproxy")
        os.makedirs(self.dir, exist_ok=True)
        self.config = os.path.join(self.dir, "haproxy.cfg")
        with open(self.config, "w") as f:
            f.write(haproxy_config(bridge_addr, node_addrs, self.dir))
        _run("haproxy", "-c", "-q", "-f", self.config)
        self.log = open(os.path.join(self.dir, "haproxy.out"), "ab")
        self.proc = subprocess.Popen(["haproxy", "-db", "-f", self.config],
                                     stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=subprocess.STDOUT, preexec_fn=preexec_fn)
        self.addr = bridge_addr
        for svc in BALANCER_PORTS:
            if not wait_port(bridge_addr, BALANCER_PORTS[svc], self.proc):
                raise RuntimeError("haproxy did not start; see %s/haproxy.out" % self.dir)

    def endpoint(self, svc):
        return (self.addr, BALANCER_PORTS[svc])

    def stop(self):
        stop(self.proc)
        self.log.close()
