"""Docs that cannot drift: every command the docs show exists and accepts the flags shown, and
every config key the docs list exists with the documented default.

Commands: each `python -m hsnet_jax.X ...` / `python convert/Y.py ...` in a fenced shell block
(```sh, ```bash, ```console, ```shell or a bare ```) of README.md or docs/*.md, across `\\`
continuations, after `$ ` prompts and `VAR=value` prefixes, and in inline code spans (tables).
The flags a command accepts are read from its source without running it (starting a command
costs 5-90 s here, torch and jax imports): argparse `add_argument("--x")` in the command's own
file, absl `DEFINE_*("x")` in it and in the repository modules it imports. `--config.A.B=V`
overrides must name a field of the config file given by `--config`. Placeholders in capitals
(`--config.KEY=VALUE`) are skipped.

Config tables: a markdown table whose header's first cell is `field` (or `key`) lists config
keys in backticks in its first column and their defaults in its second; each key must exist in
`hsnet_jax.config.base_config` with that default (`per config` skips the check). In one cell,
`a.b`, `c` means `a.b` and `a.c`.
"""

from __future__ import annotations

import ast
import functools
import glob
import importlib.util
import os
import re
import shlex
import subprocess

from hsnet_jax.config import base_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHELL_FENCES = {"", "sh", "bash", "console", "shell"}
ALWAYS_ACCEPTED = {"help", "helpfull"}
SEPARATORS = {"|", "||", "&&", ";", "&"}


def doc_files() -> list[str]:
    return [os.path.join(ROOT, "README.md")] + sorted(glob.glob(os.path.join(ROOT, "docs", "*.md")))


def shell_commands(text: str) -> list[tuple[int, str]]:
    """(line number, logical line) of every line in a fenced shell block, continuations joined."""
    commands, fence, pending, start = [], None, "", 0
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if stripped.startswith("```"):
            fence = stripped[3:].strip().lower() if fence is None else None
            continue
        if fence not in SHELL_FENCES:
            continue
        if stripped.startswith("$ "):
            stripped = stripped[2:]
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        commands.append((start, pending + stripped))
        pending = ""
    return commands


def split_command(line: str) -> list[list[str]]:
    """The simple commands of a shell line, tokenised, comments and `[ ]` optional marks dropped."""
    try:
        tokens = shlex.split(line, comments=True)
    except ValueError:  # an unbalanced quote in prose-like lines: not a command we check
        return []
    parts, current = [], []
    for token in tokens:
        if token in SEPARATORS:
            parts.append(current)
            current = []
        elif token.strip("[]."):
            current.append(token.strip("[]"))
    return parts + [current]


def _module_path(dotted: str) -> str | None:
    base = os.path.join(ROOT, *dotted.split("."))
    for path in (base + ".py", os.path.join(base, "__init__.py"), os.path.join(base, "__main__.py")):
        if os.path.isfile(path):
            return path
    return None


@functools.lru_cache(maxsize=None)
def _parse(path: str) -> ast.Module:
    with open(path) as f:
        return ast.parse(f.read(), path)


def _repo_imports(path: str) -> set[str]:
    """Files of the repository's own modules that `path` imports (anywhere in its body)."""
    found = set()
    for node in ast.walk(_parse(path)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            if name.split(".")[0] in ("hsnet_jax", "convert", "benchmarks") and (target := _module_path(name)):
                found.add(target)
    return found


def _first_string(call: ast.Call) -> str | None:
    args = list(call.args) + [k.value for k in call.keywords if k.arg == "name"]
    if args and isinstance(args[0], ast.Constant) and isinstance(args[0].value, str):
        return args[0].value
    return None


@functools.lru_cache(maxsize=None)
def accepted_flags(path: str) -> frozenset[str]:
    """Flag names (without `--`) the command in `path` accepts, read from the source."""
    flags = set(ALWAYS_ACCEPTED)
    seen, todo = set(), [path]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        todo += _repo_imports(current)
        for node in ast.walk(_parse(current)):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            name, first = node.func.attr, _first_string(node)
            if name == "add_argument" and current == path:  # argparse: the command's own parser
                flags.update(a.value[2:] for a in node.args
                             if isinstance(a, ast.Constant) and str(a.value).startswith("--"))
            elif name.startswith("DEFINE") and first:  # absl flags are global: any imported module
                flags.add(first)
                if name in ("DEFINE_bool", "DEFINE_boolean"):
                    flags.add("no" + first)
    return frozenset(flags)


@functools.lru_cache(maxsize=None)
def load_config(path: str):
    spec = importlib.util.spec_from_file_location("_doc_config_" + re.sub(r"\W", "_", path), path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config()


def _has_key(config, key: str) -> bool:
    for part in key.split("."):
        if not hasattr(config, "keys") or part not in config:
            return False
        config = config[part]
    return True


def _placeholder(name: str) -> bool:
    return any(part.isupper() for part in re.split(r"[._]", name) if part)


def check_command(where: str, tokens: list[str]) -> list[str]:
    """Problems with one tokenised command; [] when it is not a hsnet_jax / convert command."""
    for i, token in enumerate(tokens):
        if os.path.basename(token).startswith("python"):
            break
    else:
        return []
    rest = tokens[i + 1:]
    if rest[:1] == ["-m"] and len(rest) > 1 and rest[1].startswith("hsnet_jax"):
        shown, path, args = f"python -m {rest[1]}", _module_path(rest[1]), rest[2:]
    elif rest and rest[0].startswith("convert/"):
        candidate = os.path.join(ROOT, rest[0])
        shown, path, args = f"python {rest[0]}", candidate if os.path.isfile(candidate) else None, rest[1:]
    else:
        return []
    if path is None:
        return [f"{where}: `{shown}`: no such module or script"]
    problems, accepted = [], accepted_flags(path)
    config_file = None
    for j, arg in enumerate(args):
        if arg == "--config" and j + 1 < len(args):
            config_file = args[j + 1]
        elif arg.startswith("--config="):
            config_file = arg.split("=", 1)[1]
    for arg in args:
        if not arg.startswith("--"):
            continue
        name = arg[2:].split("=", 1)[0]
        if name.startswith("config.") and "config" in accepted:
            key = name[len("config."):]
            if _placeholder(key):
                continue
            if config_file is None:
                problems.append(f"{where}: `{shown}`: --config.{key} without --config FILE")
            elif not os.path.isfile(os.path.join(ROOT, config_file)):
                problems.append(f"{where}: `{shown}`: no config file {config_file}")
            elif not _has_key(load_config(os.path.join(ROOT, config_file)), key):
                problems.append(f"{where}: `{shown}`: {config_file} has no field {key} (--config.{key})")
        elif name not in accepted and not _placeholder(name):
            problems.append(f"{where}: `{shown}` has no flag --{name} (it has: "
                            f"{', '.join('--' + f for f in sorted(accepted - ALWAYS_ACCEPTED))})")
    return problems


INLINE_COMMAND = re.compile(r"`(python3? (?:-m hsnet_jax|convert/)[^`]*)`")


def inline_commands(text: str) -> list[tuple[int, str]]:
    """Commands in inline code spans (`python -m hsnet_jax...`), e.g. in tables."""
    return [(number, match) for number, line in enumerate(text.splitlines(), 1)
            for match in INLINE_COMMAND.findall(line)]


def check_commands(path: str, text: str) -> tuple[int, list[str]]:
    """(commands checked, problems) for one markdown file."""
    checked, problems = 0, []
    rel = os.path.relpath(path, ROOT)
    for number, line in shell_commands(text) + inline_commands(text):
        for tokens in split_command(line):
            found = check_command(f"{rel}:{number}", tokens)
            checked += any(("hsnet_jax" in t or t.startswith("convert/")) for t in tokens) and any(
                os.path.basename(t).startswith("python") for t in tokens)
            problems += found
    return checked, problems


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def _value(text: str):
    text = text.strip()
    if text.startswith("`") and text.endswith("`"):
        text = text[1:-1]
        if text in ('""', "''"):
            return ""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def check_config_tables(path: str, text: str, defaults) -> tuple[int, list[str]]:
    """(keys checked, problems) of every config table in one markdown file."""
    rel = os.path.relpath(path, ROOT)
    lines = text.splitlines()
    checked, problems = 0, []
    for number, line in enumerate(lines, 1):
        header_above = number >= 2 and lines[number - 2].lstrip().startswith("|")
        if not line.lstrip().startswith("|") or header_above:
            continue
        if _cells(line)[0].lower() not in ("field", "key"):
            continue
        row = number + 1  # the |---| separator; rows follow it
        while row < len(lines) and lines[row].lstrip().startswith("|"):
            cells = _cells(lines[row])
            keys, values = re.findall(r"`([^`]+)`", cells[0]), [v for v in cells[1].split(", ")]
            where = f"{rel}:{row + 1}"
            row += 1
            if values == ["per config"]:
                continue
            if len(values) != len(keys):
                problems.append(f"{where}: {len(keys)} keys but {len(values)} defaults")
                continue
            prefix = keys[0].rpartition(".")[0]
            for key, value in zip(keys, values):
                key = key if "." in key or not prefix else f"{prefix}.{key}"
                checked += 1
                if not _has_key(defaults, key):
                    problems.append(f"{where}: config key {key} is not in hsnet_jax.config.base_config")
                    continue
                actual, documented = defaults[key.split(".")[0]], _value(value)
                for part in key.split(".")[1:]:
                    actual = actual[part]
                if actual != documented or type(actual) is bool and documented is not actual:
                    problems.append(f"{where}: config key {key} documented default {value} "
                                    f"but base_config has {actual!r}")
    return checked, problems


def test_commands_in_the_docs_exist_with_their_flags():
    total, problems = 0, []
    for path in doc_files():
        with open(path) as f:
            checked, found = check_commands(path, f.read())
        total += checked
        problems += found
    assert total >= 10, f"only {total} commands found in the docs: is the parser broken?"
    assert not problems, "docs show commands or flags that do not exist:\n" + "\n".join(problems)


def test_config_tables_match_base_config():
    total, problems = 0, []
    for path in doc_files():
        with open(path) as f:
            checked, found = check_config_tables(path, f.read(), base_config("synthetic"))
        total += checked
        problems += found
    assert total >= 15, f"only {total} config keys found in the docs' config tables"
    assert not problems, "config tables disagree with hsnet_jax.config.base_config:\n" + "\n".join(problems)


def test_drift_is_reported_with_file_line_and_name():
    """The checks above can fail: a page with one mistake of each kind."""
    page = "\n".join([
        "```bash",
        "$ python -m hsnet_jax.evaluate --workdir w --splt test   # misspelt flag",
        "python -m hsnet_jax.trian --config configs/raf.py",
        "XLA_FLAGS=x python -m hsnet_jax.train --config configs/raf.py \\",
        "  --config.optimizer.learning_rat=0.1 --workdir w",
        "python convert/port_stem.py --weights a.pt --output o --verfy",
        "make demo",
        "```",
        "Prepare with `python -m hsnet_jax.prepare --dataset raf_db --manul_dir PATH`.",
        "",
        "| field | default | meaning |",
        "|---|---|---|",
        "| `batch_size` | 64 | wrong default |",
        "| `optimizer.learning_rate`, `b3` | 0.01, 0.9 | unknown key |",
        "| `model.use_dib` | False | wrong bool |",
    ])
    path = os.path.join(ROOT, "docs", "example.md")
    checked, problems = check_commands(path, page)
    assert checked == 5
    assert problems[0].startswith("docs/example.md:2: `python -m hsnet_jax.evaluate` has no flag --splt")
    assert problems[1] == "docs/example.md:3: `python -m hsnet_jax.trian`: no such module or script"
    assert problems[2] == ("docs/example.md:4: `python -m hsnet_jax.train`: configs/raf.py has no field "
                           "optimizer.learning_rat (--config.optimizer.learning_rat)")
    assert problems[3].startswith("docs/example.md:6: `python convert/port_stem.py` has no flag --verfy")
    assert problems[4].startswith("docs/example.md:9: `python -m hsnet_jax.prepare` has no flag --manul_dir")
    assert len(problems) == 5
    checked, problems = check_config_tables(path, page, base_config("synthetic"))
    assert checked == 4
    assert problems == [
        "docs/example.md:13: config key batch_size documented default 64 but base_config has 32",
        "docs/example.md:14: config key optimizer.b3 is not in hsnet_jax.config.base_config",
        "docs/example.md:15: config key model.use_dib documented default False but base_config has True",
    ]


LINK = re.compile(r"\]\(([^)\s]+)\)")


def anchors(text: str) -> set[str]:
    """GitHub's anchors of a page's headings: lower case, punctuation dropped, spaces -> `-`."""
    return {re.sub(r"[^\w\- ]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
            for line in text.splitlines() if re.match(r"#{1,6} ", line)}


def broken_links(path: str, text: str) -> list[str]:
    """Relative links `[text](target)` in `text` whose file does not exist in the repository,
    or whose `#anchor` is no heading of that file (URLs are not checked)."""
    rel, problems = os.path.relpath(path, ROOT), []
    for number, line in enumerate(text.splitlines(), 1):
        for target in LINK.findall(line):
            if re.match(r"[a-z]+:", target):
                continue
            name, _, anchor = target.partition("#")
            file = os.path.normpath(os.path.join(os.path.dirname(path), name)) if name else path
            if name and not os.path.exists(file):
                problems.append(f"{rel}:{number}: link to {target}: no such file")
            elif not file.startswith(ROOT + os.sep):
                problems.append(f"{rel}:{number}: link to {target}: outside the repository")
            elif anchor and file.endswith(".md"):
                if name:
                    with open(file) as f:
                        page = f.read()
                else:
                    page = text
                if anchor not in anchors(page):
                    problems.append(f"{rel}:{number}: link to {target}: no heading #{anchor} there")
    return problems


def test_relative_links_point_to_files_in_the_repository():
    problems, pages = [], doc_files() + [os.path.join(ROOT, "BENCHMARKS.md")]
    for path in pages:
        with open(path) as f:
            problems += broken_links(path, f.read())
    assert not problems, "\n".join(problems)
    page = ("# Top, of it\nsee [a](design.md), [b](../README.md#layout), [c](nothere.md#x), [d](https://x.org/y), "
            "[e](#top-of-it), [f](#gone), [g](training.md#configs), [h](training.md#config)")
    assert broken_links(os.path.join(ROOT, "docs", "example.md"), page) == [
        "docs/example.md:2: link to nothere.md#x: no such file",
        "docs/example.md:2: link to #gone: no heading #gone there",
        "docs/example.md:2: link to training.md#config: no heading #config there"]


def _section(text: str, heading: str) -> str:
    """The text under `## heading` up to the next `## `."""
    return text.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]


def test_layout_tables_match_the_tree():
    """README's layout table names every top-level folder, every module and subpackage of
    hsnet_jax/, and only paths that exist; docs/layout.md names every module of the subpackages."""
    with open(os.path.join(ROOT, "README.md")) as f:
        table = _section(f.read(), "Layout")
    paths = [_cells(line)[0].strip("`") for line in table.splitlines() if line.startswith("| `")]
    assert len(paths) >= 10, "README has no layout table under ## Layout"
    missing = [p for p in paths if not os.path.exists(os.path.join(ROOT, p))]
    assert not missing, f"README's layout table lists paths that do not exist: {missing}"
    tracked = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                             capture_output=True, text=True, check=True).stdout.split()
    folders = {t.split("/")[0] + "/" for t in tracked if "/" in t and not t.startswith(".")} - {"hsnet_jax/"}
    package = {t.rsplit("/", 1)[0] + "/" if t.count("/") > 1 else t for t in tracked
               if t.startswith("hsnet_jax/") and t != "hsnet_jax/__init__.py"}
    unlisted = sorted((folders | package) - set(paths))
    assert not unlisted, f"README's layout table does not list: {unlisted}"
    with open(os.path.join(ROOT, "docs", "layout.md")) as f:
        detail = f.read()
    modules = [os.path.basename(t) for t in tracked if t.count("/") == 2 and t.startswith("hsnet_jax/")
               and t.endswith(".py") and not t.endswith("__init__.py")]
    unlisted = [m for m in modules if f"`{m}`" not in detail and m not in detail]
    assert not unlisted, f"docs/layout.md does not name: {unlisted}"
