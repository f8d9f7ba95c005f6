"""Build one deployable source bundle per function: `python -m dev.package [--out DIR]`.

For each function in functions/routes.json that is not local_only, writes `DIR/<name>/` and
`DIR/<name>.zip` holding a generated `main.py` (re-exporting the entry point, as Cloud Functions
expects), the `functions/` and `shared/` packages and the root `requirements.txt`. Zips are
deterministic (sorted entries, fixed timestamps and modes), so unchanged code gives the same hash
and Terraform redeploys only the functions whose bundle changed.
"""

from __future__ import annotations

import argparse
import json
import shutil
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("functions", "shared")
SKIP_DIRS = {"__pycache__", "tests", ".mypy_cache", ".pytest_cache", ".ruff_cache"}
SKIP_SUFFIXES = {".pyc", ".pyo"}
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def load_routes(root: Path = ROOT) -> list[dict[str, Any]]:
    return json.loads((root / "functions" / "routes.json").read_text())["functions"]


def main_py(function: dict[str, Any]) -> str:
    module = function["source"].removesuffix(".py")
    return f"from functions.{module} import {function['name']}  # noqa: F401\n"


def package_files(root: Path, excluded: set[Path]) -> Iterator[tuple[Path, str]]:
    """(source file, path inside the bundle) of every file of the shared packages."""
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*")):
            rel = path.relative_to(root)
            if not path.is_file() or path in excluded or path.suffix in SKIP_SUFFIXES:
                continue
            if SKIP_DIRS.intersection(rel.parts) or path.name.startswith(("test_", ".")):
                continue
            yield path, rel.as_posix()


def write_zip(directory: Path, target: Path) -> None:
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for path in sorted(p for p in directory.rglob("*") if p.is_file()):
            info = zipfile.ZipInfo(path.relative_to(directory).as_posix(), date_time=ZIP_EPOCH)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, path.read_bytes())


def build(function: dict[str, Any], out: Path, root: Path, excluded: set[Path]) -> Path:
    bundle = out / function["name"]
    if bundle.exists():
        shutil.rmtree(bundle)
    bundle.mkdir(parents=True)
    (bundle / "main.py").write_text(main_py(function))
    shutil.copyfile(root / "requirements.txt", bundle / "requirements.txt")
    for source, rel in package_files(root, excluded):
        target = bundle / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    archive = out / f"{function['name']}.zip"
    write_zip(bundle, archive)
    return archive


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build one source bundle per deployed function.")
    parser.add_argument("--out", type=Path, default=ROOT / "build", help="output directory (default: build/)")
    args = parser.parse_args(argv)
    out: Path = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    routes = load_routes()
    # Local-only entry points (the development identity provider) stay out of every bundle.
    excluded = {ROOT / "functions" / f["source"] for f in routes if f.get("local_only")}
    for function in routes:
        if function.get("local_only"):
            print(f"skipped {function['name']} (local_only)")
            continue
        archive = build(function, out, ROOT, excluded)
        size = archive.stat().st_size // 1024
        print(f"built {archive} ({size} KiB) from functions/{function['source']}, entry point {function['name']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
