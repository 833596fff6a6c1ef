from setuptools import find_packages, setup

PACKAGE = "wm_perception"

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
    description="Camera image to JEPA latent (torch, onnxruntime or TensorRT backends).",
    license="Apache-2.0",
    entry_points={"console_scripts": [f"perception_node = {PACKAGE}.perception_node:main"]},
)
