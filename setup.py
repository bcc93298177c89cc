"""Build step that copies the shipped machines, example traces, example sweeps and the
calibration set into the
wheel as package data (``hwsim/_shipped/``), laid out as in the repository so the relative
paths between them keep working. The repository keeps one copy of each file; everything
else about the package is declared in ``pyproject.toml``."""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
#: Repository folder -> the file patterns shipped from it (kept in step with MANIFEST.in).
SHIPPED = {"arch_configs": ("*.yaml",), "traces": ("README.md", "examples/*.csv"),
           "examples/sweeps": ("*.yaml",), "calibration": ("*.csv", "README.md")}


class BuildWithShippedFiles(build_py):
    """``build_py`` that also copies :data:`SHIPPED` into ``hwsim/_shipped/`` of the build.

    An editable install reads the repository's folders directly, so it copies nothing."""

    def run(self) -> None:
        super().run()
        if self.editable_mode:
            return
        target = Path(self.build_lib) / "hwsim" / "_shipped"
        for folder, patterns in SHIPPED.items():
            for pattern in patterns:
                for source in sorted((ROOT / folder).glob(pattern)):
                    dest = target / folder / source.relative_to(ROOT / folder)
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(source, dest)


setup(cmdclass={"build_py": BuildWithShippedFiles})
