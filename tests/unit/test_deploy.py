"""The compose stack in deploy/, checked statically: no Docker engine is needed.

What `docker compose up` would trip over first is checked here: images without a pinned tag,
mounts of files that do not exist, commands our CLI does not know, environment variables that
name no configuration key or fail its validation, scrape targets on the wrong port, health
checks that are missing or would not detect a failure, dashboard queries of metrics that no
process exports.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from prometheus_client import CollectorRegistry
from prometheus_client.metrics import MetricWrapperBase

from marketstream.archiver.metrics import ArchiveMetrics
from marketstream.cli import build_parser
from marketstream.config import ENV_PREFIX, ENV_SEPARATOR, load_config
from marketstream.ingest.metrics import FrameCounts, IngestMetrics
from marketstream.metrics_server import bound_port, serve_metrics
from marketstream.services.questdb_server import server_conf_env
from marketstream.writers.hot_writer_metrics import HotWriterMetrics

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE_FILE = DEPLOY / "docker-compose.yml"
PROMETHEUS_FILE = DEPLOY / "prometheus" / "prometheus.yml"
GRAFANA = DEPLOY / "grafana"
DASHBOARD_FILE = GRAFANA / "dashboards" / "marketstream.json"
DOCKERFILE = DEPLOY / "Dockerfile"
CONFIG_FILE = ROOT / "configs" / "pipeline.yaml"

# The stores each MarketStream command talks to: its service must wait for them.
NEEDS = {
    "ingest": {"redis"},
    "write-hot": {"redis", "questdb"},
    "archive": {"questdb", "clickhouse", "minio"},
    "serve": {"redis", "questdb", "clickhouse", "minio"},
}
# Ports the third-party images listen on (inside the compose network).
LISTENS = {
    "redis": {6379},
    "questdb": {9000, 8812, 9009, 9003},
    "clickhouse": {8123, 9363},
    "minio": {9000, 9001},
    "prometheus": {9090},
    "grafana": {3000},
}
HEALTH_CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}


# --- reading the files ------------------------------------------------------------------------

_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<braced>[A-Za-z_]\w*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
    r"|(?P<bare>[A-Za-z_]\w*))"
)


def interpolate(text: str, environ: Mapping[str, str]) -> str:
    """Compose's variable substitution: ${VAR}, ${VAR:-default}, ${VAR-default}, $$."""

    def substitute(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        name = match["braced"] or match["bare"]
        op, arg = match["op"], match["arg"] or ""
        value = environ.get(name)
        if op in (":-", "-"):
            if value is None or (op == ":-" and value == ""):
                return arg
            return value
        if op in (":?", "?") and not value:
            pytest.fail(f"compose variable {name} is required: {arg}")
        if op in (":+", "+"):
            return arg if value else ""
        return value or ""

    return _VARIABLE.sub(substitute, text)


def _interpolated(node: Any, environ: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, environ)
    if isinstance(node, list):
        return [_interpolated(item, environ) for item in node]
    if isinstance(node, dict):
        return {key: _interpolated(value, environ) for key, value in node.items()}
    return node


def load_compose(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The compose file as `docker compose config` would see it with this environment."""
    raw = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(raw, dict)
    compose = _interpolated(raw, environ or {})
    assert isinstance(compose, dict)
    return compose


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_compose()


def services(compose: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    found = compose["services"]
    assert isinstance(found, dict)
    return found


def ours(compose: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The MarketStream services: the ones built from this repository."""
    return {name: svc for name, svc in services(compose).items() if "build" in svc}


def command(service: Mapping[str, Any]) -> list[str]:
    cmd = service.get("command")
    assert isinstance(cmd, list), "write commands as lists: no shell, no word splitting"
    return [str(part) for part in cmd]


def metrics_port(service: Mapping[str, Any]) -> int:
    cmd = command(service)
    assert "--metrics-port" in cmd, f"{cmd}: pass --metrics-port, Prometheus scrapes it"
    return int(cmd[cmd.index("--metrics-port") + 1])


def environment(service: Mapping[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(key): str(value) for key, value in env.items()}


def depends_on(service: Mapping[str, Any]) -> dict[str, str]:
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return dict.fromkeys(deps, "service_started")
    return {name: spec.get("condition", "service_started") for name, spec in deps.items()}


def one_shot(compose: Mapping[str, Any]) -> set[str]:
    """Services others wait to see finish: they run once and exit."""
    return {
        name
        for svc in services(compose).values()
        for name, condition in depends_on(svc).items()
        if condition == "service_completed_successfully"
    }


def volume_mounts(service: Mapping[str, Any]) -> Iterator[tuple[str, str, bool]]:
    """(source, target, read-only) of every mount of a service."""
    for volume in service.get("volumes") or []:
        if isinstance(volume, dict):
            yield str(volume["source"]), str(volume["target"]), bool(volume.get("read_only"))
        else:
            parts = str(volume).split(":")
            yield parts[0], parts[1], len(parts) > 2 and "ro" in parts[2].split(",")


def is_bind(source: str) -> bool:
    return source.startswith((".", "/", "~"))


def host_path(service: Mapping[str, Any], container_path: str) -> Path | None:
    """Where a file the container reads comes from on the host, through a bind mount."""
    for source, target, _ in volume_mounts(service):
        if is_bind(source) and (container_path + "/").startswith(target.rstrip("/") + "/"):
            return (DEPLOY / source / container_path[len(target) :].lstrip("/")).resolve()
    return None


# --- images, files, commands -------------------------------------------------------------------


def pinned(image: str) -> bool:
    if "@sha256:" in image:
        return True
    name, _, tag = image.rpartition(":")
    return bool(name) and "/" not in tag and tag != "latest" and any(c.isdigit() for c in tag)


def test_every_image_is_pinned_to_a_version(compose: dict[str, Any]) -> None:
    for name, svc in services(compose).items():
        if "build" in svc and "image" not in svc:
            continue
        image = svc.get("image")
        assert image, f"{name}: no image and no build"
        assert pinned(str(image)), f"{name}: image {image!r} is not pinned to a version"


def test_every_variable_has_a_default() -> None:
    """`docker compose up` works without a .env file; .env.example lists what to override."""
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    example = (DEPLOY / ".env.example").read_text(encoding="utf-8")
    for match in _VARIABLE.finditer(text):
        if match["escaped"]:
            continue
        name = match["braced"] or match["bare"]
        assert match["op"] in (":-", "-"), f"${{{name}}} needs a default: ${{{name}:-value}}"
        assert re.search(rf"^#?\s*{name}=", example, re.MULTILINE), f"{name} not in .env.example"


def test_referenced_files_exist(compose: dict[str, Any]) -> None:
    declared = set(compose.get("volumes") or {})
    for name, svc in services(compose).items():
        for source, target, _ in volume_mounts(svc):
            if is_bind(source):
                assert (DEPLOY / source).exists(), f"{name}: mounts {source}, which does not exist"
            else:
                assert source in declared, f"{name}: volume {source} is not declared"
            assert target.startswith("/"), f"{name}: mount target {target} is not absolute"
        build = svc.get("build")
        if build is not None:
            context = DEPLOY / (build if isinstance(build, str) else build["context"])
            assert context.is_dir(), f"{name}: build context {context} does not exist"
            dockerfile = "Dockerfile" if isinstance(build, str) else build["dockerfile"]
            assert (context / dockerfile).is_file(), f"{name}: {dockerfile} not in {context}"
        env_files = svc.get("env_file") or []
        for env_file in [env_files] if isinstance(env_files, str) else env_files:
            path = env_file if isinstance(env_file, str) else env_file["path"]
            required = isinstance(env_file, str) or env_file.get("required", True)
            assert not required or (DEPLOY / path).is_file(), f"{name}: {path} does not exist"


def test_commands_are_real_cli_commands(compose: dict[str, Any]) -> None:
    parser = build_parser()
    commands = set()
    for name, svc in ours(compose).items():
        cmd = command(svc)
        try:
            args = parser.parse_args(cmd)
        except SystemExit:
            pytest.fail(f"{name}: `marketstream {' '.join(cmd)}` is not a valid command")
        assert getattr(args, "handler", None) is not None, f"{name}: {cmd} runs nothing"
        assert not getattr(args, "once", False), f"{name}: the archiver runs nightly, not once"
        assert not getattr(args, "dry_run", False), f"{name}: --dry-run changes nothing"
        commands.add(cmd[0])
    assert commands == set(NEEDS), f"expected services for {sorted(NEEDS)}, found {commands}"


def test_the_image_runs_the_cli() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    froms = re.findall(r"^FROM\s+(\S+)", text, re.MULTILINE)
    assert len(froms) >= 2, "multi-stage: build the virtualenv in one stage, run in another"
    for image in froms:
        assert pinned(image), f"FROM {image} is not pinned to a version"
    assert re.fullmatch(r"python:3\.11\.\d+-slim(-\w+)?", froms[-1]), froms[-1]
    final = text[text.rindex("\nFROM ") :]
    users = re.findall(r"^USER\s+(\S+)", final, re.MULTILINE)
    assert users, "the final stage needs a USER line"
    assert users[-1] not in ("root", "0", "0:0"), f"runs as {users[-1]}"
    assert re.search(r'^ENTRYPOINT \["marketstream"\]', final, re.MULTILINE)
    assert re.search(r"^COPY --from=\S+ /opt/venv /opt/venv", final, re.MULTILINE)
    builder = text[: text.rindex("\nFROM ")]
    assert "requirements.lock" in builder, "the builder installs the pinned dependencies"


def test_the_build_context_leaves_local_state_out() -> None:
    ignored = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".git", ".venv", ".cache", ".marketstream*"} <= ignored
    for needed in ("requirements.lock", "pyproject.toml", "README.md", "marketstream", "configs"):
        assert needed not in ignored, f"the image build needs {needed}"


# --- configuration and wiring ------------------------------------------------------------------


def _config_key(node: Any, segments: list[str]) -> Any:
    for segment in segments:
        assert isinstance(node, dict), f"{segment}: not a section"
        matches = [key for key in node if str(key).lower().replace("-", "_") == segment]
        assert matches, f"no key {segment!r}; expected one of {sorted(node)}"
        node = node[matches[0]]
    return node


OVERRIDES = {
    "QDB_PG_USER": "quant",
    "QDB_PG_PASSWORD": "pg-s3cret",
    "CLICKHOUSE_USER": "warm",
    "CLICKHOUSE_PASSWORD": "ch-s3cret",
    "MINIO_ROOT_USER": "coldstore",
    "MINIO_ROOT_PASSWORD": "minio-s3cret",
}


@pytest.mark.parametrize("environ", [{}, OVERRIDES], ids=["defaults", "overridden"])
def test_environment_names_real_config_keys_and_validates(environ: dict[str, str]) -> None:
    compose = load_compose(environ)
    for name, svc in ours(compose).items():
        env = environment(svc)
        config_file = host_path(svc, env["MARKETSTREAM_CONFIG"])
        assert config_file == CONFIG_FILE.resolve(), f"{name}: config from {config_file}"
        config = load_config(CONFIG_FILE, environ=env)  # unknown keys and bad URLs raise
        dumped = config.model_dump(mode="json")
        for variable, value in env.items():
            if not variable.startswith(ENV_PREFIX) or ENV_SEPARATOR not in variable:
                continue
            segments = variable[len(ENV_PREFIX) :].lower().split(ENV_SEPARATOR)
            assert _config_key(dumped, segments) == yaml.safe_load(value), variable
        for endpoint in ("redis", "questdb_http", "questdb_pg", "questdb_ilp", "clickhouse"):
            url = urlsplit(getattr(config.endpoints, endpoint))
            assert url.hostname in LISTENS, f"{name}: {endpoint} on unknown host {url.hostname}"
            assert url.port in LISTENS[url.hostname], f"{name}: {endpoint} port {url.port}"
        s3 = urlsplit(config.s3.endpoint_url or "")
        assert (s3.hostname, s3.port) == ("minio", 9000)
        assert "0.0.0.0" in (  # noqa: S104 - containers must answer Prometheus
            config.ingest.metrics_host,
            config.hot.metrics_host,
            config.archive.metrics_host,
        )
        assert config.serve.metrics_host == "0.0.0.0"  # noqa: S104 - Prometheus scrapes api


@pytest.mark.parametrize("environ", [{}, OVERRIDES], ids=["defaults", "overridden"])
def test_credentials_agree_between_clients_and_servers(environ: dict[str, str]) -> None:
    compose = load_compose(environ)
    stores = services(compose)
    questdb, clickhouse, minio = (
        environment(stores[s]) for s in ("questdb", "clickhouse", "minio")
    )
    setup = environment(stores["minio-setup"])
    for name, svc in ours(compose).items():
        env = environment(svc)
        pg = urlsplit(env["MARKETSTREAM_ENDPOINTS__QUESTDB_PG"])
        assert (pg.username, pg.password) == (questdb["QDB_PG_USER"], questdb["QDB_PG_PASSWORD"])
        ch = urlsplit(env["MARKETSTREAM_ENDPOINTS__CLICKHOUSE"])
        expected = (clickhouse["CLICKHOUSE_USER"], clickhouse["CLICKHOUSE_PASSWORD"])
        assert (ch.username, ch.password) == expected, name
        keys = (env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"])
        assert keys == (minio["MINIO_ROOT_USER"], minio["MINIO_ROOT_PASSWORD"]), name
        assert keys == (setup["MINIO_ROOT_USER"], setup["MINIO_ROOT_PASSWORD"]), name
        bucket = urlsplit(env["MARKETSTREAM_ENDPOINTS__COLD"]).hostname
        script = " ".join(command(stores["minio-setup"]))
        assert re.search(rf"mc mb --ignore-existing \w+/{bucket}(?!\S)", script), "no bucket"
    if environ:
        assert questdb["QDB_PG_PASSWORD"] == environ["QDB_PG_PASSWORD"]


def test_our_services_mount_the_configs_read_only(compose: dict[str, Any]) -> None:
    for name, svc in ours(compose).items():
        mounts = [(s, t, ro) for s, t, ro in volume_mounts(svc) if s == "../configs"]
        assert mounts, f"{name}: mount ../configs"
        assert all(ro for _, _, ro in mounts), f"{name}: mount ../configs read-only"


def test_writers_have_distinct_names_and_ports(compose: dict[str, Any]) -> None:
    ports = [metrics_port(svc) for svc in ours(compose).values()]
    assert len(ports) == len(set(ports)), f"metrics ports collide: {ports}"
    writers = [command(svc) for svc in ours(compose).values() if command(svc)[0] == "write-hot"]
    assert len(writers) >= 2
    consumers = [cmd[cmd.index("--consumer") + 1] for cmd in writers]
    assert len(consumers) == len(set(consumers)), f"consumer names collide: {consumers}"


def test_published_host_ports_do_not_collide(compose: dict[str, Any]) -> None:
    published: dict[str, str] = {}
    for name, svc in services(compose).items():
        for port in svc.get("ports") or []:
            host = str(port).rsplit(":", 1)[0]
            assert host not in published, f"{name} and {published.get(host)} both publish {host}"
            published[host] = name


def test_dependencies_exist_and_wait_for_health(compose: dict[str, Any]) -> None:
    known = services(compose)
    for name, svc in known.items():
        for dependency, condition in depends_on(svc).items():
            assert dependency in known, f"{name} depends on unknown service {dependency}"
            assert condition in HEALTH_CONDITIONS, f"{name}: condition {condition}"
            if condition == "service_healthy":
                assert "healthcheck" in known[dependency], f"{dependency} has no health check"
    for name, svc in ours(compose).items():
        deps = depends_on(svc)
        for store in NEEDS[command(svc)[0]]:
            assert deps.get(store) == "service_healthy", f"{name} must wait for {store}"


def test_long_running_services_have_health_checks(compose: dict[str, Any]) -> None:
    once = one_shot(compose)
    for name, svc in services(compose).items():
        if name in once:
            assert svc.get("restart") == "no", f"{name} runs once: restart 'no'"
            continue
        check = svc.get("healthcheck") or {}
        assert check.get("test"), f"{name} has no health check"
        assert not check.get("disable"), f"{name}: health check disabled"
        assert check["test"][0] in ("CMD", "CMD-SHELL"), f"{name}: {check['test']}"
        assert svc.get("restart") == "unless-stopped", f"{name} should come back after a crash"


def _health_url(service: Mapping[str, Any]) -> str:
    test = service["healthcheck"]["test"]
    assert test[:3] == ["CMD", "python", "-c"], "probe with the image's Python: no curl there"
    found = re.findall(r"http://127\.0\.0\.1:\d+/healthz", test[3])
    assert len(found) == 1, test
    return str(found[0])


def test_our_health_checks_probe_the_metrics_port(compose: dict[str, Any]) -> None:
    for name, svc in ours(compose).items():
        assert _health_url(svc) == f"http://127.0.0.1:{metrics_port(svc)}/healthz", name


@pytest.mark.parametrize("healthy", [True, False])
async def test_our_health_check_command_tells_healthy_from_not(
    compose: dict[str, Any], healthy: bool
) -> None:
    """The probe itself, run against the real /healthz server on a free port."""
    server = await serve_metrics(CollectorRegistry(), lambda: (healthy, {}), "127.0.0.1", 0)
    try:
        for name, svc in ours(compose).items():
            probe = svc["healthcheck"]["test"][3].replace(
                _health_url(svc), f"http://127.0.0.1:{bound_port(server)}/healthz"
            )
            done = await asyncio.to_thread(
                subprocess.run, [sys.executable, "-c", probe], capture_output=True, timeout=30
            )
            assert (done.returncode == 0) == healthy, f"{name}: exit {done.returncode}"
    finally:
        server.close()
        await server.wait_closed()


# --- Prometheus and Grafana --------------------------------------------------------------------


def scrape_targets() -> list[tuple[str, str, int]]:
    config = yaml.safe_load(PROMETHEUS_FILE.read_text(encoding="utf-8"))
    targets = []
    for job in config["scrape_configs"]:
        for static in job.get("static_configs", []):
            for target in static["targets"]:
                host, port = str(target).rsplit(":", 1)
                targets.append((str(job["job_name"]), host, int(port)))
    return targets


def test_prometheus_scrapes_every_service_on_its_metrics_port(compose: dict[str, Any]) -> None:
    known, mine = services(compose), ours(compose)
    scraped = set()
    for job, host, port in scrape_targets():
        assert host in known, f"job {job}: {host} is not a compose service"
        if host in mine:
            assert port == metrics_port(mine[host]), f"job {job}: {host}:{port}"
        else:
            assert port in LISTENS.get(host, set()), f"job {job}: {host} does not serve {port}"
        scraped.add(host)
    assert set(mine) <= scraped, f"not scraped: {sorted(set(mine) - scraped)}"
    assert environment(known["questdb"]).get("QDB_METRICS_ENABLED") == "true"
    clickhouse_metrics = host_path(
        known["clickhouse"], "/etc/clickhouse-server/config.d/prometheus.xml"
    )
    assert clickhouse_metrics is not None
    assert "<port>9363</port>" in clickhouse_metrics.read_text(encoding="utf-8")


def test_compose_questdb_runs_with_the_configured_server_conf(compose: dict[str, Any]) -> None:
    """The image gets the same server.conf settings as a local QuestDB (pipeline.yaml)."""
    settings = load_config(CONFIG_FILE, environ={}).services.questdb.server_conf
    assert settings
    questdb = environment(services(compose)["questdb"])
    for name, value in server_conf_env(settings).items():
        assert questdb.get(name) == value, f"compose's questdb: {name} is not {value}"


def test_prometheus_config_is_mounted(compose: dict[str, Any]) -> None:
    prometheus = services(compose)["prometheus"]
    assert host_path(prometheus, "/etc/prometheus/prometheus.yml") == PROMETHEUS_FILE.resolve()


def exported_metrics() -> dict[str, set[str]]:
    """Every sample name our processes export, with the labels of its metric."""
    names: dict[str, set[str]] = {}
    suffixes = {
        "counter": ("_total", "_created"),
        "histogram": ("_bucket", "_count", "_sum", "_created"),
        "summary": ("", "_count", "_sum", "_created"),
    }
    for metrics in (IngestMetrics(), HotWriterMetrics(), ArchiveMetrics()):
        for metric in vars(metrics).values():
            if isinstance(metric, MetricWrapperBase):
                labels = set(metric._labelnames)
            elif isinstance(metric, FrameCounts):  # read from the connections when scraped
                labels = set(metric.labelnames)
            else:
                continue
            for family in metric.describe():
                for suffix in suffixes.get(family.type, ("",)):
                    names[family.name + suffix] = labels
    return names


def dashboard_panels(node: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in node.get("panels", []):
        yield panel
        yield from dashboard_panels(panel)


def test_grafana_provisions_prometheus_and_the_dashboard(compose: dict[str, Any]) -> None:
    grafana = services(compose)["grafana"]
    provisioning = host_path(grafana, "/etc/grafana/provisioning")
    assert provisioning == (GRAFANA / "provisioning").resolve()
    sources = [
        source
        for file in sorted((provisioning / "datasources").glob("*.yml"))
        for source in yaml.safe_load(file.read_text(encoding="utf-8"))["datasources"]
    ]
    assert [s["type"] for s in sources] == ["prometheus"]
    url = urlsplit(sources[0]["url"])
    assert url.hostname == "prometheus"
    assert url.port in LISTENS["prometheus"]
    providers = [
        provider
        for file in sorted((provisioning / "dashboards").glob("*.yml"))
        for provider in yaml.safe_load(file.read_text(encoding="utf-8"))["providers"]
    ]
    assert providers, "no dashboard provider"
    for provider in providers:
        folder = host_path(grafana, provider["options"]["path"])
        assert folder is not None, provider
        assert (folder / DASHBOARD_FILE.name).is_file(), folder
    home = environment(grafana)["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert host_path(grafana, home) == DASHBOARD_FILE.resolve()


def test_dashboard_queries_use_exported_metrics() -> None:
    dashboard = json.loads(DASHBOARD_FILE.read_text(encoding="utf-8"))
    source_uid = yaml.safe_load(
        (GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text(encoding="utf-8")
    )["datasources"][0]["uid"]
    exported = exported_metrics()
    used: set[str] = set()
    for panel in dashboard_panels(dashboard):
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == source_uid, panel["title"]
        assert panel["targets"], f"{panel['title']}: no query"
        for target in panel["targets"]:
            expr = target["expr"]
            names = set(re.findall(r"\bmarketstream_\w+", expr))
            assert names or expr == "up", f"{panel['title']}: {expr} reads none of our metrics"
            unknown = names - set(exported)
            assert not unknown, f"{panel['title']}: no process exports {sorted(unknown)}"
            labels = set().union(*(exported[n] for n in names)) | {"le", "instance", "job"}
            for grouping in re.findall(r"\bby\s*\(([^)]*)\)", expr):
                for label in filter(None, (part.strip() for part in grouping.split(","))):
                    assert label in labels, f"{panel['title']}: {expr}: no label {label}"
            used |= names
    for part in ("ingest", "hot", "archive"):
        assert any(n.startswith(f"marketstream_{part}_") for n in used), f"no {part} panel"


def test_readme_describes_every_service(compose: dict[str, Any]) -> None:
    readme = (DEPLOY / "README.md").read_text(encoding="utf-8")
    assert "docker compose up" in readme
    for name in services(compose):
        assert f"`{name}`" in readme, f"deploy/README.md does not mention `{name}`"


def test_the_api_needs_its_token_and_is_published_on_loopback_only() -> None:
    """`api` binds 0.0.0.0 in its container: without $MARKETSTREAM_API_TOKEN it refuses to
    start (the one variable without a default); no other service receives the token."""
    from marketstream.errors import ConfigError  # noqa: PLC0415
    from marketstream.serve.auth import check_start, token_of  # noqa: PLC0415

    for environ, token in (({}, None), ({"MARKETSTREAM_API_TOKEN": "t0ken"}, "t0ken")):
        compose = load_compose(environ)
        (api,) = [svc for svc in ours(compose).values() if command(svc)[0] == "serve"]
        cmd = command(api)
        host, port = cmd[cmd.index("--host") + 1], cmd[cmd.index("--port") + 1]
        config = load_config(CONFIG_FILE, environ=environment(api))
        assert token_of(config.serve, environment(api)) == token
        if token is None:
            with pytest.raises(ConfigError, match="MARKETSTREAM_API_TOKEN"):
                check_start(host, None, config.serve.token_env)
        else:
            check_start(host, token, config.serve.token_env)
        assert [str(p) for p in api["ports"]] == [f"127.0.0.1:{port}:{port}"]
        others = [svc for svc in ours(compose).values() if svc is not api]
        assert all("MARKETSTREAM_API_TOKEN" not in environment(svc) for svc in others)


# --- the polled sources' API keys -------------------------------------------------------------

SOURCE_KEYS = {"JUPITER_API_KEY": "jup-0123456789abcdef", "BIRDEYE_API_KEY": "0123456789abcdef"}
# What an API key or token looks like: a UUID, or a long run of letters and digits.
_KEY_SHAPE = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
    r"|(?=[A-Za-z]*\d)(?=\d*[A-Za-z])[A-Za-z0-9]{20,}",
    re.IGNORECASE,
)


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, list):
        for item in node:
            yield from _strings(item)
    elif isinstance(node, dict):
        for key, value in node.items():
            yield str(key)
            yield from _strings(value)


def test_source_keys_are_the_configured_variables() -> None:
    config = load_config(CONFIG_FILE, environ={})
    named = {source.api_key_env for source in config.sources.values()}
    assert set(SOURCE_KEYS) <= named


def test_no_value_in_the_compose_file_looks_like_a_key() -> None:
    """Keys come from the host environment: the file holds none, and every secret-named
    variable is a compose variable (a development default at most)."""
    raw = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    for text in _strings(raw):  # literal values, and the variables' defaults
        found = _KEY_SHAPE.search(interpolate(text, {}))
        assert found is None, f"{found[0] if found else ''!r} in the compose file looks like a key"
    secret = re.compile(r"KEY|TOKEN|SECRET|PASSWORD")
    for name, svc in services(raw).items():
        for variable, value in environment(svc).items():
            if secret.search(variable):
                assert _VARIABLE.fullmatch(value), f"{name}: {variable} is not a compose variable"
    for variable in SOURCE_KEYS:
        (value,) = {
            environment(svc)[variable]
            for svc in services(raw).values()
            if variable in environment(svc)
        }
        assert value == f"${{{variable}:-}}", f"{variable}: from the host, empty by default"


def test_the_key_shape_catches_keys() -> None:
    """The check above would pass on a pattern that matches nothing: it must see these."""
    for key in ("3f2b8c1e-9a7d-4e6f-b5c4-1d2e3f4a5b6c", "a1b2c3d4e5f60718293a4b5c6d7e8f90"):
        assert _KEY_SHAPE.search(key), key
    for value in ("marketstream-secret", "RELEASE.2025-04-22T22-12-26Z", "postgresql://a:b@q"):
        assert not _KEY_SHAPE.search(value), value


@pytest.mark.parametrize("environ", [{}, SOURCE_KEYS], ids=["unset", "set"])
def test_ingest_gets_the_source_keys_from_the_environment(environ: dict[str, str]) -> None:
    """Only `ingest` polls the sources: it gets both keys as the host has them (empty when
    unset, which ingest takes as no key: Jupiter keyless, Birdeye off by default)."""
    from marketstream.ingest.polling.plan import plan_sources  # noqa: PLC0415

    compose = load_compose(environ)
    (ingest,) = [svc for svc in ours(compose).values() if command(svc)[0] == "ingest"]
    env = environment(ingest)
    for variable in SOURCE_KEYS:
        assert env[variable] == environ.get(variable, ""), variable
    others = [svc for svc in ours(compose).values() if svc is not ingest]
    assert all(not set(SOURCE_KEYS) & set(environment(svc)) for svc in others)
    config = load_config(CONFIG_FILE, environ=env)
    for planned in plan_sources(config, env):
        key = environ.get(planned.config.api_key_env or "")
        assert (planned.source.key_header in planned.headers) == bool(key), planned.source.name
