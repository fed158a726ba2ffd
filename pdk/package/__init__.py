"""Host-side reading of plugin packages: package digest and the safe `.yoi-plugin` reader.

Never bundled into components."""

from pdk.package.archive import PackageEntry, PackageFiles, PackageLimits, validate_path
from pdk.package.digest import is_package_digest, package_digest, package_digest_from_hashes
from pdk.package.errors import PackageError

__all__ = [
    "PackageEntry",
    "PackageError",
    "PackageFiles",
    "PackageLimits",
    "is_package_digest",
    "package_digest",
    "package_digest_from_hashes",
    "validate_path",
]
