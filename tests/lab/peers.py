"""Real peers started inside the NAT lab: Kamailio (upstream registrar), SIPp UAs/UACs,
baresip (the TLS UA), and the pinhole daemon. Every process runs in a lab namespace, writes
into the run's workdir and is bounded in time (SIPp by -timeout, the daemons by the Lab).
"""

import json
import os
import re
import secrets
import subprocess
import sys
import time
import wave

from lab import ADDR, WAN_HOSTS, LabError, wait_until

HERE = os.path.dirname(os.path.abspath(__file__))
DOMAIN = "lab.example"
SIP_PORT = 5060


# --------------------------------------------------------------------------- Kamailio

class Kamailio:
    """Kamailio in the `core` namespace, listening on udp+tcp 203.0.113.20:5060 (`role`: another
    wan namespace, e.g. "coreb" after lab.add_wan_host("coreb"), for a second node; its config
    then listens on that node's address)."""

    def __init__(self, lab, cfg="upstream.cfg", name="kamailio", role="core"):
        self.lab, self.name = lab, name
        self.rundir = lab.path(name)
        os.makedirs(self.rundir, exist_ok=True)
        self.ctl = f"unix:{self.rundir}/ctl"
        argv = ["kamailio", "-f", os.path.join(HERE, "kamailio", cfg), "-DD", "-E",
                "-Y", self.rundir, "-P", f"{self.rundir}/kamailio.pid", "-w", self.rundir,
                "-m", "32", "-M", "8", "-A", f'CTL_SOCK="{self.ctl}"']
        self.proc = lab.spawn(role, argv, name)
        wait_until(self._ready, 15, f"{name}'s ctl socket")

    def rpc(self, *cmd, timeout=10):
        r = subprocess.run(["kamcmd", "-s", self.ctl, *cmd], capture_output=True, text=True,
                           timeout=timeout)
        return r.stdout if r.returncode == 0 else None

    def _ready(self):
        if not self.proc.running():
            raise LabError(f"Kamailio exited: {self.proc.stderr()[-2000:]}")
        return self.rpc("core.version") is not None

    def ul_dump(self):
        return self.rpc("ul.dump") or ""

    def contacts(self, user):
        """Contact URIs bound to user@lab.example (from `kamcmd ul.dump`)."""
        dump = self.ul_dump()
        # ul.dump prints per AoR "AoR: alice" (or alice@domain) followed by its Contacts.
        blocks = re.split(r"\n\s*AoR:\s*", "\n" + dump)
        for block in blocks[1:]:
            aor = block.split("\n", 1)[0].strip()
            if aor.split("@")[0] == user:
                return re.findall(r"Address:\s*(\S+)", block)
        return []

    def binding(self, user):
        """The raw ul.dump block of user's AoR (Contact, Path, Received, Socket...)."""
        dump = self.ul_dump()
        for block in re.split(r"\n\s*AoR:\s*", "\n" + dump)[1:]:
            if block.split("\n", 1)[0].strip().split("@")[0] == user:
                return block
        return ""

    def wait_registered(self, user, timeout=10):
        return wait_until(lambda: self.contacts(user), timeout, f"{user} in Kamailio's location")

    def log(self):
        return self.proc.stderr()


# --------------------------------------------------------------------------- SIPp

class Sipp:
    """One SIPp run of a tests/lab/sipp scenario (-m 1, bounded by -timeout)."""

    def __init__(self, lab, role, scenario, remote, user, name, transport="udp", port=SIP_PORT,
                 call_id=None, via_params=";rport", expires=300, timeout=20, media_port=None,
                 extra=(), domain=DOMAIN, reg_cseq=1):
        self.lab, self.name = lab, name
        self.messages = lab.path(f"{name}.messages.log")
        self.errors = lab.path(f"{name}.errors.log")
        argv = ["sipp", "-sf", os.path.join(HERE, "sipp", scenario), remote,
                "-i", ADDR[role], "-p", str(port), "-t", "t1" if transport == "tcp" else "u1",
                "-s", user, "-key", "domain", domain, "-key", "via_params", via_params,
                "-key", "expires", str(expires), "-key", "reg_cseq", str(reg_cseq),
                "-m", "1", "-l", "1", "-nostdin", "-aa",
                "-timeout", f"{timeout}s", "-timeout_error", "-max_recv_loops", "100",
                # SIPp binds a control port and an RTP echo port; two SIPps in one
                # namespace must not fight for the defaults (8888, 6000).
                "-cp", str(port + 3000), "-mp", str(media_port or port + 1000),
                "-trace_msg", "-message_file", self.messages,
                "-trace_err", "-error_file", self.errors, *extra]
        if call_id:
            argv += ["-cid_str", call_id]
        self.timeout = timeout
        self.proc = lab.spawn(role, argv, name)

    def wait(self, extra=10):
        """SIPp's exit code (0: the one call succeeded)."""
        return self.proc.wait(self.timeout + extra)

    def running(self):
        return self.proc.running()

    def trace(self):
        try:
            with open(self.messages, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def messages_seen(self, direction="received"):
        """Start lines of the messages SIPp logged as `direction` ("received"/"sent")."""
        lines = self.trace().splitlines()
        starts = []
        for i, line in enumerate(lines):
            if f"message {direction}" in line:
                rest = [l for l in lines[i + 1:i + 4] if l.strip()]
                if rest:
                    starts.append(rest[0].strip())
        return starts

    def received(self, prefix):
        """Did SIPp receive a message whose start line begins with prefix ('INVITE ',
        'SIP/2.0 430')?"""
        return any(s.startswith(prefix) for s in self.messages_seen("received"))

    def explain(self):
        return (f"--- {self.name} exit={self.proc.popen.returncode}\n"
                f"{self.proc.stderr()[-1500:]}\n--- errors\n{_tail(self.errors)}")


def _tail(path, n=3000):
    try:
        with open(path, errors="replace") as f:
            return f.read()[-n:]
    except OSError:
        return "(none)"


def shared_call_id(tag):
    """A Call-ID for a UA and the UAC that calls it (see sipp/ua_answer.xml)."""
    return f"lab-{tag}-{secrets.token_hex(6)}@pinhole-lab"


# --------------------------------------------------------------------------- pinhole

PIN = ADDR["pin"]


def make_cert(lab):
    """A per-run self-signed certificate for pinhole's TLS listener (SAN: its lab address)."""
    cert, key = lab.path("cert.pem"), lab.path("key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=pinhole-lab", "-keyout", key, "-out", cert,
                    "-addext", f"subjectAltName=IP:{PIN},DNS:{DOMAIN}"],
                   check=True, capture_output=True, timeout=60)
    return cert, key


def pinhole_config(lab, cert, key, extra=""):
    """The config schema the lead fixed for the lab (DESIGN.md section 7); `extra` is appended
    (more top-level sections, e.g. border mode's)."""
    text = f"""workers: 2
listen:
  - {{ transport: udp, address: {PIN}, port: 5060 }}
  - {{ transport: tcp, address: {PIN}, port: 5060 }}
  - {{ transport: tls, address: {PIN}, port: 5061 }}
tls: {{ certificate: {cert}, private_key: {key}, verify_upstream: false }}
upstream: {{ uri: "sip:{ADDR['core']}:5060;transport=udp" }}
nat: {{ force_rport: always }}
flow_tokens: {{ secret: "hex:{secrets.token_hex(16)}" }}
domains: [{DOMAIN}]
admin: {{ listen: {PIN}:9060 }}
log: {{ level: debug }}
{extra}"""
    path = lab.path("pinhole.yaml")
    with open(path, "w") as f:
        f.write(text)
    return path


class Pinhole:
    """The pinhole daemon in the `pin` namespace (foreground, logs on stderr)."""

    def __init__(self, lab, binary, name="pinhole", extra_config=""):
        if not binary or not os.path.exists(binary):
            raise LabError(f"pinhole daemon not built: {binary!r}")
        self.lab = lab
        self.cert, self.key = make_cert(lab)
        self.config = pinhole_config(lab, self.cert, self.key, extra_config)
        check = subprocess.run([binary, "--check-config", self.config], capture_output=True,
                               text=True, timeout=20)
        if check.returncode != 0:
            raise LabError(f"pinhole --check-config failed: {check.stdout}{check.stderr}")
        self.proc = lab.spawn("pin", [binary, "--config", self.config], name)
        wait_until(self._ready, 15, "pinhole's admin /health")

    def admin(self, path):
        """GET http://203.0.113.10:9060<path> from inside the lab (urllib in the pin ns)."""
        code = ("import sys,urllib.request;"
                "print(urllib.request.urlopen(sys.argv[1],timeout=3).read().decode())")
        r = self.lab.exec("pin", ["python3", "-c", code, f"http://{PIN}:9060{path}"],
                          check=False, timeout=10)
        return r.stdout if r.returncode == 0 else None

    def _ready(self):
        if not self.proc.running():
            raise LabError(f"pinhole exited: {self.proc.stderr()[-3000:]}")
        return self.admin("/health") is not None

    def metrics(self):
        """Prometheus text -> {name{labels}: value}."""
        out = {}
        for line in (self.admin("/metrics") or "").splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                try:
                    out[name] = float(value)
                except ValueError:
                    pass
        return out

    def metric_sum(self, pattern):
        """Sum of all samples whose name{labels} matches the regex (names still settle)."""
        return sum(v for k, v in self.metrics().items() if re.search(pattern, k))

    def log(self):
        return self.proc.stderr()


# --------------------------------------------------------------------------- pinhole registrar mode

REG_DOMAIN = "lab.test"     # the domain pinhole's registrar serves (issue 4 lab tests)
REG_ADMIN = "127.0.0.1:9060"  # admin port on the loopback of pinhole's namespace


def pinhole_registrar_config(lab, cert, key, db, registrar=None, auth=None, node_id="lab-a", extra=""):
    """Registrar mode (issue 4): pinhole serves REG_DOMAIN alone (no upstream), bindings and
    users in a SQLite file, digest auth on. `registrar`/`auth` override single keys of those
    sections (e.g. {"max_expires": "3600s"}); values are written as given (YAML)."""
    reg = {"domains": f"[{REG_DOMAIN}]", "min_expires": "10s", "max_expires": "3600s",
           "default_expires": "600s", "nat_udp_lease": "60s"}
    reg.update(registrar or {})
    auth_keys = {"register": "true", "requests": "true"}
    auth_keys.update(auth or {})
    reg_text = "".join(f"  {k}: {v}\n" for k, v in reg.items())
    auth_text = "".join(f"  {k}: {v}\n" for k, v in auth_keys.items())
    text = f"""workers: 2
listen:
  - {{ transport: udp, address: {PIN}, port: 5060 }}
  - {{ transport: tcp, address: {PIN}, port: 5060 }}
  - {{ transport: tls, address: {PIN}, port: 5061 }}
tls: {{ certificate: {cert}, private_key: {key}, verify_upstream: false }}
registrar:
{reg_text}store: sqlite://{db}
auth:
{auth_text}flow_tokens: {{ secret: "hex:{secrets.token_hex(16)}" }}
admin: {{ listen: {REG_ADMIN} }}
node_id: {node_id}
log: {{ level: debug }}
{extra}"""
    path = lab.path("pinhole-registrar.yaml")
    with open(path, "w") as f:
        f.write(text)
    return path


class RegistrarPinhole(Pinhole):
    """pinhole in registrar mode in the `pin` namespace, with `pinhole ctl` run next to it.

    The config (with its flow-token secret) and the SQLite store are made once: start() after
    kill() brings up the same node on the same store, as an operator's restart would.
    """

    def __init__(self, lab, binary, registrar=None, auth=None, extra=""):
        if not binary or not os.path.exists(binary):
            raise LabError(f"pinhole daemon not built: {binary!r}")
        self.lab, self.binary, self.starts = lab, binary, 0
        self.cert, self.key = make_cert(lab)
        self.db = lab.path("pinhole.db")
        self.config = pinhole_registrar_config(lab, self.cert, self.key, self.db, registrar, auth,
                                               extra=extra)
        check = subprocess.run([binary, "--check-config", self.config], capture_output=True,
                               text=True, timeout=20)
        if check.returncode != 0:
            raise LabError(f"pinhole --check-config rejected the registrar config "
                           f"{self.config}: {check.stdout}{check.stderr}")
        self.start()

    def start(self):
        """Starts the daemon (again); output goes to pinhole-<n>.out/.err in the workdir."""
        self.starts += 1
        self.proc = self.lab.spawn("pin", [self.binary, "--config", self.config],
                                   f"pinhole-{self.starts}")
        wait_until(self._ready, 20, "pinhole's admin /health (registrar mode)")

    def kill(self):
        """SIGKILL: no shutdown code runs (what survives is what the store already holds)."""
        self.proc.kill()

    def admin(self, path):
        code = ("import sys,urllib.request;"
                "print(urllib.request.urlopen(sys.argv[1],timeout=3).read().decode())")
        r = self.lab.exec("pin", ["python3", "-c", code, f"http://{REG_ADMIN}{path}"],
                          check=False, timeout=10)
        return r.stdout if r.returncode == 0 else None

    def ctl(self, *args, json_output=False, check=True):
        """`pinhole ctl --admin 127.0.0.1:9060 [--json] ARGS` in pinhole's namespace.
        Exit codes: 0 ok, 1 daemon error, 2 usage, 3 unreachable."""
        argv = [self.binary, "ctl", "--admin", REG_ADMIN] + (["--json"] if json_output else [])
        r = self.lab.exec("pin", argv + list(args), check=False, timeout=20)
        if check and r.returncode != 0:
            raise LabError(f"pinhole ctl {' '.join(args)} -> exit {r.returncode}: "
                           f"{r.stdout.strip()} {r.stderr.strip()}")
        return r

    def add_user(self, user, password):
        """Provisions user@REG_DOMAIN (the CLI computes and stores the HA1s)."""
        self.ctl("users", "add", f"{user}@{REG_DOMAIN}", "--password", password)

    def registrations(self):
        """`ctl --json registrations` as parsed JSON: {"aors": N, "bindings": [...]}."""
        r = self.ctl("registrations", json_output=True)
        try:
            return json.loads(r.stdout)
        except ValueError:
            raise LabError(f"pinhole ctl --json registrations printed no JSON: {r.stdout!r}")

    def show(self, aor):
        """(exit code, parsed JSON or None) of `ctl --json show AOR`."""
        r = self.ctl("show", aor, json_output=True, check=False)
        try:
            return r.returncode, json.loads(r.stdout)
        except ValueError:
            return r.returncode, None


# --------------------------------------------------------------------------- pinhole cluster

REDIS_PORT = 6379


class Redis:
    """redis-server in a lab namespace (default: the core, 203.0.113.20:6379), nothing on disk:
    the shared store of a pinhole cluster (issue 4, acceptance 4). `cli` runs redis-cli next to
    it, so what a test reads is what the nodes wrote, not what pinhole says it wrote."""

    def __init__(self, lab, role="core", port=REDIS_PORT, name="redis"):
        self.lab, self.role, self.host, self.port = lab, role, ADDR[role], port
        rundir = lab.path(name)
        os.makedirs(rundir, exist_ok=True)
        argv = ["redis-server", "--bind", self.host, "--port", str(port), "--save", "",
                "--appendonly", "no", "--protected-mode", "no", "--dir", rundir,
                "--daemonize", "no", "--loglevel", "notice"]
        self.proc = lab.spawn(role, argv, name)
        wait_until(self._ready, 15, f"redis-server on {self.host}:{port}")

    @property
    def url(self):
        return f"redis://{self.host}:{self.port}/0"

    def cli(self, *args, check=True):
        """redis-cli --raw ARGS against this server; its stdout."""
        r = self.lab.exec(self.role, ["redis-cli", "--raw", "-h", self.host, "-p", self.port,
                                      *args], check=check, timeout=10)
        return r.stdout

    def _ready(self):
        if not self.proc.running():
            raise LabError(f"redis-server exited: {self.proc.stdout()[-2000:]}"
                           f"{self.proc.stderr()[-2000:]}")
        return self.cli("PING", check=False).strip() == "PONG"

    def log(self):
        return self.proc.stdout() + self.proc.stderr()


def pinhole_cluster_config(lab, name, address, store, secret, node_id):
    """One node of a registrar cluster (issue 4): like pinhole_registrar_config, but listening
    on `address` (UDP and TCP 5060), on a shared `store` (redis://...) and with the cluster's
    flow-token `secret` (every node must decode the others' Path tokens and accept their
    nonces, which are keyed from it). Admin on the loopback of the node's own namespace."""
    text = f"""workers: 2
listen:
  - {{ transport: udp, address: {address}, port: {SIP_PORT} }}
  - {{ transport: tcp, address: {address}, port: {SIP_PORT} }}
registrar:
  domains: [{REG_DOMAIN}]
  min_expires: 10s
  max_expires: 3600s
  default_expires: 600s
  nat_udp_lease: 60s
store: {store}
auth:
  register: true
  requests: true
flow_tokens: {{ secret: "hex:{secret}" }}
admin: {{ listen: {REG_ADMIN} }}
node_id: {node_id}
log: {{ level: debug }}
"""
    path = lab.path(f"{name}.yaml")
    with open(path, "w") as f:
        f.write(text)
    return path


class ClusterPinhole(RegistrarPinhole):
    """One registrar node of a cluster in its own wan namespace (`role`: "pin" for node A at
    203.0.113.10, "pinb" for node B at 203.0.113.11 after lab.add_wan_host("pinb")). Its admin
    API and `pinhole ctl` run in that namespace; output goes to <name>-<n>.out/.err."""

    def __init__(self, lab, binary, role, name, store, secret, node_id):
        if not binary or not os.path.exists(binary):
            raise LabError(f"pinhole daemon not built: {binary!r}")
        self.lab, self.binary, self.starts = lab, binary, 0
        self.role, self.name, self.node_id, self.address = role, name, node_id, ADDR[role]
        self.db = None  # the store is shared (Redis), not a file of this node
        self.config = pinhole_cluster_config(lab, name, self.address, store, secret, node_id)
        check = subprocess.run([binary, "--check-config", self.config], capture_output=True,
                               text=True, timeout=20)
        if check.returncode != 0:
            raise LabError(f"pinhole --check-config rejected the cluster config "
                           f"{self.config}: {check.stdout}{check.stderr}")
        self.start()

    def start(self):
        self.starts += 1
        self.proc = self.lab.spawn(self.role, [self.binary, "--config", self.config],
                                   f"{self.name}-{self.starts}")
        wait_until(self._ready, 20, f"{self.name}'s admin /health ({self.role} namespace)")

    def admin(self, path):
        code = ("import sys,urllib.request;"
                "print(urllib.request.urlopen(sys.argv[1],timeout=3).read().decode())")
        r = self.lab.exec(self.role, ["python3", "-c", code, f"http://{REG_ADMIN}{path}"],
                          check=False, timeout=10)
        return r.stdout if r.returncode == 0 else None

    def _ready(self):
        if not self.proc.running():
            raise LabError(f"{self.name} exited: {self.proc.stderr()[-3000:]}")
        return self.admin("/health") is not None

    def ctl(self, *args, json_output=False, check=True):
        argv = [self.binary, "ctl", "--admin", REG_ADMIN] + (["--json"] if json_output else [])
        r = self.lab.exec(self.role, argv + list(args), check=False, timeout=20)
        if check and r.returncode != 0:
            raise LabError(f"[{self.name}] pinhole ctl {' '.join(args)} -> exit {r.returncode}: "
                           f"{r.stdout.strip()} {r.stderr.strip()}")
        return r


# --------------------------------------------------------------------------- baresip

def baresip_configdir(lab, role, user, cert, ctrl_port=4444, regint=60, transport="tls",
                      outbound=f"sip:{ADDR['pin']}:5061;transport=tls", local_port=5060,
                      domain=DOMAIN, auth_user=None, auth_pass=None):
    """A per-run baresip config dir from baresip/config.in and baresip/accounts.in.
    auth_user/auth_pass: digest credentials for a registrar that challenges (pinhole's
    registrar mode); without them the account has none, as before."""
    auth = ""
    if auth_pass is not None:
        auth = f";auth_user={auth_user or user};auth_pass={auth_pass}"
    confdir = lab.path(f"baresip-{user}")
    os.makedirs(confdir, exist_ok=True)
    wav = os.path.join(confdir, "source.wav")
    _write_silence(wav)
    subst = {"@LOCAL_IP@": ADDR[role], "@LOCAL_PORT@": str(local_port), "@CAFILE@": cert,
             "@CTRL_PORT@": str(ctrl_port), "@USER@": user, "@DOMAIN@": domain, "@AUTH@": auth,
             "@TRANSPORT@": transport, "@OUTBOUND@": outbound, "@REGINT@": str(regint),
             "@SOURCE_WAV@": wav, "@MODULE_PATH@": _baresip_module_path(),
             "@NET_IF@": "wan0" if role in WAN_HOSTS else "eth0"}
    for name in ("config", "accounts"):
        with open(os.path.join(HERE, "baresip", f"{name}.in")) as f:
            text = f.read()
        for k, v in subst.items():
            text = text.replace(k, v)
        with open(os.path.join(confdir, name), "w") as f:
            f.write(text)
    open(os.path.join(confdir, "contacts"), "w").close()
    return confdir


def _write_silence(path, seconds=30):
    """8 kHz mono 16-bit silence: what baresip's aufile source plays into the call."""
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\0\0" * 8000 * seconds)


def _baresip_module_path():
    for d in ("/usr/lib/baresip/modules", "/usr/lib/x86_64-linux-gnu/baresip/modules"):
        if os.path.isdir(d):
            return d
    raise LabError("baresip modules not found (package baresip)")


class Baresip:
    """baresip headless in a UA namespace; driven over ctrl_tcp (JSON netstrings)."""

    def __init__(self, lab, role, user, cert, name="baresip", ctrl_port=4444, lifetime=120,
                 **account):
        self.lab, self.role, self.ctrl_port = lab, role, ctrl_port
        self.confdir = baresip_configdir(lab, role, user, cert, ctrl_port, **account)
        # -t: baresip quits by itself after `lifetime` seconds, whatever happens to us.
        self.proc = lab.spawn(role, ["baresip", "-f", self.confdir, "-t", str(lifetime), "-v"],
                              name)

    def command(self, cmd, params=""):
        """Runs a baresip command (e.g. 'hangup', 'reginfo') through ctrl_tcp."""
        payload = json.dumps({"command": cmd, "params": params, "token": "lab"})
        r = self.lab.helper(self.role, "netstring", "127.0.0.1", str(self.ctrl_port), payload,
                            check=False)
        return r.stdout

    def log(self):
        return self.proc.stdout() + self.proc.stderr()


def settle(seconds):
    """A short fixed pause where the protocol offers nothing to poll (e.g. after SIGKILL,
    for the kernel to send the RST/FIN that closes a TCP flow)."""
    time.sleep(seconds)


# --------------------------------------------------------------------------- pinhole-media

NG_PORT = 2223  # pinhole-media's ng control port (UDP) on its wan address


def bencode(value):
    """bytes of `value` (dict with str/bytes keys, list, int, str, bytes) in bencode. Dict keys
    are written sorted, as the format asks."""
    if isinstance(value, bool):
        raise TypeError("bencode has no booleans")
    if isinstance(value, int):
        return b"i%de" % value
    if isinstance(value, str):
        value = value.encode("latin-1")
    if isinstance(value, (bytes, bytearray)):
        return b"%d:%s" % (len(value), bytes(value))
    if isinstance(value, (list, tuple)):
        return b"l" + b"".join(bencode(v) for v in value) + b"e"
    if isinstance(value, dict):
        keys = sorted((k.encode("latin-1") if isinstance(k, str) else k, v)
                      for k, v in value.items())
        return b"d" + b"".join(bencode(k) + bencode(v) for k, v in keys) + b"e"
    raise TypeError(f"cannot bencode {type(value).__name__}")


def bdecode(data):
    """The value bencoded in `data` (strings decoded as latin-1 text). Raises ValueError on
    anything malformed or trailing bytes."""
    def parse(i):
        c = data[i:i + 1]
        if c == b"i":
            end = data.index(b"e", i)
            return int(data[i + 1:end]), end + 1
        if c == b"l":
            i, out = i + 1, []
            while data[i:i + 1] != b"e":
                v, i = parse(i)
                out.append(v)
            return out, i + 1
        if c == b"d":
            i, out = i + 1, {}
            while data[i:i + 1] != b"e":
                k, i = parse(i)
                v, i = parse(i)
                out[k] = v
            return out, i + 1
        if c.isdigit():
            colon = data.index(b":", i)
            n = int(data[i:colon])
            if colon + 1 + n > len(data):
                raise ValueError("bencode string runs past the end")
            return data[colon + 1:colon + 1 + n].decode("latin-1"), colon + 1 + n
        raise ValueError(f"bad bencode at offset {i}: {data[i:i + 10]!r}")
    try:
        value, end = parse(0)
    except IndexError as e:
        raise ValueError(f"truncated bencode: {e}") from None
    if end != len(data):
        raise ValueError(f"{len(data) - end} bytes after the bencoded value")
    return value


_NG_CLIENT = ("import socket,sys\n"
              "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
              "s.settimeout(float(sys.argv[3]))\n"
              "s.sendto(bytes.fromhex(sys.argv[4]),(sys.argv[1],int(sys.argv[2])))\n"
              "try:\n print(s.recv(65535).hex())\n"
              "except socket.timeout:\n print('timeout')\n")


class PinholeMedia:
    """pinhole-media (the ng-driven RTP relay) in a wan namespace (default `pin`,
    203.0.113.10): ng on ADDRESS:2223/UDP, relay ports from `ports` ("MIN-MAX"). Output goes
    to <name>.out/.err in the workdir; the Lab stops it at the latest on exit."""

    def __init__(self, lab, binary, ports="30000-30099", workers=2, role="pin", name="media",
                 log_level="debug"):
        if not binary or not os.path.exists(binary):
            raise LabError(f"pinhole-media not built: {binary!r}")
        self.lab, self.role, self.address = lab, role, ADDR[role]
        self.ng_endpoint = (self.address, NG_PORT)
        self._cookie = 0
        argv = [binary, "--ng", f"{self.address}:{NG_PORT}", "--interface", self.address,
                "--ports", ports, "--workers", str(workers), "--log-level", log_level]
        self.proc = lab.spawn(role, argv, name)
        wait_until(self._ready, 15, "pinhole-media answering ng ping")

    def _ready(self):
        if not self.proc.running():
            raise LabError(f"pinhole-media exited: {self.proc.stderr()[-3000:]}")
        try:
            return self.ng({"command": "ping"}, timeout=0.5).get("result") == "pong"
        except LabError:
            return False

    def send_raw(self, payload, timeout=3.0):
        """Sends one datagram to the ng port from the relay's namespace; the reply's bytes, or
        None when nothing came back within `timeout`."""
        r = self.lab.exec(self.role, [sys.executable, "-c", _NG_CLIENT, self.address, NG_PORT,
                                      timeout, payload.hex()], timeout=timeout + 10)
        out = r.stdout.strip()
        return None if out == "timeout" else bytes.fromhex(out)

    def ng(self, command, timeout=3.0, cookie=None):
        """Sends `command` (a dict) as `<cookie> <bencode>` and returns the decoded reply dict.
        Raises LabError when no reply comes, or it has another cookie or is not bencode."""
        self._cookie += 1
        cookie = cookie or f"lab{os.getpid()}_{self._cookie}"
        reply = self.send_raw(cookie.encode() + b" " + bencode(command), timeout)
        if reply is None:
            raise LabError(f"pinhole-media did not answer {command.get('command')!r}")
        got, _, body = reply.partition(b" ")
        if got.decode("latin-1") != cookie:
            raise LabError(f"ng reply for cookie {got!r}, sent {cookie!r}: {reply[:200]!r}")
        try:
            return bdecode(body)
        except ValueError as e:
            raise LabError(f"ng reply is not bencode ({e}): {reply[:300]!r}") from None

    def log(self):
        return self.proc.stderr() + self.proc.stdout()
