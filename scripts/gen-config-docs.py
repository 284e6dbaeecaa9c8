#!/usr/bin/env python3
"""Regenerates outpost.toml.example and the README's settings table from src/config/settings.rs."""
import re
import sys
from pathlib import Path

root = Path(__file__).resolve().parent.parent
src = (root / "src/config/settings.rs").read_text()
pattern = re.compile(
    r'\b(s|secret)\(\s*"([A-Z0-9_]+)",\s*(?:(None|Some\("((?:[^"\\]|\\.)*)"\)),\s*)?"((?:[^"\\]|\\.)*)"\s*,?\s*\)',
    re.S,
)
settings = []
for m in pattern.finditer(src):
    kind, name, dflt, dval, about = m.groups()
    unset = kind == "secret" or dflt in (None, "None")
    settings.append((name, None if unset else dval.replace('\\"', '"'), about.replace('\\"', '"')))

example = [
    "# outpost configuration (TOML).",
    "#",
    "# Every key is the lowercase name of an environment variable; the environment wins over this",
    "# file, and this file wins over the built-in defaults shown here. Lists may be written as a",
    "# TOML array or as one comma-separated string. Keys shown commented out are unset by default.",
    "# Copy to outpost.toml (working directory) or pass --config PATH.",
    "",
]
rows = []
for name, value, about in settings:
    key = name.lower()
    example.append("# " + about)
    if value is None:
        example.append('# %s = ""' % key)
        shown = "(unset)"
    else:
        literal = value if value in ("true", "false") or re.fullmatch(r"\d+", value) else "'%s'" % value
        example.append("%s = %s" % (key, literal))
        shown = '""' if value == "" else "`%s`" % value.replace("|", "&#124;")
    example.append("")
    rows.append("| `%s` | %s | %s |" % (name, shown, about))
(root / "outpost.toml.example").write_text("\n".join(example))

readme = (root / "README.md").read_text()
start = readme.index("| Setting | Default | Meaning |")
end = readme.index("\n\n", start)
table = "| Setting | Default | Meaning |\n|---|---|---|\n" + "\n".join(rows)
(root / "README.md").write_text(readme[:start] + table + readme[end:])
print("%d settings" % len(settings), file=sys.stderr)
