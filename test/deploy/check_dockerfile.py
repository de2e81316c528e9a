#!/usr/bin/python3
"""Checks docker/Dockerfile against the repository and the binaries built on this machine
(Debian 12, the image's base), without a Docker engine.

    check_dockerfile.py REPO_ROOT BIN_DIR

- two stages on Debian bookworm; the last one runs as a non-root user;
- the build stage installs every -dev package and build tool scripts/setup installs
  (tests excepted: the image is built with OUTBOX_BUILD_TESTS=OFF) and builds all four programs;
- the runtime stage installs no -dev package or compiler, and installs the Debian package of
  every shared library the binaries in BIN_DIR link directly (readelf NEEDED -> ldd path ->
  dpkg -S), so the image's programs start;
- every COPY source exists and is let through by .dockerignore.
"""

import fnmatch
import os
import re
import shlex
import subprocess
import sys

PROGRAMS = ("wallet-service", "outbox-relay", "broadcaster-worker", "walletctl")
# In every Debian image (libc6 is required by dpkg itself; libgcc-s1 by libc6).
BASE_PACKAGES = {"libc6", "libgcc-s1"}
BUILD_TOOLS = {"build-essential", "cmake", "ninja-build", "pkg-config"}
# Needed by scripts/setup for the tests only.
TEST_ONLY = {"catch2"}

problems = []


def problem(message):
    problems.append(message)


def logical_lines(path):
    """Dockerfile lines with continuations joined and comments dropped."""
    lines, pending = [], ""
    with open(path, encoding="utf-8") as f:
        for raw in f:
            line = raw.rstrip("\n")
            if not pending and line.lstrip().startswith("#"):
                continue
            if pending and line.lstrip().startswith("#"):
                continue
            if line.endswith("\\"):
                pending += line[:-1] + " "
                continue
            line = pending + line
            pending = ""
            if line.strip():
                lines.append(line.strip())
    return lines


def parse_stages(path):
    args, stages = {}, []
    for line in logical_lines(path):
        instruction, _, rest = line.partition(" ")
        instruction = instruction.upper()
        if instruction == "ARG" and not stages:
            name, _, default = rest.partition("=")
            args[name.strip()] = default.strip()
        elif instruction == "FROM":
            parts = rest.split()
            image = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), m.group(0)), parts[0])
            name = parts[2] if len(parts) >= 3 and parts[1].upper() == "AS" else str(len(stages))
            stages.append({"name": name, "image": image, "lines": []})
        elif stages:
            stages[-1]["lines"].append((instruction, rest))
    return stages


def apt_packages(stage):
    packages = set()
    for instruction, rest in stage["lines"]:
        if instruction != "RUN":
            continue
        for command in re.split(r"&&|;", rest):
            argv = shlex.split(command)
            if "apt-get" in argv and "install" in argv:
                after = argv[argv.index("install") + 1:]
                packages.update(a for a in after if not a.startswith("-") and "=" not in a)
    return packages


def setup_packages(repo):
    with open(os.path.join(repo, "scripts", "setup"), encoding="utf-8") as f:
        text = f.read()
    match = re.search(r"APT_PACKAGES=\((.*?)\n\)", text, re.S)
    if not match:
        problem("cannot find APT_PACKAGES in scripts/setup")
        return set()
    body = "\n".join(l.split("#", 1)[0] for l in match.group(1).splitlines())
    return set(body.split())


def needed_libraries(binary):
    """{soname: path} of the shared libraries `binary` links directly."""
    dynamic = subprocess.run(["readelf", "-d", binary], capture_output=True, text=True, check=True).stdout
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", dynamic)
    ldd = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout
    paths = dict(re.findall(r"^\s*(\S+) => (\S+)", ldd, re.M))
    result = {}
    for soname in needed:
        path = paths.get(soname)
        if not path or path == "not":
            problem(f"{os.path.basename(binary)}: {soname} is not found by ldd")
            continue
        result[soname] = path
    return result


def owning_packages(paths):
    """{path: Debian package} for the given library paths, in one dpkg -S call (it is slow)."""
    variants = {}
    for path in paths:
        real = os.path.realpath(path)
        # dpkg records /lib/... or /usr/lib/... depending on the package (usrmerge).
        for p in {path, real}:
            for v in (p, p[4:] if p.startswith("/usr/") else "/usr" + p):
                variants.setdefault(v, set()).add(path)
    result = subprocess.run(["dpkg", "-S"] + sorted(variants), capture_output=True, text=True)
    owners = {}
    for line in result.stdout.splitlines():
        package, _, file = line.partition(": ")
        for path in variants.get(file.strip(), ()):
            owners[path] = package.split(",")[0].split(":")[0].strip()
    return owners


def dockerignore_allows(repo, source):
    """Evaluates .dockerignore the way Docker does: last matching pattern wins."""
    path = os.path.join(repo, ".dockerignore")
    if not os.path.isfile(path):
        problem(".dockerignore is missing: the build context would include build trees and .local/")
        return True
    allowed = True
    with open(path, encoding="utf-8") as f:
        patterns = [l.strip() for l in f if l.strip() and not l.startswith("#")]
    source = source.rstrip("/")
    for pattern in patterns:
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        # A pattern matches the path itself or one of its parent folders.
        parts = source.split("/")
        prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
        if any(fnmatch.fnmatchcase(p, pattern) for p in prefixes):
            allowed = negate
    return allowed


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    repo, bin_dir = (os.path.abspath(a) for a in sys.argv[1:])
    dockerfile = os.path.join(repo, "docker", "Dockerfile")
    stages = parse_stages(dockerfile)
    if len(stages) < 2:
        problem(f"expected a multi-stage build, found {len(stages)} stage(s)")
        return report()
    build, runtime = stages[0], stages[-1]
    for stage in stages:
        if not re.fullmatch(r"debian:bookworm(-slim)?(@sha256:[0-9a-f]+)?", stage["image"]):
            problem(f"stage {stage['name']}: base image {stage['image']} is not Debian bookworm")

    build_packages = apt_packages(build)
    wanted = {p for p in setup_packages(repo) if p.endswith("-dev") or p in BUILD_TOOLS} - TEST_ONLY
    for package in sorted(wanted - build_packages):
        problem(f"build stage: {package} is installed by scripts/setup but not in the image's build stage")
    build_commands = " ".join(rest for instruction, rest in build["lines"] if instruction == "RUN")
    if "-DOUTBOX_BUILD_TESTS=OFF" not in build_commands:
        problem("build stage: configure with -DOUTBOX_BUILD_TESTS=OFF (no test sources in the image)")
    for program in PROGRAMS:
        if not re.search(rf"--target\b[^&]*\b{re.escape(program)}\b", build_commands):
            problem(f"build stage: `cmake --build ... --target` does not build {program}")

    runtime_packages = apt_packages(runtime)
    for package in sorted(runtime_packages):
        if package.endswith("-dev") or package in BUILD_TOOLS or package in {"gcc", "g++", "make"}:
            problem(f"runtime stage: {package} is a build dependency")
    linked = {}
    for program in PROGRAMS:
        binary = os.path.join(bin_dir, program)
        if not os.access(binary, os.X_OK):
            problem(f"{binary} is not built: cannot check the runtime libraries of {program}")
            continue
        linked[program] = needed_libraries(binary)
    owners = owning_packages({path for libs in linked.values() for path in libs.values()})
    for program, libs in linked.items():
        for soname, path in sorted(libs.items()):
            package = owners.get(path)
            if package is None:
                problem(f"{program}: no Debian package owns {path} ({soname})")
            elif package not in runtime_packages and package not in BASE_PACKAGES:
                problem(f"runtime stage: {program} links {soname} from {package}, which is not installed")

    user = [rest for instruction, rest in runtime["lines"] if instruction == "USER"]
    if not user or user[-1].split(":")[0] in ("0", "root"):
        problem("runtime stage: must end with USER <non-root>")

    for stage in stages:
        for instruction, rest in stage["lines"]:
            if instruction not in ("COPY", "ADD"):
                continue
            argv = [a for a in shlex.split(rest) if not a.startswith("--")]
            if any(a.startswith("--from") for a in shlex.split(rest)):
                continue
            for source in argv[:-1]:
                if not os.path.exists(os.path.join(repo, source)):
                    problem(f"stage {stage['name']}: COPY {source}: no such file in the repository")
                elif not dockerignore_allows(repo, source):
                    problem(f"stage {stage['name']}: COPY {source}: excluded by .dockerignore")
    return report()


def report():
    for p in problems:
        print(f"docker/Dockerfile: {p}", file=sys.stderr)
    if not problems:
        print("docker/Dockerfile: all checks passed")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
