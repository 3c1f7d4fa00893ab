"""Static checks of docker-compose.yml, the Dockerfiles, .env.example and
.dockerignore. No Docker engine is needed: the files are parsed as text/YAML.

The check that every `pipeline ...` command of the compose services is a real
subcommand runs `python -m shared.cli SUBCOMMAND --help` with this interpreter.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERIGNORE = ROOT / ".dockerignore"

WORKERS = ("setup", "ingest", "transform")
STORES = ("postgres", "redis")
# One Dockerfile for every stage's image; the stage is its build argument STAGE.
WORKER_DOCKERFILE = ROOT / "services" / "Dockerfile"
DASHBOARD_DOCKERFILE = ROOT / "ops" / "rq-dashboard" / "Dockerfile"
ALL_DOCKERFILES = [WORKER_DOCKERFILE, DASHBOARD_DOCKERFILE]
OFFLINE_DIR = ROOT / "ops" / "offline"
# Services built from the worker Dockerfile, and the stage each one's image holds.
IMAGE_STAGES = {
    "bootstrap": "setup",
    "setup": "setup",
    "ingest": "ingest",
    "transform": "transform",
    "cli": "setup",
    "scheduler": "scheduler",
    "ui": "ui",
}

# Variables of the configuration contract: .env.example documents each one.
CONTRACT_VARS = (
    "DATABASE_URL",
    "SETUP_DATABASE_URL",
    "PIPELINE_DB_PASSWORD",
    "ANALYST_DB_PASSWORD",
    "REDIS_URL",
    "LOG_LEVEL",
    "LOG_FORMAT",
    "DATA_DIR",
    "QUARANTINE_MAX_RATE",
    "JOB_TIMEOUT",
    "RETRY_MAX",
    "RETRY_INTERVALS",
    "POSTGRES_USER",
    "POSTGRES_PASSWORD",
    "POSTGRES_DB",
    "POSTGRES_PORT",
    "REDIS_PORT",
    "RQ_DASHBOARD_PORT",
)

SECRET_KEY_RE = re.compile(r"PASSWORD|SECRET|TOKEN", re.IGNORECASE)
# ${VAR}, ${VAR?msg}, ${VAR:?msg}, ${VAR-default}, ${VAR:-default}
VAR_REF_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)((?::?[?-])[^}]*)?\}")
URL_USERINFO_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://([^/\s]*)@")


# --------------------------------------------------------------------------
# helpers


def load_compose() -> dict:
    with COMPOSE_FILE.open(encoding="utf-8") as fh:
        data = yaml.safe_load(fh)
    assert isinstance(data, dict) and isinstance(data.get("services"), dict), (
        "docker-compose.yml has no services mapping"
    )
    return data


def depends_on(service: dict) -> dict[str, str]:
    """depends_on as {service: condition}; the list form means service_started."""
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return {name: "service_started" for name in deps}
    return {name: (spec or {}).get("condition", "service_started") for name, spec in deps.items()}


def blank_vars(text: str) -> str:
    """Replace every ${...} reference with a plain token (they may hold ':')."""
    return VAR_REF_RE.sub("VAR", text)


def is_required_ref(text: str) -> bool:
    """True if text is exactly one ${VAR?...}/${VAR:?...}/${VAR}: no literal default."""
    match = VAR_REF_RE.fullmatch(text)
    if not match:
        return False
    modifier = match.group(2) or ""
    return modifier == "" or modifier.startswith("?") or modifier.startswith(":?")


def walk_pairs(node, key: str = ""):
    """Yield (key, value) for every scalar in the YAML tree; environment lists
    of KEY=VALUE strings are split into key and value."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield from walk_pairs(v, str(k))
    elif isinstance(node, list):
        for item in node:
            if key == "environment" and isinstance(item, str) and "=" in item:
                k, _, v = item.partition("=")
                yield k, v
            else:
                yield from walk_pairs(item, key)
    else:
        yield key, node


def parse_dockerfile(path: Path) -> list[tuple[str, str]]:
    """Instructions as (KEYWORD, arguments), continuation lines joined and
    comment lines dropped (as Docker does, also inside continuations)."""
    instructions: list[tuple[str, str]] = []
    buf = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and not buf):
            continue
        if stripped.endswith("\\"):
            buf += stripped[:-1] + " "
            continue
        line = (buf + stripped).strip()
        buf = ""
        if line:
            keyword, _, args = line.partition(" ")
            instructions.append((keyword.upper(), args.strip()))
    if buf.strip():
        keyword, _, args = buf.strip().partition(" ")
        instructions.append((keyword.upper(), args.strip()))
    return instructions


def final_stage(instructions: list[tuple[str, str]]) -> list[tuple[str, str]]:
    last_from = max(i for i, (kw, _) in enumerate(instructions) if kw == "FROM")
    return instructions[last_from:]


def from_images(instructions: list[tuple[str, str]]) -> list[str]:
    """Base images of all FROM lines that are not earlier stages, ARG-resolved."""
    global_args: dict[str, str] = {}
    for kw, args in instructions:
        if kw == "FROM":
            break
        if kw == "ARG" and "=" in args:
            name, _, default = args.partition("=")
            global_args[name.strip()] = default.strip().strip('"')
    stages: set[str] = set()
    images = []
    for kw, args in instructions:
        if kw != "FROM":
            continue
        words = [w for w in args.split() if not w.startswith("--")]
        image = re.sub(
            r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?",
            lambda m: global_args.get(m.group(1), m.group(0)),
            words[0],
        )
        if image.lower() not in stages:  # `FROM base` reuses an earlier stage
            images.append(image)
        if len(words) >= 3 and words[1].lower() == "as":
            stages.add(words[2].lower())
    return images


def exec_form(args: str) -> list[str]:
    """JSON (exec) form of CMD/ENTRYPOINT/HEALTHCHECK CMD; fails on shell form."""
    value = json.loads(args)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value)
    return value


def healthcheck_cmd(args: str) -> list[str] | None:
    if args.strip().upper() == "NONE":
        return None
    words = args.split()
    idx = next(i for i, w in enumerate(words) if w.upper() == "CMD")
    rest = " ".join(words[idx + 1 :])
    return exec_form(rest) if rest.startswith("[") else ["/bin/sh", "-c", rest]


def image_env(instructions: list[tuple[str, str]], build_args: dict) -> dict[str, str]:
    """ENV of the final stage as NAME -> value, ${ARG} references resolved from build_args."""
    env = {}
    for kw, args in final_stage(instructions):
        if kw == "ENV":
            for name, value in re.findall(r"([A-Za-z_][A-Za-z0-9_]*)=(\S+)", args):
                env[name] = re.sub(r"\$\{?(\w+)\}?", lambda m: str(build_args.get(m.group(1), "")), value)
    return env


def image_cmd(service: dict) -> list[str] | None:
    """The image's CMD for a service built from a Dockerfile in this repo, with the image's ENV
    (as set from the service's build args) expanded where the CMD runs a shell."""
    build = service.get("build")
    if not build:
        return None
    if isinstance(build, str):
        build = {"context": build}
    dockerfile = ROOT / build.get("context", ".") / build.get("dockerfile", "Dockerfile")
    instructions = parse_dockerfile(dockerfile)
    cmds = [args for kw, args in final_stage(instructions) if kw == "CMD"]
    if not cmds:
        return None
    cmd = exec_form(cmds[-1])
    if len(cmd) == 3 and Path(cmd[0]).name in ("sh", "bash") and cmd[1] == "-c":
        env = image_env(instructions, build.get("args") or {})
        cmd[2] = re.sub(r"\$\{?(\w+)\}?", lambda m: env.get(m.group(1), m.group(0)), cmd[2])
    return cmd


def pipeline_invocations(command) -> list[list[str]]:
    """argv lists of each `pipeline ...` call in a command (exec form, string,
    or `sh -c "a && b"`)."""
    if command is None:
        return []
    argv = shlex.split(command) if isinstance(command, str) else [str(c) for c in command]
    if argv[:1] == ["exec"]:
        argv = argv[1:]
    if len(argv) >= 3 and Path(argv[0]).name in ("sh", "bash") and argv[1] == "-c":
        calls = []
        for part in re.split(r"&&|\|\||;", argv[2]):
            calls.extend(pipeline_invocations(shlex.split(part)))
        return calls
    return [argv] if argv and argv[0] == "pipeline" else []


def service_commands(compose: dict) -> dict[str, list[list[str]]]:
    """For every service, its `pipeline` invocations (compose command, else
    the image CMD)."""
    result = {}
    for name, service in compose["services"].items():
        command = service.get("command")
        if command is None:
            command = image_cmd(service)
        result[name] = pipeline_invocations(command)
    return result


def subcommand_cases() -> list[tuple[str, tuple[str, ...]]]:
    """(service, argv) pairs, collected when the module is imported."""
    try:
        commands = service_commands(load_compose())
    except Exception as exc:  # reported by test_compose_file_parses
        return [("<compose unreadable>", ("pipeline", f"<{type(exc).__name__}>"))]
    return [(svc, tuple(argv)) for svc, calls in sorted(commands.items()) for argv in calls]


@pytest.fixture(scope="module")
def compose() -> dict:
    return load_compose()


@pytest.fixture(scope="module")
def services(compose: dict) -> dict:
    return compose["services"]


# --------------------------------------------------------------------------
# compose file


def test_compose_file_parses(compose: dict) -> None:
    expected = {*STORES, "bootstrap", *WORKERS, "cli", "rq-dashboard"}
    assert expected <= set(compose["services"]), (
        f"missing services: {sorted(expected - set(compose['services']))}"
    )


@pytest.mark.parametrize("name", STORES)
def test_stores_have_healthchecks(services: dict, name: str) -> None:
    test = (services[name].get("healthcheck") or {}).get("test")
    assert test, f"{name} has no healthcheck"
    flat = " ".join(test) if isinstance(test, list) else test
    assert flat.split()[0] != "NONE"
    probe = "pg_isready" if name == "postgres" else "redis-cli"
    assert probe in flat, f"{name} healthcheck should use {probe}: {flat!r}"


def test_redis_appendonly_on_named_volume(compose: dict, services: dict) -> None:
    redis = services["redis"]
    command = redis.get("command")
    argv = shlex.split(command) if isinstance(command, str) else list(command or [])
    assert "--appendonly" in argv and argv[argv.index("--appendonly") + 1] == "yes", argv
    named = set(compose.get("volumes") or {})
    mounts = [v.split(":") for v in redis.get("volumes", []) if isinstance(v, str)]
    assert any(src in named and dst == "/data" for src, dst, *_ in mounts), (
        f"redis needs a named volume on /data, has {redis.get('volumes')}"
    )


def test_postgres_is_tuned_for_bulk_loads(services: dict) -> None:
    """Settings docs/containers.md explains: buffers and WAL sized for loads, /dev/shm for parallel
    queries (Docker's 64 MB default fails them)."""
    postgres = services["postgres"]
    command = postgres["command"]
    settings = dict(arg.split("=", 1) for arg in command[2::2])
    assert command[0] == "postgres" and set(command[1::2]) == {"-c"}
    assert {"shared_buffers", "max_wal_size", "checkpoint_timeout"} <= set(settings)
    assert postgres["shm_size"] in ("1gb", "1073741824", 1073741824)


def test_postgres_data_on_named_volume(compose: dict, services: dict) -> None:
    named = set(compose.get("volumes") or {})
    mounts = [v.split(":") for v in services["postgres"].get("volumes", [])]
    assert any(src in named and dst.startswith("/var/lib/postgresql/data") for src, dst, *_ in mounts)


@pytest.mark.parametrize("worker", WORKERS)
def test_worker_dependencies(services: dict, worker: str) -> None:
    deps = depends_on(services[worker])
    for store in STORES:
        assert deps.get(store) == "service_healthy", f"{worker} -> {store}: {deps.get(store)}"
    assert deps.get("bootstrap") == "service_completed_successfully", deps


@pytest.mark.parametrize("worker", WORKERS)
def test_worker_is_scalable_and_long_running(services: dict, worker: str) -> None:
    svc = services[worker]
    assert "container_name" not in svc, f"{worker} has container_name: cannot --scale"
    assert not svc.get("ports"), f"{worker} publishes ports: cannot --scale"
    assert svc.get("restart") == "unless-stopped"
    grace = str(svc.get("stop_grace_period", "10s"))
    seconds = sum(
        int(n) * {"h": 3600, "m": 60, "s": 1}[unit] for n, unit in re.findall(r"(\d+)([hms])", grace)
    )
    assert seconds >= 60, f"{worker} stop_grace_period {grace!r} too short for a batch"
    assert "./data:/data:ro" in svc.get("volumes", [])


@pytest.mark.parametrize("worker", ("ingest", "transform"))
def test_only_setup_gets_admin_credentials(services: dict, worker: str) -> None:
    env = services[worker].get("environment") or {}
    keys = set(env) if isinstance(env, dict) else {e.partition("=")[0] for e in env}
    assert "DATABASE_URL" in keys and "REDIS_URL" in keys
    assert not keys & {"SETUP_DATABASE_URL", "POSTGRES_PASSWORD"}, keys


def test_bootstrap_is_one_shot_setup_then_sample_run(services: dict) -> None:
    boot = services["bootstrap"]
    assert boot.get("restart") == "no"
    deps = depends_on(boot)
    assert all(deps.get(s) == "service_healthy" for s in STORES), deps
    calls = pipeline_invocations(boot.get("command"))
    assert [c[:2] for c in calls] == [["pipeline", "setup"], ["pipeline", "run"]], calls
    run = calls[1]
    assert run[run.index("--source") + 1] == "/data/sample.csv", run
    assert "./data:/data:ro" in boot.get("volumes", [])


def test_tool_profiles(services: dict) -> None:
    assert "tools" in services["cli"].get("profiles", [])
    assert "ops" in services["rq-dashboard"].get("profiles", [])
    env = services["rq-dashboard"].get("environment") or {}
    keys = set(env) if isinstance(env, dict) else {e.partition("=")[0] for e in env}
    assert "RQ_DASHBOARD_REDIS_URL" in keys


def test_published_ports_bind_localhost(services: dict) -> None:
    published = 0
    for name, svc in services.items():
        for port in svc.get("ports") or []:
            published += 1
            if isinstance(port, dict):
                host_ip = port.get("host_ip")
            else:
                parts = blank_vars(str(port)).split(":")
                host_ip = parts[0] if len(parts) == 3 else None
            assert host_ip == "127.0.0.1", f"{name} publishes {port!r} beyond 127.0.0.1"
    assert published >= 3  # postgres, redis, rq-dashboard


def test_every_service_logs_with_rotation(services: dict) -> None:
    for name, svc in services.items():
        logging = svc.get("logging") or {}
        assert logging.get("driver") == "json-file", f"{name}: {logging}"
        options = logging.get("options") or {}
        assert options.get("max-size") and options.get("max-file"), f"{name}: {options}"


def test_no_literal_secrets(compose: dict) -> None:
    for key, value in walk_pairs(compose):
        if SECRET_KEY_RE.search(key):
            assert isinstance(value, str) and is_required_ref(value), (
                f"{key} must be a bare ${{VAR?...}} reference, not {value!r}"
            )
        if isinstance(value, str):
            for userinfo in URL_USERINFO_RE.findall(value):
                refs = {}

                def stash(m, refs=refs):
                    token = f"@@{len(refs)}@@"
                    refs[token] = m.group(0)
                    return token

                user, sep, password = VAR_REF_RE.sub(stash, userinfo).partition(":")
                if sep:
                    assert password in refs and is_required_ref(refs[password]), (
                        f"{key}: password in URL {value!r} must be a ${{VAR?...}} reference"
                    )


def test_every_interpolated_variable_is_in_env_example() -> None:
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    used = {m.group(1) for m in VAR_REF_RE.finditer(text.replace("$$", ""))}
    documented = env_example_vars()
    assert used <= set(documented), f"not in .env.example: {sorted(used - set(documented))}"


@pytest.mark.parametrize(
    ("service", "argv"), subcommand_cases(), ids=lambda v: " ".join(v) if isinstance(v, tuple) else v
)
def test_service_commands_are_real_cli_subcommands(service: str, argv: tuple[str, ...]) -> None:
    # Needs shared/cli.py (with `if __name__ == "__main__": main()`).
    assert len(argv) >= 2, f"{service}: bare `pipeline` call {argv}"
    subcommand = argv[1]
    proc = subprocess.run(
        [sys.executable, "-m", "shared.cli", subcommand, "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.returncode == 0, (
        f"{service}: `pipeline {subcommand} --help` exited {proc.returncode}\n{proc.stderr[-2000:]}"
    )
    for option in (a.split("=")[0] for a in argv[2:] if a.startswith("--")):
        assert re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", proc.stdout), (
            f"{service}: `pipeline {subcommand}` has no {option}"
        )


# --------------------------------------------------------------------------
# Dockerfiles


@pytest.mark.parametrize("path", ALL_DOCKERFILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_dockerfile_basics(path: Path) -> None:
    instructions = parse_dockerfile(path)
    images = from_images(instructions)
    assert images, f"{path}: no base image"
    for image in images:
        name = image.split("@")[0]
        tag = name.rsplit("/", 1)[-1].partition(":")[2]
        assert tag and tag != "latest" and re.search(r"\d", tag), f"{path}: unpinned base {image}"
    final = final_stage(instructions)
    users = [args for kw, args in final if kw == "USER"]
    assert users, f"{path}: final stage has no USER"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0"), f"{path}: runs as {users[-1]}"
    healthchecks = [args for kw, args in final if kw == "HEALTHCHECK"]
    assert healthchecks and healthcheck_cmd(healthchecks[-1]), f"{path}: no HEALTHCHECK"
    assert any(kw == "CMD" for kw, _ in final), f"{path}: no CMD"


def test_worker_dockerfile() -> None:
    instructions = parse_dockerfile(WORKER_DOCKERFILE)
    assert sum(kw == "FROM" for kw, _ in instructions) >= 2, "expected a multi-stage build"
    final = final_stage(instructions)
    cmd = exec_form([args for kw, args in final if kw == "CMD"][-1])
    # The shell only expands the stage, then is replaced by the worker (exec), which gets SIGTERM.
    assert cmd == ["/bin/sh", "-c", 'exec pipeline worker "$PIPELINE_STAGE"'], cmd
    assert image_env(instructions, {"STAGE": "ingest"})["PIPELINE_STAGE"] == "ingest"
    health = [args for kw, args in final if kw == "HEALTHCHECK"][-1]
    assert healthcheck_cmd(health) == ["pipeline", "health"]
    assert ("STOPSIGNAL", "SIGTERM") in final
    env = " ".join(args for kw, args in final + instructions if kw == "ENV")
    assert re.search(r"\bPYTHONUNBUFFERED=1\b", env)
    # STAGE has no default: a build without it fails instead of copying every stage.
    stage_args = [args for kw, args in instructions if kw == "ARG" and args.startswith("STAGE")]
    assert stage_args and set(stage_args) == {"STAGE"}, stage_args
    # The image carries shared/ and its own stage's package only.
    allowed = {"requirements.txt", "pyproject.toml", "shared/", "services/__init__.py", "services/${STAGE}/"}
    for kw, args in instructions:
        if kw in ("COPY", "ADD") and "--from=" not in args:
            words = [w for w in args.split() if not w.startswith("--")]
            for src in words[:-1]:
                assert src in allowed, f"{WORKER_DOCKERFILE}: copies {src}"
    # The project is installed without dependencies (they come from requirements.txt).
    runs = " ".join(args for kw, args in final if kw == "RUN")
    assert re.search(r"pip install [^&]*--no-deps", runs)
    assert "-r /wheels/requirements.txt" in runs or "--requirement" in runs


def test_one_worker_dockerfile_builds_every_stage(services: dict) -> None:
    """Every image of ours (the three stages, the scheduler, the UI) comes from services/Dockerfile
    with STAGE as a build argument; no per-folder copy of it is left to drift."""
    assert sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "services").glob("*/Dockerfile")) == []
    assert set(WORKERS) <= set(IMAGE_STAGES.values())
    for name, stage in IMAGE_STAGES.items():
        build = services[name].get("build") or {}
        assert (build.get("context"), build.get("dockerfile")) == (".", "services/Dockerfile"), name
        assert (build.get("args") or {}).get("STAGE") == stage, f"{name}: {build.get('args')}"
        assert services[name]["image"].split(":")[0] == f"carsales/{stage}", name
    for worker in WORKERS:
        assert image_cmd(services[worker]) == ["/bin/sh", "-c", f'exec pipeline worker "{worker}"']


def test_requirements_are_the_runtime_dependencies_only() -> None:
    """Worker images install requirements.txt: what the workers import, not the test and lint tools
    or the web UI's framework (docs/containers.md has the image sizes). pandas, pyarrow and numpy
    are in it: the transform's chunk jobs clean with pandas on Arrow-backed columns (issue 15),
    numpy builds their masks and keys."""
    pins = [
        line.split("==")[0].lower()
        for line in (ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert {"rq", "redis", "sqlalchemy", "psycopg2-binary", "structlog", "click"} <= set(pins), pins
    assert {"pandas", "pyarrow", "numpy"} <= set(pins), pins
    forbidden = {"pytest", "ruff", "hypothesis", "psutil", "playwright", "fastapi", "uvicorn"}
    assert not forbidden & set(pins), pins


def test_no_dockerfile_needs_a_registry_for_its_frontend() -> None:
    """A `# syntax=` line makes BuildKit pull a frontend image; the built-in one handles every
    instruction used here (RUN --mount included), offline too."""
    for path in [*ALL_DOCKERFILES, *OFFLINE_DIR.glob("*/Dockerfile")]:
        first = path.read_text(encoding="utf-8").lstrip().splitlines()[0]
        assert not re.match(r"#\s*syntax\s*=", first, re.IGNORECASE), f"{path}: {first}"


def test_base_images_can_be_replaced(services: dict) -> None:
    """PYTHON_IMAGE, POSTGRES_IMAGE and REDIS_IMAGE select the base images (the offline ones of
    ops/offline/build.sh on a host without a registry); the defaults are the official images."""
    for path in ALL_DOCKERFILES:
        instructions = parse_dockerfile(path)
        assert instructions[0] == ("ARG", "PYTHON_IMAGE=python:3.11.14-slim-bookworm"), path
        froms = [args.split()[0] for kw, args in instructions if kw == "FROM"]
        assert froms[0] == "${PYTHON_IMAGE}", path
    for name in [*IMAGE_STAGES, "rq-dashboard"]:
        args = services[name]["build"]["args"]
        assert args["PYTHON_IMAGE"] == "${PYTHON_IMAGE:-python:3.11.14-slim-bookworm}", name
    assert services["postgres"]["image"] == "${POSTGRES_IMAGE:-postgres:15-alpine}"
    assert services["redis"]["image"] == "${REDIS_IMAGE:-redis:7-alpine}"


def test_offline_images_have_their_own_names_and_alone_hold_the_trust_store() -> None:
    build = (OFFLINE_DIR / "build.sh").read_text(encoding="utf-8")
    names = set(re.findall(r"\b([a-z0-9-]+/[a-z0-9-]+:[\w.-]+)", build))
    assert names >= {
        "carsales-offline/python:3.11",
        "carsales-offline/postgres:15",
        "carsales-offline/redis:7",
    }
    assert all(name.startswith("carsales-offline/") for name in names), names
    assert "ca-certificates.crt" in build
    for path in ALL_DOCKERFILES:
        text = path.read_text(encoding="utf-8")
        assert "ca-certificates" not in text and "PIP_CERT" not in text, f"{path} carries a trust store"


def test_compose_header_and_readme_agree_that_env_is_committed() -> None:
    header = COMPOSE_FILE.read_text(encoding="utf-8").split("\n\n")[0]
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert (ROOT / ".env").is_file()
    assert "cp .env.example .env" not in header
    assert "committed .env" in " ".join(header.replace("#", " ").split())
    assert "committed `.env`" in readme


def test_dashboard_dockerfile_pins_rq_dashboard() -> None:
    text = DASHBOARD_DOCKERFILE.read_text(encoding="utf-8")
    assert re.search(r"rq-dashboard==\d+(\.\d+)+", text)
    cmd = [args for kw, args in final_stage(parse_dockerfile(DASHBOARD_DOCKERFILE)) if kw == "CMD"][-1]
    assert exec_form(cmd)[0] == "rq-dashboard"


# --------------------------------------------------------------------------
# .env.example and .dockerignore


def env_example_vars() -> dict[str, str]:
    values = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, sep, value = line.partition("=")
            assert sep, f".env.example: not KEY=VALUE: {line!r}"
            values[key.strip()] = value.strip()
    return values


def test_env_example_documents_every_variable() -> None:
    lines = ENV_EXAMPLE.read_text(encoding="utf-8").splitlines()
    values = env_example_vars()
    missing = [v for v in CONTRACT_VARS if v not in values]
    assert not missing, f".env.example lacks {missing}"
    for i, line in enumerate(lines):
        if line.strip() and not line.startswith("#"):
            assert i > 0 and lines[i - 1].startswith("#"), f"no comment above {line!r}"
    for key, value in values.items():
        if SECRET_KEY_RE.search(key):
            assert value.startswith("change-me"), f"{key} should be a change-me placeholder"
    # Local (non-Docker) defaults; compose builds its own URLs.
    assert values["DATABASE_URL"] == "postgresql://postgres@localhost:5432/carsales"
    assert values["REDIS_URL"] == "redis://localhost:6379/0"


def test_dockerignore() -> None:
    patterns = {
        line.strip()
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    for required in (".git", ".env", ".venv*", "tests", "data", "**/__pycache__"):
        assert required in patterns, f".dockerignore should exclude {required}"
    for needed in ("requirements.txt", "pyproject.toml", "shared", "services", "services/__init__.py"):
        assert needed not in patterns and f"/{needed}" not in patterns, f"{needed} must stay in context"
