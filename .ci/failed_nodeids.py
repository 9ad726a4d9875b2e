"""The node ids of the tests a JUnit XML report (pytest --junitxml) records as failed or in error,
one per line (for .ci/run's one rerun of a faketime run's failures at the same instant)."""

import sys
import xml.etree.ElementTree as ET

for case in ET.parse(sys.argv[1]).getroot().iter("testcase"):
    if case.find("failure") is not None or case.find("error") is not None:
        module = case.get("classname", "")
        path = module.replace(".", "/") + ".py"
        print(f"{path}::{case.get('name', '')}")
