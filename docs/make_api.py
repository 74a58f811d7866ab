"""Write docs/api.md from the docstrings of sklegc's public objects.

Run after changing a public signature or docstring::

    python docs/make_api.py
"""

import ast
import importlib
import inspect
import pprint
from pathlib import Path

SECTIONS = [
    ("The estimator", "sklegc.estimator", ["LEGCPrunedClassifier", "PruningWarning",
                                           "PAPER_PARAMS"]),
    ("Training callbacks", "sklegc.trajectory",
     ["WeightTracer", "TrainingAccuracy", "TrainingDivergedError"]),
    ("Windows", "sklegc.windows",
     ["window_layout", "window_stride", "n_windows", "min_window_size"]),
    ("Lyapunov exponents", "sklegc.lyapunov", ["max_lyapunov", "divergence_curve"]),
    ("Granger causality", "sklegc.granger", ["granger_tests", "GrangerResult", "max_feasible_lag"]),
    ("Threads", "sklegc.threads",
     ["worker_thread_budget", "limited_threads", "kernel_threads", "parallel_blocks"]),
    ("Masks", "sklegc.masks",
     ["noncausal_mask", "noncausal_units", "unit_pvalues", "FixedMask", "apply_masks",
      "baseline_keep", "unit_baseline_keep"]),
    ("Compression and export", "sklegc.compress",
     ["compress_module", "CompressionError", "CompressionWarning"]),
    ("", "sklegc.export", ["to_mlpclassifier", "sparse_initializers"]),
    ("Datasets", "sklegc.datasets", ["load_dataset", "DatasetNotFoundError"]),
    ("Diagnostics", "sklegc.diagnostics",
     ["feature_importance", "importance_consistency", "layer_quality",
      "plot_importance_comparison", "plot_esd", "plot_accuracy_vs_sparsity"]),
]


def _attribute_doc(module, name):
    """The string literal that follows ``name = ...`` at a module's top level, if any."""
    tree = ast.parse(inspect.getsource(module))
    body = tree.body
    for node, following in zip(body, body[1:]):
        targets = node.targets if isinstance(node, ast.Assign) else []
        if any(isinstance(t, ast.Name) and t.id == name for t in targets):
            if isinstance(following, ast.Expr) and isinstance(following.value, ast.Constant):
                return inspect.cleandoc(following.value.value)
    return ""


def entry(module, name):
    obj = getattr(module, name)
    if not callable(obj):
        value = pprint.pformat(obj, sort_dicts=False)
        return (f"### `{module.__name__}.{name}`\n\n*constant*\n\n```python\n{name} = {value}\n```"
                f"\n\n{_indent_sections(_attribute_doc(module, name))}\n")
    kind = "class" if inspect.isclass(obj) else "function"
    try:
        signature = str(inspect.signature(obj))
    except (TypeError, ValueError):
        signature = ""
    doc = inspect.getdoc(obj) or ""
    return f"### `{module.__name__}.{name}{signature}`\n\n*{kind}*\n\n{_indent_sections(doc)}\n"


def _indent_sections(doc):
    # numpydoc to Markdown: section titles become bold headings, "name : type" lines in
    # the listing sections become bullets with their description, Examples become code.
    lines = doc.splitlines()
    out, section, i = [], None, 0
    while i < len(lines):
        line = lines[i]
        if i + 1 < len(lines) and line.strip() and set(lines[i + 1].strip()) == {"-"}:
            if section == "Examples":
                out.append("```")
            section = line.strip()
            out.append(f"\n**{section}**\n")
            if section == "Examples":
                out.append("```python")
            i += 2
            continue
        if section in ("Parameters", "Attributes", "Returns", "Yields", "Raises", "See Also"):
            if line and not line.startswith(" "):
                out.append(f"- `{line.strip()}`")
            elif line.strip():
                out.append(f"  {line.strip()}")
        else:
            out.append(line)
        i += 1
    if section == "Examples":
        out.append("```")
    return "\n".join(out)


def main():
    parts = ["# API reference\n",
             "Generated from the docstrings by `python docs/make_api.py`. The names importable "
             "from `sklegc` itself are `LEGCPrunedClassifier`, `PruningWarning`, `PAPER_PARAMS`, "
             "`TrainingDivergedError`, `max_lyapunov`, `divergence_curve`, `granger_tests`, "
             "`GrangerResult`, `window_layout`, `load_dataset`, `feature_importance`, "
             "`importance_consistency` and `layer_quality`.\n"]
    for title, module_name, names in SECTIONS:
        module = importlib.import_module(module_name)
        missing = [name for name in names if not hasattr(module, name)]
        if missing:
            raise SystemExit(f"docs/make_api.py: {module_name} has no {missing}; update SECTIONS")
        if title:
            parts.append(f"## {title}\n")
        parts.extend(entry(module, name) for name in names)
    Path(__file__).with_name("api.md").write_text("\n".join(parts))


if __name__ == "__main__":
    main()
