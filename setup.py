"""Ship the top-level data folders (ontology/, shapes/, queries/) inside the wheel as kg/_data/."""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

DATA_FOLDERS = ("ontology", "shapes", "queries")


class BuildPyWithData(build_py):
    def run(self) -> None:
        super().run()
        here = Path(__file__).resolve().parent
        for name in DATA_FOLDERS:
            source = here / name
            if source.is_dir():
                shutil.copytree(source, Path(self.build_lib) / "kg" / "_data" / name, dirs_exist_ok=True)


setup(cmdclass={"build_py": BuildPyWithData})
