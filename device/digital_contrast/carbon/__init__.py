"""Energy and emissions of compute (CodeCarbon, offline) and avoided-footprint accounting.

Submodules are imported explicitly (`digital_contrast.carbon.measure`): CodeCarbon is heavy and
most importers of the package do not need it.
"""
