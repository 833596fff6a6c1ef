from setuptools import find_packages, setup

PACKAGE = "wm_planner"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="wm developers",
    maintainer_email="dev@wm.local",
    description="Latent MPC planner node: latent + joint state to joint trajectory commands.",
    license="Apache-2.0",
    entry_points={"console_scripts": [f"planner_node = {PACKAGE}.planner_node:main"]},
)
