#!/usr/bin/python3
"""Structure of docker/docker-compose.yml, checked without a Docker engine.

    check_compose.py REPO_ROOT

Fails (exit 1, one line per problem) when the file would not bring the system up as the
README describes: a missing service, Kafka not in KRaft mode, a service without an image,
a health check or depends_on condition missing, a port published beyond loopback, an
endpoint in compose.env that no service answers on, a daemon whose health check asks a
port its config does not listen on, or the seed's `docker-compose up -d kafka postgres
redis` dragging in services that need an image build.

Runs with Debian's python3 and python3-yaml. When a Compose CLI is installed
(`docker compose` or docker-compose), its own `config` validation runs as well.
"""

import os
import re
import shutil
import subprocess
import sys
import tomllib
from urllib.parse import urlsplit

import yaml

INFRASTRUCTURE = ("kafka", "postgres", "redis", "anvil")
DAEMONS = {
    # service: (binary, config file in conf/, env prefix)
    "wallet-service": ("wallet-service", "wallet.toml", "WALLET"),
    "outbox-relay": ("outbox-relay", "relay.toml", "RELAY"),
    "broadcaster-worker": ("broadcaster-worker", "broadcaster.toml", "BROADCASTER"),
}
REQUIRED = INFRASTRUCTURE + ("migrate",) + tuple(DAEMONS)
# What the seed guide's command starts; it must not need anything built.
SEED_SERVICES = ("kafka", "postgres", "redis")
CONDITIONS = ("service_started", "service_healthy", "service_completed_successfully")
# Infrastructure each daemon must wait for (healthy) besides the migration.
DAEMON_NEEDS = {
    "wallet-service": {"postgres"},
    "outbox-relay": {"postgres", "kafka", "redis"},
    "broadcaster-worker": {"postgres", "kafka", "redis", "anvil"},
}

problems = []


def problem(message):
    problems.append(message)


def as_mapping(value, what):
    """Compose accepts environment as a mapping or a list of KEY=VALUE strings."""
    if value is None:
        return {}
    if isinstance(value, dict):
        return {str(k): "" if v is None else str(v) for k, v in value.items()}
    if isinstance(value, list):
        result = {}
        for item in value:
            key, _, val = str(item).partition("=")
            result[key] = val
        return result
    problem(f"{what}: expected a mapping or a list, got {type(value).__name__}")
    return {}


def as_command(value):
    if value is None:
        return []
    if isinstance(value, str):
        return value.split()
    return [str(v) for v in value]


def read_env_file(path):
    env = {}
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if "=" not in line:
                problem(f"{path}:{number}: not KEY=VALUE: {line!r}")
                continue
            key, _, value = line.partition("=")
            env[key.strip()] = value.strip()
    return env


def service_env(compose_dir, name, service):
    """The environment a service's container gets: env_file(s), then environment."""
    env = {}
    env_files = service.get("env_file") or []
    if isinstance(env_files, str):
        env_files = [env_files]
    for entry in env_files:
        path = entry["path"] if isinstance(entry, dict) else entry
        full = os.path.join(compose_dir, path)
        if not os.path.isfile(full):
            problem(f"{name}: env_file {path} does not exist")
            continue
        env.update(read_env_file(full))
    env.update(as_mapping(service.get("environment"), f"{name}.environment"))
    return env


def published_ports(name, service):
    """(host_ip, host_port, container_port) for every published port."""
    result = []
    for entry in service.get("ports") or []:
        if isinstance(entry, dict):
            result.append((str(entry.get("host_ip", "")), str(entry.get("published", "")), str(entry.get("target", ""))))
            continue
        text = str(entry)
        # host_ip:host:container, host:container or container; IPv6 hosts come in brackets.
        match = re.fullmatch(r"(?:(\[[^\]]+\]|[^:]+):)?(?:([^:]+):)?([^:]+)", text)
        if not match:
            problem(f"{name}: cannot parse port {text!r}")
            continue
        host_ip, host_port, container = match.groups()
        if host_port is None and host_ip is not None:
            host_ip, host_port = None, host_ip
        result.append((host_ip or "", host_port or "", container.split("/")[0]))
    return result


def healthcheck_test(service):
    hc = service.get("healthcheck")
    if not isinstance(hc, dict) or hc.get("disable"):
        return None
    test = hc.get("test")
    if isinstance(test, str):
        return ["CMD-SHELL", test]
    return [str(t) for t in test] if test else None


def check_kafka(service):
    image = str(service.get("image", ""))
    if not re.fullmatch(r"apache/kafka(-native)?:[0-9][\w.-]*", image):
        problem(f"kafka: image must be a pinned apache/kafka release, got {image!r}")
    env = as_mapping(service.get("environment"), "kafka.environment")
    roles = {r.strip() for r in env.get("KAFKA_PROCESS_ROLES", "").split(",")}
    if roles != {"broker", "controller"}:
        problem(f"kafka: KAFKA_PROCESS_ROLES must be broker,controller (KRaft combined), got {env.get('KAFKA_PROCESS_ROLES')!r}")
    for key in ("KAFKA_NODE_ID", "KAFKA_CONTROLLER_QUORUM_VOTERS", "KAFKA_CONTROLLER_LISTENER_NAMES",
                "KAFKA_LISTENERS", "KAFKA_ADVERTISED_LISTENERS", "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP", "CLUSTER_ID"):
        if not env.get(key):
            problem(f"kafka: {key} is required for KRaft mode")
    for key in env:
        if "ZOOKEEPER" in key:
            problem(f"kafka: {key} set, but KRaft mode runs without ZooKeeper")
    listeners = dict(re.findall(r"([A-Z_]+)://([^,]*)", env.get("KAFKA_LISTENERS", "")))
    controller = env.get("KAFKA_CONTROLLER_LISTENER_NAMES", "")
    if controller and controller not in listeners:
        problem(f"kafka: controller listener {controller} is not in KAFKA_LISTENERS")
    protocol_map = dict(p.split(":", 1) for p in env.get("KAFKA_LISTENER_SECURITY_PROTOCOL_MAP", "").split(",") if ":" in p)
    for listener in listeners:
        if listener not in protocol_map:
            problem(f"kafka: listener {listener} has no entry in KAFKA_LISTENER_SECURITY_PROTOCOL_MAP")
    voters = env.get("KAFKA_CONTROLLER_QUORUM_VOTERS", "")
    node_id = env.get("KAFKA_NODE_ID", "")
    if node_id and not voters.startswith(f"{node_id}@"):
        problem(f"kafka: KAFKA_CONTROLLER_QUORUM_VOTERS {voters!r} does not name node {node_id}")
    if controller in listeners:
        controller_port = listeners[controller].rsplit(":", 1)[-1]
        if not voters.endswith(f":{controller_port}"):
            problem(f"kafka: quorum voters {voters!r} do not use the controller port {controller_port}")
    advertised = dict(re.findall(r"([A-Z_]+)://([^,]*)", env.get("KAFKA_ADVERTISED_LISTENERS", "")))
    for listener in advertised:
        if listener not in listeners:
            problem(f"kafka: advertised listener {listener} is not in KAFKA_LISTENERS")
    return listeners, advertised


def check_endpoints(compose, env, name):
    """The endpoints a container is given must be answered by a compose service."""
    services = compose["services"]
    kafka_env = as_mapping(services.get("kafka", {}).get("environment"), "kafka.environment")
    advertised = set(re.findall(r"[A-Z_]+://([^,]*)", kafka_env.get("KAFKA_ADVERTISED_LISTENERS", "")))
    expected = {
        "DATABASE_URL": ("postgres", "5432"),
        "REDIS_URL": ("redis", "6379"),
        "ETH_RPC_URL": ("anvil", "8545"),
    }
    for key, (host, port) in expected.items():
        value = env.get(key)
        if value is None:
            problem(f"{name}: {key} is not set in its environment")
            continue
        url = urlsplit(value)
        if url.hostname != host or str(url.port) != port:
            problem(f"{name}: {key}={value} should point at the compose service {host}:{port}")
        if url.password:
            problem(f"{name}: {key} carries a password; use DATABASE_PASSWORD_FILE with a compose secret")
    if name == "migrate" or name == "wallet-service":
        return
    brokers = env.get("KAFKA_BOOTSTRAP_SERVERS", "")
    if not brokers:
        problem(f"{name}: KAFKA_BOOTSTRAP_SERVERS is not set")
    for broker in brokers.split(","):
        if broker and broker not in advertised:
            problem(f"{name}: KAFKA_BOOTSTRAP_SERVERS {broker} is not one of kafka's advertised listeners {sorted(advertised)}")
        elif broker.startswith("127.") or broker.startswith("localhost"):
            problem(f"{name}: KAFKA_BOOTSTRAP_SERVERS {broker} is the host listener; containers need the internal one")


def secret_names(service):
    names = []
    for entry in service.get("secrets") or []:
        names.append(entry["source"] if isinstance(entry, dict) else str(entry))
    return names


def check_secret_file_env(compose, name, service, env):
    """*_FILE variables pointing at /run/secrets/<x> need secret x mounted in that service."""
    mounted = set(secret_names(service))
    for key, value in env.items():
        if key.endswith("_FILE") and value.startswith("/run/secrets/"):
            secret = value[len("/run/secrets/"):]
            if secret not in mounted:
                problem(f"{name}: {key}={value} but secret {secret!r} is not mounted in this service")


def conf_http(root, conf_file):
    path = os.path.join(root, "conf", conf_file)
    if not os.path.isfile(path):
        return None
    with open(path, "rb") as f:
        return tomllib.load(f).get("http", {})


def check_daemon(root, compose, name, service, env):
    binary, conf_file, prefix = DAEMONS[name]
    command = as_command(service.get("command"))
    config_path = f"/etc/wallet-outbox/{conf_file}"
    if command[:1] != [binary] or "--config" not in command or config_path not in command:
        problem(f"{name}: command must run {binary} --config {config_path}, got {command}")
    if not os.path.isfile(os.path.join(root, "conf", conf_file)):
        problem(f"{name}: conf/{conf_file} (copied into the image by docker/Dockerfile) does not exist")
    deps = service.get("depends_on")
    if not isinstance(deps, dict):
        problem(f"{name}: depends_on must be the long form with conditions")
        deps = {}
    if deps.get("migrate", {}).get("condition") != "service_completed_successfully":
        problem(f"{name}: must depend on migrate with condition service_completed_successfully")
    for needed in DAEMON_NEEDS[name]:
        if deps.get(needed, {}).get("condition") != "service_healthy":
            problem(f"{name}: must depend on {needed} with condition service_healthy")
    test = healthcheck_test(service)
    if not test:
        problem(f"{name}: no healthcheck")
        return
    # The health check must ask the port the daemon listens on: [http] port of its TOML
    # unless the environment overrides it.
    http = conf_http(root, conf_file) or {}
    port = env.get(f"{prefix}_HTTP_PORT", str(http.get("port", "")))
    listen = env.get(f"{prefix}_HTTP_LISTEN", str(http.get("listen", "")))
    urls = [t for t in test if t.startswith("http://")]
    if not urls or not any(urlsplit(u).path == "/healthz" and str(urlsplit(u).port) == port for u in urls):
        problem(f"{name}: healthcheck {test} does not ask /healthz on the configured port {port or '?'}")
    published = published_ports(name, service)
    if published:
        if listen not in ("0.0.0.0", "::"):
            problem(f"{name}: publishes ports but listens on {listen!r}; set {prefix}_HTTP_LISTEN=0.0.0.0 in the container")
        if port and all(container != port for _, _, container in published):
            problem(f"{name}: publishes {published} but listens on {port}")


def check_compose(root):
    compose_dir = os.path.join(root, "docker")
    path = os.path.join(compose_dir, "docker-compose.yml")
    with open(path, encoding="utf-8") as f:
        compose = yaml.safe_load(f)
    services = compose.get("services") or {}
    compose["services"] = services

    for name in REQUIRED:
        if name not in services:
            problem(f"service {name!r} is missing")
    if "zookeeper" in services:
        problem("a zookeeper service is defined, but Kafka runs in KRaft mode")

    for name, service in services.items():
        if not service.get("image") and not service.get("build"):
            problem(f"{name}: neither image nor build is set")
        build = service.get("build")
        if build:
            context = build if isinstance(build, str) else build.get("context", ".")
            dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
            if not os.path.isfile(os.path.join(compose_dir, context, dockerfile)):
                problem(f"{name}: build {context}/{dockerfile} does not exist")
        for host_ip, host_port, container in published_ports(name, service):
            if host_ip not in ("127.0.0.1", "[::1]", "::1"):
                problem(f"{name}: port {host_port}:{container} is published on {host_ip or 'all interfaces'}; bind it to 127.0.0.1")
        deps = service.get("depends_on") or {}
        if isinstance(deps, list):
            deps = {d: {"condition": "service_started"} for d in deps}
        for dep, spec in deps.items():
            if dep not in services:
                problem(f"{name}: depends on unknown service {dep!r}")
                continue
            condition = (spec or {}).get("condition", "service_started")
            if condition not in CONDITIONS:
                problem(f"{name}: depends_on {dep} has unknown condition {condition!r}")
            if condition == "service_healthy" and not healthcheck_test(services[dep]):
                problem(f"{name}: waits for {dep} to be healthy, but {dep} has no healthcheck")
            if condition == "service_completed_successfully" and services[dep].get("restart") not in (None, "no"):
                problem(f"{name}: waits for {dep} to complete, but {dep} restarts ({services[dep].get('restart')})")
        for secret in secret_names(service):
            if secret not in (compose.get("secrets") or {}):
                problem(f"{name}: uses undeclared secret {secret!r}")

    for name, spec in (compose.get("secrets") or {}).items():
        file = (spec or {}).get("file")
        if file and not os.path.isfile(os.path.join(compose_dir, file)):
            problem(f"secret {name}: file {file} does not exist")

    for name in INFRASTRUCTURE:
        if name in services and not healthcheck_test(services[name]):
            problem(f"{name}: no healthcheck (the daemons wait for it to be healthy)")

    if "kafka" in services:
        check_kafka(services["kafka"])

    anvil = services.get("anvil")
    if anvil:
        image = str(anvil.get("image", ""))
        if not image.startswith("ghcr.io/foundry-rs/foundry:"):
            problem(f"anvil: image must be ghcr.io/foundry-rs/foundry, got {image!r}")
        argv = as_command(anvil.get("entrypoint")) + as_command(anvil.get("command"))
        joined = " ".join(argv)
        if "anvil" not in argv and not joined.startswith("anvil "):
            problem(f"anvil: entrypoint/command must run anvil, got {argv}")
        if "--host 0.0.0.0" not in joined:
            problem(f"anvil: must run with --host 0.0.0.0 to be reachable from the other containers, got {argv}")

    migrate = services.get("migrate")
    if migrate:
        if as_command(migrate.get("command"))[-3:] != ["walletctl", "migrate", "up"]:
            problem(f"migrate: command must be walletctl migrate up, got {migrate.get('command')}")
        if migrate.get("restart") not in (None, "no"):
            problem(f"migrate: a one-shot job must not restart (restart: {migrate.get('restart')!r})")
        deps = migrate.get("depends_on") or {}
        if not isinstance(deps, dict) or deps.get("postgres", {}).get("condition") != "service_healthy":
            problem("migrate: must depend on postgres with condition service_healthy")
        env = service_env(compose_dir, "migrate", migrate)
        check_endpoints(compose, env, "migrate")
        check_secret_file_env(compose, "migrate", migrate, env)

    for name in DAEMONS:
        service = services.get(name)
        if not service:
            continue
        env = service_env(compose_dir, name, service)
        check_daemon(root, compose, name, service, env)
        check_endpoints(compose, env, name)
        check_secret_file_env(compose, name, service, env)
        if service.get("restart") in (None, "no"):
            problem(f"{name}: a daemon should restart (restart: unless-stopped or on-failure)")
    broadcaster = services.get("broadcaster-worker")
    if broadcaster:
        env = service_env(compose_dir, "broadcaster-worker", broadcaster)
        if not (env.get("BROADCASTER_SIGNING_KEY_FILE") or env.get("BROADCASTER_SIGNING_KEY")):
            problem("broadcaster-worker: no signing key (BROADCASTER_SIGNING_KEY_FILE)")

    postgres = services.get("postgres")
    if postgres:
        env = service_env(compose_dir, "postgres", postgres)
        check_secret_file_env(compose, "postgres", postgres, env)
        db_url = urlsplit(read_env_file(os.path.join(compose_dir, "compose.env")).get("DATABASE_URL", ""))
        if env.get("POSTGRES_USER") != db_url.username or env.get("POSTGRES_DB") != db_url.path.lstrip("/"):
            problem(f"postgres: POSTGRES_USER/POSTGRES_DB {env.get('POSTGRES_USER')}/{env.get('POSTGRES_DB')} "
                    f"do not match DATABASE_URL in compose.env")

    # `docker-compose up -d kafka postgres redis` (the seed guide) starts those and whatever
    # they depend on: that must stay within infrastructure that needs no build.
    pending, closure = list(SEED_SERVICES), set()
    while pending:
        name = pending.pop()
        if name in closure or name not in services:
            continue
        closure.add(name)
        deps = services[name].get("depends_on") or {}
        pending.extend(deps if isinstance(deps, (list, dict)) else [])
    for name in sorted(closure):
        if services[name].get("build"):
            problem(f"`docker-compose up -d {' '.join(SEED_SERVICES)}` would build {name}")

    return compose_dir


def compose_cli_config(compose_dir):
    """Compose's own schema validation, when a Compose CLI is installed (no engine needed)."""
    candidates = []
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        candidates.append([docker, "compose"])
    if shutil.which("docker-compose"):
        candidates.append(["docker-compose"])
    for cli in candidates:
        result = subprocess.run(cli + ["-f", "docker-compose.yml", "config", "-q"], cwd=compose_dir,
                                capture_output=True, text=True)
        label = " ".join(os.path.basename(c) for c in cli)
        if result.returncode != 0:
            problem(f"`{label} config` rejects the file: {result.stderr.strip()}")
        else:
            print(f"`{label} config -q`: ok")
    if not candidates:
        print("no Compose CLI installed: checked the structure only")


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    compose_dir = check_compose(os.path.abspath(sys.argv[1]))
    compose_cli_config(compose_dir)
    for p in problems:
        print(f"docker-compose.yml: {p}", file=sys.stderr)
    if problems:
        return 1
    print("docker-compose.yml: all structure checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
