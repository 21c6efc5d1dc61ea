"""The ``patchwarden`` command: ``check`` (local review of a git range) and ``serve`` (the bot)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import shutil
import sys
from pathlib import Path

from bot.config import REPO_CONFIG_PATHS, ConfigError, Settings, load_settings, parse_repo_config
from bot.gitlocal import GitError, change_from_git
from bot.model import FilterMode, Review, Severity
from bot.pipeline import Engine
from bot.report import FORMATS

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="patchwarden", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="review a git range locally, as the bot would")
    check.add_argument("--repo", type=Path, default=Path.cwd(), help="working copy (default: .)")
    check.add_argument("--base", help="base revision (default: merge-base with upstream, else HEAD~1)")
    check.add_argument("--head", help="head revision (default: HEAD)")
    check.add_argument("--filter-mode", choices=[m.value for m in FilterMode])
    check.add_argument("--config", type=Path, help="a .patchwarden.yaml to use instead of the repository's")
    check.add_argument("--format", choices=sorted(FORMATS), default="text")
    check.add_argument(
        "--fail-level", choices=[s.value for s in Severity], help="exit 1 on a finding this severe"
    )
    check.add_argument("--demo", action="store_true", help="review a demo change in a throw-away repository")
    serve = sub.add_parser("serve", help="run the bot (webhooks, Gerrit stream, queue, workers)")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--config", type=Path, help="server configuration file (YAML)")
    parser.add_argument("-v", "--verbose", action="store_true")
    return parser


def _repo_config_text(repo: Path, explicit: Path | None) -> tuple[str | None, str]:
    if explicit is not None:
        try:
            return explicit.read_text(), str(explicit)
        except OSError as exc:
            raise ConfigError(f"{explicit}: cannot read: {exc.strerror}") from exc
    for name in REPO_CONFIG_PATHS:
        if (repo / name).is_file():
            return (repo / name).read_text(), name
    return None, ""


async def run_check(args: argparse.Namespace, settings: Settings) -> tuple[Review, int]:
    repo = args.repo
    demo_root = None
    if args.demo:
        from bot.demo import make_demo_repo

        repo = demo_root = make_demo_repo()
    try:
        change = change_from_git(repo, args.base, args.head)
        errors: list[str] = []
        text, source = _repo_config_text(repo, args.config)
        try:
            config = parse_repo_config(text, settings.review, source or ".patchwarden.yaml")
        except ConfigError as exc:
            if args.config is not None:
                raise
            errors.append(f"{exc} — using the default configuration")
            config = settings.review
        if args.filter_mode:
            config = config.model_copy(update={"filter_mode": FilterMode(args.filter_mode)})
        review = await Engine.from_settings(settings.engine).review(change, config, errors)
    finally:
        if demo_root is not None:
            shutil.rmtree(demo_root, ignore_errors=True)
    fail = args.fail_level or (config.fail_level.value if config.fail_level else None)
    worst = review.worst_severity()
    code = EXIT_FINDINGS if fail and worst and worst.rank >= Severity(fail).rank else EXIT_OK
    return review, code


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        settings = load_settings(getattr(args, "config", None) if args.command == "serve" else None)
        if args.command == "check":
            review, code = asyncio.run(run_check(args, settings))
            sys.stdout.write(FORMATS[args.format](review))
            if not sys.stdout.isatty() or args.format != "text":
                sys.stdout.write("\n" if args.format != "text" else "")
            return code
        from bot.server.app import serve

        return serve(settings, host=args.host, port=args.port)
    except (ConfigError, GitError) as exc:
        print(f"patchwarden: error: {exc}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
