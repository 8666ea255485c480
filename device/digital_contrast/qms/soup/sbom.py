"""The CycloneDX SBOM of the runtime closure, the vendored files and the runtime platform: each
component with its supplier, version, hashes and support status, and where each came from."""

from __future__ import annotations

from email.message import Message
from email.utils import getaddresses
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name

import digital_contrast
from digital_contrast.qms.soup.assessments import PlatformItem, SoupFile, SoupItem, load_soup
from digital_contrast.qms.soup.closure import Dist
from digital_contrast.qms.soup.hashes import LOCK_FILES, dist_hashes, lock_hashes
from digital_contrast.qms.soup.platform import Measured, deb_manifest_hash, measure_platform
from digital_contrast.qms.soup.reviews import ReviewRecord, load_reviews
from digital_contrast.qms.soup.vendored import Vendored, vendored_components

PREFIX = "digital-contrast:"  # namespace of our CycloneDX properties


def metadata_supplier(name: str) -> tuple[str | None, str]:
    """The supplier a distribution's metadata declares (Author, else Maintainer, names or
    e-mail names), with the field it came from; None when it declares none."""
    try:
        meta: Message = distribution(name).metadata  # type: ignore[assignment]
    except PackageNotFoundError:
        return None, "not installed"
    for field in ("Author", "Maintainer", "Author-email", "Maintainer-email"):
        value = (meta.get(field) or "").strip()
        if not value or value.upper() == "UNKNOWN":
            continue
        if field.endswith("-email"):
            names = [n or a for n, a in getaddresses([value]) if n or a]
            value = ", ".join(names)
        if value:
            return value, f"distribution metadata ({field})"
    return None, "not declared in the distribution metadata"


TRANSITIVE = ("transitive dependency: not assessed one by one; its support follows the direct "
              "dependency that pulls it in")


def _support_properties(item: SoupItem | PlatformItem | None,
                        unassessed: str = TRANSITIVE) -> dict[str, str]:
    if item is None:
        return {"support-status": "unknown", "support-basis": unassessed}
    found = {"support-status": item.support.status, "support-basis": item.support.basis,
             "support-assessed": item.support.assessed.isoformat()}
    if item.support.until:
        found["support-until"] = item.support.until.isoformat()
    return found


def _review_property(reviews: dict[str, ReviewRecord], name: str) -> str:
    record = reviews.get(canonicalize_name(name))
    if record is None:
        return "no review record"
    review = record.review
    return f"{review.date} {review.result}, version {review.version} ({record.doc.name})"


def write_sbom(path: Path, closure: dict[str, Dist], *,
               vendored: dict[str, Vendored] | None = None, soup: SoupFile | None = None,
               platform: dict[str, Measured] | None = None,
               reviews: dict[str, ReviewRecord] | None = None,
               lock_files: tuple[Path, ...] = LOCK_FILES) -> Path:
    """CycloneDX 1.6 JSON: the device, every closure member, vendored file and platform
    component with supplier, version, SHA-256 (source named) and support status, the graph."""
    # Imported here: the `qms` extra (technical-file tooling), not a runtime dependency.
    from cyclonedx.contrib.license.factories import LicenseFactory
    from cyclonedx.model import HashAlgorithm, HashType, Property
    from cyclonedx.model.bom import Bom
    from cyclonedx.model.component import Component, ComponentScope, ComponentType
    from cyclonedx.model.contact import OrganizationalEntity
    from cyclonedx.output.json import JsonV1Dot6
    from packageurl import PackageURL

    vendored = vendored_components() if vendored is None else vendored
    soup = load_soup()[0] if soup is None else soup
    platform = measure_platform() if platform is None else platform
    reviews = load_reviews()[0] if reviews is None else reviews
    assessed: dict[str, SoupItem] = {k: item for k, (_, item) in
                                     (soup.by_name() if soup else {}).items()}
    locks = lock_hashes(lock_files)
    licences = LicenseFactory()

    def component(name: str, version: str | None, purl: Any, kind: Any, *, supplier: str | None,
                  licence: str | None, sha256: tuple[str, ...], properties: dict[str, str],
                  scope: Any = None) -> Any:
        return Component(
            name=name, version=version, purl=purl, bom_ref=purl.to_string(), type=kind,
            supplier=OrganizationalEntity(name=supplier) if supplier else None, scope=scope,
            hashes=[HashType(alg=HashAlgorithm.SHA_256, content=h) for h in sha256],
            licenses=[licences.make_from_string(licence)] if licence else [],
            properties=[Property(name=PREFIX + k, value=v) for k, v in properties.items()])

    bom = Bom()
    device = Component(name="digital-contrast", version=digital_contrast.__version__,
                       type=ComponentType.APPLICATION, bom_ref="digital-contrast",
                       description=digital_contrast.PRODUCT_NAME)
    bom.metadata.component = device
    components = {}
    for dist in closure.values():
        if dist.version is None:
            continue
        item = assessed.get(dist.name)
        supplier, supplier_source = ((item.supplier, "qms/soup.yaml") if item
                                     else metadata_supplier(dist.name))
        hashes = dist_hashes(dist.name, dist.version, locks)
        components[dist.name] = component(
            dist.name, dist.version, PackageURL("pypi", None, dist.name, dist.version),
            ComponentType.LIBRARY, supplier=supplier, licence=dist.licence,
            sha256=hashes.sha256, properties={
                "soup-section": "direct" if dist.direct else "transitive",
                "supplier-source": supplier_source, "hash-source": hashes.source,
                **_support_properties(item),
                **({"anomaly-review": _review_property(reviews, dist.name)} if item else {})})
    for shipped in vendored.values():
        item = assessed.get(canonicalize_name(shipped.name))
        components[shipped.name] = component(
            shipped.name, shipped.version, PackageURL("npm", None, shipped.name, shipped.version),
            ComponentType.LIBRARY, supplier=item.supplier if item else None,
            licence=shipped.licence, sha256=(shipped.sha256,) if shipped.sha256 else (),
            properties={"soup-section": "vendored",
                        "supplier-source": "qms/soup.yaml" if item else "not assessed",
                        "hash-source": "SHA-256 of the vendored file, from the vendor README "
                                       "(checked against the file by qms check)",
                        **_support_properties(item, "no assessment in qms/soup.yaml"),
                        "anomaly-review": _review_property(reviews, shipped.name)})
    platform_refs = _platform_components(component, soup, platform, reviews, bom_types=(
        ComponentType, ComponentScope), purl_type=PackageURL)
    for c in [*components.values(), *platform_refs.values()]:
        bom.components.add(c)
    direct = [c for n, c in components.items() if n in vendored or closure[n].direct]
    bom.register_dependency(device, direct + [c for c in platform_refs.values()
                                              if c.scope != ComponentScope.EXCLUDED])
    for name, dist in closure.items():
        if name in components:
            bom.register_dependency(components[name], [components[r] for r in
                                                       sorted(dist.requires) if r in components])
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(JsonV1Dot6(bom).output_as_string(indent=2) + "\n", encoding="utf-8")
    return path


def _platform_components(component: Any, soup: SoupFile | None, platform: dict[str, Measured],
                         reviews: dict[str, ReviewRecord], *, bom_types: tuple[Any, Any],
                         purl_type: Any) -> dict[str, Any]:
    """One component per measured platform component, with its assessment where it has one."""
    component_type, scope = bom_types
    items = {item.name: item for _, item in (soup.platform if soup else [])}
    debian = platform.get("debian")
    distro = f"debian-{debian.version}" if debian and debian.version else None
    kinds = {"interpreter": component_type.PLATFORM, "library": component_type.LIBRARY,
             "os": component_type.OPERATING_SYSTEM,
             "deb": component_type.APPLICATION, "server": component_type.APPLICATION}
    found = {}
    for name, measured in platform.items():
        item = items.get(name)
        if measured.kind == "deb":
            purl = purl_type("deb", "debian", name, measured.version,
                             {"distro": distro} if distro else None)
            digest = deb_manifest_hash(name) if measured.version else None
            hashes = ((digest,), "SHA-256 of dpkg's file list with MD5 sums "
                                 f"(/var/lib/dpkg/info/{name}.md5sums); no archive hash is kept "
                                 "after installation") if digest else ((), "none available")
        else:
            purl = purl_type("generic", None, name, measured.version)
            hashes = ((), "none: no published archive of this build is identified by a hash "
                          "on this machine")
        use = item.use if item else []
        found[name] = component(
            name, measured.version, purl, kinds[measured.kind],
            supplier=item.supplier if item else None, licence=item.licence if item else None,
            sha256=hashes[0],
            scope=(scope.EXCLUDED if use == ["test"] else
                   scope.OPTIONAL if "runtime" not in use else scope.REQUIRED),
            properties={"soup-section": "platform", "platform-kind": measured.kind,
                        "platform-use": ", ".join(use) or "not assessed",
                        "version-source": measured.source
                        if measured.version else f"version {measured.source}",
                        "supplier-source": "qms/soup.yaml" if item else "not assessed",
                        "hash-source": hashes[1],
                        **_support_properties(item, "no assessment in qms/soup.yaml"),
                        "anomaly-review": _review_property(reviews, name)})
    return found
