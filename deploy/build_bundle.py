"""Build the offline install bundle for one board: one tarball in dist/ holding the project wheel,
every runtime dependency as a binary wheel for the target platform, the model bundle, the systemd
units, example configuration and an install script that needs no network.

    python deploy/build_bundle.py --target aarch64 --python 3.11 [--model models/triage-minilm-int8]

Needs network (PyPI) on the build machine only; the board installs with ``pip --no-index``.
Wheels are pinned per target by deploy/constraints/<arch>-py<ver>.txt so every board of a kind
gets exactly the same bits (the onnxruntime pin differs: 1.32 on cp311, 1.23.2 on cp310).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEPLOY = REPO / "deploy"
TARGETS = ("aarch64", "x86_64")
PYTHONS = ("3.10", "3.11")
# glibc of the targets: Pi OS bookworm 2.36, Ubuntu 22.04 (JetPack 6) 2.35; manylinux_2_28 covers
# today's onnxruntime/numpy wheels and is older than both.
MANYLINUX_TAGS = ("manylinux_2_28", "manylinux_2_27", "manylinux_2_17", "manylinux2014")


class BundleBuildError(RuntimeError):
    """The bundle could not be built; the message says how to fix it."""


@dataclass
class BundleSpec:
    target: str
    python: str
    model_dir: Path
    out_dir: Path

    @property
    def name(self) -> str:
        return f"edge-triage-{project_version()}-{self.target}-py{self.python}"

    @property
    def constraints(self) -> Path:
        return DEPLOY / "constraints" / f"{self.target}-py{self.python}.txt"


def project_version() -> str:
    for line in (REPO / "pyproject.toml").read_text().splitlines():
        if line.startswith("version"):
            return line.split("=", 1)[1].strip().strip('"')
    raise BundleBuildError("pyproject.toml has no version line.")


def pip_platform_args(spec: BundleSpec) -> list[str]:
    args = ["--only-binary=:all:", "--implementation", "cp", "--python-version", spec.python]
    for tag in MANYLINUX_TAGS:
        args += ["--platform", f"{tag}_{spec.target}"]
    return args


def pinned_requirements(constraints: Path) -> list[str]:
    lines = [line.split("#", 1)[0].strip() for line in constraints.read_text().splitlines()]
    return [line for line in lines if line]


def build_project_wheel(dest: Path) -> Path:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "-w", str(dest), str(REPO)], check=True)
    wheels = sorted(dest.glob("edge_triage-*.whl"))
    if not wheels:
        raise BundleBuildError("pip wheel produced no edge_triage wheel.")
    return wheels[-1]


def download_wheels(spec: BundleSpec, dest: Path) -> None:
    """Every pinned runtime dependency for the target, plus pip itself (a board without
    python3-venv's ensurepip can then still bootstrap the venv offline)."""
    requirements = pinned_requirements(spec.constraints) + ["pip"]
    # --no-deps: the constraints file is the complete, resolved set. Markers are not evaluated
    # against --python-version by pip, which is why it must be complete (tomli on 3.10).
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(dest),
           *pip_platform_args(spec), *requirements]
    subprocess.run(cmd, check=True, env=isolated_pip_env())


def isolated_pip_env() -> dict[str, str]:
    """The environment without this machine's pip configuration (extra indexes, find-links such as
    /opt/wheels), so a wheel missing from the bundle cannot be found elsewhere by accident."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull
    return env


def find_interpreter(version: str) -> str | None:
    """A CPython of the board's version, if this machine has one (PATH or pyenv)."""
    if "%d.%d" % sys.version_info[:2] == version:
        return sys.executable
    candidates = sorted(str(p) for p in Path.home().glob(f".pyenv/versions/{version}.*/bin/python{version}"))
    candidates.append(shutil.which(f"python{version}"))  # may be a pyenv shim that refuses to run
    for candidate in filter(None, candidates):
        probe = subprocess.run([candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                               capture_output=True, text=True)
        if probe.returncode == 0 and probe.stdout.strip() == version:
            return candidate
    return None


def check_resolves(spec: BundleSpec, wheel_dir: Path, project_wheel: Path) -> None:
    """Prove the downloaded set is complete: resolve the project wheel against it with no index.

    pip evaluates environment markers (``python_version < "3.11"``) against the interpreter that
    runs it, not ``--python-version``, so the check runs under a Python of the board's version
    when this machine has one; otherwise it says that 3.10-only dependencies went unchecked."""
    interpreter = find_interpreter(spec.python)
    if interpreter is None:
        print(f"bundle: WARNING: no Python {spec.python} here; dependencies behind python_version markers "
              "were not checked (install one, e.g. with pyenv)", file=sys.stderr)
        interpreter = sys.executable
    with tempfile.TemporaryDirectory() as target:
        subprocess.run([interpreter, "-m", "pip", "install", "-q", "--dry-run", "--no-index",
                        "--ignore-installed", "--target", target, "--find-links", str(wheel_dir),
                        "-c", str(spec.constraints), *pip_platform_args(spec), str(project_wheel)],
                       check=True, env=isolated_pip_env())


def stage(spec: BundleSpec, root: Path) -> None:
    if not (spec.model_dir / "manifest.json").is_file():
        raise BundleBuildError(f"No model bundle at {spec.model_dir} (manifest.json missing). "
                               "Build it first or pass --model DIR.")
    wheels = root / "wheels"
    wheels.mkdir(parents=True)
    project_wheel = build_project_wheel(wheels)
    download_wheels(spec, wheels)
    check_resolves(spec, wheels, project_wheel)
    shutil.copytree(spec.model_dir, root / "models" / spec.model_dir.name)
    shutil.copytree(REPO / "systemd", root / "systemd", ignore=shutil.ignore_patterns("*.pyc"))
    shutil.copy2(spec.constraints, root / "constraints.txt")
    shutil.copy2(DEPLOY / "install.sh", root / "install.sh")
    (root / "install.sh").chmod(0o755)
    readme = DEPLOY / "README-boards.md"
    if readme.is_file():
        shutil.copy2(readme, root / "README-boards.md")
    (root / "BUNDLE.json").write_text(json.dumps({
        "name": spec.name, "target": spec.target, "python": spec.python,
        "project_wheel": project_wheel.name, "model": spec.model_dir.name,
    }, indent=2) + "\n")
    write_sums(root)


def write_sums(root: Path) -> None:
    lines = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        lines.append(f"{digest}  {path.relative_to(root)}")
    (root / "SHA256SUMS").write_text("\n".join(lines) + "\n")


def build(spec: BundleSpec) -> Path:
    spec.out_dir.mkdir(parents=True, exist_ok=True)
    tarball = spec.out_dir / f"{spec.name}.tar.gz"
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / spec.name
        stage(spec, root)
        partial = tarball.with_suffix(".partial")
        with tarfile.open(partial, "w:gz") as tar:
            tar.add(root, arcname=spec.name)
        partial.replace(tarball)  # never leave a half-written bundle under the final name
    return tarball


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", choices=TARGETS, required=True)
    parser.add_argument("--python", choices=PYTHONS, required=True)
    parser.add_argument("--model", type=Path, default=REPO / "models" / "triage-minilm-int8")
    parser.add_argument("--out", type=Path, default=REPO / "dist")
    args = parser.parse_args(argv)
    spec = BundleSpec(args.target, args.python, args.model.resolve(), args.out.resolve())
    try:
        tarball = build(spec)
    except (BundleBuildError, subprocess.CalledProcessError) as error:
        print(f"bundle: {error}", file=sys.stderr)
        return 1
    print(f"{tarball} {tarball.stat().st_size / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
