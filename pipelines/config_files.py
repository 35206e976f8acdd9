"""A broken `.dlt/config.toml` or `.dlt/secrets.toml` named in one sentence, instead of dlt's traceback.

dlt reads these files on its first configuration lookup; when one does not parse, the same parser (tomlkit)
reads it again here to name the file, the line and what to fix. Nothing of a file's content is shown: a
secrets file must never reach the screen.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

from pipelines.errors import UsageError

_HEADER = re.compile(r"^\s*\[\s*([^\[\]]+?)\s*\]\s*(#.*)?$")
_KEY = re.compile(r'^\s*([A-Za-z0-9_.\-"\' ]+?)\s*=')


def check_settings_files() -> None:
    """Has dlt read its settings files now, and raises UsageError naming the file, the line and what to fix
    when one of them is not valid TOML."""
    import dlt
    from dlt.common.configuration.providers.toml import TomlProviderReadException

    try:
        dlt.current.run_context()  # reads the TOML files of the project and of the global dlt folder
    except TomlProviderReadException as exc:
        raise UsageError(explain(exc)) from None


def exposed_secrets() -> list[str]:
    """Warnings for the dlt secrets files (the project's and the global one) that other users of this machine
    can read: one sentence each, naming the file and the command that fixes it."""
    import stat

    import dlt

    context = dlt.current.run_context()
    folders = [context.settings_dir, getattr(context, "global_dir", None)]
    warnings = []
    for folder in dict.fromkeys(f for f in folders if f):
        path = Path(folder) / "secrets.toml"
        try:
            mode = path.stat().st_mode
        except OSError:
            continue
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            warnings.append(f"{path} can be read by other users of this machine (mode {stat.S_IMODE(mode):04o}): "
                            f"it holds your Gong credentials; run `chmod 600 {path}`.")
    return warnings


def explain(exc: Exception) -> str:
    """One sentence for dlt's TomlProviderReadException: the first of its files that does not parse."""
    for name in getattr(exc, "full_paths", None) or []:
        path = Path(name)
        problem = toml_problem(path) if path.is_file() else None
        if problem:
            return problem
    return f"A dlt settings file ({getattr(exc, 'file_name', 'config.toml')}) cannot be read: check that it is " \
           "valid TOML."


def toml_problem(path: Path) -> Optional[str]:
    """One sentence about what makes `path` unreadable for dlt, or None when it parses."""
    import tomlkit
    from tomlkit.exceptions import KeyAlreadyPresent, ParseError

    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return f"{path} is not UTF-8 text: save it as UTF-8 and run again."
    except OSError as exc:
        return f"{path} cannot be read ({exc.strerror}): check its permissions."
    try:
        tomlkit.parse(text)
        return None
    except (ParseError, KeyAlreadyPresent) as exc:
        message = str(exc)
        twice = re.match(r'Key "?(.+?)"? already exists', message)
        if twice:
            line, what = _second_declaration(text, twice.group(1))
            where = f"{path} line {line}" if line else str(path)
            fix = "merge the two sections into one" if what.startswith("the section") else "keep one of them"
            return f"{where}: {what} is declared twice: {fix} and run again."
        reason = re.sub(r"\s+at line \d+ col \d+$", "", message).rstrip(".")
        line, col = getattr(exc, "line", None), getattr(exc, "col", None)
        where = f"{path} line {line}, column {col}" if line else str(path)
        return f"{where}: this is not valid TOML ({reason}): fix that line and run again."


def _second_declaration(text: str, key: str) -> tuple[Optional[int], str]:
    """The line where a section or key named `key` (its last dotted part) appears for the second time."""
    seen_sections: set[str] = set()
    seen_keys: set[tuple[str, str]] = set()
    section = ""
    for number, line in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(line)
        if header:
            section = header.group(1).replace(" ", "")
            if section in seen_sections and section.rsplit(".", 1)[-1].strip("\"'") == key:
                return number, f"the section [{section}]"
            seen_sections.add(section)
            continue
        assigned = _KEY.match(line)
        if assigned:
            name = assigned.group(1).strip().strip("\"'")
            if (section, name) in seen_keys and name.rsplit(".", 1)[-1] == key:
                return number, f"the key {name!r}" + (f" in [{section}]" if section else "")
            seen_keys.add((section, name))
    return None, f"{key!r}"
