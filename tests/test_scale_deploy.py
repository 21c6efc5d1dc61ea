"""The deployment files of a fleet (deploy/compose.yaml, deploy/k8s/) say what the service reads:
every variable they set is one the loader knows, every process has a role, probes ask /healthz."""

from __future__ import annotations

import re

import yaml

from bot.config import ENV_ALIASES, env_name, setting_keys
from tests.conftest import ROOT

DEPLOY = ROOT / "deploy"


def _documents() -> dict[str, list[dict]]:
    files = [DEPLOY / "compose.yaml", *sorted((DEPLOY / "k8s").glob("*.yaml"))]
    return {path.name: [d for d in yaml.safe_load_all(path.read_text()) if d] for path in files}


def test_every_variable_the_deploy_files_set_is_read_by_the_service():
    known = {env_name(section, key) for section, key in setting_keys()} | set(ENV_ALIASES)
    known |= {f"PATCHWARDEN_{section}_{key}".upper() for section, key in setting_keys()}
    named = set()
    for path in [DEPLOY / "compose.yaml", *(DEPLOY / "k8s").glob("*.yaml")]:
        named |= set(re.findall(r"\b(PATCHWARDEN_[A-Z0-9_]+)\b", path.read_text()))
    assert "PATCHWARDEN_QUEUE_URL" in named
    assert named <= known, sorted(named - known)


def test_compose_runs_redis_one_web_and_workers_by_role():
    (compose,) = _documents()["compose.yaml"]
    services = compose["services"]
    assert services["web"]["command"] == ["--role", "web"]
    assert services["worker"]["command"] == ["--role", "worker"]
    assert "noeviction" in services["redis"]["command"]  # the queue's records are never evicted


def test_kubernetes_deployments_have_roles_and_probe_healthz():
    docs = {
        (d["kind"], d["metadata"]["name"]): d for docs in _documents().values() for d in docs if "kind" in d
    }
    for name, role in (("patchwarden-web", "web"), ("patchwarden-worker", "worker")):
        (container,) = docs["Deployment", name]["spec"]["template"]["spec"]["containers"]
        assert container["args"] == ["--role", role]
        assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"
    assert docs["Deployment", "patchwarden-web"]["spec"]["replicas"] >= 2  # a standby for the Gerrit stream
    assert ("Service", "patchwarden-web") in docs
    hpa = docs["HorizontalPodAutoscaler", "patchwarden-worker"]
    assert hpa["spec"]["scaleTargetRef"]["name"] == "patchwarden-worker"


def test_web_and_worker_roles_refuse_to_start_without_a_shared_queue(monkeypatch, capsys):
    """The embedded queue serves one process: a web process on it would queue jobs that no
    worker process can see, so `serve --role web|worker` says what to set and exits."""
    from bot.cli import EXIT_USAGE, main

    for name in ("PATCHWARDEN_QUEUE_URL", "PATCHWARDEN_SERVER_QUEUE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PATCHWARDEN_GITHUB_WEBHOOK_SECRET", "s")
    monkeypatch.setenv("PATCHWARDEN_GITHUB_TOKEN", "t")
    for role in ("web", "worker"):
        assert main(["serve", "--role", role]) == EXIT_USAGE
        assert "set PATCHWARDEN_QUEUE_URL" in capsys.readouterr().err
