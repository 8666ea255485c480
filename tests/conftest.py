"""Shared fixtures. The requirement-marker plugin is loaded here for the whole suite."""

pytest_plugins = ["pytester", "digital_contrast.qms.pytest_plugin"]
