"""The ``%dataerai`` line magic: ``%load_ext dataerai.magics``, then

``%dataerai [--request-timeout SECONDS] --trace [--notebook NAME] [--title TITLE] [COLLECTION PATH…]``
    starts tracing this notebook into a collection (the words are joined into one path such as
    ``abTEM / notebook runs / tutorials``: the first segment is the project; both are created
    when missing) and puts ``dataerai_session`` (a :class:`~dataerai.notebook.NotebookSession`)
    into the notebook's namespace;

``%dataerai --finish``
    publishes the trace and prints ``Published notebook execution trace <run-id> (<N> cells,
    <M> products).``

A missing daemon, a missing sign-in or a bad argument is reported in the cell as an error; the
kernel keeps running.
"""

from __future__ import annotations

import argparse
import os
import shlex
from typing import Any, List, Optional

from .errors import DaemonError
from .notebook import NotebookSession

SESSION_NAME = "dataerai_session"
DEFAULT_PATH = "Notebook runs"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # never SystemExit inside a kernel
        raise ValueError(f"{message}\n{self.format_usage()}")


def _parser() -> _Parser:
    p = _Parser(prog="%dataerai", add_help=False)
    p.add_argument("--request-timeout", type=float, metavar="SECONDS")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--trace", action="store_true", help="start tracing this notebook")
    what.add_argument("--finish", action="store_true", help="publish the trace")
    what.add_argument("--status", action="store_true", help="say whether a trace runs")
    p.add_argument("--notebook", metavar="NAME")
    p.add_argument("--title", metavar="TITLE")
    p.add_argument("path", nargs="*", metavar="COLLECTION PATH")
    return p


def _notebook_name(shell: Any) -> Optional[str]:
    """The notebook file when the front end tells the kernel (Jupyter Server, VS Code)."""
    for name in ("__session__", "__vsc_ipynb_file__"):
        value = shell.user_ns.get(name)
        if isinstance(value, str) and value.endswith(".ipynb"):
            return value
    session = os.environ.get("JPY_SESSION_NAME")
    return session if session and session.endswith(".ipynb") else None


def dataerai_magic(shell: Any, line: str) -> Optional[NotebookSession]:
    """Run one ``%dataerai`` line in ``shell`` (what the registered magic calls)."""
    from IPython.core.error import UsageError

    try:
        args = _parser().parse_args(shlex.split(line))
    except ValueError as err:
        raise UsageError(str(err)) from None
    current: Optional[NotebookSession] = shell.user_ns.get(SESSION_NAME)
    running = current if isinstance(current, NotebookSession) and current.trace_run_id else None
    try:
        if args.status:
            print(repr(running) if running else "No notebook trace is running.")
            return running
        if args.finish:
            if running is None:
                raise UsageError("no notebook trace is running; start one with %dataerai --trace PATH")
            done = running.finish()
            print(
                f"Published notebook execution trace {done.run_id} "
                f"({done.cell_count} cells, {done.product_count} products)."
            )
            return running
        if running is not None:
            raise UsageError(
                f"a notebook trace is already running (run {running.trace_run_id}); "
                "%dataerai --finish publishes it"
            )
        return _start(shell, args)
    except DaemonError as err:
        raise UsageError(f"dataerai: {err}") from None


def _start(shell: Any, args: argparse.Namespace) -> NotebookSession:
    from . import DataeraiClient

    path = " ".join(args.path).strip() or DEFAULT_PATH
    options = {} if args.request_timeout is None else {"request_timeout_s": args.request_timeout}
    client = DataeraiClient(**options)
    try:
        client.connect()
        client.auth_status()  # a missing sign-in is said here, not at the first upload
        session = NotebookSession.start(
            client,
            path,
            notebook=args.notebook or _notebook_name(shell),
            title=args.title,
            shell=shell,
        )
    except BaseException:
        client.close()
        raise
    shell.user_ns[SESSION_NAME] = session
    print(
        f"Tracing this notebook into {session.collection_path} "
        f"(run {session.trace_run_id}); %dataerai --finish publishes it."
    )
    return session


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext dataerai.magics``"""

    def magic(line: str) -> None:
        dataerai_magic(ipython, line)

    magic.__doc__ = __doc__
    ipython.register_magic_function(magic, magic_kind="line", magic_name="dataerai")


def unload_ipython_extension(ipython: Any) -> None:
    session = ipython.user_ns.get(SESSION_NAME)
    if isinstance(session, NotebookSession) and session.trace_run_id and session._recorder:
        session._recorder.stop()


__all__: List[str] = ["load_ipython_extension", "dataerai_magic"]
