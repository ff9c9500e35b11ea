"""Flags from a compile_commands.json, found the way clangd finds it.

Only flags that shape how the source is *read* are taken (include paths,
macros, language standard, target and machine flags, warnings); output,
dependency and optimisation flags are dropped: the frontend decides those.
"""
from __future__ import annotations

import json
import os
import shlex
import threading
from pathlib import Path

DB_NAME = "compile_commands.json"

# Flags kept with their value; the value may be joined (-Ifoo) or the next argument (-I foo).
_PATH_VALUED = ("-I", "-isystem", "-iquote", "-idirafter", "-include", "-imacros", "-isysroot", "--sysroot")
_VALUED = ("-D", "-U", "-target")
# Flags dropped together with the argument that follows them.
_DROP_WITH_VALUE = {"-o", "-MF", "-MT", "-MQ", "-Xclang", "-mllvm", "-x", "-arch", "-Xlinker", "-Xassembler",
                    "-Xpreprocessor", "-main-file-name", "-aux-triple", "--param", "-dependency-file",
                    "-ivfsoverlay", "-include-pch", "--config"}
_KEEP_BARE = {"-nostdinc", "-nostdlibinc", "-nostdinc++", "-ffreestanding"}


def find_compile_commands(path: str | os.PathLike[str], explicit: str = "") -> Path | None:
    """The compile_commands.json for ``path``.

    ``explicit`` (the compileCommandsDir setting) may name the file or its
    directory. Otherwise each ancestor directory of the file is tried, and in
    each its ``build/`` subdirectory, as clangd does.
    """
    if explicit:
        candidate = Path(explicit).expanduser()
        if candidate.is_dir():
            candidate = candidate / DB_NAME
        return candidate if candidate.is_file() else None
    directory = Path(os.path.abspath(path)).parent
    for ancestor in (directory, *directory.parents):
        for candidate in (ancestor / DB_NAME, ancestor / "build" / DB_NAME):
            if candidate.is_file():
                return candidate
    return None


_loaded: dict[str, tuple[tuple[int, int], list[dict]]] = {}
_lock = threading.Lock()


def _entries(db_path: Path) -> list[dict]:
    """The database's entries, re-read only when the file changes."""
    stat = db_path.stat()
    stamp = (stat.st_mtime_ns, stat.st_size)
    key = str(db_path)
    with _lock:
        cached = _loaded.get(key)
        if cached and cached[0] == stamp:
            return cached[1]
    try:
        data = json.loads(db_path.read_text())
    except (OSError, ValueError):
        data = []
    entries = [entry for entry in data if isinstance(entry, dict)] if isinstance(data, list) else []
    with _lock:
        _loaded[key] = (stamp, entries)
    return entries


def _entry_arguments(entry: dict) -> list[str] | None:
    arguments = entry.get("arguments")
    if isinstance(arguments, list) and all(isinstance(a, str) for a in arguments):
        return list(arguments)
    command = entry.get("command")
    if isinstance(command, str):
        try:
            return shlex.split(command)
        except ValueError:
            return None
    return None


def flags_for(path: str | os.PathLike[str], db_path: str | os.PathLike[str]) -> list[str] | None:
    """Frontend-relevant flags of the entry compiling ``path``; None when the database has none."""
    target = os.path.normpath(os.path.abspath(path))
    target_real = os.path.realpath(target)
    try:
        entries = _entries(Path(db_path))
    except OSError:
        return None
    for entry in entries:
        directory = str(entry.get("directory") or os.path.dirname(os.fspath(db_path)))
        source = entry.get("file")
        if not isinstance(source, str):
            continue
        entry_path = os.path.normpath(os.path.join(directory, source))
        if entry_path != target and os.path.realpath(entry_path) != target_real:
            continue
        arguments = _entry_arguments(entry)
        if arguments is None:
            continue
        return relevant_flags(arguments[1:], directory)
    return None


def _absolute(value: str, directory: str) -> str:
    return value if os.path.isabs(value) else os.path.normpath(os.path.join(directory, value))


def _path_flag(arg: str) -> str | None:
    """The path-valued flag ``arg`` spells (joined or alone), if any."""
    for flag in _PATH_VALUED:
        if arg == flag or (arg.startswith(flag) and flag != "--sysroot"):
            return flag
    return None


def relevant_flags(arguments: list[str], directory: str) -> list[str]:
    """Keep the reading-relevant flags of a compiler command line (without argv[0]).

    Relative paths are made absolute against the entry's ``directory``, because
    the frontend compiles from elsewhere.
    """
    kept: list[str] = []
    i = 0
    while i < len(arguments):
        arg = arguments[i]
        following = arguments[i + 1] if i + 1 < len(arguments) else None
        i += 1
        if arg in _DROP_WITH_VALUE:  # before the prefix tests: -include-pch is not -include
            i += 1
        elif arg.startswith("--sysroot="):
            kept.append("--sysroot=" + _absolute(arg.split("=", 1)[1], directory))
        elif (flag := _path_flag(arg)) is not None:
            value = arg[len(flag):] if arg != flag else following
            if arg == flag:
                i += 1
            if value is not None:
                # A forced include may also be found on the include path: only
                # anchor it to the entry's directory when it is there.
                anchored = _absolute(value, directory)
                value = anchored if flag not in ("-include", "-imacros") or os.path.exists(anchored) else value
                kept.extend([flag + value] if flag == "-I" else [flag, value])
        elif arg in _VALUED:
            if following is not None:
                kept.extend([arg, following])
            i += 1
        elif (arg.startswith(("-D", "-U", "--target=", "-std=")) or arg in _KEEP_BARE
              or (arg.startswith("-W") and not arg.startswith(("-Wl,", "-Wa,", "-Wp,")))
              or (arg.startswith("-m") and not arg.startswith("-mllvm"))):
            kept.append(arg)
        # Everything else is dropped: -c, -M*, -O*, -g*, other -f*, the source file.
    return kept
