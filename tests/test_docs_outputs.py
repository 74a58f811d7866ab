"""The output shown in docs/*.md is what its commands print today.

``python docs/generate_outputs.py`` writes the blocks; these tests rerun the commands and
compare (see that script for the markers and the comparison rules).
"""

import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
_spec = importlib.util.spec_from_file_location("generate_outputs", DOCS / "generate_outputs.py")
gen = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gen)

# Pages whose commands take minutes (examples/diagnostics.py: about ten on two cores).
SLOW_PAGES = {"diagnostics.md"}
PAGES = sorted(p.name for p in DOCS.glob("*.md") if gen.parse(p.read_text())[0])
FIX = "Regenerate with `python docs/generate_outputs.py docs/{page}` and read the text around it."


@pytest.mark.parametrize("page", [pytest.param(p, marks=pytest.mark.slow) if p in SLOW_PAGES
                                  else p for p in PAGES])
def test_shown_output_is_what_a_fresh_run_prints(page):
    differences = gen.generate([DOCS / page], check=True, jobs=2, timeout=900)
    assert not differences, "\n\n".join(differences) + "\n" + FIX.format(page=page)


def test_getting_started_shows_the_demo_and_the_first_classifier():
    blocks, figures = gen.parse((DOCS / "getting_started.md").read_text())
    targets = {b.target for b in blocks}
    assert {"python -m sklegc demo", "python examples/first_classifier.py",
            "examples/first_classifier.py"} <= targets
    assert figures == ["python examples/inspect_pruning.py --out {img}"]


def stray_output_blocks(text):
    """Line numbers of unlabelled or ``text`` fences not opened right after an output marker."""
    lines, stray, opening = text.splitlines(), [], True
    for number, line in enumerate(lines):
        if not line.startswith("```"):
            continue
        if opening and line in ("```", "```text") and not (
                number and lines[number - 1].startswith("<!-- output: ")):
            stray.append(number + 1)
        opening = not opening
    return stray


def test_every_output_block_in_the_docs_is_generated():
    stray = {p.name: stray_output_blocks(p.read_text()) for p in sorted(DOCS.glob("*.md"))}
    assert {name: lines for name, lines in stray.items() if lines} == {}
    assert stray_output_blocks("x\n```text\nold output\n```\n") == [2]


def _page(tmp_path, command, body, mask=None):
    spec = command if mask is None else f"{command} | mask: {mask}"
    path = tmp_path / "page.md"
    path.write_text(f"Before.\n\n<!-- output: {spec} -->\n```text\n{body}```\n<!-- /output -->\n"
                    "\nAfter.\n")
    return path


def test_check_reports_a_stale_block_and_writing_fixes_it(tmp_path):
    path = _page(tmp_path, "python -c \"print('fresh')\"", "stale\n")
    before = path.read_text()
    [difference] = gen.generate([path], check=True)
    assert "-stale" in difference and "+fresh" in difference
    assert path.read_text() == before
    assert len(gen.generate([path])) == 1
    assert path.read_text() == before.replace("stale", "fresh")
    assert gen.generate([path], check=True) == []


def test_masked_text_is_not_compared_and_not_rewritten(tmp_path):
    command = "python -c \"print('fit in', 1.25, 's')\""
    path = _page(tmp_path, command, "fit in 9.75 s\n", mask=r"(\d+\.\d+) s$")
    before = path.read_text()
    assert gen.generate([path], check=True) == []
    assert gen.generate([path]) == []
    assert path.read_text() == before
    assert gen.masked("a 1.5 s\nb 22.25 s\n", r"(\d+\.\d+) s$") == "a # s\nb # s\n"


def test_sections_and_sources(tmp_path):
    output = "intro\n== one ==\na\nb\n\n== two ==\nc\n"
    assert gen.section(output, "one") == "a\nb\n"
    assert gen.section(output, "two") == "c"
    with pytest.raises(gen.GenerationError, match="no heading '== three =='"):
        gen.section(output, "three")
    assert gen.source_text("examples/first_classifier.py").startswith("from sklearn")


def test_a_failing_command_or_a_bad_marker_is_an_error(tmp_path):
    path = _page(tmp_path, "python -c \"import sys; sys.exit('boom')\"", "x\n")
    with pytest.raises(gen.GenerationError, match="exited with status 1:\nboom"):
        gen.generate([path], check=True)
    with pytest.raises(gen.GenerationError, match="unknown option 'colour: red'"):
        gen.parse("<!-- output: python x.py | colour: red -->\n```\n```\n<!-- /output -->\n")
    with pytest.raises(gen.GenerationError, match="not followed by a fenced block"):
        gen.parse("<!-- output: python x.py -->\ntext\n")
