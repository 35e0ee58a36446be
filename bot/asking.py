"""Placeholder until this surface lands."""


def register(app, deps, metrics):  # noqa: ANN001
    pass
