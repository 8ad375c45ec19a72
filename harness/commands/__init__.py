"""Command modules of the `harness` CLI; each exposes `register(app)`."""
