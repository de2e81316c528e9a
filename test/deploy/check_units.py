#!/usr/bin/python3
"""Checks the systemd units in conf/systemd/ as they would be installed.

    check_units.py REPO_ROOT BIN_DIR WORK_DIR

1. `systemd-analyze verify` on every unit, inside a scratch root (WORK_DIR/root) laid out like
   the target machine: the units in /etc/systemd/system, the distribution's units (targets
   such as network-online.target) in /usr/lib/systemd/system, and every program an Exec*=
   line names at its absolute path -- /usr/bin/<daemon> (the Debian package's layout) hard-linked (or copied) from
   BIN_DIR, anything else (/bin/kill) from this machine. verify then checks syntax, unknown
   keys, dependencies that must exist (Requires=) and that each command is an executable.
   `--root` is what lets it run without a booted systemd (as in a container): the manager
   loads units from the scratch root instead of talking to PID 1. Any output fails the test,
   since verify reports unknown keys and bad values as warnings with exit code 0.
2. `systemd-analyze security --offline=true` on every service: the exposure score must stay
   at 3.9 or less ("OK" or better).
3. The units agree with each other and with the install layout in the README: the daemons
   are Type=notify, start after and require wallet-migrate.service (stated on either side),
   read /etc/wallet-outbox/<name>.toml, have EnvironmentFile= and LoadCredential= for the
   database password, all from the same file; wallet-migrate is a one-shot
   `walletctl migrate up`.
"""

import os
import shutil
import subprocess
import sys

DAEMONS = {
    # unit: (binary, config file)
    "wallet-service.service": ("wallet-service", "wallet.toml"),
    "outbox-relay.service": ("outbox-relay", "relay.toml"),
    "broadcaster-worker.service": ("broadcaster-worker", "broadcaster.toml"),
}
MIGRATE = "wallet-migrate.service"
OUR_PROGRAMS = ("wallet-service", "outbox-relay", "broadcaster-worker", "walletctl")
# Daemons whose contract includes WATCHDOG=1 pings.
WATCHDOG_UNITS = ("outbox-relay.service", "broadcaster-worker.service")
MIGRATE_UNIT = None  # the parsed wallet-migrate.service, once read
REQUIRED_UNITS = (MIGRATE,) + tuple(DAEMONS)
# systemd-analyze security rates exposure from 0.0 (locked down) to 10.0 (unprotected); its
# --threshold takes tenths. 3.9 and below is what systemd 252 calls "OK" or better.
MAX_EXPOSURE_TENTHS = 39
EXEC_KEYS = ("ExecStart", "ExecStartPre", "ExecStartPost", "ExecReload", "ExecStop", "ExecStopPost",
             "ExecCondition")

problems = []


def problem(message):
    problems.append(message)


def parse_unit(path):
    """{section: [(key, value), ...]} keeping repeated keys and joining continuation lines."""
    sections, current, pending = {}, None, ""
    with open(path, encoding="utf-8") as f:
        for raw in f:
            line = raw.rstrip("\n")
            if pending:
                line = pending + line.lstrip()
                pending = ""
            stripped = line.strip()
            if not stripped or stripped[0] in "#;":
                continue
            if stripped.endswith("\\"):
                pending = stripped[:-1] + " "
                continue
            if stripped.startswith("[") and stripped.endswith("]"):
                current = stripped[1:-1]
                sections.setdefault(current, [])
                continue
            key, _, value = stripped.partition("=")
            sections.setdefault(current, []).append((key.strip(), value.strip()))
    return sections


def values(unit, section, key):
    return [v for k, v in unit.get(section, []) if k == key]


def words(unit, section, key):
    return [w for v in values(unit, section, key) for w in v.split()]


def exec_programs(unit):
    """Absolute program paths of every Exec*= line (prefixes such as -@:+! stripped)."""
    programs = []
    for key in EXEC_KEYS:
        for value in values(unit, "Service", key):
            if not value:
                continue
            program = value.split()[0].lstrip("-@:+!|")
            programs.append(program)
    return programs


def link_or_copy(source, target):
    os.makedirs(os.path.dirname(target), exist_ok=True)
    if os.path.lexists(target):
        os.remove(target)
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def build_root(repo, bin_dir, work, units):
    root = os.path.join(work, "root")
    shutil.rmtree(root, ignore_errors=True)
    system_dir = os.path.join(root, "etc/systemd/system")
    os.makedirs(system_dir)
    vendor = "/usr/lib/systemd/system"
    if not os.path.isdir(vendor):
        problem(f"{vendor} is missing: install Debian's systemd package (scripts/setup)")
        return None
    shutil.copytree(vendor, os.path.join(root, vendor.lstrip("/")), symlinks=True)
    for name, (path, unit) in units.items():
        shutil.copy2(path, os.path.join(system_dir, name))
        for program in exec_programs(unit):
            if not program.startswith("/"):
                problem(f"{name}: {program} is not an absolute path")
                continue
            target = os.path.join(root, program.lstrip("/"))
            if program.startswith("/usr/bin/") and os.path.basename(program) in OUR_PROGRAMS:
                source = os.path.join(bin_dir, os.path.basename(program))
                if not os.access(source, os.X_OK):
                    problem(f"{name}: {program} is installed from {source}, which is not built")
                    continue
            else:
                source = program
                if not os.access(source, os.X_OK):
                    problem(f"{name}: {program} does not exist on this machine either")
                    continue
            link_or_copy(os.path.realpath(source), target)
    return root


def run(argv):
    result = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    return result.returncode, (result.stdout + result.stderr).strip()


def check_daemon_unit(name, unit):
    binary, conf = DAEMONS[name]
    if values(unit, "Service", "Type") != ["notify"]:
        problem(f"{name}: Type= must be notify (the daemon sends READY=1), got {values(unit, 'Service', 'Type')}")
    start = values(unit, "Service", "ExecStart")
    expected = f"/usr/bin/{binary} --config /etc/wallet-outbox/{conf}"
    if not start or not start[-1].startswith(expected):
        problem(f"{name}: ExecStart must be `{expected}`, got {start}")
    # Either side may state the dependency: After=/Requires= here, or Before=/RequiredBy= there.
    migrate = MIGRATE_UNIT or {}
    if MIGRATE not in words(unit, "Unit", "After") and name not in words(migrate, "Unit", "Before"):
        problem(f"{name}: not ordered after {MIGRATE} (After={MIGRATE} here or Before={name} there)")
    if MIGRATE not in words(unit, "Unit", "Requires") and name not in words(migrate, "Install", "RequiredBy"):
        problem(f"{name}: does not require {MIGRATE} (Requires={MIGRATE} here or RequiredBy={name} there)")
    reload = values(unit, "Service", "ExecReload")
    if not reload or "-HUP" not in reload[0] and "SIGHUP" not in reload[0]:
        problem(f"{name}: ExecReload= must send SIGHUP (systemctl reload), got {reload}")
    if name in WATCHDOG_UNITS and not values(unit, "Service", "WatchdogSec"):
        problem(f"{name}: WatchdogSec= is not set (the daemon pings the watchdog)")
    restart = values(unit, "Service", "Restart")
    if restart not in (["on-failure"], ["always"], ["on-abnormal"]):
        problem(f"{name}: Restart= should be on-failure, got {restart}")


def check_common(name, unit):
    if not values(unit, "Service", "EnvironmentFile"):
        problem(f"{name}: no EnvironmentFile=")
    for value in values(unit, "Service", "EnvironmentFile"):
        if not value.lstrip("-").startswith("/etc/wallet-outbox/"):
            problem(f"{name}: EnvironmentFile={value} is outside /etc/wallet-outbox/")
    credentials = [v.split(":", 1) for v in values(unit, "Service", "LoadCredential")]
    if not any(c[0] == "database-password" for c in credentials):
        problem(f"{name}: no LoadCredential=database-password:... (read by the database layer)")
    for credential in credentials:
        if len(credential) == 2 and not credential[1].startswith("/etc/wallet-outbox/"):
            problem(f"{name}: LoadCredential={':'.join(credential)} is outside /etc/wallet-outbox/")
    if values(unit, "Service", "DynamicUser") != ["yes"] and not values(unit, "Service", "User"):
        problem(f"{name}: runs as root (set DynamicUser=yes)")
    if not values(unit, "Install", "WantedBy"):
        problem(f"{name}: no [Install] WantedBy=, so `systemctl enable` does nothing")


def check_migrate_unit(unit):
    if values(unit, "Service", "Type") != ["oneshot"]:
        problem(f"{MIGRATE}: Type= must be oneshot")
    if values(unit, "Service", "ExecStart") != ["/usr/bin/walletctl migrate up"]:
        problem(f"{MIGRATE}: ExecStart= must be `/usr/bin/walletctl migrate up`")
    if values(unit, "Service", "RemainAfterExit") != ["yes"]:
        problem(f"{MIGRATE}: RemainAfterExit=yes keeps it active, so the daemons' Requires= holds")
    # walletctl finds <prefix>/share/wallet-outbox/migrations next to itself; a hard-coded folder
    # here would go stale when the prefix changes.
    if any(v.startswith("OUTBOX_MIGRATIONS_DIR=") for v in words(unit, "Service", "Environment")):
        problem(f"{MIGRATE}: drop Environment=OUTBOX_MIGRATIONS_DIR: walletctl finds the installed migrations")


def main():
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    repo, bin_dir, work = (os.path.abspath(a) for a in sys.argv[1:])
    unit_dir = os.path.join(repo, "conf", "systemd")
    names = sorted(n for n in os.listdir(unit_dir) if n.endswith((".service", ".socket", ".timer", ".target")))
    for name in REQUIRED_UNITS:
        if name not in names:
            problem(f"conf/systemd/{name} is missing")
    units = {n: (os.path.join(unit_dir, n), parse_unit(os.path.join(unit_dir, n))) for n in names}

    analyze = shutil.which("systemd-analyze")
    if not analyze:
        problem("systemd-analyze is not installed (Debian package systemd, scripts/setup)")
    root = build_root(repo, bin_dir, work, units) if analyze else None
    if root and names:
        rc, output = run([analyze, "verify", "--man=no", f"--root={root}"] + names)
        if rc != 0 or output:
            problem(f"systemd-analyze verify (exit {rc}):\n{output}")
        else:
            print(f"systemd-analyze verify: {len(names)} units accepted: {' '.join(names)}")
        for name in names:
            if not name.endswith(".service"):
                continue
            rc, output = run([analyze, "security", "--offline=true", f"--root={root}",
                              f"--threshold={MAX_EXPOSURE_TENTHS}", "--no-pager", name])
            overall = next((l for l in output.splitlines() if "Overall exposure level" in l), output[-200:])
            if rc != 0:
                problem(f"{name}: exposure above {MAX_EXPOSURE_TENTHS / 10}: {overall.strip()}")
            else:
                print(f"{name}: {overall.strip().removeprefix('→ ')}")

    global MIGRATE_UNIT
    MIGRATE_UNIT = units.get(MIGRATE, (None, None))[1]
    # One password file for every unit: operators install it once.
    sources = {n: dict(v.split(":", 1) for v in values(u, "Service", "LoadCredential") if ":" in v)
               .get("database-password") for n, (_, u) in units.items()}
    distinct = {s for s in sources.values() if s}
    if len(distinct) > 1:
        problem("the units load the database-password credential from different files: "
                + ", ".join(f"{n}: {s}" for n, s in sorted(sources.items()) if s))
    for name, (_, unit) in units.items():
        if name in DAEMONS:
            check_daemon_unit(name, unit)
        if name == MIGRATE:
            check_migrate_unit(unit)
        if name in REQUIRED_UNITS:
            check_common(name, unit)

    for p in problems:
        print(f"conf/systemd: {p}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
