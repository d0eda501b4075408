"""Writes one hash lock for scripts/peers/lock.sh (run by the python of its throwaway venv).

  lock_hashes.py --index URL --out LOCK --header TEXT (--report PIP_REPORT.json | --pins NAME==VER...)

Every package (from pip's `install --dry-run --report` resolution, or the exact --pins) is
written as `name==version` with the sha256 of every file of that release on the index's
simple page (PEP 503: each link carries `#sha256=`), so the lock also installs on other
platforms; the file pip picked here must be among them. A package with no wheel for this
interpreter is named in the header: it builds from its sdist, with locks/build-tools.txt.
Uses the `packaging` that pip vendors (nothing to install).
"""

import argparse
import json
import sys
import urllib.request
from html.parser import HTMLParser
from urllib.parse import urldefrag, urlsplit, unquote

from pip._vendor.packaging.tags import sys_tags
from pip._vendor.packaging.utils import canonicalize_name, parse_sdist_filename, parse_wheel_filename
from pip._vendor.packaging.version import Version


class Links(HTMLParser):
    """The (filename, sha256) of every <a> on a PEP 503 project page."""

    def __init__(self) -> None:
        super().__init__()
        self.files: list[tuple[str, str]] = []

    def handle_starttag(self, tag, attrs):
        if tag != 'a':
            return
        url, fragment = urldefrag(dict(attrs).get('href') or '')
        sha = dict(p.split('=', 1) for p in fragment.split('&') if '=' in p).get('sha256')
        if sha:
            self.files.append((unquote(urlsplit(url).path.rsplit('/', 1)[-1]), sha))


def release_files(index: str, name: str, version: str) -> list[tuple[str, str, bool]]:
    """(filename, sha256, installs on this interpreter as a wheel) of each file of name==version."""
    url = f'{index.rstrip("/")}/{canonicalize_name(name)}/'
    with urllib.request.urlopen(urllib.request.Request(url, headers={'Accept': 'text/html'}), timeout=120) as page:
        parser = Links()
        parser.feed(page.read().decode('utf-8'))
    here = set(sys_tags())
    found = []
    for filename, sha in parser.files:
        try:
            if filename.endswith('.whl'):
                _, file_version, _, tags = parse_wheel_filename(filename)
            else:
                file_version, tags = parse_sdist_filename(filename)[1], frozenset()
        except Exception:  # eggs, installers, odd names: pip would not pick them either
            continue
        if file_version == Version(version):
            found.append((filename, sha, bool(tags & here)))
    if not found:
        sys.exit(f'lock_hashes: no file of {name}=={version} with a sha256 on {url}')
    return found


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument('--index', required=True)
    ap.add_argument('--out', required=True)
    ap.add_argument('--header', required=True)
    ap.add_argument('--report')
    ap.add_argument('--pins', nargs='*', default=[])
    args = ap.parse_args()

    picked: dict[str, tuple[str, str | None]] = {}  # canonical name -> (version, sha256 pip picked)
    if args.report:
        with open(args.report) as f:
            for item in json.load(f)['install']:
                sha = item.get('download_info', {}).get('archive_info', {}).get('hashes', {}).get('sha256')
                picked[canonicalize_name(item['metadata']['name'])] = (item['metadata']['version'], sha)
    for pin in args.pins:
        name, version = pin.split('==', 1)
        picked[canonicalize_name(name.split('[', 1)[0])] = (version, None)  # extras: only their deps differ

    lines, sdist_only = [], []
    for name in sorted(picked):
        version, sha_picked = picked[name]
        files = release_files(args.index, name, version)
        hashes = sorted({sha for _, sha, _ in files})
        if sha_picked and sha_picked not in hashes:
            sys.exit(f'lock_hashes: the file pip picked for {name}=={version} is not on the index page')
        if not any(wheel_here for _, _, wheel_here in files):
            sdist_only.append(name)
        lines.append(f'{name}=={version} \\\n' + ' \\\n'.join(f'    --hash=sha256:{h}' for h in hashes))

    header = [f'# {line}' if line else '#' for line in args.header.splitlines()]
    # Read by scripts/peers/lib.sh, which builds the venv only with this python3 (markers and wheels
    # were chosen for it).
    header.append(f'# python: {sys.implementation.name} {sys.version_info[0]}.{sys.version_info[1]}'
                  ' (resolved on it; scripts/peers/lib.sh builds the venv with no other)')
    header.append(f'# {len(lines)} package{"" if len(lines) == 1 else "s"}.')
    if sdist_only:
        # Built from their sdist on install: the calling script must install locks/build-tools.txt first.
        header.append('# No wheel for this platform, built from source with locks/build-tools.txt: ' + ' '.join(sdist_only))
        print(f'lock_hashes: {args.out}: no wheel here for {" ".join(sdist_only)}; install locks/build-tools.txt before it', file=sys.stderr)
    with open(args.out, 'w') as f:
        f.write('\n'.join(header) + '\n' + '\n'.join(lines) + '\n')


if __name__ == '__main__':
    main()
