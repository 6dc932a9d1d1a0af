"""Downloads one package's source distribution, exactly as published on PyPI,
checks its sha256 against the index and unpacks it.

pip cannot fetch these sdists alone: `pip download --no-binary` would build
them, and their build backend (uv_build) is one more download that has nothing
to do with the tests. The simple index (PEP 691 JSON) is what pip itself reads.

Usage: fetch_sdist.py NAME VERSION DEST_DIR   (prints the unpacked directory)
"""

import hashlib
import io
import json
import sys
import tarfile
import urllib.parse
import urllib.request

name, version, dest = sys.argv[1:4]
index = f"https://pypi.org/simple/{name}/"
request = urllib.request.Request(index, headers={"Accept": "application/vnd.pypi.simple.v1+json"})
with urllib.request.urlopen(request, timeout=60) as r:
    files = json.load(r)["files"]
wanted = {f"{name.replace('-', '_')}-{version}.tar.gz", f"{name}-{version}.tar.gz"}
sdist = next((f for f in files if f["filename"] in wanted), None)
if sdist is None:
    sys.exit(f"{index} lists no sdist for {name} {version}")
with urllib.request.urlopen(urllib.parse.urljoin(index, sdist["url"]), timeout=120) as r:
    data = r.read()
digest = hashlib.sha256(data).hexdigest()
if digest != sdist["hashes"]["sha256"]:
    sys.exit(f"{sdist['filename']}: sha256 {digest}, the index says {sdist['hashes']['sha256']}")
with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
    top = tar.getnames()[0].split("/")[0]
    tar.extractall(dest, filter="data")
print(f"{dest}/{top}")
