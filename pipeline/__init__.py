"""jobfit: medical billing & coding job postings → requirements → roles → fit reports.

Modules, in the order data flows through them: ``ingest`` (files → postings), ``extract`` with
``nlp`` / ``codes`` / ``codesets`` (postings → extraction records), ``store`` (DuckDB), ``match``
(roles and fit), ``export`` (the JSON contract), ``report`` (HTML, Markdown, CSV, JSON).
``runner`` strings them together for the CLI (``cli``).
"""

__version__ = "0.1.0"
