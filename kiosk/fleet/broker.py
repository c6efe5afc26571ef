"""The fleet's broker set-up: a certificate authority of the community's own, Mosquitto's TLS configuration, a
client certificate per member (the office, each kiosk) and the ACL that confines each member to its topics.

Mosquitto takes each client's identity from its certificate (``use_identity_as_username``: the certificate's
common name is the user name the ACL sees), so a member's credentials are one key and one certificate, signed
by the fleet's CA; there are no passwords to leak. The CA's private key stays in the fleet folder on the office
machine. Layout of ``fleet init DIR``::

    DIR/fleet.json                    community name, broker host and port
    DIR/ca.crt, DIR/ca.key            the fleet's CA (the key never leaves this folder)
    DIR/broker/mosquitto.conf         TLS listener, client certificates required, the ACL file
    DIR/broker/server.crt, server.key the broker's certificate (for the host names given)
    DIR/broker/acl                    one block per member, rewritten by add-kiosk
    DIR/members/NAME/                 what a member installs: ca.crt, NAME.crt, NAME.key, fleet.json

Files are written atomically; keys are readable by their owner only.
"""

from __future__ import annotations

import datetime
import getpass
import ipaddress
import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, List, Optional, Sequence, Tuple

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

if TYPE_CHECKING:
    import subprocess

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")  # a community or member name: also a topic level and a CN
OFFICE = "office"
DEFAULT_PORT = 8883
CERT_DAYS = 3650


class FleetError(ValueError):
    """The fleet folder or a name is not usable; the message says what to do."""


@dataclass
class Fleet:
    community: str
    host: str = "localhost"
    port: int = DEFAULT_PORT
    members: List[str] = field(default_factory=list)

    def topic(self, *levels: str) -> str:
        return "/".join(("dabai", self.community) + tuple(levels))


def check_name(name: str, what: str) -> str:
    if not NAME.match(name or ""):
        raise FleetError("{} {!r}: use letters, digits, '-' and '_' (at most 63), starting with a letter or digit"
                         .format(what, name))
    return name


def _write(path: Path, data: bytes, private: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(str(tmp), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(str(tmp), str(path))


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _name(common: str, community: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "dabai {}".format(community)),
                      x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _issue(subject: x509.Name, key: ec.EllipticCurvePrivateKey, issuer: x509.Name, issuer_key: ec.EllipticCurvePrivateKey,
           ca: bool = False, server_names: Sequence[str] = (), client: bool = False) -> x509.Certificate:
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(key.public_key())
               .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=CERT_DAYS))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True))
    if ca:
        builder = builder.add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                                        critical=True)
    else:
        usages = [ExtendedKeyUsageOID.CLIENT_AUTH] if client else [ExtendedKeyUsageOID.SERVER_AUTH]
        builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    if server_names:
        alt: List[x509.GeneralName] = []
        for host in server_names:
            try:
                alt.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                alt.append(x509.DNSName(host))
        builder = builder.add_extension(x509.SubjectAlternativeName(alt), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def load_fleet(folder: Path) -> Fleet:
    path = folder / "fleet.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FleetError("{} is not a fleet folder (no fleet.json): run dabai-kiosk fleet init first".format(folder)) from None
    except (OSError, ValueError) as exc:
        raise FleetError("{} cannot be read: {}".format(path, exc)) from None
    return Fleet(str(data["community"]), str(data.get("host", "localhost")), int(data.get("port", DEFAULT_PORT)),
                 [str(m) for m in data.get("members", [])])


def _save_fleet(folder: Path, fleet: Fleet) -> None:
    _write(folder / "fleet.json", json.dumps(asdict(fleet), ensure_ascii=False, indent=2).encode("utf-8"))


def acl_text(fleet: Fleet) -> str:
    """Mosquitto's ACL: the office reads and writes the community's topics; each kiosk reads the lists and writes
    only its own log and status topics. Anything else is denied (Mosquitto denies what no line allows)."""
    lines = ["# written by dabai-kiosk fleet: do not edit (fleet add-kiosk rewrites it)"]
    for member in fleet.members:
        lines.append("")
        lines.append("user {}".format(member))
        if member == OFFICE:
            lines.append("topic readwrite {}".format(fleet.topic("#")))
        else:
            lines.append("topic read {}".format(fleet.topic("lists", "#")))
            lines.append("topic read {}".format(fleet.topic("ack", member)))
            lines.append("topic write {}".format(fleet.topic("log", member)))
            lines.append("topic write {}".format(fleet.topic("status", member)))
    return "\n".join(lines) + "\n"


def mosquitto_conf(folder: Path, fleet: Fleet, bind: str = "", user: str = "") -> str:
    """``user``: the account Mosquitto runs as once started by root (it reads the broker's key); by default the
    one that ran ``fleet init`` and owns the files."""
    broker = (folder / "broker").resolve()
    return "\n".join([
        "# written by dabai-kiosk fleet init: TLS only, a client certificate from the fleet's CA required",
        "user {}".format(user or getpass.getuser()),
        "per_listener_settings false",
        "allow_anonymous false",
        "persistence true",
        "persistence_location {}/".format(broker / "data"),
        "max_queued_messages 100000",  # an office away for a while gets every record when it is back
        "log_dest stderr",
        "listener {}{}".format(fleet.port, " " + bind if bind else ""),
        "cafile {}".format((folder / "ca.crt").resolve()),
        "certfile {}".format(broker / "server.crt"),
        "keyfile {}".format(broker / "server.key"),
        "require_certificate true",
        "use_identity_as_username true",
        "tls_version tlsv1.2",
        "acl_file {}".format(broker / "acl"),
        "",
    ])


def init_fleet(folder: Path, community: str, host: str = "localhost", port: int = DEFAULT_PORT,
               server_names: Sequence[str] = (), bind: str = "", broker_user: str = "") -> Fleet:
    """Make the fleet's CA, the broker's certificate and configuration, and the office's client certificate.
    ``broker_user``: the account the broker runs as (Debian's service: ``mosquitto``); its files are given to it."""
    check_name(community, "community")
    if (folder / "fleet.json").exists():
        raise FleetError("{} already holds a fleet: add kiosks with dabai-kiosk fleet add-kiosk".format(folder))
    if not 1 <= port <= 65535:
        raise FleetError("port {}: must be 1 … 65535".format(port))
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("dabai {} CA".format(community), community)
    ca = _issue(ca_name, ca_key, ca_name, ca_key, ca=True)
    _write(folder / "ca.key", _key_pem(ca_key), private=True)
    _write(folder / "ca.crt", _cert_pem(ca))
    server_key = ec.generate_private_key(ec.SECP256R1())
    names = list(dict.fromkeys([host, "localhost", "127.0.0.1"] + list(server_names)))
    server = _issue(_name(host, community), server_key, ca_name, ca_key, server_names=names)
    _write(folder / "broker" / "server.key", _key_pem(server_key), private=True)
    _write(folder / "broker" / "server.crt", _cert_pem(server))
    (folder / "broker" / "data").mkdir(parents=True, exist_ok=True)
    fleet = Fleet(community, host, port, [])
    _write(folder / "broker" / "mosquitto.conf", mosquitto_conf(folder, fleet, bind, broker_user).encode("utf-8"))
    add_member(folder, OFFICE, fleet)
    if broker_user and broker_user != getpass.getuser():
        _give(folder / "broker", broker_user)
    return fleet


def _give(folder: Path, user: str) -> None:
    """Hand the broker's folder to ``user`` (root only): its key stays private, to the broker."""
    import pwd

    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        raise FleetError("no user {!r} on this machine (install mosquitto first, or leave --broker-user out)".format(
            user)) from None
    for path in [folder] + sorted(folder.rglob("*")):
        os.chown(str(path), entry.pw_uid, entry.pw_gid)


def add_member(folder: Path, name: str, fleet: Optional[Fleet] = None) -> Path:
    """Enrol a member (a kiosk, or the office): its key and certificate signed by the fleet's CA, an ACL block, and
    its bundle under ``members/NAME``; returns the bundle folder. A name is enrolled once."""
    fleet = fleet if fleet is not None else load_fleet(folder)
    check_name(name, "kiosk name")
    if name in fleet.members:
        raise FleetError("{} is already enrolled (its bundle: {})".format(name, folder / "members" / name))
    try:
        ca_key = serialization.load_pem_private_key((folder / "ca.key").read_bytes(), None)
        ca = x509.load_pem_x509_certificate((folder / "ca.crt").read_bytes())
    except (OSError, ValueError) as exc:
        raise FleetError("the fleet's CA in {} cannot be read ({}): only the office machine can enrol".format(
            folder, exc)) from None
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _issue(_name(name, fleet.community), key, ca.subject, ca_key, client=True)  # type: ignore[arg-type]
    bundle = folder / "members" / name
    _write(bundle / "{}.key".format(name), _key_pem(key), private=True)
    _write(bundle / "{}.crt".format(name), _cert_pem(cert))
    _write(bundle / "ca.crt", (folder / "ca.crt").read_bytes())
    fleet.members.append(name)
    member = {"community": fleet.community, "host": fleet.host, "port": fleet.port, "name": name}
    _write(bundle / "fleet.json", json.dumps(member, ensure_ascii=False, indent=2).encode("utf-8"))
    _write(folder / "broker" / "acl", acl_text(fleet).encode("utf-8"))
    _save_fleet(folder, fleet)
    return bundle


def pid_path(folder: Path) -> Path:
    """Where ``fleet broker`` notes the broker's process id (it execs Mosquitto, which keeps that pid)."""
    return folder / "broker" / "mosquitto.pid"


def reload_broker(folder: Path) -> bool:
    """Ask the broker ``fleet broker`` runs to read its ACL again (SIGHUP), so a kiosk enrolled now is let in
    without a restart; False when no such broker runs here (a system service: ``systemctl reload mosquitto``)."""
    import signal

    try:
        pid = int(pid_path(folder).read_text().strip())
        with open("/proc/{}/cmdline".format(pid), "rb") as f:
            if b"mosquitto" not in f.read():
                return False
        os.kill(pid, signal.SIGHUP)
    except (OSError, ValueError):
        return False
    return True


MOSQUITTO_PATHS = ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto")  # Debian's is not on a user's PATH


def find_mosquitto() -> Optional[str]:
    """The mosquitto binary, or None when it is not installed."""
    import shutil

    return shutil.which("mosquitto") or next((p for p in MOSQUITTO_PATHS if os.path.exists(p)), None)


class BrokerProcess:
    """Mosquitto with a fleet's configuration as a child process (the tests and ``bench fleet``); ``start`` returns
    once it accepts connections, and it can be stopped and started again (it keeps what it holds on disk)."""

    def __init__(self, conf: Path, log_path: Optional[Path] = None, binary: Optional[str] = None) -> None:
        found = binary or find_mosquitto()
        if found is None:
            raise FleetError("mosquitto is not installed: apt-get install mosquitto")
        self.binary, self.conf, self.log_path = found, conf, log_path
        self.port = int([line.split()[1] for line in conf.read_text().splitlines() if line.startswith("listener")][0])
        self.proc: "Optional[subprocess.Popen[bytes]]" = None

    def start(self, timeout_s: float = 15.0) -> None:
        import socket
        import subprocess
        import time

        err = open(str(self.log_path), "ab") if self.log_path is not None else subprocess.DEVNULL
        try:
            self.proc = subprocess.Popen([self.binary, "-c", str(self.conf)], stdout=subprocess.DEVNULL, stderr=err)
        finally:
            if self.log_path is not None:
                err.close()  # type: ignore[union-attr]
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise FleetError("mosquitto did not start on port {}{}".format(
            self.port, " (see {})".format(self.log_path) if self.log_path else ""))

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(15)


def member_files(bundle: Path) -> Tuple[str, Path, Path, Path]:
    """(name, CA certificate, certificate, key) of an installed member bundle."""
    try:
        name = str(json.loads((bundle / "fleet.json").read_text(encoding="utf-8"))["name"])
    except (OSError, ValueError, KeyError) as exc:
        raise FleetError("{} is not a fleet member bundle ({})".format(bundle, exc)) from None
    return name, bundle / "ca.crt", bundle / "{}.crt".format(name), bundle / "{}.key".format(name)
