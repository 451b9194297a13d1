"""Publish the asv dashboard so that it works offline (behind a firewall, on an air-gapped CI runner).

``asv publish`` writes pages that load jQuery, flot, bootstrap, stupidtable and blueimp-md5 from public
CDNs; without them the dashboard shows only "One or more external (JavaScript) dependencies ... failed to
load". This module runs ``asv publish`` and then vendors those files: each comes from its npm package (the
npm registry is a package index, reachable where PyPI is), its tarball checked against the sha512 pinned
here, and every CDN URL in the published HTML is rewritten to the local copy under ``vendor/``. Tarballs
are cached (``--cache``), so repeated publishes download nothing.

    python -m benchmarks.dashboard [--html-dir .asv/html] [--cache .asv/vendor-cache] [--no-publish]

Deliberately not a new dependency: no PyPI package ships these exact asset versions.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import re
import subprocess
import sys
import tarfile
import urllib.request
from pathlib import Path
from typing import NamedTuple

REGISTRY = "https://registry.npmjs.org"


class Asset(NamedTuple):
    package: str
    version: str
    integrity: str  # the registry's dist.integrity of the tarball
    member: str  # path inside the tarball


# CDN URL (as asv 0.6 writes it) -> the npm file that replaces it. stupidtable 1.0.1 is not on npm; 1.1.3 of
# the same plugin (same $.fn.stupidtable API) replaces it. flot's minified builds are not in its npm
# package; the unminified sources of the same release are.
ASSETS: dict[str, Asset] = {
    "https://code.jquery.com/jquery-3.3.1.min.js": Asset(
        "jquery",
        "3.3.1",
        "sha512-Ubldcmxp5np52/ENotGxlLe6aGMvmF4R8S6tZjsP6Knsaxd/xp3Zrh50cG93lR6nPXyUFwzN3ZSOQI0wRJNdGg==",
        "package/dist/jquery.min.js",
    ),
    "https://cdn.jsdelivr.net/npm/bootstrap@3.1.1/dist/css/bootstrap.min.css": Asset(
        "bootstrap",
        "3.1.1",
        "sha512-TAzqS8E/ISpVHP29gYhy+1NSV+FJwApDVQhDfgLYsIuUDJiqJzH2DfORN5tiu+Ie2iBLrzEG34t4Rf465cigqg==",
        "package/dist/css/bootstrap.min.css",
    ),
    "https://cdn.jsdelivr.net/npm/bootstrap@3.1.1/dist/js/bootstrap.min.js": Asset(
        "bootstrap",
        "3.1.1",
        "sha512-TAzqS8E/ISpVHP29gYhy+1NSV+FJwApDVQhDfgLYsIuUDJiqJzH2DfORN5tiu+Ie2iBLrzEG34t4Rf465cigqg==",
        "package/dist/js/bootstrap.min.js",
    ),
    "https://cdn.jsdelivr.net/npm/flot-orderbars@1.0.0/js/jquery.flot.orderBars.js": Asset(
        "flot-orderbars",
        "1.0.0",
        "sha512-Jv51fvzevUjNXEeozpwEKfPjhiZhfiJddv0WHjduUTCmSF+7T5K7C9c9Y1wIVmUhDBv5fLMjgbwKecT0GIKPZA==",
        "package/js/jquery.flot.orderBars.js",
    ),
    "https://cdnjs.cloudflare.com/ajax/libs/blueimp-md5/2.19.0/js/md5.min.js": Asset(
        "blueimp-md5",
        "2.19.0",
        "sha512-DRQrD6gJyy8FbiE4s+bDoXS9hiW3Vbx5uCdwvcCf3zLHL+Iv7LtGHLpr+GZV8rHG8tK766FGYBwRbu8pELTt+w==",
        "package/js/md5.min.js",
    ),
    "https://cdnjs.cloudflare.com/ajax/libs/stupidtable/1.0.1/stupidtable.min.js": Asset(
        "stupid-table-plugin",
        "1.1.3",
        "sha512-2Vk7XouQPxUQPRe9w0Fu7ZZ8kHLK7rDoLMsCgtKxRNJ7f4dSOGvW9CkHsq5wD6QsaEnWoyLBYH3xOEsrK3yWBg==",
        "package/stupidtable.min.js",
    ),
    **{
        f"https://cdnjs.cloudflare.com/ajax/libs/flot/0.8.3/jquery.flot{part}.min.js": Asset(
            "flot",
            "0.8.3",
            "sha512-xg2otcTJDvS+ERK+my4wxG/ASq90QURXtoM4LhacCq0jQW2jbyjdttbRNqU2cPykrpMvJ6b2uSp6SAgYAzj9tQ==",
            f"package/jquery.flot{part}.js",
        )
        for part in ("", ".time", ".selection", ".categories")
    },
}


class VendorError(RuntimeError):
    """An asset could not be fetched or did not match its pinned hash."""


class DownloadError(VendorError):
    """The registry could not be reached (as opposed to a download that arrived but is wrong)."""


def _check_integrity(data: bytes, integrity: str, what: str) -> None:
    algo, _, expected = integrity.partition("-")
    actual = base64.b64encode(hashlib.new(algo, data).digest()).decode()
    if actual != expected:
        raise VendorError(
            f"{what}: {algo} is {actual}, expected {expected} (corrupted or substituted download)"
        )


def tarball(package: str, version: str, integrity: str, cache: Path) -> bytes:
    """The package tarball, from the cache or the registry, verified against ``integrity``."""
    path = cache / f"{package}-{version}.tgz"
    what = f"{package}@{version}"
    if path.exists():
        data = path.read_bytes()
        try:
            _check_integrity(data, integrity, what)
            return data
        except VendorError:
            path.unlink()  # a stale or damaged cache entry: fetch again
    url = f"{REGISTRY}/{package}/-/{package}-{version}.tgz"
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            data = response.read()
    except OSError as exc:
        raise DownloadError(f"{what}: cannot download {url}: {exc}") from exc
    _check_integrity(data, integrity, what)
    cache.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return data


def _sri(path: Path) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(path.read_bytes()).digest()).decode()


def _retarget(text: str, url: str, path: str, integrity: str) -> str:
    """Point every tag that loads ``url`` at ``path``, with a subresource-integrity hash of the local file
    (asv pins the CDN files' hashes; where the npm file differs, e.g. flot unminified, the old one would
    make the browser block it)."""

    def fix(match: re.Match[str]) -> str:
        tag = match.group(0).replace(url, path)
        return re.sub(r'integrity="[^"]*"', f'integrity="{integrity}"', tag)

    return re.sub(r"<(?:script|link)\b[^>]*" + re.escape(url) + r"[^>]*>", fix, text)


def vendor(html_dir: Path, cache: Path) -> list[str]:
    """Copy every CDN asset into ``html_dir/vendor`` and point the published pages at it; return the URLs
    that were rewritten. Pages that reference a CDN URL not in `ASSETS` are an error (asv changed)."""
    out = html_dir / "vendor"
    out.mkdir(parents=True, exist_ok=True)
    local: dict[str, str] = {}
    for url, asset in ASSETS.items():
        data = tarball(asset.package, asset.version, asset.integrity, cache)
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            member = tar.extractfile(asset.member)
            if member is None:
                raise VendorError(f"{asset.package}@{asset.version} has no {asset.member}")
            name = f"{asset.package}-{asset.version}-{Path(asset.member).name}"
            (out / name).write_bytes(member.read())
        local[url] = f"vendor/{name}"
    rewritten: set[str] = set()
    for page in html_dir.glob("*.html"):
        text = page.read_text(encoding="utf-8")
        for url, path in local.items():
            if url in text:
                text = _retarget(text, url, path, _sri(html_dir / path))
                rewritten.add(url)
        leftover = [
            tok for tok in ("cdn.jsdelivr.net", "cdnjs.cloudflare.com", "code.jquery.com") if tok in text
        ]
        if leftover:
            raise VendorError(f"{page.name} still loads from {', '.join(leftover)}: add the asset to ASSETS")
        page.write_text(text, encoding="utf-8")
    return sorted(rewritten)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.dashboard", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--html-dir", type=Path, default=Path(".asv/html"))
    parser.add_argument("--cache", type=Path, default=Path(".asv/vendor-cache"))
    parser.add_argument(
        "--no-publish", action="store_true", help="only vendor an already published dashboard"
    )
    parser.add_argument("--config", default="asv.conf.json")
    args = parser.parse_args(argv)
    if not args.no_publish:
        proc = subprocess.run([sys.executable, "-m", "asv", "publish", "--config", args.config], check=False)
        if proc.returncode:
            return proc.returncode
    try:
        urls = vendor(args.html_dir, args.cache)
    except VendorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(
        f"dashboard in {args.html_dir}: {len(urls)} CDN assets vendored; serve it with "
        f"`python -m http.server -d {args.html_dir}`"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
