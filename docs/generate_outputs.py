"""Write the output shown in docs/*.md from the commands that print it, or check it.

Run from anywhere, after any change that can alter what an example or the demo prints::

    python docs/generate_outputs.py                          # every docs/*.md
    python docs/generate_outputs.py docs/getting_started.md  # some files only
    python docs/generate_outputs.py --check                  # compare, write nothing

The Markdown marks what is generated with HTML comments, invisible once rendered:

``<!-- output: COMMAND [| section: TITLE] [| mask: REGEX] -->``, fence, ``<!-- /output -->``
    The fenced block holds what COMMAND prints on stdout; with ``section``, only the lines
    under the heading line ``== TITLE ==`` of that output, up to the next such heading.
``<!-- source: PATH -->``, fence, ``<!-- /source -->``
    The fenced block holds the file PATH (relative to the repository) without its module
    docstring: the code shown is the code that ran.
``<!-- figures: COMMAND -->``
    COMMAND writes figures that the page shows; it runs when the pages are written, not
    in ``--check``.

How commands run. From the repository root, with ``python`` meaning this interpreter and
the repository first on ``PYTHONPATH`` (the checkout is what runs, installed or not), and
``OMP_NUM_THREADS=1``, so that commands can run side by side (``--jobs``) and use the same
number of threads on every machine. ``{img}`` in a command is ``docs/img`` when the
pages are written and a temporary folder in ``--check``, which never touches the committed
figures. Each distinct command runs once, however many blocks show parts of its output.
Only stdout is shown; stderr (warnings, progress bars) is printed only when a command fails.

How text is compared. Both sides lose trailing whitespace on every line and trailing blank
lines. A block's ``mask`` (a Python regular expression, matched line by line) hides what a
machine cannot reproduce, such as timings: each match's groups (the whole match if it has
none) become ``#`` on both sides before comparing. The committed text keeps the values of
the run that wrote it, and writing does not replace a block that differs only in masked
text. Everything else must be deterministic: seeded, and no timings outside a mask.

``--check`` exits with status 1 and prints a diff for every block that a fresh run does
not reproduce (``tests/test_docs_outputs.py`` runs it). Writing prints the blocks it
changed: read the prose around them, which may describe the old numbers.
"""

import argparse
import concurrent.futures
import difflib
import os
import re
import shlex
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
IMG = DOCS / "img"

_BLOCK = re.compile(
    r"^<!-- (?P<kind>output|source): (?P<spec>.+?) -->\n"
    r"(?P<fence>```[^\n]*)\n(?P<body>.*?)^```\n"
    r"<!-- /(?P=kind) -->$",
    re.MULTILINE | re.DOTALL,
)
_FIGURES = re.compile(r"^<!-- figures: (?P<command>.+?) -->$", re.MULTILINE)
_HEADING = re.compile(r"^== (?P<title>.+) ==$")
_OPTIONS = ("section", "mask")


@dataclass(frozen=True)
class Block:
    """One generated block of a Markdown file.

    Attributes
    ----------
    kind : {"output", "source"}
    target : str
        The command (output) or the file path (source).
    section : str or None
        Heading of the part of the command's output that the block shows.
    mask : str or None
        Regular expression of text not compared.
    start, end : int
        Character offsets of the block's body in the file.
    """

    kind: str
    target: str
    section: str | None
    mask: str | None
    start: int
    end: int

    def describe(self):
        name = self.target if self.section is None else f"{self.target} (section {self.section!r})"
        return f"{self.kind} of {name}"


class GenerationError(RuntimeError):
    """A marker is malformed, a command failed, or a section is not in its output."""


def parse(text):
    """The generated blocks and the figure commands of one Markdown text.

    Parameters
    ----------
    text : str
        Markdown with the markers described in this module's docstring.

    Returns
    -------
    blocks : list of Block
    figures : list of str
        Commands of the ``figures`` markers.

    Raises
    ------
    GenerationError
        For an unknown option in a marker, or an opening marker without its block.
    """
    blocks = []
    for match in _BLOCK.finditer(text):
        target, *options = (part.strip() for part in match["spec"].split(" | "))
        values = dict.fromkeys(_OPTIONS)
        for option in options:
            key, _, value = option.partition(": ")
            if key not in values or not value:
                raise GenerationError(f"marker {match['spec']!r}: unknown option {option!r}; "
                                      f"options are {', '.join(_OPTIONS)} (`| name: value`)")
            values[key] = value
        if match["kind"] == "source" and any(values.values()):
            raise GenerationError(f"source marker {match['spec']!r} takes no options")
        blocks.append(Block(match["kind"], target, values["section"], values["mask"],
                            match.start("body"), match.end("body")))
    opened = len(re.findall(r"^<!-- (?:output|source): ", text, re.MULTILINE))
    if opened != len(blocks):
        raise GenerationError(f"{opened - len(blocks)} marker(s) not followed by a fenced "
                              "block and a closing <!-- /output --> or <!-- /source -->")
    return blocks, [m["command"] for m in _FIGURES.finditer(text)]


def normalise(text):
    """Text without trailing whitespace on its lines, ending in exactly one newline."""
    return "\n".join(line.rstrip() for line in text.rstrip().splitlines()) + "\n"


def masked(text, mask):
    """``text`` with every match of ``mask`` (its groups, if any) replaced by ``#``."""
    if mask is None:
        return text
    pattern = re.compile(mask, re.MULTILINE)

    def hide(match):
        if not pattern.groups:
            return "#"
        out, position = [], match.start()
        for group in range(1, pattern.groups + 1):
            if match.start(group) < 0:
                continue
            out += [match.string[position:match.start(group)], "#"]
            position = match.end(group)
        return "".join(out) + match.string[position:match.end()]

    return pattern.sub(hide, text)


def section(output, title):
    """The lines of ``output`` under the heading ``== title ==``, up to the next heading."""
    lines, inside, found = [], False, False
    for line in output.splitlines():
        heading = _HEADING.match(line)
        if heading:
            inside = heading["title"] == title
            found = found or inside
        elif inside:
            lines.append(line)
    if not found:
        raise GenerationError(f"no heading '== {title} ==' in the output")
    return "\n".join(lines)


def source_text(path):
    """The file at ``path`` (relative to the repository) without its module docstring."""
    text = (ROOT / path).read_text()
    docstring = re.match(r'\s*("""|\'\'\').*?\1\n', text, re.DOTALL)
    return (text[docstring.end():] if docstring else text).lstrip("\n")


def run_command(command, img_dir, timeout=None):
    """Run one marker command as described in the module docstring; return its stdout."""
    argv = shlex.split(command.replace("{img}", shlex.quote(str(img_dir))))
    if argv and argv[0] == "python":
        argv[0] = sys.executable
    env = dict(os.environ, OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    try:
        done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise GenerationError(f"`{command}` ran longer than {timeout} s") from exc
    if done.returncode != 0:
        raise GenerationError(f"`{command}` exited with status {done.returncode}:\n"
                              f"{done.stderr[-4000:]}")
    return done.stdout


def generate(paths, *, check=False, jobs=1, timeout=None, img_dir=IMG):
    """Run the commands of the Markdown files ``paths`` and write or check their blocks.

    Parameters
    ----------
    paths : list of path-like
        Markdown files.
    check : bool, default=False
        Compare only; write nothing (figures go to a temporary folder).
    jobs : int, default=1
        Commands run side by side.
    timeout : float or None, default=None
        Seconds each command may run.
    img_dir : path-like, default=docs/img
        What ``{img}`` means when writing.

    Returns
    -------
    list of str
        One entry per block that differed from a fresh run: the file, the block and a
        unified diff of the compared text. Written anew unless ``check``.

    Raises
    ------
    GenerationError
        For a malformed marker, a failing command or a missing section.
    """
    pages = {}
    for path in map(Path, paths):
        text = path.read_text()
        pages[path] = (text, *parse(text))
    commands = {b.target for _, blocks, _ in pages.values() for b in blocks if b.kind == "output"}
    if not check:
        commands |= {c for _, _, figures in pages.values() for c in figures}
    with tempfile.TemporaryDirectory() as scratch:
        where = Path(scratch) if check else Path(img_dir)
        where.mkdir(parents=True, exist_ok=True)
        with concurrent.futures.ThreadPoolExecutor(max(1, jobs)) as pool:
            futures = {c: pool.submit(run_command, c, where, timeout) for c in sorted(commands)}
            outputs = {c: f.result() for c, f in futures.items()}

    differences = []
    for path, (text, blocks, _) in pages.items():
        pieces, position = [], 0
        for block in blocks:
            if block.kind == "source":
                fresh = source_text(block.target)
            else:
                fresh = outputs[block.target]
                if block.section is not None:
                    try:
                        fresh = section(fresh, block.section)
                    except GenerationError as exc:
                        raise GenerationError(f"{path}: {block.describe()}: {exc}") from None
            old, fresh = text[block.start:block.end], normalise(fresh)
            old_cmp, fresh_cmp = masked(normalise(old), block.mask), masked(fresh, block.mask)
            pieces.append(text[position:block.start])
            if old_cmp == fresh_cmp:
                pieces.append(old)
            else:
                diff = difflib.unified_diff(old_cmp.splitlines(), fresh_cmp.splitlines(),
                                            "committed", "fresh run", lineterm="")
                differences.append(f"{path}: {block.describe()}\n" + "\n".join(diff))
                pieces.append(fresh)
            position = block.end
        pieces.append(text[position:])
        if not check and "".join(pieces) != text:
            path.write_text("".join(pieces))
    return differences


def main(argv=None):
    """Entry point: ``python docs/generate_outputs.py [FILE ...] [--check]``."""
    parser = argparse.ArgumentParser(
        description="Write (or check) the output shown in docs/*.md from the commands "
                    "that print it.")
    parser.add_argument("files", nargs="*", type=Path,
                        help="Markdown files (default: every docs/*.md)")
    parser.add_argument("--check", action="store_true",
                        help="compare with a fresh run and write nothing; exit status 1 "
                             "if a block differs")
    parser.add_argument("--jobs", type=int, default=1,
                        help="commands run side by side (default: 1)")
    parser.add_argument("--timeout", type=float, default=None,
                        help="seconds each command may run (default: no limit)")
    args = parser.parse_args(argv)
    files = args.files or sorted(DOCS.glob("*.md"))
    try:
        differences = generate(files, check=args.check, jobs=args.jobs, timeout=args.timeout)
    except GenerationError as exc:
        print(f"generate_outputs: error: {exc}", file=sys.stderr)
        return 2
    for difference in differences:
        print(difference, end="\n\n")
    if args.check:
        print(f"{len(differences)} block(s) differ from a fresh run" if differences
              else "every block matches a fresh run")
        return 1 if differences else 0
    print(f"rewrote {len(differences)} block(s); read the text around them" if differences
          else "every block already matched a fresh run")
    return 0


if __name__ == "__main__":
    sys.exit(main())
