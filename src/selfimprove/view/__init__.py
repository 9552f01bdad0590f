"""``selfimprove view``: a local, read-only web viewer over the run store and training run directories.

``store`` holds the read-only, paginated queries; ``app`` the Starlette pages (runs list, eval run, example,
figures); ``training`` the training pages (rounds, kept rows and pairs, guards, model directories). Pages are
rendered with the report's templates (``selfimprove.report``), the same ones ``eval --report`` writes.
"""
