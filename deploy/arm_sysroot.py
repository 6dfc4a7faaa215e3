"""A Debian bookworm arm64 Python 3.11 sysroot for QEMU user-mode runs, built without touching the
host's apt state: a private apt configuration (its own sources, lists, cache and an empty dpkg
status) downloads the arm64 .debs, and ``dpkg -x`` unpacks them. Cached under the work folder;
needs the Debian mirror once.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

MIRRORS = (
    "deb [arch=arm64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm main",
    "deb [arch=arm64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian-security bookworm-security main",
)
# python3.11's run-time closure (apt-cache depends --recurse), without dpkg/perl/tar, plus the C++
# and OpenMP runtimes the onnxruntime, tokenizers and numpy wheels link against.
SYSROOT_PACKAGES = (
    "gcc-12-base libbz2-1.0 libc6 libcom-err2 libcrypt1 libdb5.3 libexpat1 libffi8 libgcc-s1 libgdbm6 "
    "libgomp1 libgssapi-krb5-2 libk5crypto3 libkeyutils1 libkrb5-3 libkrb5support0 liblzma5 libncursesw6 "
    "libnsl2 libpython3.11-minimal libpython3.11-stdlib libreadline8 libsqlite3-0 libssl3 libstdc++6 "
    "libtinfo6 libtirpc-common libtirpc3 libuuid1 media-types python3.11 python3.11-minimal zlib1g"
).split()


def apt_options(apt_dir: Path) -> list[str]:
    return [
        "-o", "APT::Architecture=arm64", "-o", "APT::Architectures::=arm64",
        "-o", f"Dir::Etc::SourceList={apt_dir / 'sources.list'}", "-o", "Dir::Etc::SourceParts=/nonexistent",
        "-o", f"Dir::Etc::Preferences={apt_dir / 'preferences'}", "-o", f"Dir::Etc::PreferencesParts={apt_dir / 'preferences.d'}",
        "-o", f"Dir::State::Lists={apt_dir / 'lists'}", "-o", f"Dir::State::Status={apt_dir / 'status'}",
        "-o", f"Dir::Cache={apt_dir / 'cache'}", "-o", "Debug::NoLocking=1",
        # apt's _apt sandbox user cannot write into root's private folders
        "-o", "APT::Sandbox::User=root",
    ]


def build_sysroot(work: Path) -> Path:
    key = hashlib.sha256(" ".join(SYSROOT_PACKAGES).encode()).hexdigest()[:10]
    sysroot = work / f"sysroot-bookworm-arm64-{key}"
    if (sysroot / "usr/bin/python3.11").exists():
        return sysroot
    apt_dir = work / "apt"
    for sub in ("lists/partial", "cache/archives/partial", "preferences.d"):
        (apt_dir / sub).mkdir(parents=True, exist_ok=True)
    (apt_dir / "sources.list").write_text("\n".join(MIRRORS) + "\n")
    (apt_dir / "status").touch()
    options = apt_options(apt_dir)
    subprocess.run(["apt-get", *options, "-q", "update"], check=True)
    debs = work / "debs"
    shutil.rmtree(debs, ignore_errors=True)
    debs.mkdir()
    subprocess.run(["apt-get", *options, "-q", "download", *SYSROOT_PACKAGES], cwd=debs, check=True)
    partial = sysroot.with_name(sysroot.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    for deb in sorted(debs.glob("*.deb")):
        subprocess.run(["dpkg", "-x", str(deb), str(partial)], check=True)
    partial.rename(sysroot)
    return sysroot
