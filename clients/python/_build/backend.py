"""The package's build backend (PEP 517): a wheel or sdist of ``micro_client`` written straight
to the folder pip names, so that building or installing writes nothing into the source tree
(setuptools leaves ``build/`` and ``*.egg-info`` beside the sources). It needs nothing but the
standard library, so ``pip install ./clients/python`` works offline.

The metadata comes from ``pyproject.toml``'s ``[project]`` table (its plain string fields).
"""

import base64
import hashlib
import io
import os
import re
import tarfile
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = "micro_client"
# Files of an sdist besides the package: enough to build the wheel again.
SDIST_FILES = ["pyproject.toml", "README.md", os.path.join("_build", "backend.py")]


def _project():
    """The string fields of pyproject.toml's [project] table."""
    with open(os.path.join(ROOT, "pyproject.toml"), encoding="utf-8") as f:
        text = f.read()
    table = re.search(r"^\[project\]\s*$(.*?)(?=^\[|\Z)", text, re.M | re.S).group(1)
    return dict(re.findall(r'^([\w-]+)\s*=\s*"([^"]*)"\s*$', table, re.M))


def _metadata():
    p = _project()
    lines = [
        "Metadata-Version: 2.1",
        f"Name: {p['name']}",
        f"Version: {p['version']}",
        f"Summary: {p.get('description', '')}",
        f"Requires-Python: {p.get('requires-python', '>=3')}",
        "Description-Content-Type: text/markdown",
    ]
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    return p, "\n".join(lines) + "\n\n" + readme


def _dist_name(p):
    return f"{re.sub(r'[-_.]+', '_', p['name'])}-{p['version']}"


def _package_files():
    """(path in the archive, path on disk) of each module of the package, in a fixed order."""
    folder = os.path.join(ROOT, PACKAGE)
    return [(f"{PACKAGE}/{n}", os.path.join(folder, n)) for n in sorted(os.listdir(folder)) if n.endswith(".py")]


def _record_line(name, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    p, metadata = _metadata()
    dist = _dist_name(p)
    files = [(arc, open(path, "rb").read()) for arc, path in _package_files()]
    files.append((f"{dist}.dist-info/METADATA", metadata.encode("utf-8")))
    wheel = "Wheel-Version: 1.0\nGenerator: micro_client _build/backend.py\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    files.append((f"{dist}.dist-info/WHEEL", wheel.encode()))
    record_name = f"{dist}.dist-info/RECORD"
    record = "\n".join([_record_line(n, d) for n, d in files] + [f"{record_name},,", ""])
    files.append((record_name, record.encode()))
    name = f"{dist}-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(wheel_directory, name), "w", zipfile.ZIP_DEFLATED) as z:
        for arc, data in files:
            z.writestr(arc, data)
    return name


def build_sdist(sdist_directory, config_settings=None):
    p, metadata = _metadata()
    dist = _dist_name(p)
    name = f"{dist}.tar.gz"
    with tarfile.open(os.path.join(sdist_directory, name), "w:gz") as t:
        for rel in SDIST_FILES:
            t.add(os.path.join(ROOT, rel), arcname=f"{dist}/{rel}")
        for arc, path in _package_files():
            t.add(path, arcname=f"{dist}/{arc}")
        info = tarfile.TarInfo(f"{dist}/PKG-INFO")
        data = metadata.encode("utf-8")
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    return name
