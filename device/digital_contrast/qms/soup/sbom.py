"""The CycloneDX SBOM of the runtime closure and the vendored files."""

from __future__ import annotations

from pathlib import Path

import digital_contrast
from digital_contrast.qms.soup.closure import Dist
from digital_contrast.qms.soup.vendored import Vendored, vendored_components


def write_sbom(path: Path, closure: dict[str, Dist], *,
               vendored: dict[str, Vendored] | None = None) -> Path:
    """CycloneDX 1.6 JSON: the device, every closure member and vendored file, the graph."""
    # Imported here: the `qms` extra (technical-file tooling), not a runtime dependency.
    from cyclonedx.contrib.license.factories import LicenseFactory
    from cyclonedx.model import HashAlgorithm, HashType
    from cyclonedx.model.bom import Bom
    from cyclonedx.model.component import Component, ComponentType
    from cyclonedx.output.json import JsonV1Dot6
    from packageurl import PackageURL

    vendored = vendored_components() if vendored is None else vendored
    licences = LicenseFactory()
    bom = Bom()
    device = Component(name="digital-contrast", version=digital_contrast.__version__,
                       type=ComponentType.APPLICATION, bom_ref="digital-contrast",
                       description=digital_contrast.PRODUCT_NAME)
    bom.metadata.component = device
    components = {}
    for dist in closure.values():
        if dist.version is None:
            continue
        purl = PackageURL("pypi", None, dist.name, dist.version)
        components[dist.name] = Component(
            name=dist.name, version=dist.version, purl=purl, bom_ref=purl.to_string(),
            licenses=[licences.make_from_string(dist.licence)])
    for item in vendored.values():
        purl = PackageURL("npm", None, item.name, item.version)
        hashes = [HashType(alg=HashAlgorithm.SHA_256, content=item.sha256)] if item.sha256 else []
        components[item.name] = Component(
            name=item.name, version=item.version, purl=purl, bom_ref=purl.to_string(),
            hashes=hashes, licenses=[licences.make_from_string(item.licence)])
    for component in components.values():
        bom.components.add(component)
    direct = [c for n, c in components.items() if n in vendored or closure[n].direct]
    bom.register_dependency(device, direct)
    for name, dist in closure.items():
        if name in components:
            bom.register_dependency(components[name], [components[r] for r in
                                                       sorted(dist.requires) if r in components])
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(JsonV1Dot6(bom).output_as_string(indent=2) + "\n", encoding="utf-8")
    return path
