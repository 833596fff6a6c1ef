"""``wm_bringup_info``: log where the package is installed (checks the ament index)."""

import logging

from ament_index_python.packages import get_package_share_directory


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("wm_bringup").info(
        "wm_bringup share: %s", get_package_share_directory("wm_bringup")
    )


if __name__ == "__main__":
    main()
