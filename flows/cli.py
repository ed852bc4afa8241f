"""The photoforge command line: run a capture, list presets, open the Prefect UI."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from flows import local_server, prefect_env
from flows.shutdown import (
    exit_now,
    finish,
    install_handlers,
    is_interruption,
    keep_handlers_over_native_ones,
    signal_number,
    stop_children,
    stop_process_group,
)
from photoforge.errors import PhotoforgeError, StageError
from photoforge.layout import HANDOFF_TARGETS, HEADLINE_OUTPUTS, REPORT_HTML, STAGE_ORDER, named_capture

# Start-up: `photoforge --help`, `presets` and `server` import no Prefect flow and no stage's heavy library
# (torch, open3d, pycolmap, ...): flows.*, prefect and photoforge.presets are imported by the commands that
# use them (tests/test_startup.py).

console = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 120)
out = Console(highlight=False, width=None if sys.stdout.isatty() else 120)


class _Interruption:
    """Set when a command was stopped by a signal: the process then exits at once, children stopped."""

    happened = False


def entry() -> None:
    """The `photoforge` command: SIGTERM handled like Ctrl-C, nothing left running after a stop."""
    install_handlers()
    try:
        code = main()
    except BaseException as exc:  # a signal outside a command's own handling (e.g. during imports)
        if not is_interruption(exc):
            raise
        console.print(f"[yellow]interrupted[/] ({escape(str(exc) or 'Ctrl-C')})")
        code, _Interruption.happened = 128 + signal_number(exc), True
    if _Interruption.happened:
        from photoforge.locks import release_held

        release_held()  # threads left running (a batch's capture) hold stage locks that other hosts would wait for
        stop_children()
        exit_now(code)
    finish(code)  # an ordinary exit, less the module teardown


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except PhotoforgeError as exc:
        console.print(f"[bold red]error:[/] {escape(str(exc))}")
        return exc.exit_code
    except BaseException as exc:
        if not is_interruption(exc):
            raise
        return _interrupted(args, exc)


def _interrupted(args: argparse.Namespace, exc: BaseException) -> int:
    """Print what was done, mark this process's flow runs Crashed, and give the exit code of the signal."""
    _Interruption.happened = True
    signum = signal_number(exc)
    name = "Ctrl-C" if isinstance(exc, KeyboardInterrupt) else signal.Signals(signum).name
    reconstruct = sys.modules.get("flows.reconstruct")
    latest = reconstruct.PipelineRun.latest if reconstruct is not None else None
    if args.command == "run" and latest is not None:
        _print_summary(latest.model_dump(mode="json"))
        _write_json(getattr(args, "json", None), latest.model_dump(mode="json"))
    workspace = getattr(args, "workspace", None)
    if workspace is not None and "prefect" in sys.modules and args.command in ("run", "batch"):
        from flows.local_runs import crash_own_runs

        crash_own_runs(workspace)
    if args.command in ("run", "batch"):
        console.print(
            f"[yellow]interrupted[/] by {name}: completed stages are kept and the run is marked Crashed in the "
            "Prefect UI; run the same command again to continue"
        )
    else:
        console.print(f"[yellow]stopped[/] by {name}")
    return 128 + signum


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="photoforge",
        description="Photos or video in, a 3D asset out: a DAG of content-cached stages run by Prefect.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="reconstruct a capture (a folder of photos and/or videos)")
    run.add_argument("path", type=Path, help="folder of photos (JPEG, PNG, TIFF) and/or videos (mp4, mov, mkv, webm)")
    run.add_argument("--preset", default="standard", help="preset from pipelines.yaml (default: standard)")
    run.add_argument("--workspace", type=Path, default=Path("workspace"), help="artefact root (default: ./workspace)")
    run.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="STAGE.PARAM=VALUE",
        help="override a preset param, e.g. --set poses.matcher=sequential (repeatable)",
    )
    run.add_argument("--until", choices=STAGE_ORDER, help="stop after this stage")
    run.add_argument("--json", type=Path, metavar="FILE", help="also write the run summary as JSON")
    run.add_argument("--verbose", action="store_true", help="show Prefect's and COLMAP's own logs")
    run.set_defaults(handler=_cmd_run)

    batch = sub.add_parser("batch", help="reconstruct every capture folder of an inbox that is not done yet")
    batch.add_argument("inbox", type=Path, help="folder with one sub-folder per capture")
    batch.add_argument("--preset", default="standard")
    batch.add_argument("--workspace", type=Path, default=Path("workspace"))
    batch.add_argument("--set", dest="overrides", action="append", default=[], metavar="STAGE.PARAM=VALUE")
    batch.add_argument("--concurrency", type=int, default=1, help="captures processed at once (default 1)")
    batch.add_argument("--json", type=Path, metavar="FILE", help="also write the table as JSON")
    batch.add_argument("--verbose", action="store_true")
    batch.set_defaults(handler=_cmd_batch)

    serve = sub.add_parser("serve", help="serve the reconstruct and process-inbox deployments from here")
    serve.add_argument("--workspace", type=Path, default=Path("workspace"))
    serve.add_argument("--preset", default="standard", help="the deployments' default preset")
    serve.add_argument("--inbox", type=Path, help="also serve process-inbox over this folder")
    serve.add_argument("--cron", default="0 * * * *", help="process-inbox schedule (default: hourly)")
    serve.set_defaults(handler=_cmd_serve)

    deploy = sub.add_parser(
        "deploy", help="create the CPU and GPU work pools and deploy prefect.yaml to them (needs a Prefect server)"
    )
    deploy.add_argument("--workspace", type=Path, default=Path("workspace"), help="shared artefact root")
    deploy.add_argument("--inbox", type=Path, required=True, help="folder process-inbox scans")
    deploy.add_argument("--preset", default="standard", help="the deployments' default preset")
    deploy.add_argument("--cron", default="0 * * * *", help="process-inbox schedule (default: hourly)")
    deploy.add_argument("--cpu-pool", default="photoforge-cpu", help="pool of the orchestrating flows")
    deploy.add_argument("--gpu-pool", default="photoforge-gpu", help="pool of the GPU stages")
    deploy.add_argument("--gpu-concurrency", type=int, default=1, help="GPU runs at once in the pool (one per GPU)")
    deploy.add_argument("--no-gpu-pool", action="store_true", help="run GPU stages inline on the CPU pool's workers")
    deploy.add_argument("--gpu-root", type=Path, help="the checkout on GPU workers (default: this one; image: /app)")
    deploy.add_argument("--heartbeat-s", type=int, default=30, help="seconds between the runs' heartbeats (min 30)")
    deploy.add_argument(
        "--crash-after-s",
        type=int,
        default=600,
        help="a run without heartbeat this long is marked Crashed (default 600: a long C call can starve heartbeats)",
    )
    deploy.set_defaults(handler=_cmd_deploy)

    presets = sub.add_parser("presets", help="list the presets of pipelines.yaml with their parameters")
    presets.add_argument("name", nargs="?", help="show only this preset")
    presets.set_defaults(handler=_cmd_presets)

    ui = sub.add_parser("ui", help="start the Prefect UI on 127.0.0.1, showing the runs made so far")
    ui.add_argument("--workspace", type=Path, default=Path("workspace"), help="workspace whose runs to show")
    ui.add_argument("--port", type=int, default=4200)
    ui.add_argument("--files-port", type=int, default=4201, help="read-only file server for the run links")
    ui.add_argument(
        "--files-host",
        action="append",
        default=[],
        metavar="NAME",
        help="also answer file requests addressed to this host name (a local proxy's); repeatable",
    )
    ui.set_defaults(handler=_cmd_ui)

    server = sub.add_parser(
        "server", help="a Prefect server in the background that runs reuse (start|stop|status): fast re-runs"
    )
    server.add_argument("action", choices=("start", "stop", "status"))
    server.add_argument("--workspace", type=Path, default=Path("workspace"), help="workspace whose runs it serves")
    server.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    server.set_defaults(handler=_cmd_server)

    show = sub.add_parser("open", help="print (or open) the latest asset, turntable and report of a capture")
    show.add_argument("capture", help="capture folder or its name in the workspace")
    show.add_argument("--workspace", type=Path, default=Path("workspace"))
    show.add_argument(
        "--browser", action="store_true", help="open the report at its 3D viewer (report.html#viewer) in the browser"
    )
    show.set_defaults(handler=_cmd_open)

    handoff = sub.add_parser(
        "handoff", help="write a capture's posed photos for nerfstudio or COLMAP (asset.glb's frame)"
    )
    handoff.add_argument("capture", help="capture folder or its name in the workspace")
    handoff.add_argument("--to", required=True, choices=HANDOFF_TARGETS, help="the tool's layout")
    handoff.add_argument("out", type=Path, help="folder to write (new, empty, or an earlier hand-off)")
    handoff.add_argument("--workspace", type=Path, default=Path("workspace"))
    handoff.set_defaults(handler=_cmd_handoff)
    return parser


def _cmd_run(args: argparse.Namespace) -> int:
    from photoforge.presets import load_preset, parse_override

    keep_handlers_over_native_ones()

    overrides = dict(parse_override(text) for text in args.overrides)
    load_preset(args.preset, overrides)  # fail fast on a bad preset or --set, before Prefect starts

    from photoforge.io.capture_files import scan_capture

    scan_capture(args.path, warn=False)  # fail fast on a missing or empty folder (the ingest stage checks again)
    _check_workspace(args.workspace, "run")

    prefect_env.configure(args.workspace, verbose=args.verbose)
    _setup_console_logging(args.verbose)
    api = _prefect_api(args.workspace)
    console.print(f"[bold]photoforge[/] run {escape(str(args.path))} (preset {args.preset}); {api}")
    prefect_env.start_local_api("run")
    from flows.reconstruct import PipelineFailed, reconstruct

    try:
        summary = reconstruct(
            capture=str(args.path),
            preset=args.preset,
            overrides=overrides,
            workspace=str(args.workspace),
            until=args.until,
        )
    except PipelineFailed as failed:
        _print_summary(failed.summary.model_dump(mode="json"))
        _write_json(args.json, failed.summary.model_dump(mode="json"))
        cause = failed.cause
        if not isinstance(cause, PhotoforgeError):
            console.print("".join(traceback.format_exception(cause)), markup=False)
        console.print(f"[bold red]error:[/] {escape(str(cause))}")
        return failed.exit_code
    _print_summary(summary)
    _write_json(args.json, summary)
    return 0


def _cmd_batch(args: argparse.Namespace) -> int:
    from photoforge.presets import load_preset, parse_override

    keep_handlers_over_native_ones()

    overrides = dict(parse_override(text) for text in args.overrides)
    load_preset(args.preset, overrides)
    if not args.inbox.is_dir():
        raise PhotoforgeError(f"[batch] {args.inbox}: not a folder")
    _check_workspace(args.workspace, "batch")
    prefect_env.configure(args.workspace, verbose=args.verbose)
    _setup_console_logging(args.verbose)
    api = _prefect_api(args.workspace)
    console.print(f"[bold]photoforge[/] batch {escape(str(args.inbox))} (preset {args.preset}); {api}")
    prefect_env.start_local_api("batch")
    from flows.batch import with_concurrency

    rows = with_concurrency(args.concurrency)(
        inbox=str(args.inbox), preset=args.preset, workspace=str(args.workspace), overrides=overrides
    )
    table = Table(title=f"photoforge batch: {args.inbox}", title_justify="left")
    for column in ("capture", "status", "seconds", "stage", "cause / outputs"):
        table.add_column(column)
    colours = {"done": "green", "skipped": "blue", "failed": "red"}
    for row in rows:
        detail = row.get("cause") or row.get("outputs") or ""
        table.add_row(
            escape(row["capture"]),
            f"[{colours[row['status']]}]{row['status']}[/]",
            str(row.get("seconds", "")),
            escape(str(row.get("stage", ""))),
            escape(_short(detail) if row["status"] == "done" else detail),
        )
    out.print(table)
    counts = {s: sum(r["status"] == s for r in rows) for s in ("done", "skipped", "failed")}
    out.print(", ".join(f"{n} {s}" for s, n in counts.items()))
    _write_json(args.json, {"inbox": str(args.inbox), "captures": rows})
    return 1 if counts["failed"] else 0


def _cmd_serve(args: argparse.Namespace) -> int:
    from photoforge.presets import load_preset

    load_preset(args.preset)
    _check_workspace(args.workspace, "serve")
    home = prefect_env.configure(args.workspace)
    _setup_console_logging(verbose=False)
    server = local_server.reuse(args.workspace)
    from flows.deployments import serve_deployments

    if server is not None:
        console.print(f"serving through the Prefect server at {server.address}")
    elif home is not None:
        console.print(
            "[yellow]note:[/] serving needs a running Prefect server: start `photoforge server start` or "
            "`photoforge ui` (same workspace) or set PREFECT_API_URL"
        )
    serve_deployments(args.workspace, args.preset, args.inbox, args.cron if args.inbox else None)
    return 0


def _cmd_deploy(args: argparse.Namespace) -> int:
    from photoforge.presets import load_preset

    load_preset(args.preset)
    from prefect.settings import get_current_settings

    if not get_current_settings().api.url:
        raise PhotoforgeError("[deploy] set PREFECT_API_URL to the Prefect server the workers use (see README)")
    from flows.deployments import PoolSetup, deploy_to_pools

    setup = PoolSetup(
        workspace=args.workspace,
        inbox=args.inbox,
        preset=args.preset,
        cron=args.cron,
        cpu_pool=args.cpu_pool,
        gpu_pool=None if args.no_gpu_pool else args.gpu_pool,
        gpu_concurrency=args.gpu_concurrency,
        **({"gpu_root": args.gpu_root} if args.gpu_root else {}),
        heartbeat_s=args.heartbeat_s,
        crash_after_s=args.crash_after_s,
    )
    deploy_to_pools(setup)
    out.print(f"deployed reconstruct/reconstruct and process-inbox/process-inbox to pool {setup.cpu_pool}")
    out.print(f"start workers: prefect worker start --pool {setup.cpu_pool}")
    if setup.gpu_pool:
        out.print(f"deployed gpu-stage/gpu to pool {setup.gpu_pool} (concurrency {setup.gpu_concurrency})")
        out.print(f"on each GPU machine: prefect worker start --pool {setup.gpu_pool} --limit 1")
    return 0


def _cmd_presets(args: argparse.Namespace) -> int:
    from photoforge.presets import (
        BASE_PRESET,
        describe,
        load_preset,
        load_presets,
        pipelines_files,
        pipelines_path,
        preset_chain,
    )

    path = pipelines_path()
    names = [args.name] if args.name else list(load_presets(path))
    out.print(f"presets in {' + '.join(map(str, pipelines_files(path)))} (* differs from {BASE_PRESET})")
    base = load_preset(BASE_PRESET, path=path)
    for name in names:
        cfg, chain = load_preset(name, path=path), preset_chain(name, path)
        extends = f" (extends {' <- '.join(chain[1:])})" if len(chain) > 1 else " (the code defaults)"
        table = Table(title=f"preset: {name}{extends}", title_justify="left", show_lines=False)
        table.add_column("", width=1)
        table.add_column("stage.param")
        table.add_column("value")
        table.add_column("meaning", style="dim")
        for row in describe(cfg, base if name != BASE_PRESET else None):
            table.add_row("*" if row.changed else "", row.name, escape(json.dumps(row.value)), escape(row.description))
        out.print(table)
    return 0


def _cmd_ui(args: argparse.Namespace) -> int:
    from flows.file_server import serve_workspace
    from flows.ports import check_free

    if args.port == args.files_port:
        raise StageError("ui", "the Prefect UI and the file server need two ports: pass another --files-port")
    check_free(args.port, flag="--port")  # before anything starts: one clear line, not a server's traceback
    check_free(args.files_port, flag="--files-port")
    _check_workspace(args.workspace, "ui")
    home = prefect_env.configure(args.workspace)
    where = f"PREFECT_HOME={home}" if home else "your Prefect configuration"
    try:
        files = serve_workspace(args.workspace, args.files_port, hosts=args.files_host)
    except OSError as exc:  # taken since the check
        cause = f"cannot serve the files ({exc.strerror or exc}): pass another --files-port"
        raise StageError("ui", cause, f"127.0.0.1:{args.files_port}") from exc
    console.print(f"Prefect UI on http://127.0.0.1:{args.port} (runs from {where}); Ctrl-C stops it")
    console.print(f"workspace files (read-only) on http://127.0.0.1:{args.files_port}/")
    command = [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(args.port)]
    env = {**os.environ, "PHOTOFORGE_FILES_PORT": str(args.files_port)}
    # Its own session, so that stopping `photoforge ui` (kill PID, Ctrl-C) stops the server's whole group here.
    server = subprocess.Popen(command, env=env, start_new_session=True, preexec_fn=prefect_env.dies_with_parent())
    # While it is open, runs on this workspace use it instead of starting Prefect's ephemeral API.
    forget = local_server.record_while_up(args.workspace, server, f"http://127.0.0.1:{args.port}/api")
    try:
        return server.wait()
    finally:
        forget()
        stop_process_group(server)
        files.shutdown()
        files.server_close()


def _cmd_server(args: argparse.Namespace) -> int:
    """`photoforge server start|stop|status`: a Prefect server in the background that runs on the workspace use."""
    if args.action == "status":
        record = local_server.live(args.workspace)
        if record is None:
            out.print(f"down: no Prefect server for {_short(str(args.workspace))} (photoforge server start)")
            return 1
        who = f"{'photoforge ui' if record.owner == 'ui' else 'photoforge server'}, pid {record.pid}"
        if not record.is_healthy():
            out.print(f"not answering: {record.address} ({who}): starting, or busy")
            return 1
        out.print(f"up: {record.address} ({who}); runs on {_short(str(args.workspace))} use it")
        return 0
    if args.action == "stop":
        record = local_server.stop(args.workspace)
        if record is None:
            out.print(f"down: no Prefect server was running for {_short(str(args.workspace))}")
        else:
            out.print(f"stopped the Prefect server at {record.address} (pid {record.pid})")
        return 0
    _check_workspace(args.workspace, "server")
    prefect_env.configure(args.workspace, verbose=True)  # the server's own log goes to PREFECT_HOME/server.log
    console.print("starting a Prefect server in the background…")
    record, started = local_server.start(args.workspace, args.port or None)
    state = "up" if started else "already up"
    out.print(f"{state}: {record.address} (pid {record.pid}; UI and API); runs on {_short(str(args.workspace))} use it")
    where = "" if args.workspace == Path("workspace") else f" --workspace {args.workspace}"
    out.print(f"stop it with: photoforge server stop{where}", markup=False)
    return 0


def _cmd_open(args: argparse.Namespace) -> int:
    name = named_capture(args.capture)
    outputs = args.workspace / name / "outputs"
    found = [outputs / n for n in HEADLINE_OUTPUTS if (outputs / n).is_file()]
    if not found:
        raise PhotoforgeError(f"no outputs for {name!r} in {args.workspace}: run photoforge run first")
    for path in found:
        out.print(str(path.resolve()), markup=False)
    if args.browser and (outputs / REPORT_HTML).is_file():
        import webbrowser

        webbrowser.open((outputs / REPORT_HTML).resolve().as_uri() + "#viewer")  # its <section id="viewer">
    return 0


def _cmd_handoff(args: argparse.Namespace) -> int:
    from photoforge.io.handoff import handoff

    done = handoff(args.workspace, args.capture, target=args.to, out=args.out)
    how = "hard-linked" if done.linked else "copied"
    out.print(f"{done.images} images ({how}) and the {done.target} cameras in {escape(_short(str(done.out)))}")
    return 0


class _ConsoleLogHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if record.levelno >= logging.WARNING:
            console.print(f"[yellow]warning:[/] {escape(message)}")
        elif record.name == "photoforge.progress":
            stage, _, rest = message.partition(" ")
            console.print(f"  [cyan]{stage:<8}[/] {escape(rest)}")
        else:
            console.print(f"  {message}", markup=False)


def _setup_console_logging(verbose: bool) -> None:
    logger = logging.getLogger("photoforge")
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)
    if not any(isinstance(h, _ConsoleLogHandler) for h in logger.handlers):
        logger.addHandler(_ConsoleLogHandler())
    logger.propagate = False


def _print_summary(summary: dict[str, Any]) -> None:
    table = Table(title=f"photoforge: {summary['capture']} ({summary['preset']})", title_justify="left")
    for column in ("stage", "status", "seconds", "artefact dir", "key metric"):
        table.add_column(column)
    colours = {"ran": "green", "cached": "blue", "failed": "red", "skipped": "yellow", "interrupted": "magenta"}
    for row in summary["stages"]:
        status = row["status"]
        table.add_row(
            row["stage"],
            f"[{colours[status]}]{status}[/]",
            f"{row['seconds']:.1f}",
            escape(_short(row.get("path"))),
            escape(row.get("metric", "")),
        )
    out.print(table)
    stages = summary["stages"]
    if stages and all(row["status"] in ("cached", "skipped") for row in stages):
        out.print(f"nothing changed: no stage executed ({len(stages)} reused from the cache)")
    elif stages:
        ran = [row["stage"] for row in stages if row["status"] == "ran"]
        if ran:
            out.print(f"executed: {', '.join(ran)}")
    if summary.get("outputs"):
        outputs = Path(summary["outputs"])
        for label, name in zip(("asset", "turntable", "report"), HEADLINE_OUTPUTS, strict=True):
            if (outputs / name).is_file():
                out.print(f"{label + ':':<11}{escape(_short(str(outputs / name)))}")


def _prefect_api(workspace: Path) -> str:
    """Use the workspace's running Prefect server (`photoforge server start`, `photoforge ui`) if there is one;
    says which API the run talks to. Before Prefect is imported."""
    server = local_server.reuse(workspace)
    if server is None:
        return "starting Prefect…"
    return f"Prefect server at {server.address} ({'photoforge ui' if server.owner == 'ui' else 'photoforge server'})"


def _check_workspace(workspace: Path, command: str) -> None:
    """Fail before Prefect starts when the workspace is a file or cannot be written (one line, what to do)."""
    if workspace.exists() and not workspace.is_dir():
        cause = "--workspace is a file, not a folder: pass a folder (it is created if missing)"
        raise StageError(command, cause, workspace)
    try:
        workspace.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=workspace, prefix=".write-test-"):
            pass
    except OSError as exc:
        cause = f"cannot write the workspace ({exc.strerror or type(exc).__name__}): "
        raise StageError(command, cause + "pass --workspace with a folder you can write to", workspace) from exc


def _short(path: str | None) -> str:
    if not path:
        return ""
    try:
        return os.path.relpath(path)
    except ValueError:
        return path


def _write_json(path: Path | None, summary: dict[str, Any]) -> None:
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    entry()
