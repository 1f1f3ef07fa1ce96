"""CARTO's Import API in the core: files and URLs become cartodbfied tables, by a durable job.

``service.py`` holds the commands the CARTO face calls (create, show, list imports),
``jobs.py`` the job kind ``imports.run``, ``archive.py`` the bounded unzip and
``formats.py`` what a file is and how DuckDB reads it.
"""
