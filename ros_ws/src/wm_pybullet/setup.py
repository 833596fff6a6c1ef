from setuptools import find_packages, setup

PACKAGE = "wm_pybullet"

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
    description="A second table-clearing world (PyBullet) as a ROS 2 node, for transfer tests.",
    license="Apache-2.0",
    entry_points={"console_scripts": [f"pybullet_node = {PACKAGE}.pybullet_node:main"]},
)
