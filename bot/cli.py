"""The ``patchwarden`` command: ``check`` (local review of a git range) and ``serve`` (the bot)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import shutil
import sys
from pathlib import Path

from bot.config import REPO_CONFIG_PATHS, ConfigError, Settings, load_settings, parse_repo_config
from bot.gitlocal import GitError, change_from_git, read_file_at, repo_config_at
from bot.model import Change, FilterMode, Review, Severity
from bot.pipeline import Engine
from bot.report import FORMATS, fixed_files

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="patchwarden", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="review a git range locally, as the bot would")
    check.add_argument("--repo", type=Path, default=Path.cwd(), help="working copy (default: .)")
    check.add_argument("--base", help="base revision (default: merge-base with upstream, else HEAD~1)")
    check.add_argument("--head", help="head revision (default: HEAD)")
    check.add_argument("--filter-mode", choices=[m.value for m in FilterMode])
    check.add_argument(
        "--config",
        type=Path,
        help="a .patchwarden.yaml to use instead of the repository's (read from the base revision)",
    )
    check.add_argument("--format", choices=sorted(FORMATS), default="text")
    check.add_argument(
        "--fail-level", choices=[s.value for s in Severity], help="exit 1 on a finding this severe"
    )
    check.add_argument("--demo", action="store_true", help="review a demo change in a throw-away repository")
    check.add_argument(
        "--daemon",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="--daemon: start the local daemon (warm analyzers) if none runs, and use it; "
        "--no-daemon: never use one (default: use one if it runs)",
    )
    check.add_argument(
        "--staged", action="store_true", help="review what is staged against HEAD (the pre-commit hook)"
    )
    check.add_argument("--fix", action="store_true", help="apply the offered fixes to the working tree")
    serve = sub.add_parser("serve", help="run the bot (webhooks, Gerrit stream, queue, workers)")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--config", type=Path, help="server configuration file (YAML)")
    serve.add_argument(
        "--role",
        choices=["all", "web", "worker"],
        default="all",
        help="web: webhooks and the Gerrit stream, enqueue only; worker: reviews; all: both (needs "
        "PATCHWARDEN_QUEUE_URL for web/worker)",
    )
    daemon = sub.add_parser("daemon", help="the local daemon that keeps check's analyzers warm")
    daemon.add_argument("action", choices=["run", "status", "stop"])
    daemon.add_argument("--idle", type=float, default=1800, help="run: stop after this many idle seconds")
    daemon.add_argument("--config", type=Path, help="run: configuration file (YAML) for the engine")
    parser.add_argument("-v", "--verbose", action="store_true")
    return parser


def _explicit_config_text(path: Path) -> tuple[str, str]:
    try:
        return path.read_text(), str(path)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc


def _base_config_text(repo: Path, change: Change) -> tuple[str | None, str, list[str]]:
    """The repository file at the change's base revision, and notes for the developer.

    As the service reads ``.patchwarden.yaml`` (or ``.github/patchwarden.yaml``) from the target
    branch, ``check`` reads it from the base revision, never from the head or the working tree:
    a change cannot switch its own CI gate off or weaken it. When the head changes the file, a
    note says that the review used the base revision's version.
    """
    text, name = repo_config_at(repo, change.base, REPO_CONFIG_PATHS)
    source = f"{name} on {change.base[:12]}" if name else ".patchwarden.yaml"
    notes = [
        f"{path} is changed by this change; the review uses the base revision's version"
        f" (try the new one with --config {path})"
        for path in REPO_CONFIG_PATHS
        if read_file_at(repo, change.base, path) != read_file_at(repo, change.head, path)
    ]
    return text, source, notes


async def run_check(args: argparse.Namespace, settings: Settings) -> tuple[Review, int, Change | None]:
    repo = args.repo
    demo_root = None
    if args.demo:
        from bot.demo import make_demo_repo

        repo = demo_root = make_demo_repo()
    try:
        change = change_from_git(repo, args.base, args.head, staged=args.staged)
        errors: list[str] = []
        if args.config is not None:  # the developer's own choice wins
            text, source = _explicit_config_text(args.config)
        else:
            text, source, notes = _base_config_text(repo, change)
            for note in notes:
                print(f"patchwarden: note: {note}", file=sys.stderr)
        try:
            config = parse_repo_config(text, settings.review, source)
        except ConfigError as exc:
            if args.config is not None:
                raise
            errors.append(f"{exc} — using the default configuration")
            config = settings.review
        if not config.enabled:
            summary = f"Patchwarden is switched off here: {source} sets enabled: false; nothing was reviewed."
            return Review(summary, [], [], []), EXIT_OK, None
        if args.filter_mode:
            config = config.model_copy(update={"filter_mode": FilterMode(args.filter_mode)})
        engine = await check_engine(args, settings)
        try:
            review = await engine.review(change, config, errors)
        finally:
            await engine.close()
    finally:
        if demo_root is not None:
            shutil.rmtree(demo_root, ignore_errors=True)
    fail = args.fail_level or (config.fail_level.value if config.fail_level else None)
    worst = review.worst_severity()
    code = EXIT_FINDINGS if fail and worst and worst.rank >= Severity(fail).rank else EXIT_OK
    return review, code, change


def apply_fixes(repo: Path, review: Review, change: Change) -> None:
    """``--fix``: write the offered fixes into the working tree, file by file, only where the
    working tree still holds exactly the reviewed content (nothing of the developer's is lost)."""
    for path, (old, new) in fixed_files(review, change).items():
        target = repo / path
        try:
            current = target.read_bytes()
        except OSError as exc:
            print(f"patchwarden: {path}: not fixed: {exc.strerror}", file=sys.stderr)
            continue
        if current != old.encode("utf-8"):
            print(
                f"patchwarden: {path}: not fixed: the working tree differs from the reviewed content",
                file=sys.stderr,
            )
            continue
        target.write_bytes(new.encode("utf-8"))
        count = sum(1 for c in review.all_comments if c.fix and c.path == path)
        print(f"patchwarden: {path}: fixed (offered fixes: {count})", file=sys.stderr)


async def check_engine(args: argparse.Namespace, settings: Settings) -> Engine:
    """Cold analyzers, or the local daemon's warm ones (bot.server.daemon) where one answers."""
    if args.daemon is False:
        return Engine.from_settings(settings.engine)
    from bot.server.daemon_client import DaemonClient, engine_for_check

    client = DaemonClient()
    if args.daemon and not await client.start(idle_seconds=1800):
        print("patchwarden: note: the daemon did not start; reviewing without it", file=sys.stderr)
    return engine_for_check(settings.engine, client)


async def _daemon_command(args: argparse.Namespace) -> int:
    from bot.server.daemon_client import DaemonClient, DaemonUnavailable

    client = DaemonClient()
    if args.action == "status":
        try:
            answer = await client.call("GET", "/status", timeout=2)
        except DaemonUnavailable as exc:
            print(f"patchwarden daemon: not running ({exc})")
            return EXIT_FINDINGS
        print(f"patchwarden daemon: pid {answer['pid']}, {answer['requests']} requests, socket {client.path}")
        return EXIT_OK
    if args.action == "stop":
        with contextlib.suppress(DaemonUnavailable):
            await client.call("POST", "/stop", timeout=5)
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        settings = load_settings(
            getattr(args, "config", None) if args.command in ("serve", "daemon") else None
        )
        if args.command == "daemon":
            if args.action == "run":
                from bot.server.daemon import run_daemon

                return run_daemon(settings.engine, args.idle)
            return asyncio.run(_daemon_command(args))
        if args.command == "check":
            review, code, change = asyncio.run(run_check(args, settings))
            if args.fix and change is not None and not args.demo:
                apply_fixes(args.repo, review, change)
            sys.stdout.write(FORMATS[args.format](review, change or Change([])))
            if not sys.stdout.isatty() or args.format != "text":
                sys.stdout.write("\n" if args.format not in ("text", "diff") else "")
            return code
        from bot.server.app import serve

        return serve(settings, host=args.host, port=args.port, role=args.role)
    except (ConfigError, GitError) as exc:
        print(f"patchwarden: error: {exc}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
