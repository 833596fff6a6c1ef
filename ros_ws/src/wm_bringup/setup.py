from glob import glob

from setuptools import find_packages, setup

PACKAGE = "wm_bringup"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        # The single copy of the launch files lives in the repository's top-level launch/.
        (f"share/{PACKAGE}/launch", glob("../../../launch/*.launch.py")),
        (
            f"share/{PACKAGE}/config",
            glob("config/*.yaml") + glob("config/*.rviz") + glob("config/*.json"),
        ),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="wm developers",
    maintainer_email="dev@wm.local",
    description="Bring-up of the world-model arm stack.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            f"wm_bringup_info = {PACKAGE}.info:main",
            f"wm_run = {PACKAGE}.__main__:main",
            f"gz_suction = {PACKAGE}.gz_suction:main",
        ]
    },
)
