"""Builds the package with the shared library inside: `libpullsketch.so` (from
$PULLSKETCH_LIBRARY, else `swift build -c release` of the repository) and the Swift runtime
libraries it links, found with ldd, so the package runs where no Swift toolchain is installed."""

import os
import shutil
import subprocess
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

def built_library() -> Path:
    given = os.environ.get("PULLSKETCH_LIBRARY")
    if given:
        return Path(given)
    repository = Path(__file__).resolve().parents[3]  # …/Sources/PullSketchEmbed/python
    subprocess.run(["swift", "build", "-c", "release", "--product", "PullSketchEmbed"], cwd=repository, check=True)
    folder = subprocess.run(
        ["swift", "build", "-c", "release", "--show-bin-path"], cwd=repository, check=True, capture_output=True, text=True
    ).stdout.strip()
    return Path(folder) / "libPullSketchEmbed.so"


def swift_runtime(library: Path) -> list:
    """The libraries `library` loads from a Swift toolchain (…/lib/swift/linux/…)."""
    listing = subprocess.run(["ldd", str(library)], check=True, capture_output=True, text=True).stdout
    found = []
    for line in listing.splitlines():
        parts = line.split("=>")
        if len(parts) == 2 and "/lib/swift/" in parts[1]:
            found.append(Path(parts[1].split("(")[0].strip()))
    return found


class BuildWithLibrary(build_py):
    def run(self) -> None:
        super().run()
        target = Path(self.build_lib) / "pullsketch"
        library = built_library()
        shutil.copyfile(library, target / "libpullsketch.so")
        runtime = swift_runtime(library)
        for path in runtime:
            shutil.copyfile(path, target / path.name)
        # Loaded first, from the package, so a toolchain elsewhere on the machine is never used.
        (target / "runtime.txt").write_text("".join(f"{path.name}\n" for path in runtime))


setup(cmdclass={"build_py": BuildWithLibrary})
